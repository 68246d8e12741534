package chromium

import "errors"

// ErrChromiumNotFound is returned by FindChromium (and a launch) when no
// Chromium binary can be found.
var ErrChromiumNotFound = errors.New("chromium not found: install it (Debian: apt-get install chromium) or pass its path (--chromium PATH)")

// ErrStartTimeout is wrapped by a launch's error when Chromium did not
// print its DevTools URL within the start timeout.
var ErrStartTimeout = errors.New("chromium start timed out")

// ErrChromiumExited is wrapped by a launch's error when Chromium exited
// during start-up, and by Chromium.Err when the process ended without
// Close.
var ErrChromiumExited = errors.New("chromium exited")

// ErrCDPLost is wrapped by Chromium.Err when the CDP connection to a
// running Chromium was lost (the process is then killed).
var ErrCDPLost = errors.New("chromium cdp connection lost")

// ErrPoolClosed is returned by Pool methods after Close.
var ErrPoolClosed = errors.New("chromium pool closed")

// ErrPoolStarted is returned by a second Pool.Start.
var ErrPoolStarted = errors.New("chromium pool already started")

// ErrPoolNotStarted is returned by Pool.Ready before Start.
var ErrPoolNotStarted = errors.New("chromium pool not started")

// ErrNoBrowser is returned by Pool.Ready while no browser is running.
var ErrNoBrowser = errors.New("no browser is running")

// ErrWarming is returned by Pool.Ready while the running browsers load
// their first worker page.
var ErrWarming = errors.New("the browser is loading its first worker page")

// errNoPage is returned by a worker's AddCandidates before it has a page.
var errNoPage = errors.New("the worker has no page yet")
