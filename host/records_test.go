package host_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/store"
)

// errFull is what SQLite says when the disk is full.
var errFull = errors.New("database or disk is full")

// fullStore is a real store whose writes fail while full is set, as on a
// full disk: SaveSession fails, LookupToken finds the token but cannot
// record its use.
type fullStore struct {
	*store.DB
	full atomic.Bool
}

func (f *fullStore) SaveSession(ctx context.Context, s domain.Session) error {
	if f.full.Load() {
		return fmt.Errorf("save session %s: %w", s.WorkerID, errFull)
	}
	return f.DB.SaveSession(ctx, s)
}

func (f *fullStore) LookupToken(ctx context.Context, secret string) (domain.Token, error) {
	tok, err := f.DB.LookupToken(ctx, secret)
	if err == nil && f.full.Load() {
		return tok, fmt.Errorf("look up token: record use: %w: %w", domain.ErrUseNotRecorded, errFull)
	}
	return tok, err
}

// TestRecordsWhileStoreFull: while the store takes no writes, sessions go
// on (a new one connects), the failures are counted and logged (at once,
// then at most every logEvery with a count), the latest record of each
// session is kept and written once writes succeed again; what is still
// unwritten at shutdown is counted lost.
func TestRecordsWhileStoreFull(t *testing.T) {
	var fs *fullStore
	h := newHarness(t, newFakeEngine(happyScript), func(o *host.Options) {
		fs = &fullStore{DB: o.Store.(*store.DB)}
		o.Store = fs
		o.RunID = "run-1"
	})
	host.SetRecordIntervals(h.srv, 100*time.Millisecond, 20*time.Millisecond)
	secret := h.token(domain.NewToken{})
	fs.full.Store(true)

	c := h.hello(secret)
	w := h.nextWorker()
	if m := c.read(); m["action"] != "worker-hello" {
		t.Fatalf("got %v, want worker-hello", m)
	}
	c.read() // its candidate
	if m := c.read(); m["messageType"] != "connected" {
		t.Fatalf("got %v, want connected", m)
	}
	c.expectClose(websocket.StatusNormalClosure)
	id := w.req.WorkerID

	eventually(t, h.ctx, "failures counted", func() error {
		st := h.srv.RecordStats()
		if st.Failed < 3 || st.Pending != 1 || st.Written != 0 || st.TokenUsesNotRecorded != 1 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
	if _, err := h.db.GetSession(h.ctx, id); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("a record was written while the store was full: %v", err)
	}
	mfs := scrape(t, h, h.hs.URL+"/metrics")
	wantMetric(t, mfs, 1, "geckohost_session_records_pending")
	wantMetric(t, mfs, 0, "geckohost_session_records_written_total")
	wantMetric(t, mfs, 1, "geckohost_token_uses_not_recorded_total")
	if v, _ := metricValue(mfs, "geckohost_session_record_failures_total"); v < 3 {
		t.Errorf("geckohost_session_record_failures_total = %v, want ≥ 3", v)
	}
	eventually(t, h.ctx, "periodic failure log line", func() error {
		logs := h.logs.String()
		if strings.Count(logs, `msg="session record not written`) != 1 || !strings.Contains(logs, "disk is full") ||
			!strings.Contains(logs, `msg="session records not written" failed=`) || !strings.Contains(logs, "pending=1") {
			return fmt.Errorf("logs:\n%s", logs)
		}
		return nil
	})

	// Space returns: the kept record (the latest: connected) is written.
	fs.full.Store(false)
	s := h.session(id, func(s domain.Session) bool { return s.State == domain.StateConnected })
	if s.RunID != "run-1" || s.Connected.IsZero() {
		t.Errorf("record %+v", s)
	}
	eventually(t, h.ctx, "recovery", func() error {
		if st := h.srv.RecordStats(); st.Pending != 0 || st.Written != 1 || st.Lost != 0 {
			return fmt.Errorf("stats %+v", st)
		}
		if !strings.Contains(h.logs.String(), `msg="session records written again"`) {
			return errors.New("no recovery log line")
		}
		return nil
	})
	h.emit(w, engine.Event{Kind: engine.EventEnded, Reason: engine.EndWorkerClosed})
	if s := h.session(id, ended); s.EndReason != "worker-closed" {
		t.Errorf("final record %+v", s)
	}

	// Full again at shutdown: the records of a new session are lost, and
	// say so.
	fs.full.Store(true)
	c = h.hello(secret)
	h.nextWorker()
	for range 3 { // worker-hello, a candidate, connected
		c.read()
	}
	c.expectClose(websocket.StatusNormalClosure)
	eventually(t, h.ctx, "new failure", func() error {
		if st := h.srv.RecordStats(); st.Pending != 1 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
	sctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if st := h.srv.RecordStats(); st.Lost != 1 || st.Pending != 0 {
		t.Errorf("stats after shutdown %+v", st)
	}
	mfs = scrape(t, h, h.hs.URL+"/metrics")
	wantMetric(t, mfs, 1, "geckohost_session_records_lost_total")
	if logs := h.logs.String(); !strings.Contains(logs, `msg="session records lost at shutdown" count=1`) {
		t.Errorf("no loss line:\n%s", logs)
	}
}
