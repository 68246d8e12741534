package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStatusPSS: --pss sums the browsers' pss_bytes of a real HTTP
// /status, and needs --hold.
func TestStatusPSS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"version":"dev","browsers":[{"pid":1,"pss_bytes":1048576},{"pid":2,"pss_bytes":2097152}]}`))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := statusPSS(ctx, nil, srv.URL+"/status")
	if err != nil || got != 3<<20 {
		t.Fatalf("statusPSS = %d, %v; want %d", got, err, 3<<20)
	}
	m := &Memory{BeforeBytes: 1 << 20}
	cfg := Config{StatusURL: srv.URL + "/status"}
	if err := heldMemory(ctx, cfg, m, []Session{{}, {}}); err != nil || m.Workers != 0 || m.PerWorkerBytes != 0 {
		t.Errorf("no held session: %+v, %v", m, err)
	}
	var b strings.Builder
	writeMemory(&b, &Memory{BeforeBytes: 100 << 20, HeldBytes: 300 << 20, Workers: 100, PerWorkerBytes: 2 << 20})
	if want := "100 MiB before, 300 MiB with 100 live workers: 2.00 MiB per worker"; !strings.Contains(b.String(), want) {
		t.Errorf("table line %q, want %q", b.String(), want)
	}
	err = Config{Token: "t", Sessions: 1, Concurrency: 1, StatusURL: "http://x/status"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "--pss needs --hold") {
		t.Errorf("--pss without --hold: %v", err)
	}
}
