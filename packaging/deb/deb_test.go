// Package deb holds the test of geckohost's Debian package: the files of
// this directory are what packaging/deb/build (run by `make deb`) puts in
// the package.
package deb

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geckohost/geckohost/internal/testenv"
)

// command runs name with args, bounded by ctx, and returns its combined
// output; a failure fails t.
func command(t *testing.T, ctx context.Context, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebVersion: the package versions made from git describe names are
// valid Debian versions, ordered as the releases are.
func TestDebVersion(t *testing.T) {
	testenv.NeedCommand(t, "dpkg", "apt-get install dpkg")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cases := map[string]string{
		"v1.2.0":                  "1.2.0-1",
		"1.2.0":                   "1.2.0-1",
		"v1.2.0-3-gabc1234":       "1.2.0+3.gabc1234-1",
		"v1.2.0-3-gabc1234-dirty": "1.2.0+3.gabc1234.dirty-1",
		"c0930a1-dirty":           `^0~(git[0-9]{8}\.)?gc0930a1\.dirty-1$`, // the commit date where git is
		"dev":                     `^0~(git[0-9]{8}\.)?dev-1$`,
		"96ccfe0":                 `^0~(git[0-9]{8}\.)?g96ccfe0-1$`, // a hash, not a version 96
		"96ccfe0-dirty":           `^0~(git[0-9]{8}\.)?g96ccfe0\.dirty-1$`,
	}
	for in, want := range cases {
		got := strings.TrimSpace(command(t, ctx, nil, "./build", "--debversion", in))
		if strings.HasPrefix(want, "^") {
			if !regexp.MustCompile(want).MatchString(got) {
				t.Errorf("%s: %q, want %s", in, got, want)
			}
		} else if got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
		command(t, ctx, nil, "dpkg", "--validate-version", got)
	}
	// A later tag and a commit after a tag sort after it; an untagged
	// build before any release.
	for _, pair := range [][2]string{{"1.2.0-1", "1.2.0+3.gabc1234-1"}, {"1.2.0+3.gabc1234-1", "1.3.0-1"}, {"0~git20261207.c0930a1-1", "0.1.0-1"}} {
		command(t, ctx, nil, "dpkg", "--compare-versions", pair[0], "lt", pair[1])
	}
}

// TestDebPackage builds the package from a fresh build of geckohost (as
// make deb does), checks it with lintian (no error), installs it into a
// throwaway root (dpkg --root with --force-script-chrootless: the
// maintainer scripts run with $DPKG_ROOT), and checks the files, the
// geckohost system user and group and its 0700 state directory in that
// root's /etc/passwd, /etc/group and /var/lib, the installed unit
// (systemd-analyze verify), and that the installed binary runs "version". A reinstall adds no second user; a purge removes
// the files and the state directory and keeps the user.
func TestDebPackage(t *testing.T) {
	testenv.NeedCommand(t, "dpkg-deb", "apt-get install dpkg")
	lintian := testenv.NeedCommand(t, "lintian", "apt-get install lintian")
	testenv.NeedCommand(t, "useradd", "apt-get install passwd")
	testenv.NeedRoot(t, "dpkg --root and the postinst's chown need root")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	tmp := t.TempDir()

	const version = "v1.2.3-4-gabcdef0"
	bin := filepath.Join(tmp, "geckohost")
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	command(t, ctx, nil, goCmd, "build", "-buildmode=pie", "-ldflags", "-X main.version="+version, "-o", bin, "github.com/geckohost/geckohost")
	out := command(t, ctx, nil, "./build", bin, version, tmp)
	deb := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	arch := strings.TrimSpace(command(t, ctx, nil, "dpkg", "--print-architecture"))
	if want := filepath.Join(tmp, "geckohost_1.2.3+4.gabcdef0-1_"+arch+".deb"); deb != want {
		t.Fatalf("package %q, want %q", deb, want)
	}
	if out, err := exec.CommandContext(ctx, lintian, "--fail-on", "error", deb).CombinedOutput(); err != nil {
		t.Fatalf("lintian: %v\n%s", err, out)
	} else if len(out) > 0 {
		t.Logf("lintian (no error):\n%s", out)
	}
	fields := command(t, ctx, nil, "dpkg-deb", "--field", deb, "Depends", "Recommends")
	for _, want := range []string{"firefox-esr", "libc6", "Recommends: redis-server"} {
		if !strings.Contains(fields, want) {
			t.Errorf("control fields lack %q:\n%s", want, fields)
		}
	}

	root := throwawayRoot(t)
	dpkg := func(args ...string) string {
		t.Helper()
		return command(t, ctx, nil, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends",
			"--log=" + filepath.Join(root, "var/log/dpkg.log")}, args...)...)
	}
	dpkg("--install", deb)
	checkInstalled(t, ctx, root)
	uid, gid := checkUser(t, root)
	checkStateDir(t, root, uid, gid)

	dpkg("--install", deb) // again: configure runs a second time
	if u2, g2 := checkUser(t, root); u2 != uid || g2 != gid {
		t.Errorf("reinstall changed the user: %d:%d, was %d:%d", u2, g2, uid, gid)
	}

	dpkg("--purge", "geckohost")
	for _, p := range []string{"usr/bin/geckohost", "lib/systemd/system/geckohost.service", "var/lib/geckohost"} {
		if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("after purge, /%s: %v", p, err)
		}
	}
	checkUser(t, root) // kept
}

