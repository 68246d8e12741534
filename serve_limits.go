package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/gecko"
)

// workerLimits are serve's containment flags (see the README's Security
// model): what one token's workers may use.
type workerLimits struct {
	// Memory bounds each token's content process per browser, bytes;
	// negative: none.
	Memory int64
	// Storage is each token's storage quota, bytes; negative: Firefox's.
	Storage int64
	// BusyLimit and MaxLifetime: negative means none.
	BusyLimit, MaxLifetime time.Duration
	// TokenMaxWorkers is --token-max-workers: 0 half the capacity,
	// negative none.
	TokenMaxWorkers int
}

// tokenMaxWorkers is host's TokenMaxWorkers for a server running at most
// capacity workers: half of it (at least 1) by default, 0 (none) when the
// flag is negative. In cluster mode the limit counts a token's workers on
// every node, so the default (one node's capacity) is none.
func (l workerLimits) tokenMaxWorkers(capacity int, cluster bool) int {
	switch {
	case l.TokenMaxWorkers > 0:
		return l.TokenMaxWorkers
	case l.TokenMaxWorkers < 0 || cluster:
		return 0
	}
	return max(1, capacity/2)
}

func workerLimitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "worker-memory", Value: "512MiB", Usage: "a token's content process in a browser (its workers there) may use at most this `SIZE` of memory (such as 256MiB, 1GiB; 0: no limit); past it the process is killed and its workers end memory-limit (205 before connected)", EnvVars: []string{"GECKOHOST_WORKER_MEMORY"}},
		&cli.StringFlag{Name: "worker-storage", Value: "256MiB", Usage: "a token's storage quota (IndexedDB, Cache API) in a browser: writes past this `SIZE` get QuotaExceededError (0: Firefox's own, up to 10 GiB)", EnvVars: []string{"GECKOHOST_WORKER_STORAGE"}},
		&cli.IntFlag{Name: "token-max-workers", Usage: "a token without its own --max-workers (token add) runs at most `N` workers at a time (default 0: half the capacity, --browsers × --max-workers-per-browser / 2, none in cluster mode; negative: no limit)", EnvVars: []string{"GECKOHOST_DEFAULT_TOKEN_MAX_WORKERS"}},
		&cli.DurationFlag{Name: "worker-busy-limit", Value: gecko.DefaultWorkerBusyLimit, Usage: "end a worker that does not return to its event loop for this `DURATION` (cpu-limit; 0: never)", EnvVars: []string{"GECKOHOST_WORKER_BUSY_LIMIT"}},
		&cli.DurationFlag{Name: "worker-max-lifetime", Value: gecko.DefaultWorkerMaxLifetime, Usage: "end every worker this `DURATION` after its hello (lifetime; 0: never)", EnvVars: []string{"GECKOHOST_WORKER_MAX_LIFETIME"}},
	}
}

// workerLimitsFrom reads the containment flags.
func workerLimitsFrom(c *cli.Context) (workerLimits, error) {
	mem, err := parseSize(c.String("worker-memory"))
	if err != nil {
		return workerLimits{}, fmt.Errorf("--worker-memory: %w", err)
	}
	storage, err := parseSize(c.String("worker-storage"))
	if err != nil {
		return workerLimits{}, fmt.Errorf("--worker-storage: %w", err)
	}
	l := workerLimits{Memory: mem, Storage: storage, BusyLimit: c.Duration("worker-busy-limit"), MaxLifetime: c.Duration("worker-max-lifetime"),
		TokenMaxWorkers: c.Int("token-max-workers")}
	if l.BusyLimit < 0 || l.MaxLifetime < 0 {
		return workerLimits{}, fmt.Errorf("--worker-busy-limit %v, --worker-max-lifetime %v: want 0 (none) or a positive duration", l.BusyLimit, l.MaxLifetime)
	}
	return l, nil
}

// none turns serve's "0 means none" into the pool's negative.
func none[T int64 | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// pool returns the pool's options o with l applied.
func (l workerLimits) pool(o gecko.PoolOptions) gecko.PoolOptions {
	o.WorkerMemory = none(l.Memory)
	o.WorkerStorage = none(l.Storage)
	o.WorkerBusyLimit = none(l.BusyLimit)
	o.WorkerMaxLifetime = none(l.MaxLifetime)
	return o
}

// parseSize reads a byte size: a number with an optional unit B, KiB,
// MiB, GiB (or K, M, G, KB, MB, GB, read as powers of 1024); "0" is 0.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit, such as 512MiB", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, KiB, MiB or GiB)", s, unit)
	}
	return int64(n * mult), nil
}
