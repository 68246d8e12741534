//go:build !linux

package bidi

import "net"

func wrapConn(c net.Conn) net.Conn { return c }
