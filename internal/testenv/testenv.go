// Package testenv is how a test says it cannot run because a real
// component of the machine is missing (a browser, Redis, nftables, root for
// network namespaces, a Debian tool): it skips the test with a message that
// starts with [Prefix], which the test reporter (internal/cmd/testreport, run
// by `make test`) recognises, lists at the end of the run and, with CI=true,
// turns into a failed run. Skips for other reasons (-short, an opt-in
// environment variable) call t.Skip directly and are listed, not failed.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Prefix starts the skip message of every missing-component skip:
// "missing: chromium (apt-get install chromium)".
const Prefix = "missing: "

// Skip skips t because component is missing; install says how to get it
// (a command, such as "apt-get install chromium"). The message is
// "missing: <component> (<install>)", with detail appended after " - "
// when it is not empty.
func Skip(t testing.TB, component, install string, detail ...any) {
	t.Helper()
	t.Skip(Message(component, install, detail...))
}

// Message is the skip message Skip uses: Prefix and Reason.
func Message(component, install string, detail ...any) string {
	return Prefix + Reason(component, install, detail...)
}

// Reason is "<component> (<install>)", and " - <detail>" when detail is
// given: a missing-component skip message without its Prefix.
func Reason(component, install string, detail ...any) string {
	msg := component
	if install != "" {
		msg += " (" + install + ")"
	}
	if len(detail) > 0 {
		msg += " - " + fmt.Sprint(detail...)
	}
	return msg
}

// NeedCommand returns the path of the command name on PATH (or name itself
// when it is an absolute path to an executable file), or skips t naming the
// Debian package that installs it.
func NeedCommand(t testing.TB, name, debPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, name, "apt-get install "+debPackage)
	}
	return p
}

// NeedRoot skips t unless the test process runs as root; what says what
// root is needed for.
func NeedRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "root", "run the tests as root: sudo make test", what)
	}
}
