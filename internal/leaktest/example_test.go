package leaktest_test

import (
	"fmt"
	"time"

	"github.com/geckohost/geckohost/internal/leaktest"
)

func Example() {
	snap := leaktest.Take(leaktest.Timeout(time.Second))

	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
	}()
	close(stop) // the goroutine's owner stops it...
	<-done      // ...and waits for it

	if err := snap.Wait(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("no goroutine leaked")
	// Output: no goroutine leaked
}
