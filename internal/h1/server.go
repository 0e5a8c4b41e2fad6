// Package h1 is holdfast's HTTP/1.1 server for plain (not TLS) listeners.
//
// It serves an http.Handler, as net/http's server does, at less cost per
// request: a connection's read buffer lives as long as the connection, a
// request head becomes one string of which every header value is a part,
// header keys are canonicalised only when they are not already, and the
// response head is written straight into the connection's writer. Keeping
// the http.Handler interface keeps every feature of the request path
// (retries, upgrades, event streams, trailers, 100-continue) unchanged on it.
//
// Its parser is strict per RFC 9112 wherever leniency lets a request be
// smuggled: a bare LF or CR, a folded line, whitespace before a colon, a
// control character in a field value, both Content-Length and
// Transfer-Encoding, a Transfer-Encoding on HTTP/1.0 or other than
// "chunked", Content-Length fields that disagree, and a malformed chunk are
// all answered 400 (501 for an unknown Transfer-Encoding) and the
// connection is closed, so nothing after them is ever read as a request.
//
// A connection waiting for its next request costs one small goroutine
// parked in a read and its buffers; the goroutine that ran the last
// request's handler, with its grown stack, exits. The read that waits for
// the next request starts as soon as a request's body has been read, so a
// client that closes its connection while its request is in flight cancels
// the request's context at once, as with net/http.
package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.1 on plain listeners. Its zero value is not usable:
// Handler must be set. Fields must not change once Serve was called.
type Server struct {
	// Handler answers every request that parses, OPTIONS * included.
	Handler http.Handler
	// Reject, when set, answers a request whose request line parsed but
	// whose head is refused (a smuggling shape, a bad Content-Length, a
	// missing Host, ...), so that it can be logged like any other answer.
	// It must write the status given; the connection closes afterwards
	// whatever it writes. When nil, a plain-text answer is written.
	Reject func(w http.ResponseWriter, r *http.Request, status int, reason string)
	// ReadHeaderTimeout bounds the reading of a request head, from its
	// first byte (from the connection's start for its first request).
	// 0: no bound.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection. 0: ReadHeaderTimeout; both 0: no bound.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request head (request line and header
	// section), plus 4096 bytes of slack, as net/http allows. 0: 1 MiB.
	MaxHeaderBytes int
	// Log receives what is about clients (heads refused before a request
	// could be built, handler panics) at debug level. nil: discarded.
	Log *slog.Logger

	park      parker // idle connections without a goroutine (Linux)
	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	nconns    atomic.Int64 // len(conns), read without the lock
	// waiting counts the connections that have served a request and
	// whose wait for the next one runs in a goroutine of its own (see
	// handOff).
	waiting    atomic.Int64
	inShutdown atomic.Bool
	tune       tuning // set once, when Serve first runs
}

// tuning is the package's parking variables as they were when the server
// began to serve: each server keeps its own, so that tests may change them
// between servers while goroutines of earlier ones end.
type tuning struct {
	set                           bool
	keepGoroutineUpTo, maxWaiting int64
	parkAfter, parkSoonAfter      time.Duration
	parkAsSocket                  bool
}

// parkAsSocket: park connections reduced to their socket when they can be
// (see parker.parkDormant). A variable, so that tests can park them whole.
var parkAsSocket = true

// ConnWrapper is implemented by a net.Conn that wraps another one, such as
// a listener's wrapper that counts open connections. On Linux, an idle
// connection the server parks is then reduced to its socket: the wrapped
// connection is closed while a duplicate of its descriptor keeps the
// socket open, and when the next request arrives a connection made from
// the descriptor again takes its place (SetNetConn). A parked connection
// that ends (idle timeout, Shutdown) is closed through the wrapper. A
// *net.TCPConn or *net.UnixConn is parked the same way without one; other
// connections are parked whole.
type ConnWrapper interface {
	net.Conn
	// NetConn returns the wrapped connection.
	NetConn() net.Conn
	// SetNetConn makes nc the wrapped connection. It is called only
	// while the connection is parked, when nothing else uses it.
	SetNetConn(nc net.Conn)
}

