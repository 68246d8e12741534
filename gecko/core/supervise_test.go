package core

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

type fakeBrowser int

func (b fakeBrowser) PID() int { return int(b) }

// TestSupervise: a slot whose first launches fail reports the first
// failure once, retries with backoff, restarts a browser that died and
// launches a replacement at once after Recycled, until Closed.
func TestSupervise(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failed := make(chan error, 4)
	errLaunch := errors.New("no browser")
	launches := 0
	ends := []End{Died, Recycled, Closed}
	var served []End
	s := Supervisor{Name: "fake", Log: slog.New(slog.DiscardHandler), Failed: failed,
		BackoffMin: time.Millisecond, BackoffMax: 4 * time.Millisecond, BackoffReset: time.Hour}
	Supervise(ctx, s, func(context.Context) (fakeBrowser, error) {
		launches++
		if launches <= 2 {
			return 0, errLaunch
		}
		return fakeBrowser(launches), nil
	}, func(fakeBrowser) (End, error) {
		e := ends[len(served)]
		served = append(served, e)
		return e, nil
	})
	if launches != 5 || len(served) != 3 {
		t.Errorf("launches %d, served %v; want 5 and 3", launches, served)
	}
	if len(failed) != 1 || !errors.Is(<-failed, errLaunch) {
		t.Errorf("failed reported %d times, want once with %v", len(failed)+1, errLaunch)
	}
}

type fakeToken struct {
	busy bool
	idle time.Time
}

func (tc *fakeToken) Busy() bool           { return tc.busy }
func (tc *fakeToken) IdleSince() time.Time { return tc.idle }

// TestTakeIdle: only tokens idle long enough and retired ones that are not
// busy are taken.
func TestTakeIdle(t *testing.T) {
	old, recent := time.Now().Add(-time.Hour), time.Now()
	a, b, c := &fakeToken{idle: old}, &fakeToken{idle: recent}, &fakeToken{busy: true, idle: old}
	r1, r2 := &fakeToken{busy: true}, &fakeToken{}
	tokens := map[int64]*fakeToken{1: a, 2: b, 3: c}
	retired := []*fakeToken{r1, r2}
	got := TakeIdle(tokens, &retired, time.Minute)
	if len(got) != 2 || got[0] != a || got[1] != r2 {
		t.Errorf("TakeIdle = %v, want [a r2]", got)
	}
	if len(tokens) != 2 || tokens[1] != nil || len(retired) != 1 || retired[0] != r1 {
		t.Errorf("left tokens %v, retired %v", tokens, retired)
	}
}
