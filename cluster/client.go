package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Timeouts of the Redis connections. They are short: a node must tell its
// clients "cluster store unreachable" within seconds, not wait for TCP.
const (
	dialTimeout = time.Second
	ioTimeout   = 2 * time.Second
	// opTimeout bounds one command issued by a background loop.
	opTimeout = 2 * time.Second
)

// Client is a connection pool to the cluster's Redis, shared by the
// commands (token, nodes, sessions --redis) and by a serving Node. It is safe
// for concurrent use.
type Client struct {
	rdb  *redis.Client
	addr string // the URL without its password, for messages
}

// ParseURL checks a --redis URL: redis://[user:pass@]host:port/db, or
// rediss://... for TLS. It returns the URL with the password replaced by
// "xxxxx" (for messages and logs). Errors wrap ErrBadURL.
func ParseURL(raw string) (redacted string, err error) {
	_, redacted, err = parseURL(raw)
	return redacted, err
}

func parseURL(raw string) (*redis.Options, string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, "", fmt.Errorf("%w %q: want redis://[user:pass@]host:port/db or rediss:// (TLS)", ErrBadURL, u.Redacted())
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("%w %q: no host", ErrBadURL, u.Redacted())
	}
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, "", fmt.Errorf("%w %q: %v", ErrBadURL, u.Redacted(), strings.TrimPrefix(err.Error(), "redis: "))
	}
	return opts, u.Redacted(), nil
}

// Open connects to the Redis at url (see ParseURL) and checks that it
// answers. Close the Client when done.
func Open(ctx context.Context, raw string) (*Client, error) {
	c, err := Dial(raw)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.rdb.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("connect to Redis at %s: %w", c.addr, unreachable("ping", err))
	}
	return c, nil
}

// Dial returns a Client for url without contacting Redis (connections are
// made on first use).
func Dial(raw string) (*Client, error) {
	opts, redacted, err := parseURL(raw)
	if err != nil {
		return nil, err
	}
	quietRedisLogs()
	opts.DialTimeout = dialTimeout
	opts.ReadTimeout = ioTimeout
	opts.WriteTimeout = ioTimeout
	opts.ContextTimeoutEnabled = true
	// No automatic retries: the scripts are not idempotent, and the loops
	// retry on their own schedule.
	opts.MaxRetries = -1
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return &Client{rdb: redis.NewClient(opts), addr: redacted}, nil
}

// String returns the Redis URL without its password.
func (c *Client) String() string { return c.addr }

// Close closes the connections.
func (c *Client) Close() error {
	if err := c.rdb.Close(); err != nil {
		return fmt.Errorf("close Redis client: %w", err)
	}
	return nil
}

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return unreachable("ping", err)
	}
	return nil
}

var quietOnce sync.Once

// quietRedisLogs sends go-redis's own log lines (reconnects, pool notes)
// to slog's default logger at debug level instead of stderr.
func quietRedisLogs() {
	quietOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}

type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
