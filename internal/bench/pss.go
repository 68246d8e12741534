package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// statusTimeout bounds one read of the server's /status (it reads every
// browser process's smaps: slower with many workers).
const statusTimeout = 30 * time.Second

// Memory is the browsers' memory as the server's /status reports it
// (--pss): the PSS of every browser's whole process tree, summed.
type Memory struct {
	// BeforeBytes is read before the first hello; HeldBytes once every
	// session is open (--hold), before any is closed.
	BeforeBytes int64 `json:"before_bytes"`
	HeldBytes   int64 `json:"held_bytes"`
	// Workers is how many sessions were open at HeldBytes.
	Workers int `json:"workers"`
	// PerWorkerBytes is (HeldBytes - BeforeBytes) / Workers: the
	// marginal memory of one more live worker.
	PerWorkerBytes int64 `json:"per_worker_bytes"`
}

// statusPSS sums the browsers' pss_bytes of the /status at url.
func statusPSS(ctx context.Context, hc *http.Client, url string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("bench --pss: %w", err)
	}
	res, err := orDefault(hc).Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench --pss: GET %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("bench --pss: GET %s: %s", url, res.Status)
	}
	var st struct {
		Browsers []struct {
			PSSBytes int64 `json:"pss_bytes"`
		} `json:"browsers"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(&st); err != nil {
		return 0, fmt.Errorf("bench --pss: GET %s: not geckohost's status: %w", url, err)
	}
	var sum int64
	for _, b := range st.Browsers {
		sum += b.PSSBytes
	}
	return sum, nil
}

// heldMemory reads the held PSS and fills in m (ok: the open sessions).
func heldMemory(ctx context.Context, cfg Config, m *Memory, results []Session) error {
	held, err := statusPSS(ctx, cfg.HTTPClient, cfg.StatusURL)
	if err != nil {
		return err
	}
	m.HeldBytes = held
	for _, r := range results {
		if r.Held != nil {
			m.Workers++
		}
	}
	if m.Workers > 0 {
		m.PerWorkerBytes = (m.HeldBytes - m.BeforeBytes) / int64(m.Workers)
	}
	return nil
}

// writeMemory prints the --pss line of the table.
func writeMemory(w io.Writer, m *Memory) {
	if m == nil {
		return
	}
	const mib = 1 << 20
	fmt.Fprintf(w, "browser PSS (whole tree, from /status): %.0f MiB before, %.0f MiB with %d live workers: %.2f MiB per worker\n",
		float64(m.BeforeBytes)/mib, float64(m.HeldBytes)/mib, m.Workers, float64(m.PerWorkerBytes)/mib)
}