// keepGoroutineUpTo is the number of open connections up to which the
// goroutine that served a request waits for the connection's next one.
// Beyond it, the goroutine ends and a new one, with a small stack, serves
// the next request: many idle connections then cost little memory, and few
// busy ones no stack growth per request.
//
// On Linux, a connection idle for parkAfter, however many are open, has no
// goroutine at all: it is parked in an epoll set of the server's own
// (parker_linux.go) until bytes arrive. (A variable, so that tests can
// treat every connection as one of many.)
var keepGoroutineUpTo int64 = 512

// maxWaiting bounds the connections beyond keepGoroutineUpTo that wait for
// their next request in a goroutine of their own: past it, a connection
// that has answered its first request is parked after parkSoonAfter
// instead of parkAfter. A burst of new connections that each make a
// request and go quiet then leaves few goroutines behind, whose
// descriptors the runtime keeps for good and whose stacks it gives back to
// the system only slowly. Only the first request counts: parking as a
// socket costs about twenty system calls with the wake-up, which a
// connection in steady use must not pay with every request, and pays at
// most once this way.
// (A variable, for tests.)
var maxWaiting int64 = 512

// parkSoonAfter is how long a connection waits for its next request in a
// goroutine when maxWaiting others do: long enough for the second request
// of a client in steady use, even a slow one (2,000 connections driven by
// one busy load generator paid in p99 for 10 ms: their first requests all
// parked and woke at once), short enough that a burst of connections
// leaves few goroutines. (A variable, for tests.)
var parkSoonAfter = 100 * time.Millisecond

// bufSize is the size of a connection's read buffer and response writer.
// A head longer than the read buffer grows it, up to the head limit, for
// that request.
const bufSize = 4096

// pendSize bounds the body a handler may write before its framing must be
// chosen: a response that ends within it gets a Content-Length, a longer
// one is chunked.
const pendSize = 2048

func (s *Server) maxHead() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes + 4096
	}
	return 1<<20 + 4096
}

func (s *Server) debug(msg string, args ...any) {
	if s.Log != nil {
		s.Log.Debug(msg, args...)
	}
}

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// Serve accepts connections on ln and serves them until Shutdown or
// Close. It always returns an error: ErrServerClosed after those.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(&ln, true) {
		return ErrServerClosed
	}
	defer s.track(&ln, false)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			if isTemporary(err) {
				delay = max(5*time.Millisecond, min(2*delay, time.Second))
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := &conn{srv: s, nc: nc}
		c.cond.L = &c.mu
		if !s.trackConn(c, true) {
			nc.Close()
			return ErrServerClosed
		}
		c.start()
	}
}

// isTemporary reports the accept errors worth retrying after a pause, as
// net/http does: running out of file descriptors or memory, a connection
// aborted before it was accepted. A client opening many connections must
// not stop the listener for good.
func isTemporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EAGAIN, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// bodyWillClose reports, before the response head is written, that the
// connection must close after it because the request body will not be
// read to its end: 100 Continue was never sent (the client may never send
// the body), or more of it is left than is worth discarding.
func (c *conn) bodyWillClose() bool {
	b := c.reqBody
	if b == nil {
		return false
	}
	if !b.mu.TryLock() {
		// Another goroutine is reading it right now (see body.mu): it
		// cannot be counted on to end, so the connection closes.
		return true
	}
	defer b.mu.Unlock()
	if b.done {
		return false
	}
	return b.err != nil || b.expect || !b.chunked && b.left > discardMax
}

// discardMax is the most of an unread request body discarded to keep the
// connection.
const discardMax = 256 << 10

func (s *Server) track(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if !s.tune.set {
			s.tune = tuning{true, keepGoroutineUpTo, maxWaiting, parkAfter, parkSoonAfter, parkAsSocket}
		}
		if s.listeners == nil {
			s.listeners = make(map[*net.Listener]struct{})
		}
		s.listeners[ln] = struct{}{}
	} else {
		delete(s.listeners, ln)
	}
	return true
}

func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if s.conns == nil {
			s.conns = make(map[*conn]struct{})
		}
		s.conns[c] = struct{}{}
		s.nconns.Add(1)
	} else if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.nconns.Add(-1)
	}
	return true
}

func (s *Server) closeListeners() error {
	var errs []error
	for ln := range s.listeners {
		if err := (*ln).Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops accepting, closes the connections waiting for a request,
// and waits until every request in flight has been answered (each of
// those connections closes after its answer) or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	err := s.closeListeners()
	s.mu.Unlock()
	wait := time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		if s.closeIdle() {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			wait = min(2*wait, 100*time.Millisecond)
			t.Reset(wait)
		}
	}
}

