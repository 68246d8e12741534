package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// fetchTimeout bounds FetchICEServers.
const fetchTimeout = 3 * time.Second

// FetchICEServers asks the geckohost whose signaling URL is wsURL (ws:// or
// wss://) for the ICE servers it offers the token (GET /ice-servers next to
// the signaling path: its STUN/TURN servers, with short-lived TURN
// credentials). header is sent too (e.g. Origin). It waits at most 3 s. A
// server that has none answers an empty list; one that does not know the
// path (an older geckohost) or refuses the token gives an error, and so
// does no answer: Dial then goes on without ICE servers.
func FetchICEServers(ctx context.Context, wsURL, token string, header http.Header) ([]webrtc.ICEServer, error) {
	return fetchICEServers(ctx, nil, wsURL, token, header)
}

// fetchICEServers is FetchICEServers with hc (nil: http.DefaultClient).
func fetchICEServers(ctx context.Context, hc *http.Client, wsURL, token string, header http.Header) ([]webrtc.ICEServer, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, fmt.Errorf("fetch ice servers: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "http":
		u.Scheme = "http"
	case "wss", "https":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("fetch ice servers: unsupported scheme %q", u.Scheme)
	}
	u = u.ResolveReference(&url.URL{Path: "ice-servers"})
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch ice servers: %w", err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Close = true // one request: no idle connection left behind
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch ice servers: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("fetch ice servers: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch ice servers: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var r struct {
		ICEServers []struct {
			URLs       json.RawMessage `json:"urls"`
			Username   string          `json:"username"`
			Credential string          `json:"credential"`
		} `json:"iceServers"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("fetch ice servers: decode: %w", err)
	}
	var out []webrtc.ICEServer
	for _, s := range r.ICEServers {
		var urls []string
		if err := json.Unmarshal(s.URLs, &urls); err != nil {
			var one string
			if json.Unmarshal(s.URLs, &one) != nil {
				continue
			}
			urls = []string{one}
		}
		e := webrtc.ICEServer{URLs: urls, Username: s.Username}
		if s.Credential != "" {
			e.Credential = s.Credential
			e.CredentialType = webrtc.ICECredentialTypePassword
		}
		out = append(out, e)
	}
	return out, nil
}
