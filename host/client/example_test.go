package client_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host/client"
)

// Dial `geckohost serve` as it starts with no flags, on this machine (it
// listens on 127.0.0.1:8765), send a message to the bundled echo worker
// and read the reply. The zero Options work there, with or without
// `serve --ice-loopback`, and against a server on another machine (with
// its URL): the client gathers on every interface, loopback included, and
// takes the TURN relay the server offers on GET /ice-servers, if any.
// (Not run: it needs a running geckohost and a token from `geckohost token
// add --name me`.)
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, "ws://127.0.0.1:8765/", client.Options{
		Token:  "gh_...",
		Source: "http://127.0.0.1:8765/workers/echo.js",
	})
	var we *engine.Error
	switch {
	case errors.As(err, &we) && we.Errno == engine.PeerConnectionFailed:
		log.Print("no network path to the worker: ", we.Reason) // 305
		return
	case errors.As(err, &we):
		log.Printf("worker-error %d %s: %s", we.Errno, we.Errno, we.Reason)
		return
	case err != nil:
		log.Print(err) // no server, a timeout, ...
		return
	}
	defer s.Close()
	reply := make(chan string, 1)
	s.Channel.OnMessage(func(m webrtc.DataChannelMessage) { reply <- string(m.Data) })
	_ = s.Channel.SendText("hello")
	log.Print(<-reply, " after ", s.Timings.Open)
}
