package engine_test

import (
	"errors"
	"fmt"

	"github.com/geckohost/geckohost/engine"
)

// An engine reports a failure with an *engine.Error; the front finds it in
// the error chain and sends its errno and reason to the client.
func ExampleError() {
	err := fmt.Errorf("start worker: %w", engine.Errorf(engine.NoGeckoAvailable, "every browser runs %d workers", 150))
	var e *engine.Error
	if errors.As(err, &e) {
		fmt.Println(int(e.Errno), e.Errno, e.Reason)
	}
	// Output: 301 NO_GECKO_AVAILABLE every browser runs 150 workers
}

func ExampleErrnos() {
	for _, e := range engine.Errnos()[:3] {
		fmt.Println(int(e), e)
	}
	// Output:
	// 101 INVALID_AUTHORIZATION
	// 102 INVALID_TOKEN
	// 103 INVALID_MESSAGE
}
