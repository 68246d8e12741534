package client_test

import (
	"context"
	"log"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/host/client"
)

// Dial a geckohost, send a message to an echo worker and read the reply.
// (Not run: it needs a running geckohost.)
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, "ws://127.0.0.1:8765/", client.Options{
		Token:  "gh_...",
		Source: "http://127.0.0.1:8765/workers/echo.js",
	})
	if err != nil {
		log.Print(err) // a worker-error is a *wire.Error
		return
	}
	defer s.Close()
	reply := make(chan string, 1)
	s.Channel.OnMessage(func(m webrtc.DataChannelMessage) { reply <- string(m.Data) })
	_ = s.Channel.SendText("hello")
	log.Print(<-reply, " after ", s.Timings.Open)
}