// throwawayRoot makes an empty root dpkg can install into: its database
// and an /etc with root alone in passwd, group, shadow and gshadow.
func throwawayRoot(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"etc", "var/lib/dpkg/updates", "var/lib/dpkg/info", "var/log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		"var/lib/dpkg/status": "",
		"etc/passwd":          "root:x:0:0:root:/root:/bin/bash\n",
		"etc/group":           "root:x:0:\n",
		"etc/shadow":          "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":         "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// checkInstalled checks the installed files and runs the binary.
func checkInstalled(t *testing.T, ctx context.Context, root string) {
	t.Helper()
	for p, mode := range map[string]os.FileMode{
		"usr/bin/geckohost":                           0o755,
		"lib/systemd/system/geckohost.service":        0o644,
		"usr/share/doc/geckohost/copyright":           0o644,
		"usr/share/doc/geckohost/changelog.Debian.gz": 0o644,
		"usr/share/man/man1/geckohost.1.gz":           0o644,
	} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Errorf("/%s: %v", p, err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("/%s: mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
			t.Errorf("/%s: owned by %d:%d, want root", p, st.Uid, st.Gid)
		}
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/geckohost.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/bin/geckohost serve --db /var/lib/geckohost/geckohost.db", "User=geckohost", "StateDirectory=geckohost"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("installed unit lacks %q", want)
		}
	}
	if strings.Contains(string(unit), "/usr/local/bin") {
		t.Errorf("installed unit names /usr/local/bin:\n%s", unit)
	}
	verifyUnit(t, ctx, root, string(unit))
	out := command(t, ctx, nil, filepath.Join(root, "usr/bin/geckohost"), "version")
	if !strings.HasPrefix(out, "geckohost v1.2.3-4-gabcdef0 ") {
		t.Errorf("geckohost version: %q", out)
	}
}

// verifyUnit runs systemd-analyze verify on the installed unit, its
// binary path pointed into root; only complaints about the unit count
// (without a running systemd, verify may complain about its environment).
func verifyUnit(t *testing.T, ctx context.Context, root, unit string) {
	t.Helper()
	analyze := testenv.NeedCommand(t, "systemd-analyze", "apt-get install systemd")
	path := filepath.Join(t.TempDir(), "geckohost.service")
	unit = strings.ReplaceAll(unit, "/usr/bin/geckohost", filepath.Join(root, "usr/bin/geckohost"))
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	var relevant []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(l, "geckohost.service") {
			relevant = append(relevant, l)
		}
	}
	if len(relevant) > 0 {
		t.Errorf("systemd-analyze verify (%v) complains about the installed unit:\n%s", err, strings.Join(relevant, "\n"))
	}
}

// checkUser returns the uid and gid of the one geckohost entry of the
// root's /etc/passwd (a system uid, home /var/lib/geckohost, no login
// shell) and checks its group.
func checkUser(t *testing.T, root string) (uid, gid int) {
	t.Helper()
	var entries [][]string
	for _, f := range readLines(t, filepath.Join(root, "etc/passwd")) {
		if e := strings.Split(f, ":"); len(e) == 7 && e[0] == "geckohost" {
			entries = append(entries, e)
		}
	}
	if len(entries) != 1 {
		t.Fatalf("geckohost entries in /etc/passwd: %v, want one", entries)
	}
	e := entries[0]
	uid, _ = strconv.Atoi(e[2])
	gid, _ = strconv.Atoi(e[3])
	if uid == 0 || uid >= 1000 || e[5] != "/var/lib/geckohost" || e[6] != "/usr/sbin/nologin" {
		t.Errorf("passwd entry %q: want a system uid, home /var/lib/geckohost, shell /usr/sbin/nologin", strings.Join(e, ":"))
	}
	want := fmt.Sprintf("geckohost:x:%d:", gid)
	found := false
	for _, l := range readLines(t, filepath.Join(root, "etc/group")) {
		found = found || strings.HasPrefix(l, want)
	}
	if !found {
		t.Errorf("/etc/group has no %q", want)
	}
	return uid, gid
}

// checkStateDir checks /var/lib/geckohost: a directory, 0700, owned by
// the user.
func checkStateDir(t *testing.T, root string, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(root, "var/lib/geckohost"))
	if err != nil {
		t.Fatalf("state directory: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("/var/lib/geckohost: %v owned by %d:%d, want a 0700 directory owned by %d:%d", fi.Mode(), st.Uid, st.Gid, uid, gid)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}
