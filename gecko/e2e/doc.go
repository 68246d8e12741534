// Package e2e holds geckohost's end-to-end tests: a real host.Server with a
// real gecko.Pool (headless Firefox) and real pion clients from host/client,
// all inside a private network namespace (internal/netns). It has no non-test
// code; the tests live in their own package so that their TestMain does not
// clash with the gecko package's own.
package e2e
