package engine_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/geckohost/geckohost/engine"
)

// docTable returns the rows (cells trimmed) of the one markdown table
// whose header line is header in README.md or docs/*.md: the docs state
// each table once.
func docTable(t *testing.T, header string) (string, [][]string) {
	t.Helper()
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var where string
	var rows [][]string
	for _, f := range append([]string{"../README.md"}, files...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			if strings.TrimSpace(l) != header {
				continue
			}
			if where != "" {
				t.Fatalf("the table %q is in %s and again in %s: state it once", header, where, f)
			}
			where = f
			for _, r := range lines[i+2:] {
				r = strings.TrimSpace(r)
				if !strings.HasPrefix(r, "|") {
					break
				}
				cells := strings.Split(strings.Trim(r, "|"), " | ")
				for j := range cells {
					cells[j] = strings.TrimSpace(cells[j])
				}
				rows = append(rows, cells)
			}
		}
	}
	if where == "" {
		t.Fatalf("no table %q in README.md or docs/*.md", header)
	}
	return where, rows
}

// TestDocsErrnoTable: the errno table of the docs is engine's, row by row
// (number, name, when).
func TestDocsErrnoTable(t *testing.T) {
	where, rows := docTable(t, "| errno | name | when |")
	errnos := engine.Errnos()
	for i, e := range errnos {
		want := []string{strconv.Itoa(int(e)), e.String(), e.Meaning()}
		if i >= len(rows) {
			t.Errorf("%s: no row for %d %s; want %q", where, int(e), e, "| "+strings.Join(want, " | ")+" |")
			continue
		}
		if strings.Join(rows[i], "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%s: row %d is\n%q\nwant (engine/errno.go)\n%q", where, i+1, rows[i], want)
		}
	}
	if len(rows) > len(errnos) {
		t.Errorf("%s: %d rows, engine has %d errnos: %q", where, len(rows), len(errnos), rows[len(errnos):])
	}
}

// TestDocsEndReasonTable: the end-reason table of the docs is engine's,
// row by row.
func TestDocsEndReasonTable(t *testing.T) {
	where, rows := docTable(t, "| end reason | the session ended because |")
	reasons := engine.EndReasons()
	for i, r := range reasons {
		want := []string{"`" + string(r) + "`", r.Meaning()}
		if i >= len(rows) {
			t.Errorf("%s: no row for %s; want %q", where, r, "| "+strings.Join(want, " | ")+" |")
			continue
		}
		if strings.Join(rows[i], "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%s: row %d is\n%q\nwant (engine/engine.go)\n%q", where, i+1, rows[i], want)
		}
	}
	if len(rows) > len(reasons) {
		t.Errorf("%s: %d rows, engine has %d end reasons: %q", where, len(rows), len(reasons), rows[len(reasons):])
	}
}

// TestTablesComplete: every errno and end reason has a meaning.
func TestTablesComplete(t *testing.T) {
	for _, e := range engine.Errnos() {
		if e.Meaning() == "" || strings.HasPrefix(e.String(), "ERRNO_") {
			t.Errorf("errno %d has no name or meaning", int(e))
		}
	}
	for _, r := range engine.EndReasons() {
		if r.Meaning() == "" {
			t.Errorf("end reason %s has no meaning", r)
		}
	}
}
