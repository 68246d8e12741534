package turn_test

import (
	"fmt"
	"strings"

	"github.com/geckohost/geckohost/host/turn"
)

// Start a relay and make the ICE server entry a client of token 7 gets on
// GET /ice-servers: the relay's UDP and TCP URLs, with credentials valid
// for 10 minutes.
func ExampleServer_ICEServer() {
	s, err := turn.Listen(turn.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	ice := s.ICEServer(7)
	fmt.Println(strings.HasSuffix(ice.URLs[0], "?transport=udp"), strings.HasSuffix(ice.URLs[1], "?transport=tcp"))
	fmt.Println(strings.HasSuffix(ice.Username, ":7"), ice.Credential != "")
	// Output:
	// true true
	// true true
}
