package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/leaktest"
)

func TestFetchICEServers(t *testing.T) {
	leaktest.Check(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "Bearer tok":
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"errno":102}`))
		case r.URL.Path == "/ice-servers", r.URL.Path == "/gh/ice-servers":
			_, _ = w.Write([]byte(`{"iceServers":[{"urls":["stun:192.0.2.1:3478"]},{"urls":"turn:192.0.2.1:3478?transport=tcp","username":"1:2","credential":"pw"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	for _, u := range []string{ws + "/", ws, ws + "/gh/"} {
		got, err := client.FetchICEServers(ctx, u, "tok", nil)
		if err != nil || len(got) != 2 || got[0].URLs[0] != "stun:192.0.2.1:3478" || got[1].URLs[0] != "turn:192.0.2.1:3478?transport=tcp" ||
			got[1].Username != "1:2" || got[1].Credential != "pw" {
			t.Errorf("%s: %+v, %v", u, got, err)
		}
	}
	if _, err := client.FetchICEServers(ctx, ws+"/", "bad", nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad token: %v", err)
	}
	if _, err := client.FetchICEServers(ctx, ws+"/other/", "tok", nil); err == nil {
		t.Errorf("no such path: no error")
	}
	if _, err := client.FetchICEServers(ctx, "ftp://x/", "tok", nil); err == nil {
		t.Errorf("ftp: no error")
	}
}

// TestDialFetchesICEServers: with no ICE servers given (and not
// Loopback), Dial asks GET /ice-servers first, and goes on when it is not
// there.
func TestDialFetchesICEServers(t *testing.T) {
	leaktest.Check(t)
	h := &fakeHost{t: t}
	var fetched atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ice-servers" {
			fetched.Add(1)
			http.NotFound(w, r) // an older geckohost
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer h.close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	for _, tt := range []struct {
		opts  client.Options
		fetch int32
	}{
		{client.Options{}, 1},
		{client.Options{NoFetchICEServers: true}, 0},
		{client.Options{Loopback: true}, 0},
	} {
		fetched.Store(0)
		tt.opts.Token, tt.opts.Source = "tok", "http://x/echo.js"
		s, err := client.Dial(ctx, url, tt.opts)
		if err != nil {
			t.Fatalf("%+v: %v", tt.opts, err)
		}
		_ = s.Close()
		if got := fetched.Load(); got != tt.fetch {
			t.Errorf("%+v: fetched %d times, want %d", tt.opts, got, tt.fetch)
		}
	}
}

// TestDialPeerFailed: a peer connection that fails without a word from
// the server is a 305 naming what each side offered.
func TestDialPeerFailed(t *testing.T) {
	leaktest.Check(t)
	client.SetICEFailedTimeout(2 * time.Second)
	defer client.SetICEFailedTimeout(0)
	h := &fakeHost{t: t, dropWorker: true}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	_, err := client.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), client.Options{Token: "tok", Source: "http://x/echo.js", Loopback: true})
	var we *engine.Error
	if !errors.As(err, &we) || we.Errno != engine.PeerConnectionFailed || !strings.Contains(we.Reason, "the client offered host 127.0.0.1") ||
		!strings.Contains(we.Reason, "the worker offered host 127.0.0.1") {
		t.Fatalf("err = %v, want a 305 naming the candidates", err)
	}
	t.Logf("305 after %v: %s", time.Since(start).Round(time.Millisecond), we.Reason)
}
