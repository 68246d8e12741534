package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/syncbuf"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemFile string // the CA certificate, PEM
	pool    *x509.CertPool
}

func newTestCA(t testing.TB, dir string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "geckohost test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pemFile: filepath.Join(dir, "ca.pem"), pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	writeFileAtomic(t, ca.pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// issue writes a server certificate with serial for hosts (IP addresses
// or names), and a fresh key, to dir/cert.pem and dir/key.pem (each
// replaced at once, as a renewal tool does).
func (ca *testCA) issue(t testing.TB, dir string, serial int64, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFileAtomic(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	writeFileAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return certFile, keyFile
}

func writeFileAtomic(t testing.TB, name string, b []byte) {
	t.Helper()
	tmp := name + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// caClient is an HTTP client trusting only ca.
func (ca *testCA) client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.pool}
	return &http.Client{Transport: tr}
}

// serialAt handshakes with addr and returns the serial of the certificate
// it serves.
func (ca *testCA) serialAt(ctx context.Context, addr string) (int64, error) {
	d := tls.Dialer{Config: &tls.Config{RootCAs: ca.pool}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// waitUntil calls f every 20 ms until it returns nil or ctx ends.
func waitUntil(t *testing.T, ctx context.Context, what string, f func() error) {
	t.Helper()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestServeTLSFlags: --tls-cert and --tls-key go together, said in one line.
func TestServeTLSFlags(t *testing.T) {
	leaktest.Check(t)
	db := filepath.Join(t.TempDir(), "geckohost.db")
	for _, flag := range []string{"--tls-cert", "--tls-key"} {
		r := geckohost(t, "serve", "--db", db, flag, "x.pem")
		wantFail(t, r, "--tls-cert and --tls-key go together")
	}
}

// TestCertReloader: the certificate is replaced when its files change
// and on SIGHUP; a pair that does not load keeps the old one, with a
// warning; a bad pair at start is an error.
func TestCertReloader(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile := ca.issue(t, dir, 1, "127.0.0.1")
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	serial := func(r *certReloader) int64 {
		c, _ := r.getCertificate(nil)
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.Int64()
	}
	want := func(r *certReloader, n int64) func() error {
		return func() error {
			if got := serial(r); got != n {
				return fmt.Errorf("serial %d, want %d", got, n)
			}
			return nil
		}
	}

	r, err := startCertReloader(certFile, keyFile, 20*time.Millisecond, log)
	if err != nil {
		t.Fatal(err)
	}
	if serial(r) != 1 {
		t.Fatalf("serial %d", serial(r))
	}
	ca.issue(t, dir, 2, "127.0.0.1")
	waitUntil(t, ctx, "renewal picked up", want(r, 2))
	writeFileAtomic(t, keyFile, []byte("not a key\n"))
	waitUntil(t, ctx, "warning", func() error {
		if !strings.Contains(logs.String(), "the new certificate did not load; serving the old one") {
			return fmt.Errorf("no warning in %q", logs.String())
		}
		return nil
	})
	if serial(r) != 2 {
		t.Fatalf("a bad pair replaced the certificate: serial %d", serial(r))
	}
	r.close()

	// SIGHUP: the files are looked at no more than once an hour.
	ca.issue(t, dir, 3, "127.0.0.1")
	r, err = startCertReloader(certFile, keyFile, time.Hour, log)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	ca.issue(t, dir, 4, "127.0.0.1")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "SIGHUP reload", want(r, 4))

	writeFileAtomic(t, keyFile, []byte("not a key\n"))
	if _, err := startCertReloader(certFile, keyFile, time.Hour, log); err == nil || !strings.Contains(err.Error(), "--tls-cert/--tls-key") {
		t.Fatalf("bad pair at start: %v", err)
	}
}

// TestServeTLS: serve --tls-cert/--tls-key with a certificate of a CA
// made here. The Go client dials wss:// trusting that CA (and fails
// without it), GET /ice-servers and `geckohost status --ca` work over
// https, `geckohost bench --url wss://... --ca` connects; then the
// certificate is renewed while a session is connected and a TLS
// connection is open: both keep working, new handshakes get the new
// certificate, and new sessions connect; a bad pair written next changes
// nothing but a warning.
func TestServeTLS(t *testing.T) {
	ctx := serveTestFor(t, 3*time.Minute)
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile := ca.issue(t, dir, 1, "127.0.0.1", "localhost")
	addr, secret, _, logs := startServeWith(t, ctx, "tls", func(c *serveConfig) {
		c.TLSCert, c.TLSKey, c.certPollEvery = certFile, keyFile, 50*time.Millisecond
	})
	if !strings.Contains(logs.String(), `"url":"https://`+addr+`/"`) || !strings.Contains(logs.String(), `"demo":"https://`) {
		t.Errorf("serve did not log its https URLs:\n%s", logs.String())
	}
	hc := ca.client()
	dial := func(what string, hc *http.Client) (*client.Session, error) {
		return client.Dial(ctx, "wss://"+addr+"/", client.Options{Token: secret, Source: "https://" + addr + "/workers/echo.js",
			Loopback: true, HTTPClient: hc})
	}
	if _, err := dial("no CA", nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("dial without the CA: %v", err)
	}
	sess, err := dial("CA", hc)
	if err != nil {
		t.Fatalf("dial wss: %v", err)
	}
	defer sess.Close()
	echo := echoer(t, ctx, sess)
	echo("before the renewal")

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/ice-servers", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET /ice-servers: %v", err)
	}
	var ice map[string]any
	_ = json.NewDecoder(res.Body).Decode(&ice)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || ice["iceServers"] == nil {
		t.Fatalf("GET /ice-servers: %s %v", res.Status, ice)
	}
	wantOK(t, geckohost(t, "status", "--url", "https://"+addr+"/", "--ca", ca.pemFile))
	if r := geckohost(t, "status", "--url", "https://"+addr+"/"); r.code == 0 {
		t.Error("status without --ca trusted the test CA")
	}
	r := geckohost(t, "bench", "--url", "wss://"+addr+"/", "--token", secret, "--ca", ca.pemFile, "--loopback", "-n", "2", "--messages", "2", "--json")
	wantOK(t, r)
	if !strings.Contains(r.stdout, `"open"`) {
		t.Errorf("bench output: %s", r.stdout)
	}

	// A connection open across the renewal.
	d := tls.Dialer{Config: &tls.Config{RootCAs: ca.pool}}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	br := bufio.NewReader(raw)
	get := func() {
		t.Helper()
		fmt.Fprintf(raw, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("GET /healthz on the open connection: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz: %s", res.Status)
		}
	}
	get()

	ca.issue(t, dir, 2, "127.0.0.1", "localhost")
	waitUntil(t, ctx, "new handshakes see the renewed certificate", func() error {
		n, err := ca.serialAt(ctx, addr)
		if err == nil && n != 2 {
			err = fmt.Errorf("serial %d", n)
		}
		return err
	})
	echo("after the renewal") // the connected session
	get()                     // the open connection
	if n := raw.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64(); n != 1 {
		t.Errorf("the open connection's certificate: serial %d", n)
	}
	sess2, err := dial("after the renewal", hc)
	if err != nil {
		t.Fatalf("dial after the renewal: %v", err)
	}
	echoer(t, ctx, sess2)("new session")
	_ = sess2.Close()

	writeFileAtomic(t, keyFile, []byte("half-written\n"))
	waitUntil(t, ctx, "warning", func() error {
		if !strings.Contains(logs.String(), "the new certificate did not load") {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	if n, err := ca.serialAt(ctx, addr); err != nil || n != 2 {
		t.Fatalf("after a bad pair: serial %d, %v", n, err)
	}
}

// echoer returns a function that sends one text message on sess and
// waits for its echo.
func echoer(t *testing.T, ctx context.Context, sess *client.Session) func(string) {
	got := make(chan string, 4)
	sess.Channel.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case got <- string(m.Data):
		default:
		}
	})
	return func(msg string) {
		t.Helper()
		if err := sess.Channel.SendText(msg); err != nil {
			t.Fatalf("send %q: %v", msg, err)
		}
		select {
		case m := <-got:
			if m != msg {
				t.Fatalf("echo %q, want %q", m, msg)
			}
		case <-ctx.Done():
			t.Fatalf("no echo of %q", msg)
		}
	}
}

// TestServerOriginsTLS: with --tls-cert the listener's own origins (for
// the workers' egress and host's --listen names) are https.
func TestServerOriginsTLS(t *testing.T) {
	a, _ := net.ResolveTCPAddr("tcp", "192.0.2.7:8443")
	cfg := serveConfig{Listen: "workstation.lan:8443", TLSCert: "c.pem", TLSKey: "k.pem", PublicURLs: []string{"http://gh.example.com"}}
	eg, hp := serverOrigins(cfg, a)
	wantEg := []string{"http://gh.example.com", "https://workstation.lan:8443", "https://192.0.2.7:8443"}
	wantHp := []string{"http://gh.example.com", "https://workstation.lan:8443"}
	if strings.Join(eg, " ") != strings.Join(wantEg, " ") || strings.Join(hp, " ") != strings.Join(wantHp, " ") {
		t.Fatalf("serverOrigins = %v, %v; want %v, %v", eg, hp, wantEg, wantHp)
	}
	if got := cfg.schemeURL("http://127.0.0.1:8443/"); got != "https://127.0.0.1:8443/" {
		t.Fatalf("schemeURL = %q", got)
	}
}
