package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/limits"
	"github.com/holdfast/holdfast/internal/upstream"
)

// h1Pool is holdfast's own HTTP/1.1 client for one upstream server: a pool
// of keep-alive connections on which each request is written and its
// response read on the caller's goroutine.
//
// net/http's Transport runs two goroutines per connection and hands every
// request and response between them over channels; on a proxy's hot path
// those hand-offs cost more CPU than the proxying itself. Here a request
// costs no goroutine switch, timeouts are socket deadlines rather than
// timers, and the attempt learns first-hand how far it got (connection
// reused, bytes written, response bytes read), which is what decides
// whether a retry is safe. Requests with "Expect: 100-continue" and
// protocol upgrades still go through net/http's Transport.
type h1Pool struct {
	server   *upstream.Server
	dialer   *net.Dialer
	resolver *net.Resolver
	tlsConf  *tls.Config // nil for http
	t        config.Timeouts
	now      func() time.Time
	maxIdle  int

	desyncLogAt atomic.Int64 // unix ns before which no desync is logged (desync.go)

	mu     sync.Mutex
	idle   []*h1Conn // most recently used last
	sweep  *time.Timer
	closed bool
}

// h1Conn is one upstream connection with its buffers.
type h1Conn struct {
	uc       *upConn       // the TCP connection (deadlines, counters)
	c        net.Conn      // uc, or the TLS connection over it
	tls      bool          // c is a TLS connection
	br       *bufio.Reader // nil while a lent one is given back (reader)
	lend     bool          // br is lent from readers, not the connection's own
	idleFrom time.Time
	probe    idleProbe // looks at the socket before reuse, waits on it for responses
	ip       string    // the address dialled
	gen      uint64    // the generation of the server's DNS answer it was dialled from
	kill     func()    // uc.kill, made once: a method value allocates each time it is taken
	head     []byte    // scratch for response heads (h1wire_response.go)
	out      upWriter  // what the request is written to
}

// upWriter is what a request is written to: the connection, except that
// when roundTrip allows it (last: see the conditions there) the request's
// last piece, if at most tailSize, is set aside and sent by send together
// with the wait for the response (upConn.writeWait: one system call less
// than a write and then a wait), once the write buffer has gone back to
// its pool: no buffer is held while the upstream thinks.
type upWriter struct {
	pc      *h1Conn
	tr      *attemptTrace
	last    bool            // the next write is the request's last, and may go with the wait
	tail    *[tailSize]byte // the last piece, set aside; nil when none
	tailN   int             // its length
	waited  bool            // send waited for the response
	written func()          // sent, made once per connection
}

// tailSize bounds the last piece of a request that is sent with the wait:
// a request head without a body takes one piece, typically well under
// 4 KiB.
const tailSize = 4 << 10

// tails lends the buffer the last piece of a request waits in while the
// write buffer goes back to its pool.
var tails = sync.Pool{New: func() any { return new([tailSize]byte) }}

func (w *upWriter) Write(p []byte) (int, error) {
	if w.last && w.tail == nil && len(p) <= tailSize {
		w.tail = tails.Get().(*[tailSize]byte)
		w.tailN = copy(w.tail[:], p)
		return len(p), nil
	}
	return w.pc.c.Write(p)
}

// send writes the piece set aside and waits for the response; its buffer
// goes back to tails once written, before the wait.
func (w *upWriter) send() error {
	_, waited, err := w.pc.uc.writeWait(&w.pc.probe, w.tail[:w.tailN], w.written)
	w.waited = waited
	w.drop()
	return err
}

// sent is told by writeWait that the piece is out: the attempt waits from
// now on, and the piece's buffer is free.
func (w *upWriter) sent() {
	w.tr.set(cause.PhaseWait)
	w.drop()
}

// drop gives the piece's buffer back, if it still holds one.
func (w *upWriter) drop() {
	if w.tail != nil {
		tails.Put(w.tail)
		w.tail, w.tailN = nil, 0
	}
}

