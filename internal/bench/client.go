package bench

import "github.com/geckohost/geckohost/host/client"

// clientOptions are the Go client's options for one session.
func (cfg Config) clientOptions() client.Options {
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
