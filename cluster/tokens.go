package cluster

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geckohost/geckohost/domain"
)

// DefaultTokenCache is how long a node trusts a token lookup: a revoke
// reaches every node within this time.
const DefaultTokenCache = 500 * time.Millisecond

var _ domain.Tokens = (*Tokens)(nil)

// maxCacheEntries bounds the token cache; past it, expired entries are
// dropped, then the whole cache.
const maxCacheEntries = 10000

// Tokens is the cluster's token store in Redis: the same tokens as the
// SQLite store (names, limits, rates, sources; the SHA-256 of each secret,
// never the secret) made and checked with domain's rules, so that every
// node validates every token. It is the domain.Tokens adapter on Redis. Lookups are cached for at most CacheTTL.
type Tokens struct {
	c *Client
	// CacheTTL is how long a lookup is reused; 0 means DefaultTokenCache,
	// negative means no cache. Set it before the first lookup.
	CacheTTL time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]cachedToken // by secret hash
}

type cachedToken struct {
	tok domain.Token
	err error // nil, or wrapping domain.ErrNotFound/ErrRevoked/ErrExpired
	at  time.Time
}

// Tokens returns the token store of the cluster c.
func (c *Client) Tokens() *Tokens {
	return &Tokens{c: c, now: time.Now, cache: make(map[string]cachedToken)}
}

// Path returns where the tokens are: the Redis URL without its password.
func (t *Tokens) Path() string { return t.c.String() }

var addTokenScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[3]) == 1 then return -2 end
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', ARGV[1] .. id, unpack(ARGV, 2))
redis.call('SET', KEYS[2], id)
redis.call('SET', KEYS[3], id)
redis.call('ZADD', KEYS[4], id, id)
return id
`)

// AddToken creates a token as store.DB.AddToken does (same checks, same
// secret form) and returns it with its secret, which is not kept. Errors
// wrap domain.ErrNameTaken, domain.ErrInvalid or ErrUnreachable.
func (t *Tokens) AddToken(ctx context.Context, nt domain.NewToken) (domain.Token, string, error) {
	nt, err := nt.Check()
	if err != nil {
		return domain.Token{}, "", fmt.Errorf("add token: %w", err)
	}
	src, err := json.Marshal(nt.Sources)
	if err != nil {
		return domain.Token{}, "", fmt.Errorf("add token: encode sources: %w", err)
	}
	secret, prefix, err := domain.NewSecret()
	if err != nil {
		return domain.Token{}, "", fmt.Errorf("add token: %w", err)
	}
	now := time.UnixMilli(t.now().UnixMilli()).UTC()
	tok := domain.Token{Name: nt.Name, Prefix: prefix, Created: now, Sources: nt.Sources, MaxWorkers: nt.MaxWorkers, Rate: nt.Rate,
		WorkerMemory: nt.WorkerMemory, WorkerLifetime: nt.WorkerLifetime}
	if len(tok.Sources) == 0 {
		tok.Sources = nil
	}
	if nt.TTL > 0 {
		tok.Expires = time.UnixMilli(now.Add(nt.TTL).UnixMilli()).UTC()
	}
	h := domain.HashSecret(secret)
	args := []any{keyTokenBase,
		"name", tok.Name, "prefix", tok.Prefix, "hash", hex.EncodeToString(h),
		"created", tok.Created.UnixMilli(), "expires", msOrZero(tok.Expires), "sources", string(src),
		"max_workers", tok.MaxWorkers, "rate_count", tok.Rate.Count, "rate_window_ms", tok.Rate.Window.Milliseconds(),
		"worker_memory", tok.WorkerMemory, "worker_lifetime_ms", tok.WorkerLifetime.Milliseconds()}
	id, err := addTokenScript.Run(ctx, t.c.rdb, []string{keyTokenNext, keyTokenName(tok.Name), keyTokenHash(h), keyTokens}, args...).Int64()
	switch {
	case err != nil:
		return domain.Token{}, "", fmt.Errorf("add token: %w", unreachable("run script", err))
	case id == -1:
		return domain.Token{}, "", fmt.Errorf("add token %q: %w", nt.Name, domain.ErrNameTaken)
	case id < 0:
		return domain.Token{}, "", fmt.Errorf("add token: the new secret's hash is in use (try again)")
	}
	tok.ID = id
	return tok, secret, nil
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// decodeToken builds a Token from its hash fields; hash is the stored
// secret hash (hex).
func decodeToken(id int64, f map[string]string) (tok domain.Token, hash string, err error) {
	tok = domain.Token{ID: id, Name: f["name"], Prefix: f["prefix"],
		Created: fromMS(f["created"]), Expires: fromMS(f["expires"]), Revoked: fromMS(f["revoked"]), LastUsed: fromMS(f["last_used"])}
	tok.MaxWorkers, _ = strconv.Atoi(f["max_workers"])
	tok.Rate.Count, _ = strconv.Atoi(f["rate_count"])
	tok.WorkerMemory, _ = strconv.ParseInt(f["worker_memory"], 10, 64)
	lms, _ := strconv.ParseInt(f["worker_lifetime_ms"], 10, 64)
	tok.WorkerLifetime = time.Duration(lms) * time.Millisecond
	ms, _ := strconv.ParseInt(f["rate_window_ms"], 10, 64)
	tok.Rate.Window = time.Duration(ms) * time.Millisecond
	if tok.Rate.Count <= 0 || tok.Rate.Window <= 0 {
		tok.Rate = domain.Rate{}
	}
	if s := f["sources"]; s != "" {
		if err := json.Unmarshal([]byte(s), &tok.Sources); err != nil {
			return domain.Token{}, "", fmt.Errorf("decode sources of token %d: %w", id, err)
		}
	}
	if len(tok.Sources) == 0 {
		tok.Sources = nil
	}
	if tok.Name == "" {
		return domain.Token{}, "", fmt.Errorf("token %d has no name", id)
	}
	return tok, f["hash"], nil
}

// pairs turns an HGETALL-style flat list into a map.
func pairs(v []any) map[string]string {
	m := make(map[string]string, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		k, _ := v[i].(string)
		val, _ := v[i+1].(string)
		m[k] = val
	}
	return m
}

// ListTokens returns every token (revoked and expired ones too), by id.
func (t *Tokens) ListTokens(ctx context.Context) ([]domain.Token, error) {
	ids, err := t.c.rdb.ZRange(ctx, keyTokens, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", unreachable("read ids", err))
	}
	pipe := t.c.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, s := range ids {
		id, _ := strconv.ParseInt(s, 10, 64)
		cmds[i] = pipe.HGetAll(ctx, keyToken(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("list tokens: %w", unreachable("read tokens", err))
		}
	}
	var out []domain.Token
	for i, s := range ids {
		id, _ := strconv.ParseInt(s, 10, 64)
		f := cmds[i].Val()
		if len(f) == 0 {
			continue
		}
		tok, _, err := decodeToken(id, f)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, tok)
	}
	return out, nil
}

var revokeTokenScript = redis.NewScript(`
local id = ARGV[2]
if id == '' then
  id = redis.call('GET', KEYS[1])
  if not id then return false end
end
local key = ARGV[1] .. id
if redis.call('EXISTS', key) == 0 then return false end
redis.call('HSETNX', key, 'revoked', ARGV[3])
return {id, redis.call('HGETALL', key)}
`)

// RevokeToken revokes the token with this id (all digits) or name and
// returns it, as store.DB.RevokeToken does; every node refuses it within
// CacheTTL. Unknown tokens give an error wrapping domain.ErrNotFound.
func (t *Tokens) RevokeToken(ctx context.Context, idOrName string) (domain.Token, error) {
	kind, key, idArg := "name", keyTokenName(idOrName), ""
	if id, err := strconv.ParseInt(idOrName, 10, 64); err == nil {
		kind, key, idArg = "id", keyToken(id), strconv.FormatInt(id, 10)
	}
	v, err := revokeTokenScript.Run(ctx, t.c.rdb, []string{key}, keyTokenBase, idArg, t.now().UnixMilli()).Slice()
	if errors.Is(err, redis.Nil) {
		return domain.Token{}, fmt.Errorf("revoke token %s: no token with that %s: %w", idOrName, kind, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Token{}, fmt.Errorf("revoke token %s: %w", idOrName, unreachable("run script", err))
	}
	tok, err := decodeReply(v)
	if err != nil {
		return domain.Token{}, fmt.Errorf("revoke token %s: %w", idOrName, err)
	}
	return tok, nil
}

// decodeReply decodes a script's {id, HGETALL} reply.
func decodeReply(v []any) (domain.Token, error) {
	if len(v) != 2 {
		return domain.Token{}, fmt.Errorf("unexpected reply %v", v)
	}
	idStr, _ := v[0].(string)
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil {
		return domain.Token{}, fmt.Errorf("unexpected token id %v", v[0])
	}
	fields, _ := v[1].([]any)
	tok, _, err := decodeToken(id, pairs(fields))
	return tok, err
}

var lookupTokenScript = redis.NewScript(`
local id = redis.call('GET', KEYS[1])
if not id then return false end
local key = ARGV[1] .. id
local h = redis.call('HGETALL', key)
local revoked, exp = false, 0
for i = 1, #h, 2 do
  if h[i] == 'revoked' then revoked = true end
  if h[i] == 'expires' then exp = tonumber(h[i + 1]) or 0 end
