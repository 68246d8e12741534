package e2e_test

import (
	"errors"

	"github.com/geckohost/geckohost/gecko"
)

// errNoChromiumEngine stands in until package gecko/chromium is merged.
var errNoChromiumEngine = errors.New("the chromium engine (gecko/chromium) is not in this tree yet")

// findChromium reports whether the Chromium binary can be found.
func findChromium() error { return errNoChromiumEngine }

// newChromiumPool builds a chromium.Pool from the same options as the
// Firefox pool's (gecko.PoolOptions' names, types and meanings).
func newChromiumPool(popts gecko.PoolOptions) (enginePool, error) {
	return nil, errNoChromiumEngine
}
