package egress_test

import (
	"fmt"

	"github.com/geckohost/geckohost/gecko/egress"
)

// A proxy whose workers may reach public addresses and one local service;
// each browser user context gets an identity (a listener) of its own.
func ExampleProxy() {
	p, err := egress.New(egress.Options{Policy: egress.Policy{Allow: []string{"http://127.0.0.1:9000"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	id, err := p.NewIdentity("token 1")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Give id.Addr() to browser.createUserContext as its SOCKS proxy; a
	// worker's own source origin is allowed while it runs:
	done := id.AllowOrigin("https://example.com/worker.js")
	defer done()
	fmt.Println(id.Addr().Addr(), id.Refused())
	// Output: 127.0.0.1 0
}
