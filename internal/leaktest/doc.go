// Package leaktest is the goroutine-leak check shared by geckohost's tests.
//
// A check takes a snapshot of the running goroutines, and later polls (every
// 20 ms, up to a timeout, 5 s by default) until no goroutine that was not in
// the snapshot is left; if some are, it reports their stacks. Comparing
// goroutines by id (not by count) also catches a leak hidden by an unrelated
// goroutine that ended meanwhile.
//
// Per test, call [Check] first so that its cleanup runs after the test's
// other cleanups:
//
//	func TestServe(t *testing.T) {
//		leaktest.Check(t)
//		...
//	}
//
// In TestMain, take a [Snapshot] before m.Run and let [Snapshot.Code] turn a
// leak into a failing exit code:
//
//	func TestMain(m *testing.M) {
//		snap := leaktest.Take()
//		os.Exit(snap.Code(m.Run()))
//	}
//
// Never reported: the goroutine that runs the check, the runtime's signal
// loop (started by the first signal.Notify, it lives as long as the process)
// and the testing framework's main goroutine. [Ignore] adds other frames to
// skip; [Only] restricts a check to goroutines that run given code (for
// example the per-session goroutines of a test that shares a long-lived pool).
package leaktest
