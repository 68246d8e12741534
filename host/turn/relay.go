package turn

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	pturn "github.com/pion/turn/v5"
)

// relayGen makes the allocations' relay sockets: UDP only, on the bind
// address, given as the relay address, filtered so that they send only
// to allowed peers.
type relayGen struct{ s *Server }

var _ pturn.RelayAddressGenerator = (*relayGen)(nil)

func (g *relayGen) Validate() error { return nil }

func (g *relayGen) AllocatePacketConn(conf pturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	s := g.s
	v4 := s.relayIP.To4() != nil
	if (conf.Network == "udp4") != v4 {
		return nil, nil, fmt.Errorf("allocate %s relay: the relay address %s is another family", conf.Network, s.relayIP)
	}
	bind := s.bindIP
	if bind.IsUnspecified() && !v4 {
		bind = net.IPv6unspecified
	}
	c, err := net.ListenPacket(conf.Network, net.JoinHostPort(bind.String(), "0"))
	if err != nil {
		return nil, nil, fmt.Errorf("allocate relay: %w", err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	return &peerConn{PacketConn: s.track.packetConn(c), s: s, user: conf.UserID}, &net.UDPAddr{IP: s.relayIP, Port: port}, nil
}

func (g *relayGen) AllocateListener(pturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, ErrTCPRelay
}

func (g *relayGen) AllocateConn(pturn.AllocateConnConfig) (net.Conn, error) {
	return nil, ErrTCPRelay
}

// peerConn is the relay socket of an allocation of user: it sends only
// to the peers Server.peerAllowed allows it, checked on each packet, and
// drops what comes from others (pion also checks its permissions, by IP).
type peerConn struct {
	net.PacketConn
	s    *Server
	user string
}

func (c *peerConn) allowed(a net.Addr) bool {
	u, ok := a.(*net.UDPAddr)
	return ok && c.s.peerAllowed(c.user, u.AddrPort())
}

func (c *peerConn) WriteTo(p []byte, a net.Addr) (int, error) {
	if !c.allowed(a) {
		c.s.log.Debug("turn: dropped a packet to a peer not allowed", "peer", a.String())
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, a)
}

func (c *peerConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.allowed(a) {
			return n, a, err
		}
	}
}

// tracker keeps every socket the relay opened, so that Close can close
// them all (pion closes its listeners but not the TCP connections it
// accepted) and wait until every read on them returned, that is until
// pion's goroutines reading them saw the end.
type tracker struct {
	mu     sync.Mutex
	conns  map[closer]struct{}
	closed bool
	reads  atomic.Int64
}

type closer interface{ Close() error }

func (t *tracker) add(c closer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	if t.conns == nil {
		t.conns = map[closer]struct{}{}
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *tracker) remove(c closer) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

func (t *tracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	cs := t.conns
	t.conns = nil
	t.mu.Unlock()
	for c := range cs {
		_ = c.Close()
	}
}

// wait waits until no read is in progress on a tracked socket (at most d).
func (t *tracker) wait(d time.Duration) {
	deadline := time.Now().Add(d)
	for t.reads.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

func (t *tracker) packetConn(c net.PacketConn) net.PacketConn {
	tc := &trackedPacketConn{PacketConn: c, t: t}
	if !t.add(tc) {
		_ = c.Close()
	}
	return tc
}

func (t *tracker) listener(l net.Listener) net.Listener {
	tl := &trackedListener{Listener: l, t: t}
	if !t.add(tl) {
		_ = l.Close()
	}
	return tl
}

type trackedPacketConn struct {
	net.PacketConn
	t *tracker
}

func (c *trackedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.t.reads.Add(1)
	defer c.t.reads.Add(-1)
	return c.PacketConn.ReadFrom(p)
}

func (c *trackedPacketConn) Close() error {
	c.t.remove(c)
	return c.PacketConn.Close()
}

type trackedListener struct {
	net.Listener
	t *tracker
}

func (l *trackedListener) Accept() (net.Conn, error) {
	l.t.reads.Add(1)
	defer l.t.reads.Add(-1)
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: l.t}
	if !l.t.add(tc) {
		_ = c.Close()
	}
	return tc, nil
}

func (l *trackedListener) Close() error {
	l.t.remove(l)
	return l.Listener.Close()
}

type trackedConn struct {
	net.Conn
	t *tracker
}

func (c *trackedConn) Read(p []byte) (int, error) {
	c.t.reads.Add(1)
	defer c.t.reads.Add(-1)
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	c.t.remove(c)
	return c.Conn.Close()
}

// pionLogs sends pion's logs to slog at debug level (a TURN port on the
// network hears junk; none of it is worth more).
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) Trace(string)                   {}
func (l pionLogger) Tracef(string, ...any)          {}
func (l pionLogger) Debug(msg string)               { l.log.Debug(msg) }
func (l pionLogger) Debugf(format string, a ...any) { l.log.Debug(fmt.Sprintf(format, a...)) }
func (l pionLogger) Info(msg string)                { l.log.Debug(msg) }
func (l pionLogger) Infof(format string, a ...any)  { l.log.Debug(fmt.Sprintf(format, a...)) }
func (l pionLogger) Warn(msg string)                { l.log.Debug(msg) }
func (l pionLogger) Warnf(format string, a ...any)  { l.log.Debug(fmt.Sprintf(format, a...)) }
func (l pionLogger) Error(msg string)               { l.log.Debug(msg) }
func (l pionLogger) Errorf(format string, a ...any) { l.log.Debug(fmt.Sprintf(format, a...)) }
