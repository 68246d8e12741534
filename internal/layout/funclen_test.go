package layout

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxFuncLines is the longest a production function may be: one screen.
const maxFuncLines = 120

// TestFunctionLength fails on every production function (not in a _test.go
// file nor under testdata) of the module longer than maxFuncLines lines,
// and lists them all, longest first.
func TestFunctionLength(t *testing.T) {
	type long struct {
		lines int
		at    string
	}
	var over []long
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (d.Name() == "testdata" || d.Name() == "vendor" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			a, b := fset.Position(fd.Pos()), fset.Position(fd.End())
			if n := b.Line - a.Line + 1; n > maxFuncLines {
				over = append(over, long{n, fmt.Sprintf("%s:%d %s", rel(p), a.Line, funcName(fd))})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(over, func(i, j int) bool { return over[i].lines > over[j].lines })
	for _, l := range over {
		t.Errorf("%d lines (at most %d): %s", l.lines, maxFuncLines, l.at)
	}
}

// funcName is fd's name, with its receiver's type for a method.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok { // a generic type's method
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
