package host

import "github.com/prometheus/client_golang/prometheus"

var (
	recordsWrittenDesc = prometheus.NewDesc("geckohost_session_records_written_total",
		"Session records written to the database.", nil, nil)
	recordsFailedDesc = prometheus.NewDesc("geckohost_session_record_failures_total",
		"Session records whose write failed (disk full, database read-only, locked or broken); each is kept and written again once writes succeed.", nil, nil)
	recordsPendingDesc = prometheus.NewDesc("geckohost_session_records_pending",
		"Session records waiting to be written again (the latest unwritten one of each session).", nil, nil)
	recordsLostDesc = prometheus.NewDesc("geckohost_session_records_lost_total",
		"Session records given up: still unwritten at shutdown, or beyond 10000 pending.", nil, nil)
	tokenUsesDesc = prometheus.NewDesc("geckohost_token_uses_not_recorded_total",
		"Hellos whose token was accepted though its use (last-used time) could not be written.", nil, nil)
)

// recordCollector reads the recorder's counters (RecordStats) when scraped.
type recordCollector struct{ s *Server }

// Describe implements prometheus.Collector.
func (c recordCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- recordsWrittenDesc
	ch <- recordsFailedDesc
	ch <- recordsPendingDesc
	ch <- recordsLostDesc
	ch <- tokenUsesDesc
}

// Collect implements prometheus.Collector.
func (c recordCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.RecordStats()
	ch <- prometheus.MustNewConstMetric(recordsWrittenDesc, prometheus.CounterValue, float64(st.Written))
	ch <- prometheus.MustNewConstMetric(recordsFailedDesc, prometheus.CounterValue, float64(st.Failed))
	ch <- prometheus.MustNewConstMetric(recordsPendingDesc, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(recordsLostDesc, prometheus.CounterValue, float64(st.Lost))
	ch <- prometheus.MustNewConstMetric(tokenUsesDesc, prometheus.CounterValue, float64(st.TokenUsesNotRecorded))
}