// writers lends the buffer a request is written through. The write is
// over before the response is read, so a connection holds one only while
// it writes, not while it waits for the response or idles in the pool: at
// 256 connections that is 4 MiB less memory than a buffer each.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// readers lends the buffer a response is read through, on plain TCP
// connections: a connection takes one when the response's first bytes have
// arrived (idleProbe.wait, or writeWait with the request's last piece) and
// gives it back once the response is read to
// its end, so that neither the wait for a response nor the pool holds one.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

// reader returns the connection's read buffer, taking one from readers
// once there is something to read if the connection holds none.
func (pc *h1Conn) reader() *bufio.Reader {
	if pc.br == nil {
		if !pc.out.waited {
			pc.probe.wait()
		}
		pc.out.waited = false
		pc.br = readers.Get().(*bufio.Reader)
		pc.br.Reset(pc.c)
	}
	return pc.br
}

// giveBack returns a lent read buffer to readers, before the connection
// goes back to the pool. Only an empty buffer goes back, and only from the
// goroutine that read the response to its end: nothing reads through it
// any more. A connection that closes keeps its buffer, since a read in
// flight on another goroutine may still be filling it.
func (pc *h1Conn) giveBack() {
	if pc.lend && pc.br != nil && pc.br.Buffered() == 0 {
		pc.br.Reset(nil)
		readers.Put(pc.br)
		pc.br = nil
	}
}

// errHeaderTooLarge reports response headers over the limit.
var errHeaderTooLarge = &cause.Error{Cause: cause.HTTPResponseHeaderSectionSize, Phase: cause.PhaseWait, Err: errors.New("upstream response header section over 64KiB")}

// maxResponseHeader is the response header limit that the probe and the
// client package apply too.
const maxResponseHeader = limits.MaxResponseHeaderBytes

func newH1Pool(s *upstream.Server, t config.Timeouts, resolver *net.Resolver, tlsConf *tls.Config, now func() time.Time) *h1Pool {
	p := &h1Pool{
		server:   s,
		dialer:   &net.Dialer{KeepAlive: limits.TCPKeepAlive},
		resolver: resolver,
		t:        t,
		now:      now,
		maxIdle:  1024,
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	if s.URL.Scheme == "https" {
		c := tlsConf.Clone()
		c.NextProtos = []string{"http/1.1"}
		if c.ServerName == "" {
			c.ServerName = s.URL.Hostname()
		}
		p.tlsConf = c
	}
	return p
}

// get returns a pooled connection fit for reuse, or nil. Connections past
// the idle timeout, past the limit learnt for this server, or already closed
// by the peer are closed on the way: none of them has carried a byte of
// this request.
func (p *h1Pool) get(now time.Time) (*h1Conn, time.Duration) {
	if p.server.State.ReuseSuspended(now) {
		// The server was caught writing outside any response: no pooled
		// connection to it can be trusted to be in step.
		p.closeIdle(false)
		return nil, 0
	}
	limit := p.t.Idle
	if lim := p.server.State.IdleLimit(now); lim > 0 && (limit <= 0 || lim < limit) {
		limit = lim
	}
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil, 0
		}
		pc := p.rotate(now, limit)
		if pc == nil {
			pc = p.idle[n-1]
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
		}
		p.mu.Unlock()

		idle := now.Sub(pc.idleFrom)
		if _, gen := p.server.State.Addrs(); gen != pc.gen {
			// DNS changed since this connection was made: keep it only if
			// its address is still in the answer.
			if !p.server.State.HasAddr(pc.ip) {
				pc.close()
				continue
			}
			pc.gen = gen
		}
		switch {
		case p.t.Idle > 0 && idle >= p.t.Idle:
			pc.close()
			// Older ones sit below: they are past it too.
			p.closeExpired(now)
			return nil, 0
		case func() bool { lim := p.server.State.IdleLimit(now); return lim > 0 && idle > lim }():
			p.server.State.StaleRetired()
			pc.close()
			continue
		}
		// Every reuse, however short the idle time, looks at the socket
		// first: see desync.go.
		switch st, head := pc.probe.peek(); {
		case st == peekClosed || st == peekData && (pc.tls || idleNotice(head)):
			// Closed by the upstream while idle (a 408 notice is a close
			// announced; TLS records, a close_notify or a session ticket,
			// cannot be read here): its keep-alive timeout is at most this
			// idle time, or the idle time at which the FIN came when the
			// kernel can tell. Learn it before a request races it.
			p.server.State.StaleRetired()
			if ago, ok := pc.probe.closedAgo(); ok {
				// ago is the kernel's real time: this holds for p.now as
				// the real clock (a test's slow clock only loses the
				// learning, as the clamp makes idle 0).
				idle -= min(ago, idle)
			}
			if idle >= minLearnIdle {
				p.server.State.LearnIdle(idle, now)
			}
			pc.close()
			continue
		case st == peekData:
			// Bytes no request asked for: the connection is out of step.
			p.server.State.Desynced(now)
			pc.close()
			continue
		}
		return pc, idle
	}
}

