// Package redistest runs a real redis-server (the Debian package's
// /usr/bin/redis-server, or the one on PATH) for a test: on 127.0.0.1 at a
// free port, with its data (an append-only file) in a temporary directory,
// stopped when the test ends, even when it fails.
//
//	srv := redistest.Start(t)        // skips t when redis-server is missing
//	url := srv.URL()                 // redis://127.0.0.1:PORT/0
//	srv.Stop(t)                      // SIGTERM; the data is kept
//	srv.Restart(t)                   // same port, same data
//
// The server keeps its data across Stop and Restart (appendonly yes), so a
// test can take Redis away from a client and give it back as an operator
// restarting it would.
package redistest
