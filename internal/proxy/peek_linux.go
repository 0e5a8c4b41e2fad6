package proxy

import (
	"net"
	"syscall"
	"unsafe"
)

// idleProbe looks at an idle pooled connection without consuming anything
// and without blocking: has the peer closed it, or sent bytes nobody asked
// for? It is set up once per connection, so that a look costs one system
// call and no allocation.
type idleProbe struct {
	rc  syscall.RawConn
	fn  func(fd uintptr)
	buf [16]byte
	n   int
	st  peekState
}

func (p *idleProbe) init(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.rc = rc
	p.fn = func(fd uintptr) {
		// MSG_DONTWAIT: the call cannot block, so the raw form is safe.
		n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(&p.buf[0])), uintptr(len(p.buf)),
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == 0 && n > 0:
			p.st, p.n = peekData, int(n)
		case errno == 0:
			p.st = peekClosed // FIN
		case errno != syscall.EAGAIN && errno != syscall.EWOULDBLOCK && errno != syscall.EINTR:
			p.st = peekClosed // ECONNRESET and the like
		}
	}
}

// peek reports what waits on the connection, and the first bytes of it.
func (p *idleProbe) peek() (peekState, []byte) {
	if p.rc == nil {
		return peekOpen, nil
	}
	p.st, p.n = peekOpen, 0
	if err := p.rc.Control(p.fn); err != nil {
		return peekClosed, nil
	}
	return p.st, p.buf[:p.n]
}
