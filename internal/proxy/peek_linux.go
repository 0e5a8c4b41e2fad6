package proxy

import (
	"net"
	"syscall"
)

// peerClosed reports whether the peer has closed the connection (or sent
// data that nobody asked for) by peeking at the socket without consuming
// anything and without blocking. net/http's read loop, blocked on the same
// socket, still reads whatever is there.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	closed := false
	_ = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n > 0:
			closed = true // unsolicited bytes: a 408 or garbage before close
		case n == 0 && err == nil:
			closed = true // FIN
		case err != nil && err != syscall.EAGAIN && err != syscall.EWOULDBLOCK && err != syscall.EINTR:
			closed = true // ECONNRESET and the like
		}
	})
	return closed
}
