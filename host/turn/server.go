package turn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // TURN REST credentials are HMAC-SHA1 by definition
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	pturn "github.com/pion/turn/v5"

	"github.com/geckohost/geckohost/engine"
)

// Options configure a Server. Listen is required; the zero value of every
// other field works.
type Options struct {
	// Listen is the host:port to listen on, for UDP and TCP alike (port 0:
	// any free port, the same for both).
	Listen string
	// RelayIP is the address the relay's allocations are given as (the
	// XOR-RELAYED-ADDRESS; serve --turn-public-ip), and the host in the
	// TURN URLs. nil: the listen address when it is a specific one, else
	// this host's first non-loopback IPv4 address.
	RelayIP net.IP
	// Realm is the TURN realm; "" means "geckohost".
	Realm string
	// TTL is how long a credential is valid; 0 or more than 10 minutes
	// means 10 minutes.
	TTL time.Duration
	// MaxAllocations bounds the allocations one token holds at a time; 0
	// means 32.
	MaxAllocations int
	// Logger gets the relay's logs (pion's at debug level); nil discards
	// them.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultRealm          = "geckohost"
	MaxTTL                = 10 * time.Minute
	DefaultMaxAllocations = 32
	// minPeerPort: an allocation never reaches a port below this.
	minPeerPort = 1024
)

// Server is a running TURN relay. Create it with Listen, stop it with
// Close.
type Server struct {
	opts    Options
	log     *slog.Logger
	secret  []byte
	relayIP net.IP
	bindIP  net.IP
	addr    *net.UDPAddr // where it listens
	urlHost string       // host:port in the URLs
	pion    *pturn.Server
	track   *tracker
	peers   *hostAddrs
	peerSet *peers // what each token's client allocations may reach

	mu     sync.Mutex
	allocs map[string]int // live allocations per user id (token id)
	closed bool
}

// Listen starts a relay on opts.Listen (UDP and TCP).
func Listen(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Realm == "" {
		opts.Realm = DefaultRealm
	}
	if opts.TTL <= 0 || opts.TTL > MaxTTL {
		opts.TTL = MaxTTL
	}
	if opts.MaxAllocations <= 0 {
		opts.MaxAllocations = DefaultMaxAllocations
	}
	host, port, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("turn listen %q: want host:port: %w", opts.Listen, err)
	}
	s := &Server{opts: opts, log: opts.Logger, track: &tracker{}, allocs: map[string]int{}, peers: &hostAddrs{}, peerSet: newPeers()}
	s.secret = make([]byte, 32)
	_, _ = rand.Read(s.secret) // crypto/rand.Read never fails

	s.bindIP = net.IPv4zero
	if host != "" {
		ip := net.ParseIP(host)
		if ip == nil {
			return nil, fmt.Errorf("turn listen %q: want an IP address", opts.Listen)
		}
		if !ip.IsUnspecified() {
			s.bindIP = ip
		}
	}
	s.relayIP = opts.RelayIP
	if s.relayIP == nil {
		if !s.bindIP.IsUnspecified() {
			s.relayIP = s.bindIP
		} else if s.relayIP = firstIPv4(); s.relayIP == nil {
			return nil, fmt.Errorf("turn listen %q: %w", opts.Listen, ErrNoRelayAddress)
		}
	}

	udp, err := net.ListenPacket("udp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("turn listen udp %s: %w", opts.Listen, err)
	}
	s.addr = udp.LocalAddr().(*net.UDPAddr)
	if port == "0" {
		port = strconv.Itoa(s.addr.Port)
	}
	tcp, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("turn listen tcp %s: %w", net.JoinHostPort(host, port), err)
	}
	s.urlHost = net.JoinHostPort(s.relayIP.String(), port)

	gen := &relayGen{s: s}
	s.pion, err = pturn.NewServer(pturn.ServerConfig{
		Realm:         opts.Realm,
		AuthHandler:   s.auth,
		QuotaHandler:  s.quota,
		LoggerFactory: pionLogs{s.log},
		EventHandler: pturn.EventHandler{
			OnAllocationCreated: func(src, _ net.Addr, _, userID, _ string, _ net.Addr, _ int) {
				s.peerSet.setUser(src, userID)
				s.countAlloc(userID, 1)
			},
			OnAllocationDeleted: func(src, _ net.Addr, _, userID, _ string) {
				s.peerSet.setUser(src, "")
				s.countAlloc(userID, -1)
			},
		},
		PacketConnConfigs: []pturn.PacketConnConfig{{
			PacketConn: s.track.packetConn(udp), RelayAddressGenerator: gen, PermissionHandler: s.permission(),
		}},
		ListenerConfigs: []pturn.ListenerConfig{{
			Listener: s.track.listener(tcp), RelayAddressGenerator: gen, PermissionHandler: s.permission(),
		}},
	})
	if err != nil {
		_ = udp.Close()
		_ = tcp.Close()
		return nil, fmt.Errorf("start turn server: %w", err)
	}
	s.log.Info("turn relay listening", "udp", s.addr.String(), "tcp", tcp.Addr().String(), "relay_ip", s.relayIP.String())
	return s, nil
}

