package bidi

import (
	"net"
	"syscall"
)

// quickAckConn acknowledges every read at once (TCP_QUICKACK, which Linux
// clears after use, so it is set again after each read). Firefox's BiDi
// server does not disable Nagle's algorithm: a small message written while
// an earlier one is unacknowledged waits for the ACK, which Linux delays
// by up to 40 ms. Measured: a command result sent right after an event
// reached Go about 40 ms late.
type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func wrapConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{TCPConn: tc, raw: raw}
	q.quickAck()
	return q
}

func (c *quickAckConn) quickAck() {
	_ = c.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

// Read implements net.Conn.
func (c *quickAckConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	c.quickAck()
	return n, err
}
