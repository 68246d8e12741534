package bench

import (
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	for _, c := range []struct {
		in   []time.Duration
		want Stats
	}{
		{nil, Stats{}},
		{ms(7), Stats{1, 7, 7, 7, 7, 7}},
		{ms(4, 1, 3, 2), Stats{4, 2, 4, 4, 4, 4}},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), Stats{10, 5, 9, 10, 10, 10}},
		{[]time.Duration{1500 * time.Microsecond, 250 * time.Microsecond}, Stats{2, 0.25, 1.5, 1.5, 1.5, 1.5}},
	} {
		if got := stats(c.in); got != c.want {
			t.Errorf("stats(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
	var hundred []time.Duration
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	if got := stats(hundred); got != (Stats{100, 50, 90, 95, 99, 100}) {
		t.Errorf("stats(1..100 ms) = %+v", got)
	}
}

// TestServerStats checks the histogram arithmetic of --metrics.
func TestServerStats(t *testing.T) {
	before := histogram{count: 2, sum: 0.02, bounds: []float64{0.01, 0.02, 0.05}, cum: []uint64{2, 2, 2}}
	after := histogram{count: 12, sum: 0.27, bounds: []float64{0.01, 0.02, 0.05}, cum: []uint64{2, 7, 12}}
	d := after.since(before)
	if d.count != 10 || d.cum[0] != 0 || d.cum[1] != 5 || d.cum[2] != 10 {
		t.Fatalf("since: %+v", d)
	}
	s := d.stats()
	// Rank 5 of 10 ends the (0.01, 0.02] bucket: 20 ms; rank 9 is 4/5 into
	// (0.02, 0.05]: 44 ms; the mean is 250 ms / 10.
	if s.Count != 10 || s.P50 != 20 || s.P90 != 44 || s.Mean != 25 {
		t.Fatalf("stats %+v", s)
	}
	if (histogram{}).stats() != (ServerStats{}) {
		t.Fatal("empty histogram")
	}
	over := histogram{count: 1, bounds: []float64{0.01}, cum: []uint64{0}}
	if q := over.quantile(0.5); q != 0.01 {
		t.Fatalf("past the last bound: %v", q)
	}
}
