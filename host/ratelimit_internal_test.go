package host

import (
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
)

func TestRateLimiterWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newRateLimiter(t0)
	r := domain.Rate{Count: 2, Window: 10 * time.Second}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, c := range []struct {
		at   time.Duration
		ok   bool
		wait time.Duration
	}{
		{0, true, 0},
		{time.Second, true, 0},
		{2 * time.Second, false, 8 * time.Second},
		{10*time.Second - time.Nanosecond, false, time.Nanosecond},
		{10 * time.Second, true, 0},                               // the start at 0 left
		{10500 * time.Millisecond, false, 500 * time.Millisecond}, // starts 1 s, 10 s
		{11 * time.Second, true, 0},
	} {
		ok, wait := l.allow(7, r, at(c.at))
		if ok != c.ok || wait != c.wait {
			t.Errorf("at %v: %v, %v; want %v, %v", c.at, ok, wait, c.ok, c.wait)
		}
	}
	if ok, _ := l.allow(8, domain.Rate{}, at(0)); !ok || l.size() != 1 {
		t.Errorf("zero rate: %v, %d entries", ok, l.size())
	}
}

func TestRateLimiterMemory(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newRateLimiter(t0)
	r := domain.Rate{Count: 10000, Window: time.Second}
	for i := range 10000 {
		if ok, _ := l.allow(1, r, t0.Add(time.Duration(i)*time.Microsecond)); !ok {
			t.Fatalf("start %d refused", i)
		}
	}
	// One start after the burst's window: the burst's memory is given back.
	if ok, _ := l.allow(1, r, t0.Add(2*time.Second)); !ok {
		t.Fatal("refused after the window")
	}
	if e := l.tokens[1]; len(e.starts) != 1 || cap(e.starts) > 64 {
		t.Errorf("after the burst: len %d cap %d", len(e.starts), cap(e.starts))
	}
	// Many tokens, then idle: a sweep drops them all.
	for id := range int64(1000) {
		l.allow(id+2, domain.Rate{Count: 1, Window: time.Second}, t0.Add(3*time.Second))
	}
	if l.size() != 1001 {
		t.Fatalf("%d entries", l.size())
	}
	l.allow(0, domain.Rate{}, t0.Add(3*time.Second+rateSweepEvery))
	if l.size() != 0 {
		t.Errorf("%d entries after the sweep, want 0", l.size())
	}
}

// BenchmarkRateLimiterAllow measures one check of a busy token (the server
// holds its mutex meanwhile).
func BenchmarkRateLimiterAllow(b *testing.B) {
	t0 := time.Now()
	l := newRateLimiter(t0)
	r := domain.Rate{Count: 1000, Window: time.Second}
	step := time.Second / 2000 // twice the rate: half the checks are refused
	i := 0
	for b.Loop() {
		l.allow(1, r, t0.Add(time.Duration(i)*step))
		i++
	}
}