// closeIdle closes the connections waiting for a request and reports
// whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			if s.park.unpark(c) {
				// Parked: no goroutine will finish it.
				delete(s.conns, c)
				s.nconns.Add(-1)
			}
			c.nc.Close()
		}
	}
	s.park.closeDormant(s)
	empty := len(s.conns) == 0
	s.mu.Unlock()
	if empty {
		// Outside s.mu: the parker's loop may be closing a connection,
		// which untracks it under s.mu.
		s.park.close(s)
	}
	return empty
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	defer s.park.close(s) // after s.mu is released (see closeIdle)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.closeListeners()
	for c := range s.conns {
		c.state.Store(stateClosed)
		if s.park.unpark(c) {
			delete(s.conns, c)
			s.nconns.Add(-1)
		}
		c.nc.Close()
	}
	return err
}

// Connection states, for Shutdown.
const (
	stateActive int32 = iota // reading or serving a request
	stateIdle                // waiting for a request's first byte
	stateClosed              // closed by Shutdown or Close
)

// The wait for the next request (the background read).
const (
	bgNone    = iota // not reading
	bgReading        // a read is in flight
	bgDone           // the read returned; its result waits in bgN, bgErr
)

// conn is one client connection.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string
	state  atomic.Int32

	// The read buffer: bytes buf[r:w] are read and not yet consumed. It is
	// nil (back in its pool) while nothing is buffered between requests.
	buf  []byte
	r, w int

	// The socket, for the background read's callback (nil if the
	// connection offers none), and the callback's results.
	rc     syscall.RawConn
	readFn func(uintptr) bool
	rb     []byte
	rn     int
	rerr   error

	bw   *bufio.Writer // nil between requests
	pend []byte        // body held back until the framing is chosen

	served int // requests served

	// The background read, shared with its goroutine under mu.
	mu      sync.Mutex
	cond    sync.Cond
	bg      int
	bgBuf   []byte // the buffer the read filled, which becomes buf
	bgN     int
	bgErr   error
	handoff bool        // nobody waits for it: its goroutine serves on
	counted bool        // counted in srv.waiting (see handOff)
	waiting bool        // someone waits on cond for it
	reqCtx  *reqContext // the request in flight's, canceled if the client goes
	gone    bool        // the client closed while a request was in flight

	head head // the request in flight's, parsed; zero while the connection is idle
	// wmu orders a 100 Continue, written by whoever reads the body, with
	// the response; headGone: the final head has begun.
	wmu      sync.Mutex
	headGone bool
	// dmu orders the response's deadline methods with its end (see
	// response.over); it is never held across a write.
	dmu sync.Mutex
	// writeDeadline: the handler set a write deadline, which must not
	// outlive its response.
	writeDeadline bool
	// Where the connection is parked (see parker): its descriptor and
	// the end of its idle timeout (zero: none).
	parkedFD    int
	parkedUntil time.Time
	idleUntil   time.Time // the end of the idle timeout of the wait in progress

	req      *http.Request // in flight
	resp     *response     // in flight
	reqBody  *body         // nil: none
	hijacked bool
}

// start begins a connection: the wait for its first request runs as a
// background read whose goroutine then serves it.
func (c *conn) start() {
	c.remote = c.nc.RemoteAddr().String()
	c.useSocket()
	c.state.Store(stateIdle)
	if d := c.srv.ReadHeaderTimeout; d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	} else if d := c.srv.IdleTimeout; d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	}
	c.bg = bgReading
	c.handoff = true // not counted in waiting: no request served yet
	go c.bgRead()
}

// useSocket gives the connection access to its socket, for the background
// read, when it offers one.
func (c *conn) useSocket() {
	if sc, ok := c.nc.(syscall.Conn); ok && rawReadSupported {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.readFn = c.readOnce
		}
	}
}

