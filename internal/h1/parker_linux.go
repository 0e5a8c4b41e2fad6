package h1

import (
	"sync"
	"syscall"
	"time"
)

// parker holds idle connections in an epoll set of the server's own, so
// that a connection waiting for its next request costs no goroutine: only
// its socket and its conn. When bytes (or the client's close) arrive, a new
// goroutine serves it. With tens of thousands of idle keep-alive
// connections the goroutines' stacks would otherwise be most of the
// server's memory.
//
// The sockets stay registered with Go's own poller too; this set only says
// when to start reading. A connection is removed from the set (EPOLL_CTL_DEL,
// inside RawConn.Control, so never on a closed or reused descriptor) before
// anything else touches it: on its event, on the idle timeout, on Shutdown.
type parker struct {
	once  sync.Once
	err   error
	epfd  int
	wake  [2]int // a pipe whose read end is in the set: Close writes to it
	mu    sync.Mutex
	conns map[int]*conn // by descriptor
	done  chan struct{}
	stop  bool
}

// parkSupported reports whether this build can park connections.
const parkSupported = true

func (p *parker) start(s *Server) error {
	p.once.Do(func() {
		p.mu.Lock()
		stopped := p.stop
		p.mu.Unlock()
		if stopped {
			p.err = ErrServerClosed
			return
		}
		p.epfd, p.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if p.err != nil {
			return
		}
		if p.err = syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); p.err != nil {
			syscall.Close(p.epfd)
			return
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake[0])}
		if p.err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); p.err != nil {
			syscall.Close(p.epfd)
			syscall.Close(p.wake[0])
			syscall.Close(p.wake[1])
			return
		}
		p.mu.Lock()
		if p.stop {
			// close ran meanwhile: release what was made, start nothing.
			p.mu.Unlock()
			syscall.Close(p.epfd)
			syscall.Close(p.wake[0])
			syscall.Close(p.wake[1])
			p.err = ErrServerClosed
			return
		}
		p.conns = make(map[int]*conn)
		p.done = make(chan struct{})
		p.mu.Unlock()
		go p.loop(s)
	})
	return p.err
}

// park adds c, idle until until (zero: no limit), to the set. It reports
// false when c cannot be parked; the caller then waits as before.
func (p *parker) park(s *Server, c *conn, until time.Time) bool {
	if c.rc == nil || p.start(s) != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop {
		return false
	}
	ok := false
	err := c.rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
		if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) == nil {
			c.parkedFD, c.parkedUntil = int(fd), until
			p.conns[int(fd)] = c
			ok = true
		}
	})
	if err == nil && ok && c.state.Load() == stateClosed {
		// Shutdown marked it closed before it was in the set (and so
		// could not unpark it): take it out again; the caller closes it.
		p.unparkLocked(c)
		return false
	}
	return err == nil && ok
}

// unparkLocked removes c from the set; p.mu is held. It reports whether c
// was parked.
func (p *parker) unparkLocked(c *conn) bool {
	if p.conns == nil || p.conns[c.parkedFD] != c {
		return false
	}
	delete(p.conns, c.parkedFD)
	_ = c.rc.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
	return true
}

// unpark removes c from the set, for Shutdown and Close, and reports
// whether it was parked (and so has no goroutine to close it).
func (p *parker) unpark(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unparkLocked(c)
}

// close stops the loop and releases the set.
func (p *parker) close() {
	p.mu.Lock()
	started := p.done != nil && !p.stop
	p.stop = true
	p.mu.Unlock()
	if !started {
		return
	}
	syscall.Write(p.wake[1], []byte{0})
	<-p.done
	syscall.Close(p.epfd)
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
}

// loop waits for events on the set, and once a second closes the parked
// connections whose idle timeout has passed.
func (p *parker) loop(s *Server) {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	var woken []*conn
	nextSweep := time.Now().Add(time.Second)
	for {
		n, err := syscall.EpollWait(p.epfd, events, 1000)
		if err != nil && err != syscall.EINTR {
			// The set is unusable: park no more, and hand every parked
			// connection back to a goroutine of its own.
			p.mu.Lock()
			p.stop = true
			var all []*conn
			for _, c := range p.conns {
				all = append(all, c)
			}
			for _, c := range all {
				p.unparkLocked(c)
			}
			p.mu.Unlock()
			for _, c := range all {
				go c.resumeParked()
			}
			return
		}
		p.mu.Lock()
		if p.stop {
			p.mu.Unlock()
			return
		}
		woken = woken[:0]
		for _, ev := range events[:max(n, 0)] {
			if c := p.conns[int(ev.Fd)]; c != nil && p.unparkLocked(c) {
				woken = append(woken, c)
			}
		}
		var expired []*conn
		if now := time.Now(); now.After(nextSweep) {
			nextSweep = now.Add(time.Second)
			for _, c := range p.conns {
				if !c.parkedUntil.IsZero() && now.After(c.parkedUntil) {
					expired = append(expired, c)
				}
			}
			for _, c := range expired {
				p.unparkLocked(c)
			}
		}
		p.mu.Unlock()
		for _, c := range woken {
			go c.resumeParked()
		}
		for _, c := range expired {
			// Unparked above, it has no goroutine: close it whatever its
			// state (Shutdown may have marked it closed meanwhile, and
			// then left the untracking to its owner, this loop).
			c.close()
		}
	}
}
