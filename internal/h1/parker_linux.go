package h1

import (
	"errors"
	"net"
	"os"
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
// Most connections are parked reduced to their socket (see dormant and
// ConnWrapper): the parker then owns a duplicate of the descriptor, and
// the connection's Go side (its conn, its net.Conn and the runtime's poll
// descriptor) is freed. The others are parked whole: their sockets stay
// registered with Go's own poller too, and this set only says when to
// start reading.
//
// A connection is removed from the set (EPOLL_CTL_DEL, on a descriptor the
// parker owns or inside RawConn.Control, so never on a closed or reused
// one) before anything else touches it: on its event, on the idle
// timeout, on Shutdown.
type parker struct {
	once sync.Once
	err  error
	epfd int
	wake [2]int // a pipe whose read end is in the set: Close writes to it
	// The set as a file of Go's own poller (a duplicate of epfd; an epoll
	// set is readable while it has events), so that the loop waits for
	// events parked in the runtime's poller, as a socket read does: a
	// goroutine blocked in epoll_wait would hold its thread and, until
	// the runtime takes it back, its P, which with GOMAXPROCS=1 stalls
	// every other goroutine.
	waitFile *os.File
	waitRC   syscall.RawConn
	mu       sync.Mutex
	conns    map[int]*conn    // parked whole, by descriptor
	dorm     map[int]*dormant // parked as a socket, by the parker's descriptor
	done     chan struct{}
	stop     bool
}

// dormant is a connection parked as its socket: a duplicate of the
// socket's descriptor, which the parker owns and closes, and what the
// connection needs again when its next request arrives.
type dormant struct {
	fd     int
	wrap   ConnWrapper // nil: the socket was the connection itself
	remote string
	served int
	until  time.Time // the end of its idle timeout; zero: none
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
			p.release()
			return
		}
		if p.err = p.openWaitFile(); p.err != nil {
			p.release()
			return
		}
		p.mu.Lock()
		if p.stop {
			// close ran meanwhile: release what was made, start nothing.
			p.mu.Unlock()
			p.release()
			p.err = ErrServerClosed
			return
		}
		p.conns = make(map[int]*conn)
		p.dorm = make(map[int]*dormant)
		p.done = make(chan struct{})
		p.mu.Unlock()
		go p.loop(s)
	})
	return p.err
}

// openWaitFile registers the set with Go's poller (see waitFile).
func (p *parker) openWaitFile() error {
	fd, err := dupCloexec(p.epfd)
	if err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return os.NewSyscallError("fcntl", err)
	}
	// Non-blocking, the descriptor is registered with the runtime's
	// poller; SetReadDeadline fails on one that is not.
	f := os.NewFile(uintptr(fd), "parker")
	rc, err := f.SyscallConn()
	if err == nil {
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return err
	}
	p.waitFile, p.waitRC = f, rc
	return nil
}

// release closes the set, its wake-up pipe and its file in the poller,
// those of them that were made.
func (p *parker) release() {
	if p.waitFile != nil {
		p.waitFile.Close()
	}
	syscall.Close(p.epfd)
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
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

// parkDormant parks c reduced to its socket, when it can be (see
// ConnWrapper), and reports whether it did. c must be the caller's
// (stateActive), with no read in flight and no buffer. c itself is then
// forgotten: a new conn serves the connection's next request.
func (p *parker) parkDormant(s *Server, c *conn, until time.Time) bool {
	wrap, base, ok := socketOnly(c)
	if !ok || p.start(s) != nil {
		return false
	}
	p.mu.Lock()
	stopped := p.stop
	p.mu.Unlock()
	if stopped {
		return false
	}
	fd := -1
	if err := c.rc.Control(func(sfd uintptr) { fd, _ = dupCloexec(int(sfd)) }); err != nil || fd < 0 {
		return false
	}
	// From here the socket is the dormant connection's, on the
	// duplicate; c is forgotten (under s.mu, which Close holds while it
	// closes every connection it tracks, the wrapper included), and its
	// own descriptor closed.
	d := &dormant{fd: fd, wrap: wrap, remote: c.remote, served: c.served, until: until}
	s.mu.Lock()
	delete(s.conns, c) // nconns counts it on, as a dormant connection
	if wrap != nil {
		wrap.SetNetConn(closedConn{}) // let the old connection go
	}
	s.mu.Unlock()
	base.Close()
	p.mu.Lock()
	if !p.stop {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
		if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev) == nil {
			p.dorm[fd] = d
			p.mu.Unlock()
			return true
		}
	}
	stopped = p.stop
	p.mu.Unlock()
	if stopped && s.inShutdown.Load() {
		s.closeDormant(d) // Shutdown or Close
	} else {
		go s.revive(d) // the set refused it, or failed: wait in a goroutine
	}
	return true
}