// bgRead reads into the free end of the buffer: the first bytes of the
// next request, or the client's departure. It runs while a handler serves
// the previous request (a departure cancels it), and then while the
// connection is idle; with handoff set, its goroutine serves what it read.
func (c *conn) bgRead() {
	if c.rc == nil {
		// No access to the socket: hold a buffer through the wait.
		b := getBuf()
		n, err := c.nc.Read(b)
		c.bgFinish(b, n, err)
		return
	}
	c.rb, c.rn, c.rerr = nil, 0, nil
	if err := c.rc.Read(c.readFn); err != nil {
		c.bgFinish(nil, 0, err)
		return
	}
	c.bgFinish(c.rb, c.rn, c.rerr)
}

// readOnce is the background read's callback on the socket: it takes a
// buffer only once there is something to read, so that a connection
// waiting for its next request holds none. It runs under the socket's
// read lock, as a Read would.
func (c *conn) readOnce(fd uintptr) bool {
	b := getBuf()
	for {
		n, err := sysRead(fd, b)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			putBuf(b)
			return false
		case nil:
			if n == 0 {
				c.rb, c.rn, c.rerr = b, 0, io.EOF
			} else {
				c.rb, c.rn = b, n
			}
		default:
			c.rb, c.rn, c.rerr = b, 0, os.NewSyscallError("read", err)
		}
		return true
	}
}

func (c *conn) bgFinish(b []byte, n int, err error) {
	if n == 0 && b != nil {
		putBuf(b)
		b = nil
	}
	c.mu.Lock()
	c.bgBuf, c.bgN, c.bgErr = b, n, err
	c.bg = bgDone
	handoff := c.handoff
	c.handoff = false
	if c.counted {
		c.counted = false
		c.srv.waiting.Add(-1)
	}
	reqCtx := c.reqCtx
	gone := err != nil && !isTimeout(err) && reqCtx != nil
	if gone {
		c.gone = true
	}
	if c.waiting {
		c.cond.Signal()
	}
	c.mu.Unlock()
	if gone && !handoff {
		reqCtx.cancel()
	}
	if handoff {
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			c.close()
			return
		}
		c.serve()
	}
}

// startBG starts the background read once a request's body is read, unless
// bytes of the next request are already buffered.
func (c *conn) startBG() {
	if c.r < c.w {
		return
	}
	c.releaseBuf()
	c.mu.Lock()
	c.bg = bgReading
	c.mu.Unlock()
	go c.bgRead()
}

// stopBG ends a background read in flight, for a hijack: its bytes go to
// the buffer.
func (c *conn) stopBG() {
	c.mu.Lock()
	if c.bg == bgReading {
		c.nc.SetReadDeadline(aLongTimeAgo)
		c.waiting = true
		for c.bg == bgReading {
			c.cond.Wait()
		}
		c.waiting = false
	}
	c.takeBG()
	c.mu.Unlock()
	c.nc.SetReadDeadline(time.Time{})
}

// takeBG moves a finished background read's bytes into the buffer; mu is
// held. It returns the read's error, if any.
func (c *conn) takeBG() error {
	if c.bg != bgDone {
		return nil
	}
	c.bg = bgNone
	if c.bgBuf != nil {
		// The read started with nothing buffered (see startBG).
		c.buf, c.r, c.w = c.bgBuf, 0, c.bgN
	}
	err := c.bgErr
	c.bgBuf, c.bgN, c.bgErr = nil, 0, nil
	return err
}

// The pool of read buffers, shared by all connections.
var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

func getBuf() []byte { return bufPool.Get().(*[bufSize]byte)[:] }

func putBuf(b []byte) {
	if len(b) == bufSize {
		bufPool.Put((*[bufSize]byte)(b))
	}
}

// ensureBuf gives the connection a read buffer if it has none.
func (c *conn) ensureBuf() {
	if c.buf == nil {
		c.buf, c.r, c.w = getBuf(), 0, 0
	}
}

// releaseBuf returns an empty read buffer to the pool (a grown one to the
// collector).
func (c *conn) releaseBuf() {
	if c.buf != nil {
		putBuf(c.buf)
	}
	c.buf, c.r, c.w = nil, 0, 0
}

var aLongTimeAgo = time.Unix(1, 0)

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// bodyDone is called once the request body has been read to its end. The
// read deadlines the handler set for the body no longer apply.
func (c *conn) bodyDone() {
	if c.hijacked {
		return // the connection is the hijacker's
	}
	c.nc.SetReadDeadline(time.Time{})
	c.startBG()
}

