package chromium_test

import (
	"context"
	"testing"
	"time"

	"github.com/geckohost/geckohost/gecko/chromium"
	"github.com/pion/webrtc/v4"
)

type webrtcMessage = webrtc.DataChannelMessage

func TestEcho(t *testing.T) {
	s := newStack(t, chromium.PoolOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		sess, err := s.dial(ctx, s.tokenA, "/echo.js")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("worker %d: answer %v, connected %v, open %v", i, sess.Timings.Answer, sess.Timings.Connected, sess.Timings.Open)
		if got, err := ask(ctx, sess, "hello"); err != nil || got != "hello" {
			t.Fatalf("echo = %q, %v", got, err)
		}
		_ = sess.Close()
	}
}
