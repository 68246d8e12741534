package gecko

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/geckohost/geckohost/gecko/core"
	"github.com/geckohost/geckohost/gecko/egress"
)

// Worker egress: every request of the browsers goes through the pool's
// egress proxy (package gecko/egress). The default user context (and
// Firefox's own requests) use the proxy set by prefs, on the pool's global
// identity; every user context the pool creates gets an identity of its
// own through BiDi (browser.createUserContext's proxy), so that a refused
// request is counted for the token whose workers made it. The shell page is
// loaded through the proxy too: its navigation is the one request the
// shell server answers.

// startEgress starts the egress proxy and its global identity. Caller
// holds p.mu; p.shell is running.
func (p *Pool) startEgress() error {
	shellAddr := p.shell.Addr()
	px, err := egress.New(egress.Options{Policy: p.opts.Egress, Shell: shellAddr, Logger: p.log.With("component", "egress")})
	if err != nil {
		return fmt.Errorf("start egress proxy: %w", err)
	}
	global, err := px.NewIdentity("global")
	if err != nil {
		_ = px.Close()
		return fmt.Errorf("start egress proxy: %w", err)
	}
	p.egress, p.global = px, global
	return nil
}

// proxyPrefs sends every request of Firefox through the SOCKS5 proxy at
// addr: names resolved by the proxy, loopback not bypassed, no fallback to
// a direct connection, and no protocol that cannot go through a SOCKS
// proxy (HTTP/3, WebTransport).
func proxyPrefs(addr netip.AddrPort) map[string]any {
	return map[string]any{
		"network.proxy.type":                      1,
		"network.proxy.socks":                     addr.Addr().String(),
		"network.proxy.socks_port":                int(addr.Port()),
		"network.proxy.socks_version":             5,
		"network.proxy.socks_remote_dns":          true,
		"network.proxy.socks5_remote_dns":         true,
		"network.proxy.allow_hijacking_localhost": true,
		"network.proxy.no_proxies_on":             "",
		"network.proxy.failover_direct":           false,
		"network.proxy.allow_bypass":              false,
		"network.proxy.share_proxy_settings":      false,
		"network.http.http3.enable":               false,
		"network.webtransport.enabled":            false,
	}
}

// createUserContext creates a user context with an egress identity of its
// own.
func (g *generation) createUserContext(ctx context.Context) (string, error) {
	p := g.b.p
	id, err := p.egress.NewIdentity(fmt.Sprintf("browser %d", g.b.idx))
	if err != nil {
		return "", fmt.Errorf("create user context: %w", err)
	}
	uc, err := g.ff.Conn().CreateUserContextSOCKS(ctx, id.Addr().String())
	if err != nil {
		_ = id.Close()
		return "", fmt.Errorf("create user context: %w", err)
	}
	g.idents.Add(uc, id)
	return uc, nil
}

// removeUserContext removes user context uc and its egress identity.
func (g *generation) removeUserContext(ctx context.Context, uc string) error {
	err := g.ff.Conn().RemoveUserContext(ctx, uc)
	g.dropIdentity(uc)
	return err
}

// dropIdentity closes the egress identity of user context uc.
func (g *generation) dropIdentity(uc string) { g.idents.Remove(uc) }

// identity returns the egress identity of user context uc (nil if none).
func (g *generation) identity(uc string) *egress.Identity { return g.idents.Get(uc) }

// closeIdentities closes every egress identity of g (the browser is gone).
func (g *generation) closeIdentities() { g.idents.CloseAll() }

// denyBiDi makes the browser's BiDi port unreachable from workers; undo
// when the browser is gone.
func (p *Pool) denyBiDi(ff *Firefox) (undo func()) {
	port, ok := core.URLPort(ff.SessionURL())
	if !ok {
		return func() {}
	}
	return p.egress.DenyPort(port)
}
