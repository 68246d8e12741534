package cluster

import "sync"

// mailbox is an unbounded FIFO with a wake-up channel: put never blocks
// (the pub/sub reader must not wait for a slow session), take returns
// everything queued.
type mailbox[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	wake   chan struct{} // capacity 1: "something was put"
}

func newMailbox[T any]() *mailbox[T] {
	return &mailbox[T]{wake: make(chan struct{}, 1)}
}

// put queues x; false when the mailbox is closed.
func (m *mailbox[T]) put(x T) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.items = append(m.items, x)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns and removes everything queued.
func (m *mailbox[T]) take() []T {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items = nil
	return items
}

// close makes later puts fail.
func (m *mailbox[T]) close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
}

// signal is readable after a put.
func (m *mailbox[T]) signal() <-chan struct{} { return m.wake }
