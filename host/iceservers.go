package host

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
)

// iceServersPath is where a client with a token gets its ICE servers.
const iceServersPath = "/ice-servers"

// iceServersReply is the JSON of GET /ice-servers: the RTCConfiguration
// member a browser client passes as is to new RTCPeerConnection.
type iceServersReply struct {
	ICEServers []engine.ICEServer `json:"iceServers"`
}

// iceServersError is the JSON of a refused GET /ice-servers.
type iceServersError struct {
	Errno  int    `json:"errno"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// iceServers returns the ICE servers for tok's clients or workers (none
// without Options.ICEServers).
func (s *Server) iceServers(tok domain.Token, worker bool) []engine.ICEServer {
	if s.opts.ICEServers == nil {
		return nil
	}
	return s.opts.ICEServers(tok, worker)
}

// serveICEServers answers GET /ice-servers with "Authorization: Bearer
// <token>": {"iceServers":[...]} (200), or {"errno","name","reason"} with
// 401 for a missing or bad token (101, 102). Browser pages on an allowed
// origin (the server's own, or --allow-origin) may read it across origins
// (CORS, with a preflight for the Authorization header).
func (s *Server) serveICEServers(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if origin := r.Header.Get("Origin"); origin != "" {
		if !s.originAllowed(r, origin) {
			http.Error(w, "origin not allowed: start serve with --allow-origin "+origin, http.StatusForbidden)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	switch r.Method {
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET")
		h.Set("Access-Control-Allow-Headers", "Authorization")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodGet, http.MethodHead:
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	tok, werr := s.authenticate(r.Context(), strings.TrimSpace(r.Header.Get("Authorization")))
	h.Set("Content-Type", "application/json")
	if werr != nil {
		h.Set("WWW-Authenticate", `Bearer realm="geckohost"`)
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(iceServersError{Errno: int(werr.Errno), Name: werr.Errno.String(), Reason: werr.Reason})
		return
	}
	servers := s.iceServers(tok, false)
	if servers == nil {
		servers = []engine.ICEServer{}
	}
	_ = json.NewEncoder(w).Encode(iceServersReply{ICEServers: servers})
}
