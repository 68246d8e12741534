package main

import (
	"net"
	"reflect"
	"testing"
)

func TestOwnOrigins(t *testing.T) {
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	for _, c := range []struct {
		listen     string
		addr       net.Addr
		public     []string
		egress     []string
		hostPublic []string
	}{
		{"127.0.0.1:8765", tcp("127.0.0.1:8765"), nil, []string{"http://127.0.0.1:8765", "http://localhost:8765"}, nil},
		{":0", tcp("[::]:4321"), []string{"https://gh.example.com/"},
			[]string{"https://gh.example.com", "http://127.0.0.1:4321", "http://[::1]:4321", "http://localhost:4321"}, []string{"https://gh.example.com"}},
		{"workstation.lan:8765", tcp("192.0.2.7:8765"), nil,
			[]string{"http://workstation.lan:8765", "http://192.0.2.7:8765"}, []string{"http://workstation.lan:8765"}},
		{"[::1]:9", tcp("[::1]:9"), nil, []string{"http://[::1]:9", "http://localhost:9"}, nil},
	} {
		eg, hp := ownOrigins(c.listen, c.addr, c.public)
		if !reflect.DeepEqual(eg, c.egress) || !reflect.DeepEqual(hp, c.hostPublic) {
			t.Errorf("ownOrigins(%q, %v, %v) = %v, %v; want %v, %v", c.listen, c.addr, c.public, eg, hp, c.egress, c.hostPublic)
		}
	}
}

func TestICEOrigins(t *testing.T) {
	got := iceOrigins([]string{"stun:stun.example.com", "turn:192.0.2.1:3479?transport=tcp", "turns:[2001:db8::1]", "stun:", "bogus"})
	want := []string{"http://stun.example.com:3478", "http://192.0.2.1:3479", "http://[2001:db8::1]:5349"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("iceOrigins = %v, want %v", got, want)
	}
}
