// Package core holds what both browser engines (package gecko for Firefox,
// package gecko/chromium for Chromium) do the same way, whatever protocol
// drives the browser: one worker's negotiation and its events, the pool's
// admission, a browser process's launch and supervision, the pre-loading of
// pages, the CPU pacing of busy processes (pace.go). Each engine keeps only
// what its browser does differently (BiDi or CDP, user contexts or browser
// contexts, content processes or renderers).
//
// Files (browser side): process*.go (one browser process: exec, process
// group, SIGTERM then SIGKILL, profile removed), find.go (the binary),
// supervise.go (a slot's restarts with backoff, its watch, idle token
// contexts), refill.go (pre-loading shell pages), pages.go (a token's
// places, gh.init's config), identities.go (the contexts' egress
// identities).
//
// It imports nothing of the project but engine and internal helpers: the
// engines import it, never the other way round.
package core
