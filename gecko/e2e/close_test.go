package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host/client"
)

// burst sends msg to the burst.js worker and returns every message that
// came back before the data channel closed.
func burst(ctx context.Context, t *testing.T, sess *client.Session, msg string) []webrtc.DataChannelMessage {
	t.Helper()
	// pion calls OnMessage and then OnClose from the channel's read loop,
	// in order: once closed is closed, got holds everything.
	got := make(chan webrtc.DataChannelMessage, 100)
	closed := make(chan struct{})
	sess.Channel.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case got <- m:
		default:
		}
	})
	sess.Channel.OnClose(func() { close(closed) })
	if err := sess.Channel.SendText(msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatalf("data channel not closed (%d messages so far)", len(got))
	}
	close(got)
	var out []webrtc.DataChannelMessage
	for m := range got {
		out = append(out, m)
	}
	return out
}

// checkBurst checks burst.js's messages: m0..m49, the 60 KB buffer, "last".
func checkBurst(got []webrtc.DataChannelMessage) error {
	if len(got) != 52 {
		return fmt.Errorf("got %d messages, want 52", len(got))
	}
	for i := range 50 {
		if m := got[i]; !m.IsString || string(m.Data) != fmt.Sprint("m", i) {
			return fmt.Errorf("message %d = %.20q (string %v), want m%d", i, m.Data, m.IsString, i)
		}
	}
	b := got[50]
	if b.IsString || len(b.Data) != 60000 {
		return fmt.Errorf("message 50: %d bytes (string %v), want the 60000-byte buffer", len(b.Data), b.IsString)
	}
	for i, x := range b.Data {
		if x != byte(i%251) {
			return fmt.Errorf("buffer byte %d = %d, want %d", i, x, i%251)
		}
	}
	if m := got[51]; !m.IsString || string(m.Data) != "last" {
		return fmt.Errorf("message 51 = %.20q, want last", m.Data)
	}
	return nil
}

// TestSelfCloseDeliversEverything: a worker that posts 50 strings, a 60 KB
// ArrayBuffer and "last", then calls self.close(): the client gets all of
// them, in order, before the data channel closes, in 20 runs of 20.
func TestSelfCloseDeliversEverything(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		const runs = 20
		failed := 0
		for i := range runs {
			sess, err := dial(ctx, t, s, s.tokenA, "/burst.js")
			if err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
			got := burst(ctx, t, sess, "0")
			closeSession(t, sess)
			if err := checkBurst(got); err != nil {
				failed++
				t.Errorf("run %d: %v", i, err)
			}
			waitSession(ctx, t, s, sess.WorkerID, "worker-closed")
		}
		t.Logf("%d runs of %d received everything", runs-failed, runs)
	})
}

// TestShutdownEndsInOrder: the host stops while a connected worker has a
// reply on its way (it answers 200 ms after the message). The worker ends
// in order: the reply reaches the client before the data channel closes,
// and the session is recorded as ended by the shutdown.
func TestShutdownEndsInOrder(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1})
		sess, err := dial(ctx, t, s, s.tokenA, "/lateecho.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, sess)
		got := make(chan string, 1)
		closed := make(chan struct{})
		sess.Channel.OnMessage(func(m webrtc.DataChannelMessage) {
			select {
			case got <- string(m.Data):
			default:
			}
		})
		sess.Channel.OnClose(func() { close(closed) })
		if err := sess.Channel.SendText("in flight"); err != nil {
			t.Fatal(err)
		}
		// The host's Serve returns once its sessions are ended and recorded.
		s.cancel()
		s.cancel = nil
		if err := <-s.serveDone; err != nil {
			t.Errorf("serve: %v", err)
		}
		select {
		case <-closed:
		case <-ctx.Done():
			t.Fatal("data channel not closed by the shutdown")
		}
		select {
		case m := <-got:
			if m != "in flight" {
				t.Errorf("reply %q", m)
			}
		default:
			t.Error("the reply in flight was lost: the channel closed first")
		}
		rec, err := s.db.GetSession(ctx, sess.WorkerID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.State != "ended" || rec.EndReason != "shutdown" {
			t.Errorf("record %+v, want ended by the shutdown", rec)
		}
	})
}
