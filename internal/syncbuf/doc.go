// Package syncbuf is a buffer that several goroutines may write to and
// read from at once, for tests that collect a child process's or a
// logger's output while they run.
package syncbuf
