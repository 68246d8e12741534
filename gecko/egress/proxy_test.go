package egress_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/gecko/egress"
	"github.com/geckohost/geckohost/internal/leaktest"
)

func TestMain(m *testing.M) {
	snap := leaktest.Take()
	os.Exit(snap.Code(m.Run()))
}

// socksConnect opens a SOCKS5 CONNECT to host:port through proxy and
// returns the reply code and, on success, the connection.
func socksConnect(t *testing.T, proxy netip.AddrPort, host string, port uint16) (byte, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := []byte{5, 1, 0, 5, 1, 0}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		b := a.As4()
		req = append(req, 1)
		req = append(req, b[:]...)
	} else if err == nil {
		b := a.As16()
		req = append(req, 4)
		req = append(req, b[:]...)
	} else {
		req = append(req, 3, byte(len(host)))
		req = append(req, host...)
	}
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	var resp [12]byte
	if _, err := io.ReadFull(c, resp[:]); err != nil {
		t.Fatalf("read SOCKS reply: %v", err)
	}
	if resp[0] != 5 || resp[1] != 0 || resp[2] != 5 {
		t.Fatalf("SOCKS reply %v", resp)
	}
	if resp[3] != 0 {
		_ = c.Close()
		return resp[3], nil
	}
	_ = c.SetDeadline(time.Time{})
	return 0, c
}

// get sends one HTTP request on c (with extra header lines) and returns
// the status, or an error when the connection was cut.
func get(c net.Conn, host, path string, headers ...string) (int, error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(host, "http://") + "\r\n" + strings.Join(headers, "") + "Connection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func hostPort(t *testing.T, rawURL string) (string, uint16) {
	t.Helper()
	ap := netip.MustParseAddrPort(strings.TrimPrefix(rawURL, "http://"))
	return ap.Addr().String(), ap.Port()
}

func newProxy(t *testing.T, opts egress.Options) (*egress.Proxy, *egress.Identity) {
	t.Helper()
	p, err := egress.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	id, err := p.NewIdentity("test")
	if err != nil {
		t.Fatal(err)
	}
	return p, id
}

func TestPolicy(t *testing.T) {
	leaktest.Check(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	host, port := hostPort(t, srv.URL)
	_, otherPort := hostPort(t, other.URL)

	t.Run("public", func(t *testing.T) {
		p, id := newProxy(t, egress.Options{Policy: egress.Policy{ServerOrigins: []string{other.URL}}, Resolver: fakeResolver{"rebind.test": "127.0.0.1"}})
		// Loopback is not public.
		if code, _ := socksConnect(t, id.Addr(), host, port); code != 2 {
			t.Fatalf("loopback: reply %d, want 2 (not allowed)", code)
		}
		if code, _ := socksConnect(t, id.Addr(), "localhost", port); code != 2 {
			t.Fatalf("localhost: reply %d, want 2", code)
		}
		// A private address is refused before any connection.
		if code, _ := socksConnect(t, id.Addr(), "10.255.255.1", 80); code != 2 {
			t.Fatalf("private: reply %d, want 2", code)
		}
		if id.Refused() != 3 {
			t.Fatalf("refused %d, want 3", id.Refused())
		}
		// The server's own origin and a worker's source origin are allowed.
		code, c := socksConnect(t, id.Addr(), host, otherPort)
		if code != 0 {
			t.Fatalf("server origin: reply %d", code)
		}
		if st, err := get(c, other.URL, "/"); err != nil || st != 200 {
			t.Fatalf("server origin: %d %v", st, err)
		}
		remove := id.AllowOrigin(srv.URL + "/w.js")
		code, c = socksConnect(t, id.Addr(), host, port)
		if code != 0 {
			t.Fatalf("source origin: reply %d", code)
		}
		_, _ = get(c, srv.URL, "/")
		remove()
		if code, _ := socksConnect(t, id.Addr(), host, port); code != 2 {
			t.Fatalf("source origin removed: reply %d, want 2", code)
		}
		// A source named by a DNS name that now resolves to loopback is
		// held to the address rule (DNS rebinding after the fetch).
		id.AllowOrigin(fmt.Sprintf("http://rebind.test:%d/w.js", port))
		if code, _ := socksConnect(t, id.Addr(), "rebind.test", port); code != 2 {
			t.Fatalf("rebound source name: reply %d, want 2", code)
		}
		// The proxy's own listener and denied ports, never.
		undo := p.DenyPort(otherPort)
		if code, _ := socksConnect(t, id.Addr(), host, otherPort); code != 2 {
			t.Fatalf("denied port: reply %d, want 2", code)
		}
		undo()
		if code, _ := socksConnect(t, id.Addr(), "127.0.0.1", id.Addr().Port()); code != 2 {
			t.Fatalf("own listener: reply %d, want 2", code)
		}
	})
	t.Run("allow", func(t *testing.T) {
		_, id := newProxy(t, egress.Options{Policy: egress.Policy{Mode: egress.None, Allow: []string{srv.URL}}})
		code, c := socksConnect(t, id.Addr(), host, port)
		if code != 0 {
			t.Fatalf("allowed: reply %d", code)
		}
		_, _ = get(c, srv.URL, "/")
		if code, _ := socksConnect(t, id.Addr(), host, otherPort); code != 2 {
			t.Fatalf("none: reply %d, want 2", code)
		}
		id.AllowOrigin(other.URL) // no effect in None mode
		if code, _ := socksConnect(t, id.Addr(), host, otherPort); code != 2 {
			t.Fatalf("none with a source origin: reply %d, want 2", code)
		}
	})
	t.Run("all", func(t *testing.T) {
		p, id := newProxy(t, egress.Options{Policy: egress.Policy{Mode: egress.All}})
		code, c := socksConnect(t, id.Addr(), "localhost", port)
		if code != 0 {
			t.Fatalf("all: reply %d", code)
		}
		_, _ = get(c, srv.URL, "/")
		p.DenyPort(port)
		if code, _ := socksConnect(t, id.Addr(), "0.0.0.0", port); code != 2 {
			t.Fatalf("denied port via 0.0.0.0: reply %d, want 2", code)
		}
		if code, _ := socksConnect(t, id.Addr(), "::ffff:127.0.0.1", port); code != 2 {
			t.Fatalf("denied port via a mapped address: reply %d, want 2", code)
		}
	})
}

// TestShellRoute: a connection to the shell server passes a page
// navigation on, and cuts (and counts) any other request.
func TestShellRoute(t *testing.T) {
	leaktest.Check(t)
	var got []string
	shell := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path)
		w.Header().Set("Connection", "close")
	}))
	defer shell.Close()
	host, port := hostPort(t, shell.URL)
	_, id := newProxy(t, egress.Options{Policy: egress.Policy{Mode: egress.All}, Shell: netip.MustParseAddrPort(host + ":" + fmt.Sprint(port))})
	nav := []string{"Sec-Fetch-Mode: navigate\r\n", "Sec-Fetch-Dest: document\r\n"}
	// No shell page loading: refused at once.
	if code, _ := socksConnect(t, id.Addr(), host, port); code != 2 {
		t.Fatalf("outside a page load: reply %d, want 2", code)
	}
	done := id.ExpectShell()
	defer done()
	_, c := socksConnect(t, id.Addr(), host, port)
	if st, err := get(c, shell.URL, "/p/shell.html", nav...); err != nil || st != 200 {
		t.Fatalf("navigation: %d %v", st, err)
	}
	for _, h := range [][]string{
		nil,
		{"Sec-Fetch-Mode: cors\r\n", "Sec-Fetch-Dest: empty\r\n"},
		{"Sec-Fetch-Mode: no-cors\r\n", "Sec-Fetch-Dest: script\r\n"},
		{"Sec-Fetch-Mode: navigate\r\n", "Sec-Fetch-Dest: iframe\r\n"},
	} {
		code, c := socksConnect(t, id.Addr(), "localhost", port)
		if code != 0 {
			t.Fatalf("reply %d", code)
		}
		if st, err := get(c, shell.URL, "/p/shell.html", h...); err == nil {
			t.Fatalf("headers %q: got status %d, want the connection cut", h, st)
		}
	}
	if id.Refused() != 5 || len(got) != 1 {
		t.Fatalf("refused %d, served %v; want 5 and one", id.Refused(), got)
	}
}

