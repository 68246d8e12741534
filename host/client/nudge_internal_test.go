package client

import (
	"bytes"
	"net"
	"testing"

	"github.com/pion/stun/v4"
)

func stunMsg(t *testing.T, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// useCandidate is the USE-CANDIDATE attribute (no value).
type useCandidate struct{}

func (useCandidate) AddTo(m *stun.Message) error {
	m.Add(stun.AttrUseCandidate, nil)
	return nil
}

func TestNudgerReplaysEarlyRequest(t *testing.T) {
	a := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
	b := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5001}
	req := stunMsg(t, stun.BindingRequest)
	req2 := stunMsg(t, stun.BindingRequest)
	resp := stunMsg(t, stun.BindingSuccess)
	buf := make([]byte, 1500)

	var s nudger
	s.read(req, a)
	if _, _, ok := s.next(buf); ok {
		t.Fatal("replay before any response")
	}
	s.read(req2, a) // the last early request is the one replayed
	s.read(resp, b) // another address: nothing of a's
	if _, _, ok := s.next(buf); ok {
		t.Fatal("replay after another address's response")
	}
	s.read(resp, a)
	n, from, ok := s.next(buf)
	if !ok || !bytes.Equal(buf[:n], req2) || from != a {
		t.Fatalf("next = %d bytes from %v, %v; want a's last request", n, from, ok)
	}
	if _, _, ok := s.next(buf); ok {
		t.Fatal("replayed twice")
	}
	// Answered: a's later requests reach a succeeded pair, pion nominates.
	s.read(req, a)
	s.read(resp, a)
	if _, _, ok := s.next(buf); ok {
		t.Fatal("replay after the address was answered")
	}
}

func TestNudgerStops(t *testing.T) {
	a := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
	req := stunMsg(t, stun.BindingRequest)
	resp := stunMsg(t, stun.BindingSuccess)
	buf := make([]byte, 1500)

	var s nudger
	s.write(stunMsg(t, stun.BindingRequest)) // a plain check: still on
	s.read(req, a)
	s.write(stunMsg(t, stun.BindingRequest, useCandidate{})) // nominated
	s.read(resp, a)
	if _, _, ok := s.next(buf); ok {
		t.Fatal("replay after a nomination")
	}

	var d nudger
	d.read(req, a)
	d.read([]byte{22, 254, 253, 0, 0}, a) // DTLS: connected
	d.read(resp, a)
	if _, _, ok := d.next(buf); ok {
		t.Fatal("replay after DTLS")
	}
}

func TestNudgerBoundsRemotes(t *testing.T) {
	var s nudger
	req := stunMsg(t, stun.BindingRequest)
	for port := range 100 {
		s.read(req, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6000 + port})
	}
	if len(s.remotes) != maxRemembered {
		t.Fatalf("remembered %d remotes, want %d", len(s.remotes), maxRemembered)
	}
}
