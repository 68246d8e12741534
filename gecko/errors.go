package gecko

import "errors"

// ErrFirefoxNotFound is returned by FindFirefox (and LaunchFirefox) when no
// Firefox binary can be found.
var ErrFirefoxNotFound = errors.New("firefox not found: install it (Debian: apt-get install firefox-esr) or pass its path (--firefox PATH)")

// ErrStartTimeout is wrapped by LaunchFirefox's error when Firefox did not
// become ready (BiDi session open) within FirefoxOptions.StartTimeout.
var ErrStartTimeout = errors.New("firefox start timed out")

// ErrFirefoxExited is wrapped by LaunchFirefox's error when Firefox exited
// during start-up, and by Firefox.Err when the process ended without Close.
var ErrFirefoxExited = errors.New("firefox exited")

// ErrBiDiLost is wrapped by Firefox.Err when the BiDi connection to a
// running Firefox was lost (the process is then killed).
var ErrBiDiLost = errors.New("firefox bidi connection lost")

// ErrPoolClosed is returned by Pool methods after Close.
var ErrPoolClosed = errors.New("gecko pool closed")

// ErrPoolStarted is returned by a second Pool.Start.
var ErrPoolStarted = errors.New("gecko pool already started")

// ErrPoolNotStarted is returned by Pool.Ready before Start.
var ErrPoolNotStarted = errors.New("gecko pool not started")

// ErrNoBrowser is returned by Pool.Ready while no browser is running.
var ErrNoBrowser = errors.New("no browser is running")

// ErrWarming is returned by Pool.Ready while the running browsers load
// their first worker page.
var ErrWarming = errors.New("the browser is loading its first worker page")

// errNoPage is returned by a worker's AddCandidates before it has a page.
var errNoPage = errors.New("the worker has no page yet")

// ErrLauncherClosed is returned by Launcher.Launch after Close.
var ErrLauncherClosed = errors.New("firefox launcher closed")
