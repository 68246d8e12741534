package turn

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// peers is what each token's client allocations may reach: the
// candidates (address and port) of that token's live workers, as the host
// relayed them to its clients (Server.AddPeer), until the worker ends
// (Server.DropPeers). It also maps each allocation's client address to
// its user, since pion's permission check is told the client address
// only.
type peers struct {
	mu sync.RWMutex
	// byToken counts, per token id (as in the credentials), the live
	// sessions that offered each candidate.
	byToken map[string]map[netip.AddrPort]int
	// bySession is what each session added, for DropPeers.
	bySession map[string]sessionPeers
	// users maps an allocation's client address to its user id. (pion
	// gives every five-tuple the protocol UDP, so a UDP and a TCP client
	// on the same address and port would share an entry: the permission
	// is by IP anyway, and each packet is checked against its own
	// allocation's user.)
	users map[string]string
}

type sessionPeers struct {
	token string
	addrs map[netip.AddrPort]bool
}

func newPeers() *peers {
	return &peers{byToken: map[string]map[netip.AddrPort]int{}, bySession: map[string]sessionPeers{}, users: map[string]string{}}
}

// AddPeer lets the client allocations of token tokenID reach a, a
// candidate of that token's worker of session id session (host calls it
// for each worker candidate it relays to the client), until
// DropPeers(session).
func (s *Server) AddPeer(tokenID int64, session string, a netip.AddrPort) {
	a = netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
	p := s.peerSet
	tok := strconv.FormatInt(tokenID, 10)
	p.mu.Lock()
	defer p.mu.Unlock()
	sp, ok := p.bySession[session]
	if !ok {
		sp = sessionPeers{token: tok, addrs: map[netip.AddrPort]bool{}}
		p.bySession[session] = sp
	}
	if sp.token != tok || sp.addrs[a] {
		return
	}
	sp.addrs[a] = true
	m := p.byToken[tok]
	if m == nil {
		m = map[netip.AddrPort]int{}
		p.byToken[tok] = m
	}
	m[a]++
}

// DropPeers removes what session added (its worker ended): the relay no
// longer reaches those candidates for the token, unless another of its
// live workers offered them too.
func (s *Server) DropPeers(session string) {
	p := s.peerSet
	p.mu.Lock()
	defer p.mu.Unlock()
	sp, ok := p.bySession[session]
	if !ok {
		return
	}
	delete(p.bySession, session)
	m := p.byToken[sp.token]
	for a := range sp.addrs {
		if m[a]--; m[a] <= 0 {
			delete(m, a)
		}
	}
	if len(m) == 0 {
		delete(p.byToken, sp.token)
	}
}

// LivePeers returns the number of candidates the client allocations of
// token tokenID may reach now.
func (s *Server) LivePeers(tokenID int64) int {
	p := s.peerSet
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.byToken[strconv.FormatInt(tokenID, 10)])
}

// has reports whether token tok's client allocations may reach a.
func (p *peers) has(tok string, a netip.AddrPort) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.byToken[tok][a] > 0
}

// hasIP reports whether some candidate of token tok is on ip (TURN
// permissions are per IP address; the port is checked on each packet).
func (p *peers) hasIP(tok string, ip netip.Addr) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for a := range p.byToken[tok] {
		if a.Addr() == ip {
			return true
		}
	}
	return false
}

func (p *peers) setUser(client net.Addr, user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if user == "" {
		delete(p.users, client.String())
		return
	}
	p.users[client.String()] = user
}

func (p *peers) user(client net.Addr) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	u, ok := p.users[client.String()]
	return u, ok
}

// peerAllowed reports whether an allocation of user (a token id, or "w"
// and a token id for a worker's) may exchange packets with a. Never
// loopback, unspecified or multicast, never a port below 1024. A worker's
// allocation: an address of this host or the relay address (its peers
// are the token's clients, reached through this relay or on this host). A
// client's: a candidate of one of the token's live workers, nothing else.
func (s *Server) peerAllowed(user string, a netip.AddrPort) bool {
	ip := a.Addr().Unmap().WithZone("")
	if a.Port() < minPeerPort || ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	if strings.HasPrefix(user, "w") {
		return s.hostAddress(ip)
	}
	return s.peerSet.has(user, netip.AddrPortFrom(ip, a.Port()))
}

// permission is pion's CreatePermission / ChannelBind check: by IP, as
// TURN permissions are.
func (s *Server) permission() func(net.Addr, net.IP) bool {
	return func(client net.Addr, peer net.IP) bool {
		ip, ok := netip.AddrFromSlice(peer)
		if !ok {
			return false
		}
		ip = ip.Unmap()
		user, ok := s.peerSet.user(client)
		switch {
		case !ok || ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast():
			return false
		case strings.HasPrefix(user, "w"):
			return s.hostAddress(ip)
		}
		if !s.peerSet.hasIP(user, ip) {
			s.log.Debug("turn: permission refused: not a candidate of a live worker of the token", "token_id", user, "peer", ip)
			return false
		}
		return true
	}
}

// hostAddress reports whether ip is the relay address or an address of
// one of this host's interfaces.
func (s *Server) hostAddress(ip netip.Addr) bool {
	if r, ok := netip.AddrFromSlice(s.relayIP); ok && r.Unmap() == ip {
		return true
	}
	return s.peers.has(ip)
}