// rotate takes out the oldest idle connection if it has been idle half of
// limit (the idle timeout, or the shorter limit learnt for this server),
// and returns nil otherwise; p.mu is held.
//
// The stack hands out the most recently used connection first, as nginx's
// keepalive cache does: it is the one the upstream is least likely to be
// closing. But under load whose concurrency wanders, the connections at
// the bottom serve only the busiest moments; when those come further apart
// than the idle timeout, the sweep closes them and the next peak dials
// again (TestPoolNoChurnUnderSteadyLoad shows it). nginx hides this behind a 60s keepalive_timeout;
// holdfast's is short on purpose, below the upstream's own so that holdfast
// closes first, so the bottom is rotated instead: it goes back to work while
// it is still well inside the limit, and its idle time starts over. Every
// connection is then used at least once per half limit while traffic lasts
// at one request per connection per half limit or more; below that, or when
// traffic stops, the bottom ones expire and the pool shrinks as before.
// HAProxy also keeps its idle connections while recent peaks need them, and
// purges the excess over an estimate of that need every pool-purge-delay
// (5s); rotation keeps the pool at its peak instead, within maxIdle. The
// copy that closes the gap happens at most once per connection per half
// limit.
func (p *h1Pool) rotate(now time.Time, limit time.Duration) *h1Conn {
	n := len(p.idle)
	if limit <= 0 || n < 2 {
		return nil
	}
	pc := p.idle[0]
	if idle := now.Sub(pc.idleFrom); idle < limit/2 || idle >= limit {
		return nil
	}
	copy(p.idle, p.idle[1:])
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return pc
}

func (p *h1Pool) put(pc *h1Conn, now time.Time) {
	pc.idleFrom = now
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		pc.close()
		return
	}
	p.idle = append(p.idle, pc)
	if p.sweep == nil && p.t.Idle > 0 {
		p.sweep = time.AfterFunc(p.t.Idle, p.sweepIdle)
	}
	p.mu.Unlock()
}

// sweepIdle closes connections that idled past the idle timeout, so that
// sockets do not linger once traffic stops.
func (p *h1Pool) sweepIdle() {
	p.closeExpired(p.now())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweep = nil
	if len(p.idle) > 0 && !p.closed {
		p.sweep = time.AfterFunc(p.t.Idle, p.sweepIdle)
	}
}

func (p *h1Pool) closeExpired(now time.Time) {
	p.mu.Lock()
	var expired []*h1Conn
	keep := p.idle[:0]
	for _, pc := range p.idle {
		if now.Sub(pc.idleFrom) >= p.t.Idle {
			expired = append(expired, pc)
		} else {
			keep = append(keep, pc)
		}
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = nil
	}
	p.idle = keep
	p.mu.Unlock()
	for _, pc := range expired {
		pc.close()
	}
}

// closeIdle closes every pooled connection; with final, the pool keeps no
// more.
func (p *h1Pool) closeIdle(final bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if final {
		p.closed = true
	}
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, pc := range idle {
		pc.close()
	}
}

