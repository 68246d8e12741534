package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// missingPrefix starts a missing-component skip message (the Prefix of
// internal/testenv; not imported, so that this command builds alone).
const missingPrefix = "missing: "

// event is one line of `go test -json` (cmd/test2json's TestEvent, plus
// the build events of go test -json).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string // build-output, build-fail
	FailedBuild string // a package's fail: the package whose build failed
}

// key names one test of one package ("" Test: the package itself).
type key struct{ pkg, test string }

// skip is one skipped test and why.
type skip struct {
	pkg, test, reason string
	missing           bool
}

// reporter turns go test -json events into go test's usual output, and
// counts.
type reporter struct {
	w       io.Writer
	out     map[key][]string // output of each test (and package) so far
	running map[key]bool     // tests that started and did not end
	// failOut is the output of each package's failed tests, printed with
	// the package's FAIL line.
	failOut    map[string][]string
	skips      []skip
	failedPkgs []string

	passed, failed, skipped int
}

func newReporter(w io.Writer) *reporter {
	return &reporter{w: w, out: map[key][]string{}, running: map[key]bool{}, failOut: map[string][]string{}}
}

// read handles every line of r: JSON events, and anything else (a line
// that is not an event) printed as it is.
func (r *reporter) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			fmt.Fprintf(r.w, "%s\n", line)
			continue
		}
		r.handle(ev)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("scan events: %w", err)
	}
	return nil
}

// handle takes one event.
func (r *reporter) handle(ev event) {
	k := key{ev.Package, ev.Test}
	switch ev.Action {
	case "build-output":
		io.WriteString(r.w, ev.Output) // compiler errors: at once
	case "output":
		r.out[k] = append(r.out[k], ev.Output)
	case "run":
		r.running[k] = true
	case "pass", "fail", "skip":
		if ev.Test == "" {
			r.endPackage(ev)
			return
		}
		r.endTest(k, ev.Action)
	}
}

// endTest handles a test's pass, fail or skip.
func (r *reporter) endTest(k key, action string) {
	delete(r.running, k)
	lines := r.out[k]
	delete(r.out, k)
	switch action {
	case "pass":
		r.passed++
	case "fail":
		r.failed++
		r.failOut[k.pkg] = append(r.failOut[k.pkg], lines...)
	case "skip":
		r.skipped++
		reason := skipReason(lines)
		r.skips = append(r.skips, skip{pkg: k.pkg, test: k.test, reason: reason, missing: strings.HasPrefix(reason, missingPrefix)})
	}
}

// endPackage handles a package's pass, fail or skip (no tests): go's own
// ok/FAIL/? line is printed; for a failed package, everything it printed
// outside a test (a panic, a timeout, TestMain's errors) and the output of
// the tests that never ended (the ones running when it died).
func (r *reporter) endPackage(ev event) {
	pk := key{ev.Package, ""}
	lines := r.out[pk]
	delete(r.out, pk)
	var unfinished []key
	for k := range r.running {
		if k.pkg == ev.Package {
			unfinished = append(unfinished, k)
		}
	}
	sort.Slice(unfinished, func(i, j int) bool { return unfinished[i].test < unfinished[j].test })
	for k := range r.out {
		if k.pkg == ev.Package && !r.running[k] {
			delete(r.out, k) // a parent's lines after its subtests' ends
		}
	}
	r.print(r.failOut[ev.Package])
	delete(r.failOut, ev.Package)
	if ev.Action != "fail" {
		r.print(summaryLines(lines))
		return
	}
	r.failedPkgs = append(r.failedPkgs, ev.Package)
	for _, k := range unfinished {
		r.failed++
		fmt.Fprintf(r.w, "--- FAIL: %s (did not finish: the package panicked, timed out or exited)\n", k.test)
		r.print(r.out[k])
		delete(r.out, k)
		delete(r.running, k)
	}
	r.print(lines)
	if !hasFailLine(lines) {
		reason := ""
		if ev.FailedBuild != "" {
			reason = " [build failed]"
		}
		fmt.Fprintf(r.w, "FAIL\t%s%s\n", ev.Package, reason)
	}
}

func (r *reporter) print(lines []string) {
	for _, l := range lines {
		io.WriteString(r.w, l)
	}
}

// summaryLines keeps go's own one-line result of a package that passed
// ("ok  \tpkg\t1.2s", "?   \tpkg\t[no test files]") and any line
// printed outside tests that is not test framework noise.
func summaryLines(lines []string) []string {
	var keep []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "PASS" || t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "testing: warning: no tests to run") {
			continue
		}
		keep = append(keep, l)
	}
	return keep
}

func hasFailLine(lines []string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, "FAIL\t") {
			return true
		}
	}
	return false
}

// logLine is a t.Log/t.Skip line: "    file_test.go:12: message".
var logLine = regexp.MustCompile(`^\s+[^\s:]+\.go:\d+: (.*)$`)

// skipReason is the message a skipped test gave: the missing-component
// one if any line has it, else its last log line.
func skipReason(lines []string) string {
	last := ""
	for _, l := range lines {
		m := logLine.FindStringSubmatch(strings.TrimRight(l, "\n"))
		if m == nil {
			continue
		}
		if strings.HasPrefix(m[1], missingPrefix) {
			return m[1]
		}
		last = m[1]
	}
	if last == "" {
		return "(no reason given)"
	}
	return last
}

// finish prints the skip list and the counts, and returns the exit status
// the events call for: 1 when a test or package failed, or when ci and a
// test skipped for a missing component.
func (r *reporter) finish(ci bool) int {
	for _, lines := range r.failOut { // packages that never ended
		r.print(lines)
	}
	for k := range r.running { // the stream ended in the middle of a test
		r.failed++
		fmt.Fprintf(r.w, "--- FAIL: %s in %s (did not finish)\n", k.test, k.pkg)
		r.print(r.out[k])
	}
	missing := 0
	if len(r.skips) > 0 {
		for _, s := range r.skips {
			if s.missing {
				missing++
			}
		}
		fmt.Fprintf(r.w, "\nskipped tests (%d; %d for a missing component):\n", len(r.skips), missing)
		for _, s := range r.skips {
			fmt.Fprintf(r.w, "SKIP %s %s: %s\n", s.pkg, s.test, s.reason)
		}
	}
	fmt.Fprintf(r.w, "\n%d passed, %d failed, %d skipped\n", r.passed, r.failed, r.skipped)
	code := 0
	if r.failed > 0 || len(r.failedPkgs) > 0 {
		if len(r.failedPkgs) > 0 {
			fmt.Fprintf(r.w, "FAIL: %s\n", strings.Join(r.failedPkgs, " "))
		}
		code = 1
	}
	if ci && missing > 0 {
		fmt.Fprintf(r.w, "FAIL: CI=true and %d tests skipped for a missing component (listed above): CI runs every test; install what they name\n", missing)
		code = 1
	}
	return code
}
