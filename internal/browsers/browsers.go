// Package browsers holds how geckohost's tests start client browsers as a
// person has them: stock settings, plus only what running as root in CI
// needs (no sandbox, no first-run UI, headless).
package browsers

import (
	"os/exec"
	"syscall"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's Chromium binary (/usr/bin/chromium is a wrapper
// script).
const ChromiumPath = "/usr/lib/chromium/chromium"

// ChromiumOptions are the exec allocator options of a stock headless
// Chromium: mDNS hiding of host candidates and every other default stay
// (not even --allow-loopback-in-peer-connection: on a machine with a
// network, Chromium reaches a worker's 127.0.0.1 from its wildcard socket
// and the worker learns it peer-reflexive). Chromium is killed if the test
// binary dies. extra options come last.
func ChromiumOptions(extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // root
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}),
	}
	return append(opts, extra...)
}

// FirefoxWebRTCDefaults are prefs that undo the WebRTC prefs geckohost
// sets for its workers (the values are Firefox ESR's defaults): a client
// Firefox launched with gecko.LaunchFirefox and these prefs uses mDNS host
// names, no loopback, ICE-TCP, and no camera permission, so it gathers on
// the default-route interface only.
func FirefoxWebRTCDefaults() map[string]any {
	return map[string]any{
		"media.peerconnection.ice.loopback":                 false,
		"media.peerconnection.ice.obfuscate_host_addresses": true,
		"media.peerconnection.ice.tcp":                      true,
	}
}
