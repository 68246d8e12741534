package chromium

import (
	"context"
	"fmt"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/storage"
)

// grant gives the shell origin in pg's browser context what a user can
// give a page: the camera and microphone permissions (Browser.setPermission;
// with a media permission Chromium gathers its host candidates with their
// addresses, as it does for a page that has a camera open, instead of
// mDNS names or none), and the storage quota (PoolOptions.WorkerStorage:
// Storage.overrideQuotaForOrigin, each browser context's storage being the
// token's).
func (p *Pool) grant(ctx context.Context, g *generation, pg *page) error {
	origin := p.shell.Origin()
	for _, name := range []string{"camera", "microphone"} {
		if _, err := cdp.Call(ctx, g.bp.Browser(), cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted,
			Origin: origin, BrowserContextID: pg.bc}); err != nil {
			return fmt.Errorf("grant the shell the %s permission: %w", name, err)
		}
	}
	if p.opts.WorkerStorage > 0 {
		q := float64(p.opts.WorkerStorage)
		if _, err := cdp.Call(ctx, pg.t, storage.OverrideQuotaForOrigin, storage.OverrideQuotaForOriginParams{Origin: origin, QuotaSize: &q}); err != nil {
			return fmt.Errorf("set the storage quota: %w", err)
		}
	}
	return nil
}
