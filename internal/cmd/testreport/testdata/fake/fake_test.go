// Package fake is testreport's test input: a pass, a failure with logs, a
// subtest failure, a missing-component skip, a plain skip and, with
// FAKE_PANIC=1, a panic. It is under testdata, so ./... never runs it.
package fake

import (
	"os"
	"testing"
)

func TestPass(t *testing.T) { t.Log("quiet when it passes") }

func TestFail(t *testing.T) {
	t.Log("first log line of the failure")
	t.Error("the failure itself")
}

func TestSub(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) { t.Fatal("subtest failed") })
}

func TestMissing(t *testing.T) { t.Skip("missing: chromium (apt-get install chromium)") }

func TestShort(t *testing.T) { t.Skip("short") }

func TestPanic(t *testing.T) {
	if os.Getenv("FAKE_PANIC") == "1" {
		panic("boom in TestPanic")
	}
}

func TestHang(t *testing.T) {
	if os.Getenv("FAKE_HANG") == "1" {
		t.Log("hanging")
		select {}
	}
}
