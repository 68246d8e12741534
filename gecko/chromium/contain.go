package chromium

import (
	"context"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/internal/proc"
)

// rendererProc is the renderer process of one browser context.
type rendererProc struct {
	bc  cdp.BrowserContextID
	id  proc.ID
	mem int64
	cpu time.Duration
}

const guardTick = 250 * time.Millisecond

// rendererPIDs lists the renderer processes of g's browser now.
func (g *generation) rendererPIDs() map[int]bool { return nil }

// learnRenderer records the renderer of browser context bc: the renderer
// that was not there before its first page loaded.
func (g *generation) learnRenderer(bc cdp.BrowserContextID, before map[int]bool) {}

// rendererCrashed ends the workers of pg's renderer (Inspector.targetCrashed).
func (g *generation) rendererCrashed(pg *page) {
	g.loseContext(pg.bc, engine.EndContentCrashed, "")
}

// loseContext ends every worker of browser context bc at once (its
// renderer died) and takes its pages out of service.
func (g *generation) loseContext(bc cdp.BrowserContextID, reason engine.EndReason, detail string) {
	_ = context.Background
}

// guard watches g's renderer processes until g is gone.
func (g *generation) guard() {
	defer g.wg.Done()
	<-g.dead
}