// Addr is the UDP address the relay listens on (TCP has the same port).
func (s *Server) Addr() *net.UDPAddr { return s.addr }

// RelayIP is the address allocations are given as.
func (s *Server) RelayIP() net.IP { return s.relayIP }

// URLs are the relay's TURN URLs, UDP then TCP.
func (s *Server) URLs() []string {
	return []string{"turn:" + s.urlHost + "?transport=udp", "turn:" + s.urlHost + "?transport=tcp"}
}

// ICEServer returns the relay for a client of token id tokenID, with
// credentials valid for Options.TTL from now ("<expiry>:<token id>").
func (s *Server) ICEServer(tokenID int64) engine.ICEServer {
	user, pass := s.credentials(strconv.FormatInt(tokenID, 10), time.Now().Add(s.opts.TTL))
	return engine.ICEServer{URLs: s.URLs(), Username: user, Credential: pass}
}

// WorkerICEServer returns the relay for a worker of token id tokenID
// ("<expiry>:w<token id>"): its allocations do not count toward the
// token's MaxAllocations, which bound what its clients hold (the host
// bounds its workers).
func (s *Server) WorkerICEServer(tokenID int64) engine.ICEServer {
	user, pass := s.credentials("w"+strconv.FormatInt(tokenID, 10), time.Now().Add(s.opts.TTL))
	return engine.ICEServer{URLs: s.URLs(), Username: user, Credential: pass}
}

func (s *Server) credentials(id string, expiry time.Time) (user, pass string) {
	user = strconv.FormatInt(expiry.Unix(), 10) + ":" + id
	return user, s.password(user)
}

func (s *Server) password(user string) string {
	mac := hmac.New(sha1.New, s.secret)
	mac.Write([]byte(user))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// auth checks a TURN REST username "expiry:tokenid" (not expired, not
// valid for longer than the TTL) and returns the token id as the user id
// and the long-term key of its password.
func (s *Server) auth(ra *pturn.RequestAttributes) (string, []byte, bool) {
	exp, id, ok := strings.Cut(ra.Username, ":")
	if !ok {
		return "", nil, false
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return "", nil, false
	}
	if _, err := strconv.ParseInt(strings.TrimPrefix(id, "w"), 10, 64); err != nil {
		return "", nil, false
	}
	now := time.Now()
	if expiry := time.Unix(e, 0); !now.Before(expiry) || expiry.Sub(now) > s.opts.TTL+time.Minute {
		s.log.Debug("turn: credential expired or out of range", "user", ra.Username, "remote", ra.SrcAddr)
		return "", nil, false
	}
	return id, pturn.GenerateAuthKey(ra.Username, ra.Realm, s.password(ra.Username)), true
}

// quota allows a new allocation while the token holds fewer than
// MaxAllocations.
func (s *Server) quota(userID, _ string, src net.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if strings.HasPrefix(userID, "w") { // a worker's: the host bounds its workers
		return true
	}
	if s.allocs[userID] >= s.opts.MaxAllocations {
		s.log.Debug("turn: allocation quota reached", "token_id", userID, "remote", src)
		return false
	}
	return true
}

func (s *Server) countAlloc(userID string, d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.allocs[userID] += d; s.allocs[userID] <= 0 {
		delete(s.allocs, userID)
	}
}

// Allocations returns the number of live allocations.
func (s *Server) Allocations() int { return s.pion.AllocationCount() }

// Close stops the relay: its listeners, every client connection and
// every allocation, and waits (up to 5 s) until their reads returned.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.pion.Close()
	s.track.closeAll()
	s.track.wait(5 * time.Second)
	if err != nil {
		return fmt.Errorf("close turn server: %w", err)
	}
	return nil
}

// firstIPv4 returns this host's first non-loopback IPv4 address.
func firstIPv4() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip := n.IP.To4(); ip != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				return ip
			}
		}
	}
	return nil
}

// hostAddrs caches this host's interface addresses (refreshed every 5 s).
type hostAddrs struct {
	mu    sync.Mutex
	at    time.Time
	addrs map[netip.Addr]bool
}

func (h *hostAddrs) has(a netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.addrs == nil || time.Since(h.at) > 5*time.Second {
		h.at = time.Now()
		h.addrs = map[netip.Addr]bool{}
		if list, err := net.InterfaceAddrs(); err == nil {
			for _, ia := range list {
				if n, ok := ia.(*net.IPNet); ok {
					if x, ok := netip.AddrFromSlice(n.IP); ok {
						h.addrs[x.Unmap()] = true
					}
				}
			}
		}
	}
	return h.addrs[a]
}
