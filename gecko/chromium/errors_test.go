package chromium_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko/chromium"
)

// TestWorkerErrors: a source that does not parse is a 202, one that
// throws a 203, each naming the line and column in the user's source.
func TestWorkerErrors(t *testing.T) {
	s := newStack(t, chromium.PoolOptions{Warm: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, c := range []struct {
		path  string
		errno engine.Errno
		want  string
	}{
		{"/syntax.js", 202, "SyntaxError: Unexpected end of input (line 2, column 1)"},
		{"/throw.js", 203, "Error: boom (line 2, column 7)"},
		{"/syntax1.js", 202, "SyntaxError: Unexpected token ')' (line 1, column 52)"},
		{"/json.js", 203, "(line 2, column 8)"},
	} {
		sess, err := s.dial(ctx, s.tokenA, c.path)
		if sess != nil {
			_ = sess.Close()
		}
		var we *engine.Error
		if !errors.As(err, &we) || we.Errno != c.errno || !strings.Contains(we.Reason, c.want) {
			t.Errorf("%s: %v, want errno %d with %q", c.path, err, c.errno, c.want)
		}
	}
}
