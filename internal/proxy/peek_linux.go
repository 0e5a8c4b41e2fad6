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
	rc     syscall.RawConn
	fn     func(fd uintptr)
	waitFn func(fd uintptr) bool
	buf    [16]byte
	n      int
	st     peekState
	looked bool // wait: the socket was looked at once already
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
	p.waitFn = func(fd uintptr) bool {
		if p.looked {
			// Woken by the poller: bytes, the end or an error wait.
			return true
		}
		p.looked = true
		for {
			_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd,
				uintptr(unsafe.Pointer(&p.buf[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			if errno == syscall.EINTR {
				continue
			}
			return errno != syscall.EAGAIN && errno != syscall.EWOULDBLOCK
		}
	}
}

// canWait reports whether wait can wait for the socket (a TCP connection
// on Linux).
func (p *idleProbe) canWait() bool { return p.rc != nil }

// wait blocks until the connection has bytes to read, has ended or failed,
// or its read deadline has passed, without consuming anything: the read
// that follows finds what woke it, or its error. It costs what the read's
// own wait would: when nothing has arrived yet, one look that finds
// nothing (as the read's first attempt would) and the poller's wake-up,
// after which the socket is not looked at again; when bytes are already
// there, one look more than the read alone. Its point is that no buffer
// is held while the upstream takes its time to answer.
func (p *idleProbe) wait() {
	if p.rc == nil {
		return
	}
	p.looked = false
	p.rc.Read(p.waitFn) // an error (deadline, closed) is the read's to report
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
