package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/store"
)

// ExampleNew serves the signaling endpoint with a (fake) engine and sends a
// hello with an unknown token.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "geckohost-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	srv, err := host.New(host.Options{Store: db, Engine: newFakeEngine(happyScript)})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(serveCtx, ln) }()

	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
	if err != nil {
		fmt.Println(err)
		stop()
		<-done
		return
	}
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"messageType":"hello","action":"client-hello",`+
		`"authorization":"Bearer gh_unknown","source":"http://`+ln.Addr().String()+`/workers/echo.js","webrtcOffer":"v=0"}`))
	_, msg, _ := c.Read(ctx)
	var e struct {
		MessageType string
		WorkerID    string
		Errno       int
		Reason      string
	}
	_ = json.Unmarshal(msg, &e)
	fmt.Println(e.MessageType, len(e.WorkerID), e.Errno, e.Reason)
	_, _, err = c.Read(ctx)
	fmt.Println(websocket.CloseStatus(err))

	stop()
	fmt.Println(<-done)
	// Output:
	// worker-error 32 102 unknown token
	// StatusPolicyViolation
	// <nil>
}

// ExampleServer_Status reads what GET /status serves, with the engine's
// browsers reported through Options.Browsers.
func ExampleServer_Status() {
	srv, err := host.New(host.Options{
		Store:  fakeStore{},
		Engine: newFakeEngine(happyScript),
		Build:  host.BuildInfo{Version: "v1.0.0"},
		Browsers: func(memory bool) []host.BrowserStatus {
			return []host.BrowserStatus{{PID: 4242, State: host.BrowserRunning, Workers: 3, Capacity: 150}}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(context.Background())
	st := srv.Status()
	fmt.Println(st.Version, st.Ready, st.Workers, st.Capacity, st.Queue.Size, st.Queue.Timeout)
	// Output:
	// v1.0.0 true 3 150 200 10
}
