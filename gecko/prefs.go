package gecko

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
)

// deadURL is where every service URL that cannot simply be emptied points:
// the discard port on loopback, which refuses connections at once.
const deadURL = "http://127.0.0.1:9/"

// defaultPrefs keeps Firefox from reaching the network on its own
// (updates, telemetry, studies, safe browsing, captive portal and
// connectivity checks, push, region and geo lookups, GMP downloads, DNS
// prefetch, speculative connections, DoH, remote settings, add-on updates,
// first-run pages), lets WebRTC gather loopback host candidates, and keeps
// background tabs from being throttled. The permissions.manager.defaultsUrl
// pref is added per profile by profilePrefs.
var defaultPrefs = map[string]any{
	// Start-up, first run, session restore.
	"browser.shell.checkDefaultBrowser":                 false,
	"browser.startup.page":                              0,
	"browser.startup.homepage":                          "about:blank",
	"browser.startup.homepage_override.mstone":          "ignore",
	"browser.startup.firstrunSkipsHomepage":             true,
	"startup.homepage_welcome_url":                      "about:blank",
	"startup.homepage_welcome_url.additional":           "",
	"browser.aboutwelcome.enabled":                      false,
	"trailhead.firstrun.didSeeAboutWelcome":             true,
	"browser.newtabpage.enabled":                        false,
	"browser.uitour.enabled":                            false,
	"browser.sessionstore.resume_from_crash":            false,
	"browser.sessionstore.max_resumed_crashes":          0,
	"toolkit.startup.max_resumed_crashes":               -1,
	"browser.tabs.warnOnClose":                          false,
	"browser.warnOnQuit":                                false,
	"browser.tabs.crashReporting.sendReport":            false,
	"browser.crashReports.unsubmittedCheck.autoSubmit2": false,
	"breakpad.reportURL":                                "",
	"browser.translations.enable":                       false,
	"browser.ml.enable":                                 false,
	"signon.rememberSignons":                            false,
	"identity.fxaccounts.enabled":                       false,
	"extensions.formautofill.addresses.enabled":         false,
	"extensions.formautofill.creditCards.enabled":       false,
	"browser.cache.disk.enable":                         false,
	"network.proxy.type":                                0,

	// Updates.
	"app.update.disabledForTesting":                      true,
	"app.update.auto":                                    false,
	"app.update.checkInstallTime":                        false,
	"app.update.staging.enabled":                         false,
	"app.update.service.enabled":                         false,
	"app.update.url":                                     "",
	"extensions.update.enabled":                          false,
	"extensions.update.autoUpdateDefault":                false,
	"extensions.systemAddon.update.enabled":              false,
	"extensions.systemAddon.update.url":                  "",
	"extensions.blocklist.enabled":                       false,
	"extensions.getAddons.cache.enabled":                 false,
	"extensions.getAddons.discovery.api_url":             "",
	"extensions.webservice.discoverURL":                  "",
	"extensions.htmlaboutaddons.recommendations.enabled": false,
	"extensions.pocket.enabled":                          false,
	"browser.discovery.enabled":                          false,

	// Telemetry and data reporting.
	"toolkit.telemetry.enabled":                                   false,
	"toolkit.telemetry.unified":                                   false,
	"toolkit.telemetry.server":                                    deadURL,
	"toolkit.telemetry.archive.enabled":                           false,
	"toolkit.telemetry.newProfilePing.enabled":                    false,
	"toolkit.telemetry.shutdownPingSender.enabled":                false,
	"toolkit.telemetry.firstShutdownPing.enabled":                 false,
	"toolkit.telemetry.updatePing.enabled":                        false,
	"toolkit.telemetry.bhrPing.enabled":                           false,
	"toolkit.telemetry.reportingpolicy.firstRun":                  false,
	"toolkit.telemetry.coverage.opt-out":                          true,
	"toolkit.coverage.opt-out":                                    true,
	"toolkit.coverage.endpoint.base":                              "",
	"datareporting.healthreport.uploadEnabled":                    false,
	"datareporting.policy.dataSubmissionEnabled":                  false,
	"datareporting.policy.dataSubmissionPolicyBypassNotification": true,
	"datareporting.policy.firstRunURL":                            "",
	"datareporting.usage.uploadEnabled":                           false,
	"browser.ping-centre.telemetry":                               false,
	"browser.newtabpage.activity-stream.telemetry":                false,
	"browser.newtabpage.activity-stream.feeds.telemetry":          false,
	"browser.newtabpage.activity-stream.feeds.topsites":           false,
	"browser.newtabpage.activity-stream.feeds.section.topstories": false,
	"browser.newtabpage.activity-stream.default.sites":            "",
	"browser.topsites.contile.enabled":                            false,
	"browser.urlbar.quicksuggest.enabled":                         false,
	"browser.urlbar.suggest.quicksuggest.sponsored":               false,
	"browser.urlbar.suggest.quicksuggest.nonsponsored":            false,

	// Studies and experiments (Normandy, Shield, Nimbus).
	"app.normandy.enabled":                        false,
	"app.normandy.api_url":                        "",
	"app.shield.optoutstudies.enabled":            false,
	"messaging-system.rsexperimentloader.enabled": false,
	// Nimbus still syncs for Firefox Labs (allowed unless an enterprise
	// policy forbids it); it reaches only the dead services.settings.server.
	"nimbus.rollouts.enabled": false,

	// Safe browsing.
	"browser.safebrowsing.malware.enabled":             false,
	"browser.safebrowsing.phishing.enabled":            false,
	"browser.safebrowsing.downloads.enabled":           false,
	"browser.safebrowsing.downloads.remote.enabled":    false,
	"browser.safebrowsing.blockedURIs.enabled":         false,
	"browser.safebrowsing.passwords.enabled":           false,
	"browser.safebrowsing.update.enabled":              false,
	"browser.safebrowsing.provider.google.updateURL":   "",
	"browser.safebrowsing.provider.google.gethashURL":  "",
	"browser.safebrowsing.provider.google4.updateURL":  "",
	"browser.safebrowsing.provider.google4.gethashURL": "",
	"browser.safebrowsing.provider.mozilla.updateURL":  "",
	"browser.safebrowsing.provider.mozilla.gethashURL": "",

	// Captive portal and connectivity checks.
	"network.captive-portal-service.enabled":    false,
	"captivedetect.canonicalURL":                "",
	"network.connectivity-service.enabled":      false,
	"network.connectivity-service.IPv4.url":     "",
	"network.connectivity-service.IPv6.url":     "",
	"network.connectivity-service.DNSv4.domain": "",
	"network.connectivity-service.DNSv6.domain": "",

	// Push, region, search, geolocation.
	"dom.push.enabled":                   false,
	"dom.push.connection.enabled":        false,
	"dom.push.serverURL":                 "",
	"browser.region.network.url":         "",
	"browser.region.update.enabled":      false,
	"browser.search.region":              "US",
	"browser.search.geoSpecificDefaults": false,
	"browser.search.update":              false,
	"browser.search.suggest.enabled":     false,
	"geo.enabled":                        false,
	"geo.provider.network.url":           "",
	"geo.provider.use_gpsd":              false,
	"geo.provider.use_geoclue":           false,
	"dom.webnotifications.enabled":       false,

	// GMP and DRM downloads.
	"media.gmp-manager.url":           "",
	"media.gmp-manager.updateEnabled": false,
	"media.gmp-gmpopenh264.enabled":   false,
	"media.gmp-widevinecdm.enabled":   false,
	"media.eme.enabled":               false,

	// DNS prefetch, predictor, speculative connections, DoH, OCSP.
	"network.dns.disablePrefetch":                     true,
	"network.dns.disablePrefetchFromHTTPS":            true,
	"network.predictor.enabled":                       false,
	"network.predictor.enable-prefetch":               false,
	"network.prefetch-next":                           false,
	"network.http.speculative-parallel-limit":         0,
	"browser.urlbar.speculativeConnect.enabled":       false,
	"browser.places.speculativeConnect.enabled":       false,
	"network.trr.mode":                                5,
	"network.trr.uri":                                 "",
	"network.trr.confirmationNS":                      "skip",
	"doh-rollout.disable-heuristics":                  true,
	"security.OCSP.enabled":                           0,
	"security.remote_settings.crlite_filters.enabled": false,
	"security.remote_settings.intermediates.enabled":  false,
	"security.certerrors.mitm.priming.enabled":        false,

	// Remote settings: honoured only with MOZ_REMOTE_SETTINGS_DEVTOOLS=1 in
	// the environment, which LaunchFirefox always sets.
	"services.settings.server": deadURL + "v1",

	// WebRTC: loopback host candidates, real addresses, UDP only.
	"media.peerconnection.ice.loopback":                 true,
	"media.peerconnection.ice.obfuscate_host_addresses": false,
	"media.peerconnection.ice.tcp":                      false,

	// Background tabs run at full speed.
	"dom.timeout.enable_budget_timer_throttling":                 false,
	"dom.min_background_timeout_value":                           0,
	"dom.min_background_timeout_value_without_budget_throttling": 0,
	"dom.timeout.budget_throttling_max_delay":                    0,
	"dom.suspend_inactive.enabled":                               false,
	"browser.tabs.unloadOnLowMemory":                             false,
	"dom.ipc.processPriorityManager.enabled":                     false,

	// Memory (measured with 100 live workers, Firefox ESR 153): every shell
	// page of a user context in one content process, not up to four
	// (saves their per-process overhead); one pre-launched spare content
	// process instead of three; WebRTC's network transport in the content
	// process rather than the socket process, whose memory for every peer
	// connection it ever had stays until the browser exits — in the
	// content process it goes when the user context is recycled (see
	// PoolOptions.RecycleAfter).
	"dom.ipc.processCount.webIsolated":        1,
	"dom.ipc.processPrelaunch.fission.number": 1,
	"media.peerconnection.mtransport_process": false,
	// Software WebRender's shared texture atlases are 2048x2048 by default:
	// 68 MiB of the parent process for pages nobody sees; at 256 the
	// parent's WebRender holds 29 MiB.
	"gfx.webrender.max-shared-surface-size": 256,
	// Built-in extensions in the parent process rather than a process of
	// their own (about 31 MiB USS less, the parent about 12 MiB more), and
	// no pre-launched spare content process (7 MiB): a token's first page
	// comes from the pre-loaded generic page, whose process starts off the
	// hello's path.
	"extensions.webextensions.remote":  false,
	"dom.ipc.processPrelaunch.enabled": false,
}