func (pc *h1Conn) close() { pc.c.Close() }

// dial opens a connection: resolve (when the host is a name), TCP connect,
// TLS handshake, all within the connect timeout, each phase noted in tr.
func (p *h1Pool) dial(ctx context.Context, tr *attemptTrace) (*h1Conn, error) {
	if p.t.Connect > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.t.Connect)
		defer cancel()
	}
	if !tr.until.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, tr.until)
		defer cancel()
	}
	_, gen := p.server.State.Addrs()
	addrs := p.server.DialAddrs()
	if addrs == nil {
		host, port, err := net.SplitHostPort(p.server.Addr)
		if err != nil {
			return nil, err
		}
		addrs = []string{p.server.Addr}
		if net.ParseIP(host) == nil {
			tr.set(cause.PhaseResolve)
			ips, err := p.resolver.LookupHost(ctx, host)
			if err != nil {
				return nil, err
			}
			addrs = addrs[:0]
			for _, ip := range ips {
				addrs = append(addrs, net.JoinHostPort(ip, port))
			}
		}
	}
	tr.set(cause.PhaseConnect)
	var (
		c   net.Conn
		err error
	)
	for i, a := range addrs {
		// As net.Dialer does, each address gets an equal share of what
		// is left of the connect timeout, so that one that black-holes
		// SYNs does not use it all.
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && len(addrs)-i > 1 {
			share := time.Until(dl) / time.Duration(len(addrs)-i)
			dctx, cancel = context.WithTimeout(ctx, share)
		}
		c, err = p.dialer.DialContext(dctx, "tcp", a)
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	uc := &upConn{Conn: c, send: p.t.Send, state: p.server.State, now: p.now}
	uc.lastRead.Store(p.now().UnixNano())
	pc := &h1Conn{uc: uc, c: uc, gen: gen, kill: uc.kill}
	if ra, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		pc.ip = ra.IP.String()
	}
	pc.probe.init(c)
	if p.tlsConf != nil {
		tr.set(cause.PhaseTLS)
		tc := tls.Client(uc, p.tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			uc.Close()
			return nil, err
		}
		pc.c, pc.tls = tc, true
	}
	pc.out.pc = pc
	pc.out.written = pc.out.sent // a method value allocates: made once
	if pc.tls || !pc.probe.canWait() {
		// TLS reads whole records into buffers of its own anyway.
		pc.br = bufio.NewReaderSize(pc.c, 16<<10)
	} else {
		pc.lend = true
	}
	return pc, nil
}