// closedConn stands in a dormant connection's wrapper for the connection
// it wrapped, closed and let go: every method fails, Close included.
type closedConn struct{}

func (closedConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (closedConn) Write([]byte) (int, error)        { return 0, net.ErrClosed }
func (closedConn) Close() error                     { return net.ErrClosed }
func (closedConn) LocalAddr() net.Addr              { return nil }
func (closedConn) RemoteAddr() net.Addr             { return nil }
func (closedConn) SetDeadline(time.Time) error      { return net.ErrClosed }
func (closedConn) SetReadDeadline(time.Time) error  { return net.ErrClosed }
func (closedConn) SetWriteDeadline(time.Time) error { return net.ErrClosed }

// socketOnly reports whether c can be parked as its socket alone, with its
// wrapper (nil: none) and the connection that holds the socket.
func socketOnly(c *conn) (wrap ConnWrapper, base net.Conn, ok bool) {
	if !c.srv.tune.parkAsSocket || c.rc == nil {
		return nil, nil, false
	}
	base = c.nc
	wrap, _ = c.nc.(ConnWrapper)
	if wrap != nil {
		base = wrap.NetConn()
	}
	switch base.(type) {
	case *net.TCPConn, *net.UnixConn:
		return wrap, base, true
	}
	return nil, nil, false // it could not be made again from its descriptor
}

// dormantCount reports how many connections are parked as their socket.
func (p *parker) dormantCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.dorm)
}

