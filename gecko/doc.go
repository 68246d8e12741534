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
package gecko