// serve runs requests on the connection until it must close or wait: it
// returns (and its goroutine ends) with the connection handed to a
// background read, hijacked, or closed.
func (c *conn) serve() {
	// The background read that started this goroutine, if any.
	c.mu.Lock()
	err := c.takeBG()
	c.mu.Unlock()
	if err != nil && c.r == c.w {
		if isTimeout(err) && c.parkLater() {
			return
		}
		c.close()
		return
	}
	for {
		raw, perr := c.readHead(c.served > 0)
		if perr != nil {
			if pe, ok := perr.(*parseError); ok {
				c.refuse(nil, pe)
			} else {
				c.close()
			}
			return
		}
		c.nc.SetReadDeadline(time.Time{})
		if !c.serveOne(raw) {
			return
		}
		c.served++
		if c.r < c.w {
			continue // pipelined
		}
		// Wait for the next request in the background read, started when
		// the body ended; this goroutine, with its grown stack, ends.
		c.releaseWriter()
		now := time.Now()
		c.idleUntil = time.Time{}
		if d := c.idleTimeout(); d > 0 {
			c.idleUntil = now.Add(d)
		}
		tune := &c.srv.tune
		many := c.srv.nconns.Load() > tune.keepGoroutineUpTo
		dl := c.idleUntil
		if parkSupported && c.rc != nil {
			// The read that waits for the next request gives up after
			// parkAfter, and the connection is parked (see parkLater);
			// after parkSoonAfter when it has answered its first
			// request and many already wait in goroutines (maxWaiting).
			p := now.Add(tune.parkAfter)
			if many && c.served == 1 && c.srv.waiting.Load() >= tune.maxWaiting {
				p = now.Add(tune.parkSoonAfter)
			}
			if dl.IsZero() || p.Before(dl) {
				dl = p
			}
		}
		if !dl.IsZero() {
			c.nc.SetReadDeadline(dl)
		}
		c.mu.Lock()
		switch c.bg {
		case bgNone:
			c.mu.Unlock()
			c.startBGHandoff()
			return
		case bgReading:
			c.state.Store(stateIdle)
			if !many {
				// Wait here: the next request runs on this goroutine,
				// whose stack has already grown to what a request needs.
				c.waiting = true
				for c.bg == bgReading {
					c.cond.Wait()
				}
				c.waiting = false
				err := c.takeBG()
				c.mu.Unlock()
				if !c.state.CompareAndSwap(stateIdle, stateActive) {
					c.close() // Shutdown
					return
				}
				if err != nil && c.r == c.w {
					if isTimeout(err) && c.parkLater() {
						return // idle for parkAfter: parked
					}
					c.close() // the client left, or the idle timeout
					return
				}
				continue
			}
			c.handOff(true)
			c.mu.Unlock()
			if c.srv.inShutdown.Load() && c.state.CompareAndSwap(stateIdle, stateClosed) {
				c.nc.Close()
			}
			return
		default:
			err := c.takeBG()
			c.mu.Unlock()
			if err != nil && c.r == c.w {
				if isTimeout(err) {
					// A deadline the handler set ended the read, not
					// the idle timeout: wait again.
					c.startBGHandoff()
					return
				}
				c.close()
				return
			}
		}
	}
}

// parkAfter is how long a kept-alive connection waits for its next request
// in a goroutine before it is parked (sooner when maxWaiting others wait
// so). Connections in steady use never wait that long: parking costs
// system calls and a new goroutine per request, which only idle
// connections should pay. (A variable, for tests.)
var parkAfter = time.Second

// parkLater parks a kept-alive connection whose wait for its next request
// reached parkAfter (a read deadline), unless its idle timeout has passed
// or the server is shutting down. It reports false when the caller must
// close the connection instead.
func (c *conn) parkLater() bool {
	if !parkSupported || c.rc == nil || c.served == 0 || c.srv.inShutdown.Load() {
		return false
	}
	if !c.idleUntil.IsZero() && !time.Now().Before(c.idleUntil) {
		return false // the idle timeout itself
	}
	c.releaseBuf()
	if c.srv.park.parkDormant(c.srv, c, c.idleUntil) {
		return true
	}
	c.state.Store(stateIdle)
	c.nc.SetReadDeadline(time.Time{})
	if c.srv.park.park(c.srv, c, c.idleUntil) {
		return true
	}
	// It could not be parked (the connection was closed meanwhile, or
	// epoll failed): wait in a goroutine as before.
	if !c.idleUntil.IsZero() {
		c.nc.SetReadDeadline(c.idleUntil)
	}
	c.startBGHandoff()
	return true
}