// profilePrefs returns the prefs for a profile in dir: the defaults, the
// per-profile permissions file, then extra (which overrides both).
func profilePrefs(dir string, extra map[string]any) map[string]any {
	p := maps.Clone(defaultPrefs)
	u := url.URL{Scheme: "file", Path: filepath.Join(dir, permissionsFile)}
	p["permissions.manager.defaultsUrl"] = u.String()
	maps.Copy(p, extra)
	return p
}

// userJS renders prefs as a user.js file, sorted by name. Values must be
// bool, string or an integer type.
func userJS(prefs map[string]any) ([]byte, error) {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(prefs)) {
		v := prefs[name]
		switch v.(type) {
		case bool, string, int, int8, int16, int32, int64, uint8, uint16, uint32:
		default:
			return nil, fmt.Errorf("write pref %q: unsupported type %T (want bool, string or integer)", name, v)
		}
		if strings.ContainsAny(name, "\"\\\n\r") {
			return nil, fmt.Errorf("write pref %q: bad name", name)
		}
		val, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("write pref %q: %w", name, err)
		}
		fmt.Fprintf(&b, "user_pref(%q, %s);\n", name, val)
	}
	return []byte(b.String()), nil
}

// permissionsFile is the profile-relative file named by
// permissions.manager.defaultsUrl.
const permissionsFile = "default-permissions"

// permissionsText grants the camera permission to each origin (the line
// format of permissions.manager.defaultsUrl: type, permission, value,
// origin, tab-separated). Firefox gathers ICE candidates on every interface,
// loopback included, only for pages with a media permission.
func permissionsText(origins []string) ([]byte, error) {
	var b strings.Builder
	for _, o := range origins {
		if strings.ContainsAny(o, "\t\r\n") || o == "" {
			return nil, fmt.Errorf("write permissions: bad origin %q", o)
		}
		fmt.Fprintf(&b, "origin\tcamera\t1\t%s\n", o)
	}
	return []byte(b.String()), nil
}