// dupCloexec returns a duplicate of fd, close-on-exec, or -1 and why.
func dupCloexec(fd int) (int, error) {
	for {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

// takeDormantLocked removes d from the set and the parker's hands; p.mu is
// held. The caller revives or closes it.
func (p *parker) takeDormantLocked(d *dormant) {
	delete(p.dorm, d.fd)
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, d.fd, nil)
}

// closeDormant takes every dormant connection out of the set and closes
// them, for Shutdown and Close.
func (p *parker) closeDormant(s *Server) {
	p.mu.Lock()
	all := p.takeAllDormantLocked()
	p.mu.Unlock()
	for _, d := range all {
		s.closeDormant(d)
	}
}

// takeAllDormantLocked takes every dormant connection out of the set and
// returns them; p.mu is held.
func (p *parker) takeAllDormantLocked() []*dormant {
	var all []*dormant
	for _, d := range p.dorm {
		all = append(all, d)
	}
	for _, d := range all {
		p.takeDormantLocked(d)
	}
	return all
}

// closeDormant closes a dormant connection taken out of the set: its
// socket, then its wrapper (whose own connection is closed already).
func (s *Server) closeDormant(d *dormant) {
	syscall.Close(d.fd)
	if d.wrap != nil {
		d.wrap.Close()
	}
	s.nconns.Add(-1)
}

// revive serves a dormant connection taken out of the set: it makes a
// connection from the socket again and reads its next request. Out of
// descriptors (making one takes two for a moment), it tries again for a
// while, as accept does, before it gives up and closes the connection.
func (s *Server) revive(d *dormant) {
	var nc net.Conn
	var err error
	for wait := 5 * time.Millisecond; ; wait *= 2 {
		if nc, err = connFromFD(d.fd); err == nil || !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) || wait > time.Second || s.inShutdown.Load() {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		s.debug("a parked connection could not be made again", "remote", d.remote, "err", err)
		s.closeDormant(d)
		return
	}
	syscall.Close(d.fd) // the new connection holds a duplicate
	if d.wrap != nil {
		d.wrap.SetNetConn(nc)
		nc = d.wrap
	}
	s.nconns.Add(-1) // counted again as the conn it becomes
	c := &conn{srv: s, nc: nc, remote: d.remote, served: d.served}
	c.cond.L = &c.mu
	c.useSocket()
	if c.rc == nil || !s.trackConn(c, true) {
		nc.Close() // Shutdown (a TCP or Unix socket always has an rc)
		return
	}
	c.state.Store(stateIdle)
	c.idleUntil, c.parkedUntil = d.until, d.until
	c.resumeParked()
}

// connFromFD makes a net.Conn from a socket's descriptor, which stays the
// caller's: the net.Conn holds a duplicate of its own.
func connFromFD(fd int) (net.Conn, error) {
	// An os.File closes its descriptor when it is closed or collected,
	// so it gets a duplicate, and fd is never at its mercy.
	dup, err := dupCloexec(fd)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	// Blocking for the moment, so that os.NewFile does not register the
	// descriptor with the runtime's poller only for it to be closed;
	// net.FileConn makes its own duplicate non-blocking again (the flag
	// belongs to the socket, which all duplicates share).
	if err := syscall.SetNonblock(dup, false); err != nil {
		syscall.Close(dup)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(dup), "")
	nc, err := net.FileConn(f)
	f.Close()
	return nc, err
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

// close stops the loop, closes the dormant connections and releases the
// set.
func (p *parker) close(s *Server) {
	p.mu.Lock()
	started := p.done != nil && !p.stop
	p.stop = true
	p.mu.Unlock()
	if !started {
		return
	}
	syscall.Write(p.wake[1], []byte{0})
	<-p.done
	p.closeDormant(s)
	p.release()
}

// loop waits for events on the set, and once a second closes the parked
// connections whose idle timeout has passed.
func (p *parker) loop(s *Server) {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	var woken []*conn
	var wokenDorm []*dormant
	// The wait: a look at the set that does not block, and when it finds
	// nothing, the runtime's poller until the set is readable or the
	// deadline (the next sweep) passes. The poller is armed before the
	// look, so events that come after it are not missed.
	var n int
	var err error
	look := func(uintptr) bool {
		for {
			n, err = syscall.EpollWait(p.epfd, events, 0)
			if err != syscall.EINTR {
				return err != nil || n > 0
			}
		}
	}
	nextSweep := time.Now().Add(time.Second)
	var armed time.Time // the deadline set on waitFile
	for {
		n, err = 0, nil
		if !armed.Equal(nextSweep) {
			err = p.waitFile.SetReadDeadline(nextSweep)
			armed = nextSweep
		}
		if err == nil {
			if rerr := p.waitRC.Read(look); rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
				err = rerr
			}
		}
		if err != nil {
			// The set is unusable: park no more, and hand every parked
			// connection back to a goroutine of its own.
			p.mu.Lock()
			if p.stop {
				// close is waiting for the loop to end, and releases
				// the set itself.
				p.mu.Unlock()
				return
			}
			p.stop = true
			var all []*conn
			for _, c := range p.conns {
				all = append(all, c)
			}
			for _, c := range all {
				p.unparkLocked(c)
			}
			dorm := p.takeAllDormantLocked()
			// close will find the parker stopped and release nothing.
			p.release()
			p.mu.Unlock()
			for _, c := range all {
				go c.resumeParked()
			}
			for _, d := range dorm {
				go s.revive(d)
			}
			return
		}
		p.mu.Lock()
		if p.stop {
			p.mu.Unlock()
			return
		}
		woken, wokenDorm = woken[:0], wokenDorm[:0]
		for _, ev := range events[:max(n, 0)] {
			if d := p.dorm[int(ev.Fd)]; d != nil {
				p.takeDormantLocked(d)
				wokenDorm = append(wokenDorm, d)
			} else if c := p.conns[int(ev.Fd)]; c != nil && p.unparkLocked(c) {
				woken = append(woken, c)
			}
		}
		var sw sweepResult
		if now := time.Now(); !now.Before(nextSweep) {
			nextSweep = now.Add(time.Second)
			sw = p.sweepLocked(now)
		}
		p.mu.Unlock()
		for _, c := range woken {
			go c.resumeParked()
		}
		for _, d := range wokenDorm {
			go s.revive(d)
		}
		sw.finish(s)
	}
}

// sweepResult is what a sweep took out of the set, to be acted on once
// p.mu is released.
type sweepResult struct {
	expired     []*conn
	expiredDorm []*dormant
}

// sweepLocked takes out of the set the parked connections whose idle
// timeout has passed at now; p.mu is held.
func (p *parker) sweepLocked(now time.Time) sweepResult {
	var r sweepResult
	for _, c := range p.conns {
		if !c.parkedUntil.IsZero() && now.After(c.parkedUntil) {
			r.expired = append(r.expired, c)
		}
	}
	for _, c := range r.expired {
		p.unparkLocked(c)
	}
	for _, d := range p.dorm {
		if !d.until.IsZero() && now.After(d.until) {
			r.expiredDorm = append(r.expiredDorm, d)
		}
	}
	for _, d := range r.expiredDorm {
		p.takeDormantLocked(d)
	}
	return r
}

// finish closes what the sweep found expired.
func (r sweepResult) finish(s *Server) {
	for _, d := range r.expiredDorm {
		s.closeDormant(d)
	}
	for _, c := range r.expired {
		// Unparked above, it has no goroutine: close it whatever its
		// state (Shutdown may have marked it closed meanwhile, and
		// then left the untracking to its owner, this loop).
		c.close()
	}
}
