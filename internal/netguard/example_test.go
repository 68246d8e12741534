package netguard_test

import (
	"fmt"
	"net/netip"

	"github.com/geckohost/geckohost/internal/netguard"
)

func ExampleClass() {
	for _, s := range []string{"203.0.113.9", "127.0.0.1", "10.1.2.3", "169.254.169.254", "100.64.0.1", "::ffff:192.168.0.1"} {
		fmt.Println(s, netguard.Class(netip.MustParseAddr(s)))
	}
	// Output:
	// 203.0.113.9 public
	// 127.0.0.1 loopback
	// 10.1.2.3 private
	// 169.254.169.254 link-local
	// 100.64.0.1 shared (CGNAT)
	// ::ffff:192.168.0.1 private
}
