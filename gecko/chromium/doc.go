// Package chromium is the Chromium engine: it runs worker JavaScript as
// dedicated Workers in headless stock Chromium (Debian's chromium package),
// driven over the Chrome DevTools Protocol with github.com/chromedp/chromedp.
//
// It is the Firefox engine's (package gecko) twin behind the same contract
// (package engine): Pool supervises Chromium processes (restarted with
// backoff, their process groups and temporary --user-data-dir removed),
// keeps shell pages loaded per token, one browser context per token
// (Target.createBrowserContext, so that storage is never shared between
// tokens), each with its own egress proxy listener (gecko/egress: the
// context's proxyServer, loopback included), and starts workers in them.
// The shell page and its bootstrap (package gecko/shell) are the Firefox
// engine's; the page reports to Go through a CDP binding
// (Runtime.addBinding) where Firefox's uses a BiDi channel.
//
// The process's launch and life, the slots' restarts with backoff, the
// pages' pre-loading and one worker's negotiation are package gecko/core's,
// shared with Firefox; the files here hold what Chromium does differently.
//
// Files: chromium.go (one Chromium: its flags and CDP connection), pool.go
// (Pool: start, close, StartWorker), supervise.go (browser slots and
// browser contexts), pages.go (shell pages), refill.go (which page to load
// next), grant.go (permissions and quota), worker.go (one worker's CDP
// calls and its place in a page), errpos.go (a 202's position), contain.go
// (renderer crashes and the memory limit), stats.go (Browsers, Slots).
package chromium
