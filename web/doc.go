// Package web is geckohost's bundled demo page and browser client, served by
// the geckohost binary itself (everything is embedded with go:embed: no build
// step, no CDN).
//
// Handler serves:
//
//   - "/": the demo page, where a person pastes a token, picks a worker and
//     watches the negotiation, then talks to the worker peer to peer;
//   - "/geckohost.js": an ES module any web page can import to start a
//     worker: connect({url, token, source, iceServers, onEvent}) resolves to
//     {channel, workerId, timings, close()} or rejects with a GeckohostError
//     carrying the public errno;
//   - "/app.js" and "/style.css": the demo page's own script and style;
//   - "/workers/*.js": the bundled demo workers (see DemoWorkers), which the
//     host always allows as sources because they are on its own origin.
//
// Plug it into host.Options.Web. Every response carries Cache-Control:
// no-cache and a Content-Security-Policy that allows only same-origin scripts
// and styles and WebSocket connections back to the serving host.
package web
