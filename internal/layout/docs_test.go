package layout

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the module's root, from this package's directory.
const root = "../.."

// maxRow is the longest a Markdown table row may be, in characters.
const maxRow = 200

// TestDocsTableRows fails on a Markdown table row over maxRow characters in
// the README or docs/: a row that long is a paragraph, not a table cell.
func TestDocsTableRows(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"))
	for _, f := range files {
		for i, line := range readLines(t, f) {
			if strings.HasPrefix(line, "|") && len([]rune(line)) > maxRow {
				t.Errorf("%s:%d: a table row of %d characters (at most %d): %.60s…",
					rel(f), i+1, len([]rune(line)), maxRow, line)
			}
		}
	}
}

// TestLayoutNamesTree checks the README's Layout section against the tree:
// every directory holding Go files is named in it (as `dir/`), every Go file
// of the root package is named (or matched by a named glob), and every path
// it names exists.
func TestLayoutNamesTree(t *testing.T) {
	rows := layoutRows(t)
	named := map[string]bool{} // directories named as the first item of a row
	var rootItems []string     // items of rows about the root package
	for _, items := range rows {
		base := ""
		if strings.HasSuffix(items[0], "/") {
			base = items[0]
			named[strings.TrimSuffix(base, "/")] = true
			items = items[1:]
		}
		for _, it := range items {
			p := filepath.Join(root, base, it)
			if m, _ := filepath.Glob(p); len(m) == 0 {
				t.Errorf("the Layout names %s%s, which does not exist", base, it)
			}
			if base == "" {
				rootItems = append(rootItems, it)
			}
		}
	}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(name, ".go") {
			return nil
		}
		dir := filepath.ToSlash(mustRel(t, filepath.Dir(p)))
		if dir != "." {
			if !named[dir] {
				t.Errorf("%s/ has Go files but the README's Layout does not name it", dir)
				named[dir] = true // once per directory
			}
			return nil
		}
		if strings.HasSuffix(name, "_test.go") {
			return nil
		}
		for _, it := range rootItems {
			if ok, _ := filepath.Match(it, name); ok {
				return nil
			}
		}
		t.Errorf("the root file %s is not named in the README's Layout", name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var backticked = regexp.MustCompile("`([^`]+)`")

// layoutRows returns, for each row of the Layout section's table, the
// backticked items of its first cell.
func layoutRows(t *testing.T) [][]string {
	t.Helper()
	var rows [][]string
	in := false
	for _, line := range readLines(t, filepath.Join(root, "README.md")) {
		if strings.HasPrefix(line, "## ") {
			in = line == "## Layout"
			continue
		}
		if !in || !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(line, "|")
		var items []string
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			items = append(items, m[1])
		}
		if len(items) > 0 {
			rows = append(rows, items)
		}
	}
	if len(rows) == 0 {
		t.Fatal("the README has no Layout section with a table")
	}
	return rows
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func mustRel(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.Rel(root, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rel(p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return r
}
