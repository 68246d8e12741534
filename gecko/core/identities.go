package core

import (
	"io"
	"net/url"
	"strconv"
	"sync"
)

// Identities are the egress identities (I: *egress.Identity) of one
// browser's contexts (Firefox's user contexts, Chromium's browser
// contexts), by context id (K). The zero value is empty and ready; its
// methods are safe for concurrent use.
type Identities[K comparable, I io.Closer] struct {
	mu sync.Mutex
	m  map[K]I
}

// Add records id as context k's identity.
func (s *Identities[K, I]) Add(k K, id I) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[K]I{}
	}
	s.m[k] = id
}

// Get returns context k's identity (the zero I, nil, if none).
func (s *Identities[K, I]) Get(k K) I {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

// Remove forgets context k's identity and closes it.
func (s *Identities[K, I]) Remove(k K) {
	s.mu.Lock()
	id, ok := s.m[k]
	delete(s.m, k)
	s.mu.Unlock()
	if ok {
		_ = id.Close()
	}
}

// CloseAll forgets and closes every identity (the browser is gone).
func (s *Identities[K, I]) CloseAll() {
	s.mu.Lock()
	ids := s.m
	s.m = nil
	s.mu.Unlock()
	for _, id := range ids {
		_ = id.Close()
	}
}

// URLPort returns the port of a browser's protocol URL
// (ws://127.0.0.1:PORT/...), and false when it has none.
func URLPort(u string) (uint16, bool) {
	pu, err := url.Parse(u)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(pu.Port(), 10, 16)
	if err != nil {
		return 0, false
	}
	return uint16(n), true
}
