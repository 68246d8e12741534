package host

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// The server's own origins come from its configuration, never from what a
// request says: the address the connection was accepted on (http://IP:PORT,
// and http://localhost:PORT when that address is loopback), and
// Options.PublicURLs. A request whose Host header names none of them is
// refused with 421 (a DNS-rebinding page sends its own name as Host); the
// bundled workers are recognised at those origins only; and a browser
// client's Origin must be one of them or match Options.AllowOrigins.

// origin is a canonical web origin: lower-case scheme and host (an IP
// address in its canonical form, without brackets), and an explicit port.
type origin struct {
	scheme, host, port string
}

func (o origin) String() string {
	h := o.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if o.port == defaultPort(o.scheme) {
		return o.scheme + "://" + h
	}
	return o.scheme + "://" + h + ":" + o.port
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// canonicalHost lower-cases a host name and canonicalizes an IP address
// (brackets removed); ok is false for anything that is neither.
func canonicalHost(h string) (string, bool) {
	if strings.HasPrefix(h, "[") {
		if !strings.HasSuffix(h, "]") {
			return "", false
		}
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return a.String(), true
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if !a.Is4() {
			return "", false // IPv6 needs brackets
		}
		return a.String(), true
	}
	h = strings.ToLower(h)
	if h == "" || len(h) > 253 {
		return "", false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return h, true
}

// parseHostHeader splits a Host header value ("name", "name:port",
// "1.2.3.4:port", "[v6]:port") into a canonical host and its port ("" when
// it has none). ok is false for anything else.
func parseHostHeader(hv string) (host, port string, ok bool) {
	if hv == "" || len(hv) > 261 {
		return "", "", false
	}
	h, p := hv, ""
	if i := strings.LastIndexByte(hv, ':'); i >= 0 && !strings.HasSuffix(hv, "]") {
		h, p = hv[:i], hv[i+1:]
		if !validPort(p) {
			return "", "", false
		}
	}
	host, ok = canonicalHost(h)
	if !ok {
		return "", "", false
	}
	return host, p, true
}

// validPort reports whether p is a port number 1-65535 without a sign or
// leading zeros.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

// urlOrigin returns the origin of an absolute http(s) URL.
func urlOrigin(u *url.URL) (origin, bool) {
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" || u.User != nil {
		return origin{}, false
	}
	host, port, ok := parseHostHeader(u.Host)
	if !ok {
		return origin{}, false
	}
	if port == "" {
		port = defaultPort(scheme)
	}
	return origin{scheme: scheme, host: host, port: port}, true
}

// parseOrigin parses an Origin header value or a --public-url: an absolute
// http(s) URL with no user, query, fragment or path beyond "/".
func parseOrigin(s string) (origin, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
		return origin{}, false
	}
	return urlOrigin(u)
}

// parsePublicURLs validates Options.PublicURLs.
func parsePublicURLs(us []string) ([]origin, error) {
	var out []origin
	for _, s := range us {
		o, ok := parseOrigin(strings.TrimSpace(s))
		if !ok {
			return nil, fmt.Errorf("%w: %q (want scheme://host[:port], scheme http or https, no path)", ErrBadPublicURL, s)
		}
		out = append(out, o)
	}
	return out, nil
}

// ownOrigins returns the server's own origins as seen by request r: the
// address its connection was accepted on (and localhost for a loopback
// one), with r's scheme, and the public URLs.
func (s *Server) ownOrigins(r *http.Request) []origin {
	out := make([]origin, 0, len(s.publicURLs)+2)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			a := ap.Addr().Unmap().WithZone("")
			port := strconv.Itoa(int(ap.Port()))
			out = append(out, origin{scheme: scheme, host: a.String(), port: port})
			if a.IsLoopback() {
				out = append(out, origin{scheme: scheme, host: "localhost", port: port})
			}
		}
	}
	return append(out, s.publicURLs...)
}

// isOwnOrigin reports whether o is one of the server's own origins.
func (s *Server) isOwnOrigin(r *http.Request, o origin) bool {
	for _, own := range s.ownOrigins(r) {
		if own == o {
			return true
		}
	}
	return false
}

// hostAllowed reports whether r's Host header names one of the server's own
// origins (a Host without a port matches an origin on its scheme's default
// port).
func (s *Server) hostAllowed(r *http.Request) bool {
	host, port, ok := parseHostHeader(r.Host)
	if !ok {
		return false
	}
	for _, own := range s.ownOrigins(r) {
		if own.host == host && (own.port == port || port == "" && own.port == defaultPort(own.scheme)) {
			return true
		}
	}
	return false
}

// originAllowed reports whether a browser client's Origin may connect: one
// of the server's own origins, or one matching an --allow-origin pattern.
func (s *Server) originAllowed(r *http.Request, originHeader string) bool {
	o, ok := parseOrigin(originHeader)
	if !ok {
		return false
	}
	if s.isOwnOrigin(r, o) {
		return true
	}
	u, err := url.Parse(originHeader)
	if err != nil {
		return false
	}
	return matchAny(s.allowOrigins, u)
}

// misdirected answers a request whose Host is not one of the server's.
func misdirected(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusMisdirectedRequest)
	fmt.Fprintf(w, "geckohost: Host %q is not one of this server's addresses; a name other than its --listen address needs serve --public-url\n", shorten(r.Host))
}

// SideHostCheck guards one of serve's side listeners (metrics, pprof)
// against DNS rebinding: h serves a request only when its Host header is an
// IP address, localhost, or the host of one of publicURLs (any port); any
// other name gets 421 Misdirected Request, since a rebinding page always
// sends a name of its own. A bad public URL is an ErrBadPublicURL.
func SideHostCheck(h http.Handler, publicURLs []string) (http.Handler, error) {
	pub, err := parsePublicURLs(publicURLs)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{"localhost": true}
	for _, o := range pub {
		names[o.host] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, ok := parseHostHeader(r.Host)
		if _, err := netip.ParseAddr(host); ok && (err == nil || names[host]) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusMisdirectedRequest)
		fmt.Fprintf(w, "geckohost: Host %q is not an address of this server; a name other than localhost needs serve --public-url\n", shorten(r.Host))
	}), nil
}
