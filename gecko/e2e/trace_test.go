package e2e_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/geckohost/geckohost/host/client"
)

func TestTraceLatency(t *testing.T) {
	if os.Getenv("E2E_TRACE") == "" {
		t.Skip("opt-in: set E2E_TRACE=1 to trace negotiation latencies")
	}
	s := setup(t, firefox)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range 10 {
		for {
			bs := s.pool.Browsers()
			if len(bs) > 0 && (bs[0].TokenWarm > 1 || (bs[0].Tokens == 0 && bs[0].Warm > 0)) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		sess, err := client.Dial(ctx, s.wsURL, client.Options{Token: s.tokenA, Source: s.src.URL + "/echo.js", Loopback: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("timings %+v", sess.Timings)
		sess.Close()
	}
}
