package main

// serve's TLS (--tls-cert, --tls-key): https:// and wss:// on --listen,
// with a certificate that is re-read when its files change or on SIGHUP,
// without dropping a connection.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// certPollEvery is how often serve looks at the certificate files.
const certPollEvery = 2 * time.Second

func tlsCertFlag() cli.Flag {
	return &cli.StringFlag{Name: "tls-cert", Usage: "serve https:// and wss:// on --listen with this certificate chain `FILE` (PEM, the server's certificate first); needs --tls-key; re-read when it changes or on SIGHUP", EnvVars: []string{"GECKOHOST_TLS_CERT"}}
}

func tlsKeyFlag() cli.Flag {
	return &cli.StringFlag{Name: "tls-key", Usage: "the private key `FILE` (PEM) of --tls-cert", EnvVars: []string{"GECKOHOST_TLS_KEY"}}
}

// tlsFrom reads --tls-cert and --tls-key.
func (cfg *serveConfig) tlsFrom(c *cli.Context) {
	cfg.TLSCert, cfg.TLSKey = c.String("tls-cert"), c.String("tls-key")
}

// validateTLS checks that --tls-cert and --tls-key come together.
func (cfg serveConfig) validateTLS() error {
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both (PEM files) or neither")
	}
	return nil
}

// scheme is the scheme of the --listen server: "https" with TLS, else
// "http".
func (cfg serveConfig) scheme() string {
	if cfg.TLSCert != "" {
		return "https"
	}
	return "http"
}

// schemeURL turns an http:// URL of the --listen server into its https://
// form when serving TLS.
func (cfg serveConfig) schemeURL(u string) string {
	if cfg.TLSCert == "" {
		return u
	}
	if rest, ok := strings.CutPrefix(u, "http://"); ok {
		return "https://" + rest
	}
	return u
}

// serverOrigins are ownOrigins with the listener's scheme.
func serverOrigins(cfg serveConfig, addr net.Addr) (egressOrigins, hostURLs []string) {
	return listenerOrigins(cfg.scheme(), cfg.Listen, addr, cfg.PublicURLs)
}

// listen opens --listen, with TLS when --tls-cert is set (the
// certificate's reloader is stopped when the listener is closed).
func (cfg serveConfig) listen(ctx context.Context, log *slog.Logger) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if cfg.TLSCert == "" {
		return ln, nil
	}
	every := cfg.certPollEvery
	if every <= 0 {
		every = certPollEvery
	}
	rl, err := startCertReloader(cfg.TLSCert, cfg.TLSKey, every, log.With("component", "tls"))
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: rl.getCertificate, NextProtos: []string{"http/1.1"}}
	return &tlsListener{Listener: tls.NewListener(ln, tcfg), rl: rl}, nil
}

// tlsListener is the TLS listener; closing it stops the reloader.
type tlsListener struct {
	net.Listener
	rl   *certReloader
	once sync.Once
	err  error
}

func (l *tlsListener) Close() error {
	l.once.Do(func() {
		l.err = l.Listener.Close()
		l.rl.close()
	})
	return l.err
}

// certReloader holds the serving certificate and replaces it when the
// files change (polled every so often) or on SIGHUP; a pair that does not
// load keeps the old one (with a warning). Its goroutine is waited for by
// close.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
	stamp             string // the files' sizes and times at the last load attempt
	cancel            context.CancelFunc
	done              chan struct{}
}

// startCertReloader loads the pair (a failure is the error) and starts
// watching it.
func startCertReloader(certFile, keyFile string, every time.Duration, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, done: make(chan struct{})}
	r.stamp = r.fileStamp()
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer close(r.done)
		defer signal.Stop(hup)
		r.loop(ctx, every, hup)
	}()
	return r, nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// load reads the pair and makes it the serving certificate.
func (r *certReloader) load() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load the certificate and key: %w", err)
	}
	r.cert.Store(&c)
	return nil
}

// fileStamp is the size and modification time of both files ("" parts for
// a file that cannot be read).
func (r *certReloader) fileStamp() string {
	var b strings.Builder
	for _, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%d %d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			b.WriteString("-;")
		}
	}
	return b.String()
}

// loop reloads on a changed stamp (a renewal that writes the files) or on
// SIGHUP, until ctx ends.
func (r *certReloader) loop(ctx context.Context, every time.Duration, hup <-chan os.Signal) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.stamp = r.fileStamp()
			r.reload("SIGHUP")
		case <-t.C:
			if st := r.fileStamp(); st != r.stamp {
				r.stamp = st
				r.reload("files changed")
			}
		}
	}
}

func (r *certReloader) reload(why string) {
	if err := r.load(); err != nil {
		r.log.Warn("tls: the new certificate did not load; serving the old one", "why", why, "err", err)
		return
	}
	c := r.cert.Load()
	var notAfter time.Time
	if c.Leaf != nil {
		notAfter = c.Leaf.NotAfter
	}
	r.log.Info("tls: certificate reloaded", "why", why, "not_after", notAfter)
}

func (r *certReloader) close() {
	r.cancel()
	<-r.done
}
