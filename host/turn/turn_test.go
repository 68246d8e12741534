package turn_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	pturn "github.com/pion/turn/v5"

	"github.com/geckohost/geckohost/host/turn"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
)

// The tests run in a private network namespace whose lo also holds
// 192.0.2.1 (a documentation address): an address of "this host" that is
// not loopback, as a LAN address is.
const hostIP = "192.0.2.1"

func TestMain(m *testing.M) { os.Exit(netns.Run(m)) }

func setup(t *testing.T) {
	t.Helper()
	netns.Skip(t)
	out, err := exec.Command("ip", "addr", "add", hostIP+"/32", "dev", "lo").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "assigned") && !strings.Contains(string(out), "exists") {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	leaktest.Check(t, leaktest.Only("geckohost/", "github.com/pion/"))
}

func listen(t *testing.T, opts turn.Options) *turn.Server {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = hostIP + ":0"
	}
	s, err := turn.Listen(opts)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// dialTURN returns a TURN client of s over transport ("udp" or "tcp").
func dialTURN(t *testing.T, s *turn.Server, transport, user, pass string) *pturn.Client {
	t.Helper()
	var conn net.PacketConn
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", hostIP+":0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	case "tcp":
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn = pturn.NewSTUNConn(c)
	}
	cl, err := pturn.NewClient(&pturn.ClientConfig{
		TURNServerAddr: s.Addr().String(), STUNServerAddr: s.Addr().String(),
		Username: user, Password: pass, Realm: turn.DefaultRealm, Conn: conn, RTO: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		_ = conn.Close()
	})
	return cl
}

// TestRelayToWorker: over UDP and over TCP, a client with the relay's
// credentials gets an allocation on the relay address and exchanges
// packets with a "worker" socket on this host, and with nothing else.
func TestRelayToWorker(t *testing.T) {
	setup(t)
	s := listen(t, turn.Options{})
	if got := s.URLs(); len(got) != 2 || got[0] != "turn:"+s.Addr().String()+"?transport=udp" || got[1] != "turn:"+s.Addr().String()+"?transport=tcp" {
		t.Fatalf("URLs %v", got)
	}
	ice := s.ICEServer(7)
	if !strings.HasSuffix(ice.Username, ":7") || ice.Credential == "" {
		t.Fatalf("credentials %+v", ice)
	}
	worker, err := net.ListenPacket("udp4", hostIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	loop, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()

	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			cl := dialTURN(t, s, transport, ice.Username, ice.Credential)
			relay, err := cl.Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer relay.Close()
			ra := relay.LocalAddr().(*net.UDPAddr)
			if !ra.IP.Equal(net.ParseIP(hostIP)) {
				t.Fatalf("relayed address %v, want on %s", ra, hostIP)
			}
			// Ping until a pong comes back: pion's client may drop a
			// packet that races its own channel binding.
			buf := make([]byte, 1500)
			deadline := time.Now().Add(15 * time.Second)
			for {
				if time.Now().After(deadline) {
					t.Fatal("no pong through the relay")
				}
				if _, err := relay.WriteTo([]byte("ping "+transport), worker.LocalAddr()); err != nil {
					t.Fatalf("write to the worker: %v", err)
				}
				_ = worker.SetReadDeadline(time.Now().Add(time.Second))
				n, from, err := worker.ReadFrom(buf)
				if err != nil {
					continue
				}
				if string(buf[:n]) != "ping "+transport || from.(*net.UDPAddr).Port != ra.Port {
					t.Fatalf("worker read %q from %v, want the ping from %v", buf[:n], from, ra)
				}
				if _, err := worker.WriteTo([]byte("pong"), from); err != nil {
					t.Fatal(err)
				}
				_ = relay.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				n, from, err = relay.ReadFrom(buf)
				if err != nil {
					continue
				}
				if string(buf[:n]) != "pong" || from.String() != worker.LocalAddr().String() {
					t.Fatalf("client read %q from %v", buf[:n], from)
				}
				break
			}

			// Not an open relay: loopback and other hosts are refused.
			for _, to := range []net.Addr{loop.LocalAddr(), &net.UDPAddr{IP: net.ParseIP("203.0.113.9"), Port: 4000}} {
				if err := cl.CreatePermission(to); err == nil {
					t.Errorf("permission to %v granted", to)
				}
			}
			_, _ = relay.WriteTo([]byte("leak"), loop.LocalAddr())
			_ = loop.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, _, err := loop.ReadFrom(buf); err == nil {
				t.Errorf("loopback got %q through the relay", buf[:n])
			}
		})
	}
}

// TestCredentials: a wrong password, an expired or malformed username and
// an unknown realm get no allocation.
func TestCredentials(t *testing.T) {
	setup(t)
	s := listen(t, turn.Options{})
	ice := s.ICEServer(3)
	exp := strings.SplitN(ice.Username, ":", 2)[0]
	for _, tt := range []struct{ name, user, pass string }{
		{"wrong password", ice.Username, ice.Credential + "x"},
		{"other token", exp + ":4", ice.Credential},
		{"expired", "1000000000:3", ice.Credential},
		{"no token id", exp, ice.Credential},
		{"far future", "99999999999:3", ice.Credential},
	} {
		cl := dialTURN(t, s, "udp", tt.user, tt.pass)
		if relay, err := cl.Allocate(); err == nil {
			relay.Close()
			t.Errorf("%s: allocated", tt.name)
		}
	}
}

// TestQuota: a token holds at most MaxAllocations at a time.
func TestQuota(t *testing.T) {
	setup(t)
	s := listen(t, turn.Options{MaxAllocations: 1})
	ice := s.ICEServer(5)
	first, err := dialTURN(t, s, "udp", ice.Username, ice.Credential).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if relay, err := dialTURN(t, s, "tcp", ice.Username, ice.Credential).Allocate(); err == nil {
		relay.Close()
		t.Fatal("second allocation of the token granted")
	}
	other := s.ICEServer(6)
	relay, err := dialTURN(t, s, "udp", other.Username, other.Credential).Allocate()
	if err != nil {
		t.Fatalf("another token: %v", err)
	}
	relay.Close()
	// The token's workers have a quota of their own (the host bounds them).
	for i := range 2 {
		w := s.WorkerICEServer(5)
		if !strings.HasSuffix(w.Username, ":w5") {
			t.Fatalf("worker credentials %+v", w)
		}
		relay, err := dialTURN(t, s, "udp", w.Username, w.Credential).Allocate()
		if err != nil {
			t.Fatalf("worker allocation %d: %v", i, err)
		}
		defer relay.Close()
	}
}

// TestTCPRelayRefused: RFC 6062 TCP allocations are not offered.
func TestTCPRelayRefused(t *testing.T) {
	setup(t)
	s := listen(t, turn.Options{})
	ice := s.ICEServer(1)
	cl := dialTURN(t, s, "tcp", ice.Username, ice.Credential)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if a, err := cl.AllocateTCPWithContext(ctx); err == nil {
		a.Close()
		t.Fatal("TCP allocation granted")
	}
}

func TestListenErrors(t *testing.T) {
	for _, addr := range []string{"nope", "example.com:3478"} {
		if _, err := turn.Listen(turn.Options{Listen: addr}); err == nil {
			t.Errorf("listen %q: no error", addr)
		}
	}
	if errors.Is(turn.ErrNoRelayAddress, turn.ErrTCPRelay) {
		t.Fatal("sentinels alias")
	}
}