end
if not revoked and (exp == 0 or tonumber(ARGV[2]) < exp) then
  redis.call('HSET', key, 'last_used', ARGV[2])
end
return {id, h}
`)

// LookupToken finds the token of this secret by its SHA-256 (compared in
// constant time) and checks it as store.DB.LookupToken does: errors wrap
// domain.ErrNotFound, ErrRevoked or ErrExpired (the last two return the
// token), or ErrUnreachable (and a 301 for the client). A use is recorded
// in LastUsed. Results are reused for at most CacheTTL.
func (t *Tokens) LookupToken(ctx context.Context, secret string) (domain.Token, error) {
	h := domain.HashSecret(secret)
	key := string(h)
	now := t.now()
	ttl := t.CacheTTL
	if ttl == 0 {
		ttl = DefaultTokenCache
	}
	if ttl > 0 {
		t.mu.Lock()
		c, ok := t.cache[key]
		t.mu.Unlock()
		if ok && now.Sub(c.at) < ttl && now.Sub(c.at) >= 0 {
			return c.checked(now)
		}
	}
	tok, err := t.lookup(ctx, h, now)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return domain.Token{}, err
	}
	c := cachedToken{tok: tok, err: err, at: now}
	if ttl > 0 {
		t.mu.Lock()
		if len(t.cache) >= maxCacheEntries {
			for k, e := range t.cache {
				if now.Sub(e.at) >= ttl {
					delete(t.cache, k)
				}
			}
			if len(t.cache) >= maxCacheEntries {
				clear(t.cache)
			}
		}
		t.cache[key] = c
		t.mu.Unlock()
	}
	return c.checked(now)
}

// checked applies the token's status at now to a (cached) lookup.
func (c cachedToken) checked(now time.Time) (domain.Token, error) {
	if c.err != nil {
		return domain.Token{}, c.err
	}
	if err := c.tok.Status(now); err != nil {
		return c.tok, err
	}
	return c.tok, nil
}

func (t *Tokens) lookup(ctx context.Context, h []byte, now time.Time) (domain.Token, error) {
	v, err := lookupTokenScript.Run(ctx, t.c.rdb, []string{keyTokenHash(h)}, keyTokenBase, now.UnixMilli()).Slice()
	if errors.Is(err, redis.Nil) {
		return domain.Token{}, fmt.Errorf("look up token: %w", domain.ErrNotFound)
	}
	if err != nil {
		return domain.Token{}, fmt.Errorf("look up token: %w", unreachable("run script", err))
	}
	if len(v) != 2 {
		return domain.Token{}, fmt.Errorf("look up token: unexpected reply")
	}
	idStr, _ := v[0].(string)
	id, _ := strconv.ParseInt(idStr, 10, 64)
	fields, _ := v[1].([]any)
	tok, stored, err := decodeToken(id, pairs(fields))
	if err != nil {
		return domain.Token{}, fmt.Errorf("look up token: %w", err)
	}
	want := hex.EncodeToString(h)
	if subtle.ConstantTimeCompare([]byte(stored), []byte(want)) != 1 {
		return domain.Token{}, fmt.Errorf("look up token: %w", domain.ErrNotFound)
	}
	if tok.Status(now) == nil {
		tok.LastUsed = time.UnixMilli(now.UnixMilli()).UTC()
	}
	return tok, nil
}
