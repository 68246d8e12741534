package main

import "github.com/geckohost/geckohost/host/client"

// bench's client: the options each session dials with, and the steps it
// traces (--trace).

// clientOptions are the Go client's options for one session.
func (cfg benchConfig) clientOptions() client.Options {
	return client.Options{Token: cfg.Token, Source: cfg.Source, Loopback: cfg.Loopback, Trace: cfg.Trace,
		HTTPClient: cfg.HTTPClient, StockNomination: cfg.NoNudge}
}

// clientName is what the table's header says of the client: nothing for
// the Go client as it is, ", a plain pion client (--no-nudge)" for one
// that leaves pion's nomination as it is.
func clientName(noNudge bool) string {
	if noNudge {
		return ", a plain pion client (--no-nudge)"
	}
	return ""
}

// benchTrace is one session's negotiation steps.
type benchTrace struct {
	Session int         `json:"session"`
	OpenMS  float64     `json:"open_ms"`
	Steps   []benchStep `json:"steps"`
}

// benchStep is one step, in ms since the session's hello.
type benchStep struct {
	Name   string  `json:"name"`
	AtMS   float64 `json:"at_ms"`
	Detail string  `json:"detail,omitempty"`
}