// roundTrip sends req on a pooled or new connection and reads the response
// header. The response body reads from the connection, under the read
// timeout between reads, and gives the connection back to the pool when it
// is read to the end. ctx ending aborts any blocked read or write.
func (p *h1Pool) roundTrip(ctx context.Context, req *http.Request, tr *attemptTrace) (*http.Response, error) {
	// The head is checked before any connection is taken: a request that
	// cannot be written dials nothing (h1wire_request.go).
	var head reqHead
	if err := head.prepare(req); err != nil {
		return nil, err
	}
	for {
		now := p.now()
		pc, idle := p.get(now)
		reused := pc != nil
		if pc == nil {
			var err error
			if pc, err = p.dial(ctx, tr); err != nil {
				return nil, err
			}
			now = p.now() // the dial took its time
		}
		// now stands for the present until the request's first write:
		// only its encoding into a buffer comes before (see until below).
		// The attempt took the connection at now, or, if another
		// goroutine pooled it after now was read, when it did: a byte
		// read before that was the last response's (gotResponseByte).
		since := now
		if reused && pc.idleFrom.After(since) {
			since = pc.idleFrom
		}
		tr.gotConn(pc.uc, reused, idle, since)
		pc.uc.until = tr.until
		stop := watchCtx(ctx, pc.kill)
		start := pc.uc.Written()

		bw := writers.Get().(*bufio.Writer)
		pc.out.tr, pc.out.waited = tr, false
		bw.Reset(&pc.out)
		err := head.write(bw, req)
		var until time.Time // the read deadline, when the last piece waits
		if err == nil {
			// The last piece may go with the wait for the response
			// (upWriter) only when no answer can be on its way yet:
			// nothing of this request has gone out (an upstream may
			// answer a body's first bytes early), the connection was
			// looked at and found quiet just before (reused), and a read
			// deadline bounds the wait. Bytes that arrive before
			// RawConn.Read arms the poller afresh wake nobody: a close
			// or stray bytes from the upstream in the microseconds since
			// the look are then found only by what the write provokes
			// (a reset), or at the read deadline.
			if pc.lend && reused && pc.uc.Written() == start {
				until = pc.uc.bound(now, p.t.Read)
			}
			pc.out.last = !until.IsZero()
			err = bw.Flush()
			pc.out.last = false
		}
		bw.Reset(nil) // what was not sent is dropped, never sent elsewhere
		writers.Put(bw)
		if err == nil && pc.out.tail != nil {
			pc.uc.setReadDeadline(until)
			err = pc.out.send()
		}
		pc.out.drop()
		if err != nil {
			if pc.uc.Written() > start && ctx.Err() == nil {
				// Part of the request went out and then the upstream
				// stopped reading: it may have answered early (a 413 or
				// 401 before the body) and closed. That answer is the
				// one to pass on.
				pc.uc.setReadDeadline(p.now().Add(earlyResponseGrace))
				pc.uc.readLimit.Store(maxResponseHeader)
				r, rerr := readResponse(pc.reader(), req, &pc.head)
				pc.uc.readLimit.Store(0)
				if rerr == nil {
					r.resp.Close = true // the connection is not reusable
					return r.bind(pc, p, stop, req), nil
				}
			}
			stop.off()
			pc.close()
			if reused && pc.uc.Written() == start && ctx.Err() == nil && rewind(req) {
				// Closed under us before a byte left: try another.
				p.server.State.StaleRetired()
				continue
			}
			return nil, err
		}
		tr.set(cause.PhaseWait)

		if !pc.out.waited {
			// The read timeout runs from the end of the write (from
			// just before the last piece, when it went with the wait).
			if d := pc.uc.bound(p.now(), p.t.Read); !d.IsZero() {
				pc.uc.setReadDeadline(d)
			}
		}
		pc.uc.readLimit.Store(maxResponseHeader)
		r, err := readResponse(pc.reader(), req, &pc.head)
		pc.uc.readLimit.Store(0)
		pc.uc.until = time.Time{} // the total deadline ends with the header
		if err != nil {
			stop.off()
			pc.close()
			if pc.uc.overLimit.Load() {
				return nil, errHeaderTooLarge
			}
			return nil, err
		}
		pc.uc.setReadDeadline(time.Time{})
		return r.bind(pc, p, stop, req), nil
	}
}

// doneWatcher is a request context that can tell one party of its end
// without an allocation: the HTTP/1.1 server's (internal/h1).
type doneWatcher interface {
	WatchDone(f func()) uint64
	UnwatchDone(token uint64) bool
}

// killSwitch aborts an attempt's connection when the attempt's context
// ends, until it is turned off.
type killSwitch struct {
	w     interface{ UnwatchDone(token uint64) bool }
	token uint64
}

// afterFuncStop is the stop function of context.AfterFunc, for a context
// that is not a doneWatcher (or whose watcher is taken).
type afterFuncStop func() bool

func (f afterFuncStop) UnwatchDone(uint64) bool { return f() }

// watchCtx arranges for kill to run once ctx ends, as context.AfterFunc
// does, without its allocations when ctx is the HTTP/1.1 server's.
func watchCtx(ctx context.Context, kill func()) killSwitch {
	if w, ok := ctx.(doneWatcher); ok {
		if t := w.WatchDone(kill); t != 0 {
			return killSwitch{w: w, token: t}
		}
	}
	return killSwitch{w: afterFuncStop(context.AfterFunc(ctx, kill))}
}

