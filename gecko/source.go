package gecko

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/geckohost/geckohost/engine"
)

// SourceFetcher fetches worker sources for an engine: http(s) GET with a
// timeout and a size limit; redirects are followed. It is engine-neutral.
type SourceFetcher struct {
	// Client is the HTTP client; nil means a client of its own.
	Client *http.Client
	// Timeout bounds one fetch; 0 means 10 s.
	Timeout time.Duration
	// MaxBytes bounds the source size; 0 means 4 MiB.
	MaxBytes int64
}

// Fetch returns the source text at url, or a *engine.Error with errno 201
// (UNABLE_TO_FETCH_WORKER_CODE) whose reason names the status or the
// network error.
func (f *SourceFetcher) Fetch(ctx context.Context, url string) (string, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	limit := f.MaxBytes
	if limit <= 0 {
		limit = 4 << 20
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: %v", url, err)
	}
	req.Header.Set("Accept", "text/javascript, application/javascript, */*")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: no response within %v", url, timeout)
		}
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: %v", url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: HTTP status %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: read body: %v", url, err)
	}
	if int64(len(b)) > limit {
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: source is larger than %d bytes", url, limit)
	}
	return string(b), nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