// resumeParked serves a parked connection whose socket became readable.
func (c *conn) resumeParked() {
	if !c.parkedUntil.IsZero() {
		c.nc.SetReadDeadline(c.parkedUntil)
	}
	c.mu.Lock()
	c.bg = bgReading
	c.handOff(false) // bytes are there: not waiting
	c.mu.Unlock()
	c.bgRead()
}

// handOff makes the background read in flight serve what it reads; c.mu is
// held. count: the connection waits for its next request, and counts among
// those waiting in a goroutine of their own until the read ends (see
// maxWaiting).
func (c *conn) handOff(count bool) {
	c.handoff = true
	if count && !c.counted {
		c.counted = true
		c.srv.waiting.Add(1)
	}
}

// startBGHandoff starts the wait for the next request when no background
// read is in flight.
func (c *conn) startBGHandoff() {
	c.releaseBuf()
	c.mu.Lock()
	c.bg = bgReading
	c.handOff(true)
	c.mu.Unlock()
	c.state.Store(stateIdle)
	if c.srv.inShutdown.Load() && c.state.CompareAndSwap(stateIdle, stateClosed) {
		c.nc.Close()
	}
	go c.bgRead()
}

func (c *conn) idleTimeout() time.Duration {
	if c.srv.IdleTimeout > 0 {
		return c.srv.IdleTimeout
	}
	return c.srv.ReadHeaderTimeout
}

// readHead reads up to the end of a request head and returns it as one
// string, from its request line through the empty line. Empty lines (CRLF)
// before the request line are skipped, as RFC 9112 section 2.2 allows.
//
// When the head is not whole in the buffer and more must be read, the
// head's own timeout starts with that read (kept: on a connection's first
// request, whose timeout runs from the connection's start): until then the
// deadline in force is the idle timeout, or none.
func (c *conn) readHead(kept bool) (string, error) {
	c.ensureBuf()
	limit := c.srv.maxHead()
	scan, lineStart := c.r, c.r
	for {
		for scan < c.w {
			i := bytes.IndexByte(c.buf[scan:c.w], '\n')
			if i < 0 {
				scan = c.w
				break
			}
			p := scan + i
			if p == lineStart || c.buf[p-1] != '\r' {
				return "", errBareLF
			}
			if p-1 == lineStart {
				if lineStart == c.r {
					// An empty line before the request line.
					c.r = p + 1
					lineStart, scan = c.r, c.r
					continue
				}
				s := string(c.buf[c.r : p+1])
				c.r = p + 1
				return s, nil
			}
			lineStart, scan = p+1, p+1
		}
		if c.w-c.r >= limit {
			if lineStart == c.r {
				return "", errURITooLong
			}
			return "", errHeadTooLarge
		}
		if c.w == len(c.buf) {
			c.makeRoom(limit, &scan, &lineStart)
		}
		if kept {
			kept = false
			if d := c.srv.ReadHeaderTimeout; d > 0 {
				c.nc.SetReadDeadline(time.Now().Add(d))
			} else {
				c.nc.SetReadDeadline(time.Time{})
			}
		}
		n, err := c.nc.Read(c.buf[c.w:])
		c.w += n
		if err != nil && n == 0 {
			return "", err
		}
	}
}

// makeRoom frees or adds room at the end of the buffer for a head being
// read, moving the offsets into it along.
func (c *conn) makeRoom(limit int, offs ...*int) {
	if c.r > 0 {
		n := copy(c.buf, c.buf[c.r:c.w])
		for _, o := range offs {
			*o -= c.r
		}
		c.w, c.r = n, 0
		if c.w < len(c.buf) {
			return
		}
	}
	nb := make([]byte, min(2*len(c.buf), limit+1))
	copy(nb, c.buf[:c.w])
	c.buf = nb
}

// readBody reads request body bytes: buffered ones first, then straight
// from the socket.
func (c *conn) readBody(p []byte) (int, error) {
	if c.r < c.w {
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		return n, nil
	}
	return c.nc.Read(p)
}

var errLineTooLong = errors.New("line over the limit")