// off turns the switch off, and reports whether it did so before the
// context's end ran kill.
func (k killSwitch) off() bool { return k.w.UnwatchDone(k.token) }

// bind makes the response's body the connection's: reading it to the end
// gives the connection back to the pool.
func (r *h1Response) bind(pc *h1Conn, p *h1Pool, stop killSwitch, req *http.Request) *http.Response {
	b := &r.body
	b.pc, b.pool, b.stop, b.req = pc, p, stop, req
	r.resp.Body = b
	return &r.resp
}

// earlyResponseGrace is how long a request whose write failed part way
// waits for a response the upstream may have sent before it stopped
// reading (net/http's Transport waits 50ms too).
const earlyResponseGrace = 50 * time.Millisecond

// rewind makes req's body readable again for another connection, and
// reports whether it could.
func rewind(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	if b, ok := req.Body.(*bytesBody); ok {
		b.Seek(0, io.SeekStart)
		return true
	}
	if req.GetBody == nil {
		return false
	}
	b, err := req.GetBody()
	if err != nil {
		return false
	}
	req.Body = b
	return true
}

// h1Body is a response body on a pooled connection.
type h1Body struct {
	wb   wireBody // reads the body as it is delimited
	pc   *h1Conn
	pool *h1Pool
	stop killSwitch
	resp *http.Response
	req  *http.Request
	done bool
	dl   bool // Read set a read deadline on the connection
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	// The read timeout runs between reads of the socket: a read that the
	// buffer answers (as it answers all of a small body that came with
	// the head) needs no deadline, and one that reads the socket sets
	// its own. roundTrip cleared the head's (or left an early
	// response's grace, on a connection closed after it).
	if b.pool.t.Read > 0 && !b.wb.buffered() {
		b.pc.uc.setReadDeadline(b.pool.now().Add(b.pool.t.Read))
		b.dl = true
	}
	n, err := b.wb.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

// Close gives the connection back if the body was read to the end, and
// closes it otherwise: what is left of a body is not worth reading.
func (b *h1Body) Close() error {
	b.finish(false)
	return nil
}

func (b *h1Body) finish(complete bool) {
	if b.done {
		return
	}
	b.done = true
	aborted := !b.stop.off() // the context ended: the deadline may be poisoned
	if complete && !aborted && !b.resp.Close && !b.req.Close {
		now := b.pool.now()
		switch b.pc.afterResponse() {
		case peekData:
			// Bytes beyond the end of the response: the next request
			// would be answered with them (see desync.go).
			b.pool.server.State.Desynced(now)
		case peekOpen:
			if !b.pool.server.State.ReuseSuspended(now) {
				if b.dl {
					b.pc.uc.setReadDeadline(time.Time{})
				}
				b.wb.br, b.wb.cr = nil, nil // the buffer may serve another connection now
				b.pc.giveBack()
				b.pool.put(b.pc, now)
				return
			}
		}
	}
	b.pc.close()
}

// afterResponse says what follows the response just read: nothing yet
// (peekOpen), bytes already buffered (peekData), or, over TLS, the end of
// the connection (peekClosed). Bytes still in the kernel's socket buffer
// are found by the peek when the connection is next taken from the pool;
// for TLS, whole records the TLS layer has already read from the socket
// are invisible to that peek, so a read that cannot wait looks at them now.
func (pc *h1Conn) afterResponse() peekState {
	if pc.br.Buffered() > 0 {
		return peekData
	}
	if !pc.tls {
		return peekOpen
	}
	pc.uc.Conn.SetReadDeadline(aLongTimeAgo)
	_, err := pc.br.Peek(1)
	pc.uc.setReadDeadline(time.Time{})
	var ne net.Error
	switch {
	case err == nil:
		return peekData
	case errors.As(err, &ne) && ne.Timeout():
		return peekOpen
	}
	return peekClosed // a close_notify read, or the connection failed
}
