package main

import (
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/internal/leaktest"
)

// TestFlagsFirst: each command's flags (with their values) move before its
// arguments; bool flags take no value; "--" ends the moving; subcommand
// names after a flag still select the subcommand.
func TestFlagsFirst(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	for _, c := range []struct{ in, want string }{
		{"token revoke alpha --redis redis://h:6379/0", "token revoke --redis redis://h:6379/0 alpha"},
		{"token revoke alpha --db=/x.db", "token revoke --db=/x.db alpha"},
		{"token revoke --db /x.db alpha", "token revoke --db /x.db alpha"},
		{"token --db /x.db revoke alpha --db /y.db", "token --db /x.db revoke --db /y.db alpha"},
		{"token list --json --db /x.db", "token list --json --db /x.db"},
		{"token revoke -- --odd --db", "token revoke -- --odd --db"},
		{"token revoke alpha -- --db", "token revoke alpha -- --db"},
		{"sessions extra --limit 5", "sessions --limit 5 extra"},
		{"sessions --limit 5 prune --older-than 30d", "sessions --limit 5 prune --older-than 30d"},
		{"help serve", "serve --help"},
		{"help token revoke", "token revoke --help"},
		{"help nosuch", "help nosuch"},
		{"token revoke alpha --help", "token revoke --help alpha"},
		{"bench -n 3 --loopback x -c 2", "bench -n 3 --loopback -c 2 x"},
		{"--db /x.db token add --name a", "--db /x.db token add --name a"},
	} {
		got, err := flagsFirst(app, append([]string{"geckohost"}, strings.Fields(c.in)...))
		if err != nil || strings.Join(got[1:], " ") != c.want {
			t.Errorf("%q: %q, %v; want %q", c.in, got[1:], err, c.want)
		}
	}
	if _, err := flagsFirst(app, []string{"geckohost", "token", "revoke", "alpha", "--db"}); err == nil || !strings.Contains(err.Error(), "--db needs a value") {
		t.Errorf("a last flag without its value: %v", err)
	}
}

// TestFlagsAfterArgs runs commands as people type them, a flag after the
// argument, against a real database.
func TestFlagsAfterArgs(t *testing.T) {
	leaktest.Check(t)
	db := filepath.Join(t.TempDir(), "db")
	t.Setenv("GECKOHOST_DB", "")
	wantOK(t, geckohost(t, "token", "add", "--name", "alpha", "--db", db))
	r := geckohost(t, "token", "revoke", "alpha", "--db", db)
	wantOK(t, r)
	if !strings.Contains(r.stderr, `token "alpha" (id 1) revoked`) {
		t.Errorf("revoke: %q", r.stderr)
	}
	r = geckohost(t, "token", "list", "--db", db, "--json")
	wantOK(t, r)
	if !strings.Contains(r.stdout, `"revoked"`) {
		t.Errorf("token list --json after revoke: %s", r.stdout)
	}
	wantFail(t, geckohost(t, "sessions", "extra", "--db", db), `unexpected argument "extra"`)
}

// TestHelpExamples: the --help of the app and of every command ends with
// one example, and the examples that need no server run as shown (with
// $GECKOHOST_DB pointing at a new database).
func TestHelpExamples(t *testing.T) {
	leaktest.Check(t)
	var names []string
	var walk func(prefix []string, cmds []*cli.Command)
	walk = func(prefix []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			path := append(slices.Clone(prefix), c.Name)
			names = append(names, strings.Join(path, " "))
			walk(path, c.Subcommands)
		}
	}
	walk(nil, newApp(io.Discard, io.Discard).Commands)
	for _, name := range append([]string{""}, names...) {
		ex, ok := examples[name]
		if !ok {
			t.Errorf("command %q has no example", name)
			continue
		}
		if !strings.HasPrefix(ex, "geckohost "+name) {
			t.Errorf("example of %q does not run it: %q", name, ex)
		}
		for _, args := range [][]string{append(strings.Fields(name), "--help"), append([]string{"help"}, strings.Fields(name)...)} {
			r := geckohost(t, args...)
			if r.code != 0 || !strings.HasSuffix(r.stdout, "\nEXAMPLE:\n   "+ex+"\n") {
				t.Errorf("%s: exit %d, does not end with the example %q:\n%s", strings.Join(args, " "), r.code, ex, r.stdout)
			}
		}
	}
	for name := range examples {
		if name != "" && !slices.Contains(names, name) {
			t.Errorf("example for %q, which is no command", name)
		}
	}

	t.Setenv("GECKOHOST_DB", filepath.Join(t.TempDir(), "geckohost.db"))
	for _, name := range []string{"token add", "token", "token list", "sessions", "sessions prune", "token revoke", "version"} {
		args := strings.Fields(examples[name])[1:]
		wantOK(t, geckohost(t, args...))
	}
}
