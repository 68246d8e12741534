package chromium

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
)

// V8 gives a parse error of the worker's source (a 202) no position, so
// the Chromium engine asks for it: the page compiles the source once more
// (Runtime.compileScript, which runs nothing) and the position of its
// exception is the user's line and column (1-based), as Firefox reports
// them.

// withParsePosition returns reason with " (line L, column C)" of the parse
// error of code appended, when reason has no position yet and the page
// can tell it.
func (w *worker) withParsePosition(pg *page, reason string) string {
	if strings.Contains(reason, "(line ") {
		return reason
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	res, err := cdp.Call(ctx, pg.t, runtime.CompileScript, runtime.CompileScriptParams{Expression: w.req.Code, SourceURL: w.req.Source})
	if err != nil || res.ExceptionDetails == nil {
		return reason
	}
	line, col := userPosition(w.req.Code, int(res.ExceptionDetails.LineNumber)+1, int(res.ExceptionDetails.ColumnNumber)+1)
	return fmt.Sprintf("%s (line %d, column %d)", reason, line, col)
}

var lineBreaks = regexp.MustCompile("\r\n|[\n\r\u2028\u2029]")

// userPosition places a position past the end of code (an error at the
// end of input) at the end of its last line, as bootstrap.js does.
func userPosition(code string, line, col int) (int, int) {
	lines := lineBreaks.Split(code, -1)
	if line > len(lines) {
		line = len(lines)
		col = len([]rune(lines[line-1])) + 1
	}
	return line, col
}
