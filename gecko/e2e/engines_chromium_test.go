package e2e_test

import (
	"github.com/geckohost/geckohost/gecko"
	cr "github.com/geckohost/geckohost/gecko/chromium" // cr: the name chromium is the engineKind
)

// findChromium reports whether the Chromium binary can be found.
func findChromium() error {
	_, err := cr.FindChromium("")
	return err
}

// newChromiumPool builds a chromium.Pool from the same options as the
// Firefox pool's (gecko.PoolOptions' names, types and meanings; the
// Firefox launch options have no Chromium counterpart and are dropped).
func newChromiumPool(popts gecko.PoolOptions) (enginePool, error) {
	return cr.NewPool(cr.PoolOptions{
		Browsers:             popts.Browsers,
		MaxWorkersPerBrowser: popts.MaxWorkersPerBrowser,
		Warm:                 popts.Warm,
		WorkerIdle:           popts.WorkerIdle,
		TokenIdle:            popts.TokenIdle,
		RecycleAfter:         popts.RecycleAfter,
		RecycleBrowserAfter:  popts.RecycleBrowserAfter,
		ICEServers:           popts.ICEServers,
		ICELoopback:          popts.ICELoopback,
		Egress:               popts.Egress,
		WorkerMemory:         popts.WorkerMemory,
		WorkerMaxLifetime:    popts.WorkerMaxLifetime,
		WorkerStorage:        popts.WorkerStorage,
		WorkerBusyLimit:      popts.WorkerBusyLimit,
		Logger:               popts.Logger,
	}), nil
}

var _ enginePool = (*cr.Pool)(nil)