// TestBadHandshakes: malformed clients get no connection and leave nothing
// running.
func TestBadHandshakes(t *testing.T) {
	leaktest.Check(t)
	_, id := newProxy(t, egress.Options{Policy: egress.Policy{Mode: egress.All}})
	for _, b := range [][]byte{
		{4, 1, 0},
		{5, 0},
		{5, 1, 2},                                // only user/password auth
		{5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80}, // BIND
		{5, 1, 0, 5, 1, 0, 9},                    // unknown address type
		{5, 1, 0, 5, 1, 0, 3, 0, 0, 80},
		{5, 1, 0, 5, 1, 0, 3, 3, 'a', ' ', 'b', 0, 80},
	} {
		c, err := net.Dial("tcp", id.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(b)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(c)
		_ = c.Close()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%v: the proxy kept the connection open", b)
			}
		}
		if len(out) >= 4 && out[2] == 5 && out[3] == 0 {
			t.Fatalf("%v: got a success reply %v", b, out)
		}
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]egress.Mode{"": egress.Public, "PUBLIC": egress.Public, "none": egress.None, "all": egress.All} {
		if m, err := egress.ParseMode(in); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, m, err)
		}
	}
	if _, err := egress.ParseMode("some"); !errors.Is(err, egress.ErrBadPolicy) {
		t.Errorf("ParseMode(some): %v", err)
	}
	for _, bad := range []egress.Policy{{Allow: []string{"*"}}, {Allow: []string{"ftp://x"}}, {ServerOrigins: []string{"http://x/path"}}} {
		if _, err := bad.Validate(); !errors.Is(err, egress.ErrBadPolicy) {
			t.Errorf("Validate(%+v): %v", bad, err)
		}
	}
}

func TestOriginKey(t *testing.T) {
	for in, want := range map[string]string{
		"http://Example.COM/w.js":      "example.com:80",
		"https://example.com":          "example.com:443",
		"http://127.0.0.1:8080/a?b":    "127.0.0.1:8080",
		"http://[::1]:9/x":             "[::1]:9",
		"https://[::ffff:127.0.0.1]/x": "127.0.0.1:443",
	} {
		if got, ok := egress.OriginKey(in); !ok || got != want {
			t.Errorf("OriginKey(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"ftp://x/", "http://", "http://u@x/", "http://x:0/", "http://x:99999/", "blob:http://x/"} {
		if got, ok := egress.OriginKey(bad); ok {
			t.Errorf("OriginKey(%q) = %q, want not ok", bad, got)
		}
	}
}

// fakeResolver maps names to one address.
type fakeResolver map[string]string

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
}