// readLine reads one CRLF-terminated line of a chunked body, without the
// CRLF.
func (c *conn) readLine(max int) (string, error) {
	c.ensureBuf()
	scan := c.r
	for {
		if i := bytes.IndexByte(c.buf[scan:c.w], '\n'); i >= 0 {
			p := scan + i
			if p == c.r || c.buf[p-1] != '\r' {
				return "", errBareLF
			}
			line := c.buf[c.r : p-1]
			if bytes.IndexByte(line, '\r') >= 0 {
				return "", errBareCR
			}
			c.r = p + 1
			return string(line), nil
		}
		scan = c.w
		if c.w-c.r > max {
			return "", errLineTooLong
		}
		if c.w == len(c.buf) {
			c.makeRoom(max, &scan)
		}
		n, err := c.nc.Read(c.buf[c.w:])
		c.w += n
		if err != nil && n == 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
}

// exchange is what serving one request allocates, in one piece: the
// request, its context, the response writer, and room for the values of
// a header of up to inlineFields fields. Nothing in it is reused: it
// lives as long as anything still refers to any part of it.
type exchange struct {
	req  http.Request
	ctx  reqContext
	resp response
	vals [inlineFields]string
}

// inlineFields is how many header field values an exchange holds without
// a slice of their own: most requests carry fewer.
const inlineFields = 8

// serveOne builds the request from its head, runs the handler and
// finishes the response. It reports whether the connection stays open.
func (c *conn) serveOne(raw string) bool {
	x := new(exchange)
	h := &c.head
	if perr := h.parse(raw, x.vals[:]); perr != nil {
		c.refuse(h, perr)
		return false
	}
	u, err := requestURL(h.method, h.target)
	if err != nil {
		c.refuse(h, badRequest("malformed request target"))
		return false
	}
	host := h.host
	if u.Host != "" {
		host = u.Host
	}
	ctx := &x.ctx
	x.req = http.Request{
		Method:        h.method,
		URL:           u,
		Proto:         h.proto,
		ProtoMajor:    h.major,
		ProtoMinor:    h.minor,
		Header:        h.header,
		Host:          host,
		RemoteAddr:    c.remote,
		RequestURI:    h.target,
		ContentLength: h.contentLength,
		Close:         h.closeConn || h.minor == 0 && !h.keepAlive,
	}
	if h.trailerDeclared {
		x.req.Trailer = make(http.Header)
	}
	// The context can only be set through WithContext, whose copy, inlined
	// here, stays on the stack.
	x.req = *x.req.WithContext(ctx)
	req, w := &x.req, &x.resp
	c.initResponse(w, req, h)
	switch {
	case h.chunked:
		req.TransferEncoding = []string{"chunked"}
		req.ContentLength = -1
		c.reqBody = &body{c: c, req: req, chunked: true, expect: h.expect100}
		req.Body = c.reqBody
	case h.contentLength > 0:
		c.reqBody = &body{c: c, req: req, left: h.contentLength, expect: h.expect100}
		req.Body = c.reqBody
	default:
		req.ContentLength = 0
		req.Body = http.NoBody
		c.reqBody = nil
	}
	c.req = req
	c.mu.Lock()
	c.reqCtx, c.gone = ctx, false
	c.mu.Unlock()
	if c.reqBody == nil {
		c.startBG()
	}
	c.run(w, req)
	if c.hijacked {
		ctx.cancel()
		c.srv.trackConn(c, false)
		return false
	}
	if b := c.reqBody; b != nil {
		// The handler is done: whatever it handed the body to reads no
		// more of it.
		b.detach()
	}
	keep := w.finish()
	if c.writeDeadline {
		c.writeDeadline = false
		c.nc.SetWriteDeadline(time.Time{})
	}
	c.mu.Lock()
	c.reqCtx = nil
	gone := c.gone
	c.mu.Unlock()
	ctx.cancel()
	c.req = nil
	if b := c.reqBody; b != nil {
		c.reqBody = nil
		if keep && !b.complete() {
			keep = c.discard(b)
		}
		if !b.done {
			// The rest of the body may still be on its way: close
			// gracefully so the answer is not lost to a reset.
			c.lingerClose()
			return false
		}
	}
	if !keep || gone || c.srv.inShutdown.Load() {
		c.close()
		return false
	}
	// An idle connection keeps nothing of the request it served: not its
	// head's text, not its header map.
	c.head = head{}
	return true
}

// run calls the handler, turning a panic into a closed connection as
// net/http does (http.ErrAbortHandler silently).
func (c *conn) run(w *response, req *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				c.srv.debug("http handler panic", "client", c.remote, "panic", p)
			}
			w.broken = true
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
}

