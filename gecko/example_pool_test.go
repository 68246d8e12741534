package gecko_test

import (
	"context"
	"log"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/egress"
)

// A Pool is an engine for host.Server; this shows its life cycle. (Not run:
// it needs Firefox.)
func ExamplePool() {
	pool := gecko.NewPool(gecko.PoolOptions{Browsers: 1, Warm: 2, ICELoopback: true,
		// Workers may reach public addresses, their source's origin and this.
		Egress: egress.Policy{Allow: []string{"http://127.0.0.1:9000"}}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pool.Start(ctx); err != nil {
		log.Print(err)
		return
	}
	defer pool.Close(context.Background())

	w, err := pool.StartWorker(ctx, engine.WorkerRequest{
		WorkerID: "w1", TokenID: 1, TokenName: "me",
		Source: "http://127.0.0.1:8000/echo.js",                     // its origin is the worker's own
		Code:   "self.onmessage = (e) => self.postMessage(e.data);", // fetched by the caller
		Offer:  "v=0...",                                            // the client's SDP offer
	})
	if err != nil {
		log.Print(err)
		return
	}
	for ev := range w.Events() {
		switch ev.Kind {
		case engine.EventAnswer:
			// send ev.Answer to the client
		case engine.EventCandidate:
			// send ev.Candidate to the client
		case engine.EventConnected:
			// the data channel is open
		case engine.EventEnded:
			// ev.Err is set on failure
		}
	}
}
