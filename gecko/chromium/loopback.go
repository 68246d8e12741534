package chromium

import (
	"encoding/json"
	"fmt"

	"github.com/geckohost/geckohost/gecko"
)

// offer is the client's offer as the worker gets it: in ICELoopback mode
// without its non-loopback a=candidate lines (as in gecko).
func (w *worker) offer() string {
	if !w.p.opts.ICELoopback {
		return w.req.Offer
	}
	return gecko.LoopbackSDP(w.req.Offer)
}

// answer is the worker's answer as the client gets it: in ICELoopback
// mode without its non-loopback a=candidate lines.
func (w *worker) answer(sdp string) string {
	if !w.p.opts.ICELoopback {
		return sdp
	}
	return gecko.LoopbackSDP(sdp)
}

// unquote decodes a JSON string value.
func unquote(raw []byte) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("decode page result: %w", err)
	}
	return s, nil
}
