package gecko_test

import (
	"context"
	"log"
	"time"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host/wire"
)

// A Pool is an engine for host.Server; this shows its life cycle. (Not run:
// it needs Firefox.)
func ExamplePool() {
	pool := gecko.NewPool(gecko.PoolOptions{Browsers: 1, Warm: 2, ICELoopback: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pool.Start(ctx); err != nil {
		log.Print(err)
		return
	}
	defer pool.Close(context.Background())

	w, err := pool.StartWorker(ctx, wire.WorkerRequest{
		WorkerID: "w1", TokenID: 1, TokenName: "me",
		Source: "http://127.0.0.1:8000/echo.js",
		Offer:  "v=0...", // the client's SDP offer
	})
	if err != nil {
		log.Print(err)
		return
	}
	for ev := range w.Events() {
		switch ev.Kind {
		case wire.EventAnswer:
			// send ev.Answer to the client
		case wire.EventCandidate:
			// send ev.Candidate to the client
		case wire.EventConnected:
			// the data channel is open
		case wire.EventEnded:
			// ev.Err is set on failure
		}
	}
}
