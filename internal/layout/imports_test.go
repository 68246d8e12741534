package layout

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const mod = "github.com/geckohost/geckohost"

// TestImportFacts checks the layout's "never"s with go list -deps (the
// packages a package links, tests excluded): the Firefox engine links no
// storage, the cluster does not reach into host, engine and domain are leaves
// of the project (domain may use engine's errors and nothing else).
func TestImportFacts(t *testing.T) {
	for _, c := range []struct {
		pkgs  string
		never []string // import paths (exact) or prefixes ending in "/"
		why   string
	}{
		{"./gecko/...", []string{mod + "/store", mod + "/host", mod + "/cluster", "github.com/mattn/go-sqlite3"},
			"the engine links no storage and no front (issue 19)"},
		{"./cluster/...", []string{mod + "/host", mod + "/store", mod + "/gecko", "github.com/mattn/go-sqlite3"},
			"cluster is an adapter of domain's contracts, not a part of host"},
		{"./store/...", []string{mod + "/host", mod + "/cluster", mod + "/gecko"}, "store is the SQLite adapter only"},
		{"./engine/...", []string{mod + "/"}, "engine is a leaf"},
		{"./gecko/core/...", []string{mod + "/gecko", mod + "/gecko/chromium", mod + "/gecko/bidi", "github.com/chromedp/chromedp"},
			"core is what both engines share: the engines import it, never the other way round"},
		{"./domain/...", []string{mod + "/store", mod + "/cluster", mod + "/host", mod + "/gecko", mod + "/internal/",
			"github.com/mattn/go-sqlite3", "github.com/redis/go-redis/v9"}, "domain has no storage in it"},
	} {
		deps := goListDeps(t, c.pkgs)
		for _, d := range deps {
			for _, n := range c.never {
				bad := d == n
				if strings.HasSuffix(n, "/") {
					bad = strings.HasPrefix(d, n) && !isOneOf(d, c.pkgs)
				}
				if bad {
					t.Errorf("%s links %s: %s", c.pkgs, d, c.why)
				}
			}
		}
	}
}

// isOneOf reports whether the import path p is one of the packages pattern
// (a ./dir/... pattern) names: a package does not count as its own import.
func isOneOf(p, pattern string) bool {
	dir := strings.TrimSuffix(strings.TrimPrefix(pattern, "./"), "/...")
	return p == mod+"/"+dir || strings.HasPrefix(p, mod+"/"+dir+"/")
}

// goListDeps returns the import paths go list -deps prints for pattern,
// from the module's root.
func goListDeps(t *testing.T, pattern string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", pattern)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pattern, err)
	}
	return strings.Fields(string(out))
}
