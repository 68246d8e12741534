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
// packets with a "worker" socket on this host once that is a candidate of
// a live worker of its token, and with nothing else: not before, not
// after the worker ended, not another port of the same address, not
// loopback, not another host.
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
	worker := udpSocket(t, hostIP+":0")
	other := udpSocket(t, hostIP+":0") // a port of the same address that is no candidate
	loop := udpSocket(t, "127.0.0.1:0")
	wa := worker.LocalAddr().(*net.UDPAddr).AddrPort()

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
			if err := cl.CreatePermission(worker.LocalAddr()); err == nil {
				t.Fatal("permission to a socket that is no worker's candidate granted")
			}
			s.AddPeer(8, "other-token", wa) // another token's worker: not for token 7
			if err := cl.CreatePermission(worker.LocalAddr()); err == nil {
				t.Fatal("permission to another token's worker granted")
			}
			s.AddPeer(7, "session-"+transport, wa)
			pingPong(t, relay, worker, transport)

			// Not an open relay: loopback, other hosts and other ports
			// are refused.
			for _, to := range []net.Addr{loop.LocalAddr(), &net.UDPAddr{IP: net.ParseIP("203.0.113.9"), Port: 4000}} {
				if err := cl.CreatePermission(to); err == nil {
					t.Errorf("permission to %v granted", to)
				}
			}
			for _, to := range []net.PacketConn{loop, other} {
				_, _ = relay.WriteTo([]byte("leak"), to.LocalAddr())
				wantNothing(t, to, "through the relay")
			}
			// The worker ended: the permission pion holds stays, but not
			// a packet passes.
			s.DropPeers("session-" + transport)
			s.DropPeers("other-token")
			if n := s.LivePeers(7); n != 0 {
				t.Fatalf("%d live peers after the worker ended", n)
			}
			_, _ = relay.WriteTo([]byte("late"), worker.LocalAddr())
			wantNothing(t, worker, "after its session ended")
		})
	}
}

// TestNoWayToLocalServices: a UDP echo service on this host's address is
// out of reach of a client with valid credentials, while a worker of its
// token on the same address is not.
func TestNoWayToLocalServices(t *testing.T) {
	setup(t)
	s := listen(t, turn.Options{})
	echo := udpSocket(t, hostIP+":0")
	done := make(chan struct{})
	go func() { // the echo service
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = echo.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { _ = echo.Close(); <-done })
	worker := udpSocket(t, hostIP+":0")
	s.AddPeer(9, "live-session", worker.LocalAddr().(*net.UDPAddr).AddrPort())
	defer s.DropPeers("live-session")

	ice := s.ICEServer(9)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			cl := dialTURN(t, s, transport, ice.Username, ice.Credential)
			relay, err := cl.Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer relay.Close()
			pingPong(t, relay, worker, transport) // the session's worker: reached
			// The echo service shares the worker's address, so the IP
			// permission is there: the port check refuses.
			buf := make([]byte, 1500)
			for range 5 {
				if _, err := relay.WriteTo([]byte("echo?"), echo.LocalAddr()); err != nil {
					t.Fatalf("write: %v", err)
				}
				_ = relay.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				// (a late pong of the worker may come)
				if n, from, err := relay.ReadFrom(buf); err == nil && from.String() == echo.LocalAddr().String() {
					t.Fatalf("the echo service answered %q through the relay", buf[:n])
				}
			}
		})
	}
	// A token with no live worker gets no permission at all.
	other := s.ICEServer(10)
	cl := dialTURN(t, s, "udp", other.Username, other.Credential)
	relay, err := cl.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if err := cl.CreatePermission(echo.LocalAddr()); err == nil {
		t.Fatal("permission to the echo service granted")
	}
}

func udpSocket(t *testing.T, addr string) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// pingPong sends pings through relay until the worker's pong comes back
// (pion's client may drop a packet that races its own channel binding).
func pingPong(t *testing.T, relay net.PacketConn, worker net.PacketConn, what string) {
	t.Helper()
	ra := relay.LocalAddr().(*net.UDPAddr)
	buf := make([]byte, 1500)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no pong through the relay")
		}
		if _, err := relay.WriteTo([]byte("ping "+what), worker.LocalAddr()); err != nil {
			t.Fatalf("write to the worker: %v", err)
		}
		_ = worker.SetReadDeadline(time.Now().Add(time.Second))
		n, from, err := worker.ReadFrom(buf)
		if err != nil {
			continue
		}
		if string(buf[:n]) != "ping "+what || from.(*net.UDPAddr).Port != ra.Port {
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
		_ = worker.SetReadDeadline(time.Time{})
		_ = relay.SetReadDeadline(time.Time{})
		return
	}
}

// wantNothing fails when c reads a packet within 300 ms.
func wantNothing(t *testing.T, c net.PacketConn, what string) {
	t.Helper()
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, from, err := c.ReadFrom(buf); err == nil {
		t.Errorf("%v got %q from %v %s", c.LocalAddr(), buf[:n], from, what)
	}
	_ = c.SetReadDeadline(time.Time{})
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
