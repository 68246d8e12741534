package netns_test

import (
	"net"
	"os"
	"testing"

	"github.com/geckohost/geckohost/internal/netns"
)

func TestMain(m *testing.M) { os.Exit(netns.Run(m)) }

func TestOnlyLoopback(t *testing.T) {
	netns.Skip(t)
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			t.Errorf("interface %s is not loopback", i.Name)
		}
		if i.Flags&net.FlagUp == 0 {
			t.Errorf("interface %s is down", i.Name)
		}
	}
}
