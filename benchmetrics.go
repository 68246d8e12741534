package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// benchMetricsTimeout bounds one GET /metrics of bench --metrics.
const benchMetricsTimeout = 10 * time.Second

// The server's histograms bench --metrics reads.
var benchServerHistograms = []struct{ key, metric, name string }{
	{"answer", "geckohost_session_answer_seconds", "server answer (hello → answer)"},
	{"connected", "geckohost_session_connect_seconds", "server connected (hello → connected)"},
	{"queue_wait", "geckohost_queue_wait_seconds", "server queue wait"},
}

// serverStats is one server histogram over the bench run: the observations
// between the scrapes before and after it (other clients' sessions meanwhile
// count too). The percentiles are estimated from the buckets, by linear
// interpolation as Prometheus's histogram_quantile does; the mean is exact.
type serverStats struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
}

// histogram is a Prometheus histogram: cumulative counts by upper bound.
type histogram struct {
	count  uint64
	sum    float64
	bounds []float64 // ascending upper bounds (seconds), +Inf excluded
	cum    []uint64  // cumulative counts per bound
}

// scrapeHistograms GETs a /metrics URL with hc (nil: the default client)
// and returns the named histograms.
func scrapeHistograms(ctx context.Context, hc *http.Client, url string) (map[string]histogram, error) {
	ctx, cancel := context.WithTimeout(ctx, benchMetricsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bench --metrics: %w", err)
	}
	res, err := orDefault(hc).Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench --metrics: GET %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench --metrics: GET %s: %s (a server with --metrics-listen: pass --metrics-url)", url, res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("bench --metrics: GET %s: not the Prometheus text format: %w", url, err)
	}
	out := map[string]histogram{}
	for _, h := range benchServerHistograms {
		mf := mfs[h.metric]
		if mf == nil || mf.GetType() != dto.MetricType_HISTOGRAM || len(mf.GetMetric()) == 0 {
			return nil, fmt.Errorf("bench --metrics: GET %s has no histogram %s (is it a geckohost serve?)", url, h.metric)
		}
		dh := mf.GetMetric()[0].GetHistogram()
		hg := histogram{count: dh.GetSampleCount(), sum: dh.GetSampleSum()}
		for _, b := range dh.GetBucket() {
			if math.IsInf(b.GetUpperBound(), 1) {
				continue
			}
			hg.bounds = append(hg.bounds, b.GetUpperBound())
			hg.cum = append(hg.cum, b.GetCumulativeCount())
		}
		out[h.metric] = hg
	}
	return out, nil
}

// since is h minus an earlier scrape of the same histogram.
func (h histogram) since(before histogram) histogram {
	if !slices.Equal(h.bounds, before.bounds) || h.count < before.count {
		return h // restarted server or other buckets: take the whole
	}
	d := histogram{count: h.count - before.count, sum: h.sum - before.sum, bounds: h.bounds, cum: slices.Clone(h.cum)}
	for i := range d.cum {
		d.cum[i] -= before.cum[i]
	}
	return d
}

// quantile estimates the q-quantile (0..1) in seconds, as histogram_quantile:
// linear within the bucket that holds it; past the last bound, that bound.
func (h histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return 0
	}
	rank := q * float64(h.count)
	lower, below := 0.0, uint64(0)
	for i, ub := range h.bounds {
		if float64(h.cum[i]) >= rank {
			in := h.cum[i] - below
			if in == 0 {
				return ub
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = ub, h.cum[i]
	}
	return lower
}

// stats summarises h in milliseconds.
func (h histogram) stats() serverStats {
	if h.count == 0 {
		return serverStats{}
	}
	ms := func(s float64) float64 { return math.Round(s*1e6) / 1e3 }
	return serverStats{Count: int(h.count), Mean: ms(h.sum / float64(h.count)),
		P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)), P99: ms(h.quantile(0.99))}
}

// serverReport is the server's side of a bench run, from two scrapes.
func serverReport(before, after map[string]histogram) map[string]serverStats {
	out := map[string]serverStats{}
	for _, h := range benchServerHistograms {
		out[h.key] = after[h.metric].since(before[h.metric]).stats()
	}
	return out
}

// writeServerTable prints the server's histograms as a second table.
func writeServerTable(b *strings.Builder, server map[string]serverStats) error {
	b.WriteString("\nserver side (GET /metrics before and after; percentiles estimated from the histogram buckets):\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tCOUNT\tMEAN\tP50\tP90\tP99")
	for _, h := range benchServerHistograms {
		s := server[h.key]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", h.name, s.Count, fmtMS(s.Mean, s.Count),
			fmtMS(s.P50, s.Count), fmtMS(s.P90, s.Count), fmtMS(s.P99, s.Count))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write bench report: %w", err)
	}
	return nil
}
