package core

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/geckohost/geckohost/engine"
)

// CloseSlot is one browser slot of a pool as Close sees it; the pool's
// lock is held while it asks.
type CloseSlot interface {
	// Workers returns the workers of the slot's browsers (the current
	// one, and those being replaced or replacing it).
	Workers() []*Worker
	// CloseWith gives the slot's supervisor the ctx to close its
	// browsers with (past it, they are killed).
	CloseWith(ctx context.Context)
	// CloseErr is the error of closing the slot's browser, if any.
	CloseErr() error
}

// PoolCloser is a pool as Close closes it: its lock, its slots, the
// cancellation of its context, and what it runs besides its browsers.
type PoolCloser[S CloseSlot] interface {
	sync.Locker
	// CloseSlots marks the pool closed (StartWorker fails from now on)
	// and returns its slots; the lock is held.
	CloseSlots() []S
	// Cancel cancels the pool's context: the supervisors close their
	// browsers and end.
	Cancel()
	// CloseRest closes what the pool runs besides its browsers (egress
	// proxies, the shell server) once the supervisors are done, and
	// returns those errors.
	CloseRest(ctx context.Context) []error
}

// Shutdown is the state of a pool's Close (see Close), the same in both
// engines: every worker is ended (a connected one in order, as
// engine.Worker.Close does), then every browser and what else the pool
// runs, and Close waits for all of them. Its zero value is ready.
type Shutdown struct {
	mu   sync.Mutex
	done bool // guarded by mu

	abandonOnce sync.Once
	abandon     chan struct{}
	initOnce    sync.Once
}

func (s *Shutdown) init() { s.initOnce.Do(func() { s.abandon = make(chan struct{}) }) }

// Abandoned is closed when Close gives up waiting for the workers' event
// readers (its ctx ended): workers then stop sending events.
func (s *Shutdown) Abandoned() <-chan struct{} {
	s.init()
	return s.abandon
}

func (s *Shutdown) abandonNow() {
	s.init()
	s.abandonOnce.Do(func() { close(s.abandon) })
}

// Close is a pool's Close, run once by s (later calls return nil): the
// workers of c's slots (waited for with workers) are asked to end with
// engine.EndShutdown, then its browsers are stopped (their supervisors
// waited for with supervisors) and the rest closed. ctx bounds the wait
// for the workers; past it they are abandoned and the browsers killed.
func Close[S CloseSlot](ctx context.Context, s *Shutdown, c PoolCloser[S], workers, supervisors *sync.WaitGroup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	defer func() { s.done = true }()
	c.Lock()
	slots := c.CloseSlots()
	var ws []*Worker
	for _, sl := range slots {
		ws = append(ws, sl.Workers()...)
	}
	c.Unlock()
	for _, w := range ws {
		w.RequestClose(engine.EndShutdown)
	}
	waited := make(chan struct{})
	go func() { workers.Wait(); close(waited) }()
	var errs []error
	select {
	case <-waited:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wait for workers: %w", ctx.Err()))
		s.abandonNow()
	}
	// Supervisors close their browsers with ctx; a dead browser also ends
	// every worker still waiting.
	c.Lock()
	for _, sl := range slots {
		sl.CloseWith(ctx)
	}
	c.Unlock()
	c.Cancel()
	if ctx.Err() != nil {
		s.abandonNow()
	}
	supervisors.Wait()
	<-waited
	errs = append(errs, c.CloseRest(ctx)...)
	c.Lock()
	for _, sl := range slots {
		if err := sl.CloseErr(); err != nil {
			errs = append(errs, err)
		}
	}
	c.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close pool: %w", err)
	}
	return nil
}
