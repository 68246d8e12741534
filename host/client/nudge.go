package client

import (
	"net"
	"sync"

	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// The client's pion agent is the controlling ICE agent: it nominates the
// pair (a binding request with USE-CANDIDATE) and the worker's Firefox
// starts DTLS only once it has been nominated. pion nominates in two
// places: on its check timer (every 200 ms while checking), and when a
// binding request arrives on a pair whose own check already succeeded.
// Firefox's checks usually reach the client just before the success
// response to the client's check (both are sent at about the same time),
// so that request finds the pair not yet succeeded and nothing nominates
// until Firefox's next check (about 20 ms later) or the timer (about 200
// ms): measured on loopback, 4 sessions in 5 paid one of the two.
//
// nudgeNet fixes the order without touching pion: its sockets remember
// the last binding request a remote address sent while the pair had no
// answer yet, and hand pion a copy of it right after that address's first
// success response, so pion sees a request on a succeeded pair and
// nominates at once. Firefox gets one more success response for a
// transaction it already completed, which it ignores. Once the socket
// sent a nomination, or any non-STUN packet (DTLS) arrived, it passes
// everything through unchanged.
type nudgeNet struct {
	*stdnet.Net
	onNudge func() // called on each replay, if not nil
}

// newNudgeNet returns the standard network with nudging sockets, or nil
// when the interfaces cannot be listed (pion then uses its own).
func newNudgeNet(onNudge func()) transport.Net {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil
	}
	return &nudgeNet{Net: n, onNudge: onNudge}
}

// ListenUDP implements transport.Net (host candidates' sockets).
func (n *nudgeNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err //nolint:wrapcheck // transport.Net passes net's errors on
	}
	return &nudgeUDPConn{UDPConn: c, s: nudger{onNudge: n.onNudge}}, nil
}

// ListenPacket implements transport.Net (server-reflexive candidates'
// sockets).
func (n *nudgeNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err //nolint:wrapcheck // transport.Net passes net's errors on
	}
	return &nudgePacketConn{PacketConn: c, s: nudger{onNudge: n.onNudge}}, nil
}

// maxRemembered bounds the remote addresses a socket remembers a request
// of (the remote is another party's browser: its traffic is not trusted
// to be small).
const maxRemembered = 16

// nudger is the state of one socket.
type nudger struct {
	onNudge func()
	mu      sync.Mutex
	off     bool                    // nominated or connected: pass through
	remotes map[string]*nudgeRemote // by remote address
	replay  []byte                  // the request to hand pion on the next read
	replayA net.Addr
}

// nudgeRemote is what a socket knows of one remote address.
type nudgeRemote struct {
	req      []byte // its last request before the first success response
	answered bool   // a success response came: pion handles later requests
}

// stunType returns the STUN message type of p, or false for non-STUN.
func stunType(p []byte) (stun.MessageType, bool) {
	if !stun.IsMessage(p) {
		return stun.MessageType{}, false
	}
	var t stun.MessageType
	t.ReadValue(uint16(p[0])<<8 | uint16(p[1]))
	return t, true
}

// next returns the request to replay, if one is due.
func (s *nudger) next(p []byte) (int, net.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replay == nil {
		return 0, nil, false
	}
	n := copy(p, s.replay)
	a := s.replayA
	s.replay, s.replayA = nil, nil
	if s.onNudge != nil {
		s.onNudge()
	}
	return n, a, true
}

// read looks at a packet pion is about to get from addr.
func (s *nudger) read(p []byte, addr net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.off || addr == nil {
		return
	}
	t, ok := stunType(p)
	if !ok {
		s.stop() // DTLS: ICE is done
		return
	}
	if t.Method != stun.MethodBinding {
		return
	}
	key := addr.String()
	r := s.remotes[key]
	if r == nil {
		if len(s.remotes) >= maxRemembered {
			return
		}
		if s.remotes == nil {
			s.remotes = map[string]*nudgeRemote{}
		}
		r = &nudgeRemote{}
		s.remotes[key] = r
	}
	switch {
	case r.answered:
	case t.Class == stun.ClassRequest:
		r.req = append(r.req[:0], p...)
	case t.Class == stun.ClassSuccessResponse:
		r.answered = true
		if r.req != nil && s.replay == nil {
			s.replay, s.replayA = r.req, addr
		}
		r.req = nil
	}
}

// write looks at a packet pion sends: a nomination ends the nudging.
func (s *nudger) write(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.off {
		return
	}
	t, ok := stunType(p)
	if !ok || t != stun.BindingRequest {
		return
	}
	m := stun.Message{Raw: p}
	if m.Decode() == nil && m.Contains(stun.AttrUseCandidate) {
		s.stop()
	}
}

func (s *nudger) stop() {
	s.off, s.remotes, s.replay, s.replayA = true, nil, nil, nil
}

type nudgeUDPConn struct {
	transport.UDPConn
	s nudger
}

func (c *nudgeUDPConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if n, a, ok := c.s.next(p); ok {
		return n, a, nil
	}
	n, a, err := c.UDPConn.ReadFrom(p)
	if n > 0 {
		c.s.read(p[:n], a)
	}
	return n, a, err //nolint:wrapcheck // a socket's errors as they are
}

func (c *nudgeUDPConn) WriteTo(p []byte, a net.Addr) (int, error) {
	c.s.write(p)
	return c.UDPConn.WriteTo(p, a) //nolint:wrapcheck // a socket's errors as they are
}

type nudgePacketConn struct {
	net.PacketConn
	s nudger
}

func (c *nudgePacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if n, a, ok := c.s.next(p); ok {
		return n, a, nil
	}
	n, a, err := c.PacketConn.ReadFrom(p)
	if n > 0 {
		c.s.read(p[:n], a)
	}
	return n, a, err //nolint:wrapcheck // a socket's errors as they are
}

func (c *nudgePacketConn) WriteTo(p []byte, a net.Addr) (int, error) {
	c.s.write(p)
	return c.PacketConn.WriteTo(p, a) //nolint:wrapcheck // a socket's errors as they are
}
