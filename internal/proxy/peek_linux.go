package proxy

import (
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// idleProbe looks at an idle pooled connection without consuming anything
// and without blocking: has the peer closed it, or sent bytes nobody asked
// for? It also waits on the socket for a response without reading it
// (wait, writeWait). It is set up once per connection, so that a look costs
// one system call and no allocation.
type idleProbe struct {
	rc     syscall.RawConn
	fn     func(fd uintptr)
	waitFn func(fd uintptr) bool
	buf    [16]byte
	n      int
	st     peekState
	looked bool // wait: the socket was looked at once already

	// writeWait's: the bytes to write, what became of them.
	wwFn    func(fd uintptr) bool
	wb      []byte
	wn      int
	werr    error
	wrote   bool   // the write was made (the next call is the wake-up)
	written func() // called once all of wb went, before the wait
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
		n, _, errno := syscall.RawSyscall6(unix.SYS_RECVFROM, fd,
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
			_, _, errno := syscall.RawSyscall6(unix.SYS_RECVFROM, fd,
				uintptr(unsafe.Pointer(&p.buf[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			if errno == syscall.EINTR {
				continue
			}
			return errno != syscall.EAGAIN && errno != syscall.EWOULDBLOCK
		}
	}
	p.wwFn = func(fd uintptr) bool {
		if p.wrote {
			return true // woken by the poller
		}
		p.wrote = true
		for {
			n, err := syscall.Write(int(fd), p.wb)
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.EAGAIN {
				err = nil // the buffer is full: the caller waits to write
			}
			p.wn, p.werr = max(n, 0), err
			break
		}
		if p.werr != nil || p.wn < len(p.wb) {
			return true // the caller writes the rest and waits as usual
		}
		p.wb = nil
		p.written()
		return false
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

// writeWait writes b to the socket with one system call and, when all of
// it went, waits as wait does for what follows, inside one RawConn.Read:
// the poller is armed before the write, so a response to b cannot arrive
// unseen, and the look that finds nothing is saved. Bytes that were
// already there when writeWait began do not wake it (arming the poller
// forgets them): the caller uses it only when none can be, and with a
// read deadline. It returns how much
// of b went and the write's error; waited is false when not all of it
// went (the socket's buffer was full, the write failed, or the socket was
// closed or past its deadline before the write), and the caller then
// writes the rest, or reports the error, and waits as usual. A read deadline set
// beforehand bounds the wait; its error is the read's to report. written
// is called once all of b went, before the wait: b may be reused from then
// on.
func (p *idleProbe) writeWait(b []byte, written func()) (n int, err error, waited bool) {
	p.wb, p.wrote, p.wn, p.werr, p.written = b, false, 0, nil, written
	rerr := p.rc.Read(p.wwFn)
	n, err = p.wn, p.werr
	waited = p.wrote && err == nil && n == len(b)
	p.wb, p.written = nil, nil
	if !p.wrote || rerr != nil && !waited {
		// Closed, or a deadline passed, before anything was written: the
		// caller's own write reports it as a write would.
		return n, nil, false
	}
	if err != nil {
		err = os.NewSyscallError("write", err)
	}
	return n, err, waited
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

// closedAgo tells, for a connection that peek found closed, how long ago
// the peer's FIN arrived, to the kernel's clock tick (1 to 10ms): the
// kernel stamps every segment from the peer that acknowledges anything,
// and once the peer has closed (CLOSE_WAIT) the FIN is the last segment it
// sent unless TCP keep-alive probes were answered since, which makes the
// answer later than the FIN, never earlier. ok is false when the
// connection is in any other state (a reset leaves it CLOSED, with the
// stamp of the last response) or the kernel would not say.
//
// An idle connection is looked at only when it is taken for a request,
// which can be long after the upstream closed it: this is what lets the
// idle timeout learnt from it be the upstream's, not the gap between
// requests.
func (p *idleProbe) closedAgo() (ago time.Duration, ok bool) {
	if p.rc == nil {
		return 0, false
	}
	p.rc.Control(func(fd uintptr) {
		ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil && ti.State == tcpCloseWait {
			ago, ok = time.Duration(ti.Last_ack_recv)*time.Millisecond, true
		}
	})
	return ago, ok
}

// tcpCloseWait is the kernel's TCP_CLOSE_WAIT state (include/net/tcp_states.h):
// the peer sent its FIN and this side has not closed yet.
const tcpCloseWait = 8