// discard reads what is left of a request body the handler did not read,
// up to 256 KiB and for at most a second, so that the connection can
// serve the next request.
func (c *conn) discard(b *body) bool {
	if b.err != nil {
		return false
	}
	if b.expect {
		// 100 Continue was never sent: the client may not send the body.
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
	defer c.nc.SetReadDeadline(time.Time{})
	return b.drain(discardMax)
}

// lingerClose closes a connection whose client may still be sending:
// it stops writing, then reads and drops for a moment what still comes, so
// the kernel does not answer those bytes with a reset that would destroy
// the response before the client reads it.
func (c *conn) lingerClose() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		var scratch [1024]byte
		total := 0
		for total < 256<<10 {
			n, err := c.nc.Read(scratch[:])
			total += n
			if err != nil {
				break
			}
		}
	}
	c.close()
}

func (c *conn) close() {
	c.state.Store(stateClosed)
	c.nc.Close()
	c.releaseWriter()
	c.releaseBuf()
	c.srv.trackConn(c, false)
}

func (c *conn) writer() *bufio.Writer {
	if c.bw == nil {
		c.bw = writerPool.Get().(*bufio.Writer)
		c.bw.Reset(c.nc)
	}
	return c.bw
}

func (c *conn) releaseWriter() {
	if c.bw != nil {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}

// writeContinue sends "100 Continue" before the first read of a body
// whose client asked for it, unless the final answer went first.
//
// It may run on a goroutine other than the handler's (net/http's Transport
// reads a body on its own): it writes to the socket itself, under wmu, and
// not once the final head has begun (headGone), so a 100 never lands in a
// response.
func (c *conn) writeContinue() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.headGone {
		return nil
	}
	_, err := io.WriteString(c.nc, "HTTP/1.1 100 Continue\r\n\r\n")
	return err
}

// refuse answers a head that cannot be served, and closes the connection.
// With Server.Reject set, a head whose request line parsed is answered
// there, so that it is logged as a request; the rest get a plain answer.
func (c *conn) refuse(h *head, pe *parseError) {
	c.srv.debug("http request refused", "client", c.remote, "status", pe.status, "reason", pe.reason)
	// A deadline a handler left on the connection must not cut this
	// answer; a client that does not read it gets refuseTimeout.
	c.nc.SetWriteDeadline(time.Now().Add(refuseTimeout))
	if h != nil && h.lineOK && c.srv.Reject != nil {
		if u, err := requestURL(h.method, h.target); err == nil {
			hdr := h.header
			if hdr == nil {
				hdr = http.Header{}
			}
			req := &http.Request{
				Method: h.method, URL: u, Proto: h.proto, ProtoMajor: h.major, ProtoMinor: h.minor,
				Header: hdr, Host: h.host, RemoteAddr: c.remote, RequestURI: h.target,
				Body: http.NoBody, Close: true,
			}
			w := c.newResponse(req, &head{major: 1, minor: h.minor, closeConn: true})
			w.closeAfter = true
			c.reject(w, req, pe)
			w.finish()
			c.lingerClose()
			return
		}
	}
	bw := c.writer()
	text := strconv.Itoa(pe.status) + " " + http.StatusText(pe.status) + ": " + pe.reason + "\n"
	bw.WriteString("HTTP/1.1 " + strconv.Itoa(pe.status) + " " + http.StatusText(pe.status) + "\r\n")
	bw.WriteString("Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(text)))
	bw.WriteString("\r\n\r\n")
	bw.WriteString(text)
	bw.Flush()
	c.lingerClose()
}

// refuseTimeout bounds the writing of a refusal.
const refuseTimeout = 10 * time.Second

// reject calls Server.Reject, recovering from a panic as run does.
func (c *conn) reject(w *response, req *http.Request, pe *parseError) {
	defer func() {
		if p := recover(); p != nil {
			w.broken = true
		}
	}()
	c.srv.Reject(w, req, pe.status, pe.reason)
}
