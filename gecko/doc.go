// Package gecko runs worker JavaScript in headless Firefox.
//
// This file set holds the Firefox driver's bottom layer: FindFirefox locates
// the binary, LaunchFirefox starts a supervised headless Firefox with a
// throw-away profile (prefs that keep it off the network and let WebRTC
// gather loopback candidates) and returns it with a WebDriver BiDi session
// open (see package gecko/bidi). Firefox.Done reports a dead browser at once,
// and Firefox.Close stops it and removes every trace: the whole process
// group is killed and the profile directory removed. A Launcher starts
// browsers with the same options faster, from a template profile it builds
// in the background after its first launch.
//
// The engine on top, Pool, runs many workers per page: per browser and per
// token it keeps one (or, past 50 workers, a few) tabs in the token's own
// user context loaded with the worker shell (shell/shell.js). The page keeps
// Pool.Warm bootstrap Workers and RTCPeerConnections pre-spawned and refills
// them itself; a hello is one script.callFunction, gh.start(id, code, url,
// offer), which returns the answer; the page's later events (candidates,
// open, end) carry the worker id and reach Go as script.message events.
//
// The worker's code comes with its engine.WorkerRequest (the front fetched
// it); the pool fetches nothing. Every network request of the browsers goes
// through the pool's egress proxy (package gecko/egress, PoolOptions.Egress):
// the default user context through Firefox's proxy prefs, each user context
// the pool creates through a proxy listener of its own (BiDi
// browser.createUserContext's proxy), so that refused requests are counted
// per token context and reported in engine.Event.EgressRefused. The shell
// page (shell.html with shell.js and bootstrap.js inlined; bootstrap Workers
// start from a blob: URL) is loaded through the proxy too, by its navigation
// alone: the shell server is unreachable from workers, as are the BiDi port
// and the proxy itself.
// Pool implements engine.Engine: it reports what happens to each worker as
// engine events and leaves every decision about the client (errnos, 304,
// records) to the front. gecko never imports host.
//
// What both engines do the same way lives in package gecko/core (the
// process's launch and life, the slots' restarts, the pages' pre-loading,
// one worker's negotiation, the pool's admission);
// the files here hold what Firefox does differently.
//
// Files: pool.go (Pool: start, close, StartWorker), supervise.go (browser
// slots: standby replacement, draining), pages.go (shell pages and user
// contexts), worker.go (one worker's BiDi calls and its place in a page),
// firefox.go (one Firefox: its command line, BiDi session and
// browser.close; firefox_linux.go its crash helper),
// launcher.go (launches and the template profile), profile.go (profile
// directories), prefs.go (Firefox prefs), package gecko/shell (the
// worker shell), egress.go (the egress proxy's wiring), stats.go (Browsers).
package gecko
