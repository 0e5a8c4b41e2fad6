package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/limits"
	"github.com/holdfast/holdfast/internal/upstream"
)

// Transports keeps one http.Transport per upstream server and timeout
// settings (for 100-continue and upgrades, never pooled), and one of
// holdfast's own HTTP/1.1 client pools, so that pooled connections survive a reload for servers whose
// settings did not change. It is safe for concurrent use.
type Transports struct {
	// Resolver resolves upstream names. nil means net.DefaultResolver.
	Resolver *net.Resolver
	// TLSConfig is the base TLS configuration for https upstreams (root CAs
	// for tests, for instance). nil means the system roots.
	TLSConfig *tls.Config
	// Now is the clock. nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	m  map[transportKey]*http.Transport
	h1 map[transportKey]*h1Pool
}

type transportKey struct {
	url      string
	timeouts config.Timeouts
}

// For returns the transport for server s of a pool with timeouts t.
func (ts *Transports) For(s *upstream.Server, t config.Timeouts) *http.Transport {
	k := transportKey{s.URL.String(), t}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if tr, ok := ts.m[k]; ok {
		return tr
	}
	if ts.m == nil {
		ts.m = make(map[transportKey]*http.Transport)
	}
	tr := ts.newTransport(s, t)
	ts.m[k] = tr
	return tr
}

// h1For returns holdfast's own HTTP/1.1 client for server s with timeouts t.
func (ts *Transports) h1For(s *upstream.Server, t config.Timeouts) *h1Pool {
	k := transportKey{s.URL.String(), t}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if p, ok := ts.h1[k]; ok {
		return p
	}
	if ts.h1 == nil {
		ts.h1 = make(map[transportKey]*h1Pool)
	}
	base := ts.TLSConfig
	if base == nil {
		base = &tls.Config{}
	}
	p := newH1Pool(s, t, ts.Resolver, base, ts.now)
	ts.h1[k] = p
	return p
}

// Retain closes and forgets the transports not used by the given pools,
// after a reload.
func (ts *Transports) Retain(pools []*upstream.Pool) {
	keep := make(map[transportKey]bool)
	for _, p := range pools {
		for _, s := range p.Servers {
			keep[transportKey{s.URL.String(), p.Config.Timeouts}] = true
		}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for k, tr := range ts.m {
		if !keep[k] {
			tr.CloseIdleConnections()
			delete(ts.m, k)
		}
	}
	for k, p := range ts.h1 {
		if !keep[k] {
			p.closeIdle(true)
			delete(ts.h1, k)
		}
	}
}

// CloseIdle closes every pooled idle connection.
func (ts *Transports) CloseIdle() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, tr := range ts.m {
		tr.CloseIdleConnections()
	}
	for _, p := range ts.h1 {
		p.closeIdle(false)
	}
}

func (ts *Transports) now() time.Time {
	if ts.Now != nil {
		return ts.Now()
	}
	return time.Now()
}

func (ts *Transports) newTransport(s *upstream.Server, t config.Timeouts) *http.Transport {
	d := &net.Dialer{
		Timeout:   t.Connect,
		KeepAlive: limits.TCPKeepAlive,
		Resolver:  ts.Resolver,
	}
	st := s.State
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		addrs := s.DialAddrs()
		if addrs == nil {
			addrs = []string{addr}
		}
		var (
			c   net.Conn
			err error
		)
		for _, a := range addrs {
			if c, err = d.DialContext(ctx, network, a); err == nil || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		uc := &upConn{Conn: c, send: t.Send, state: st, now: ts.now}
		uc.lastRead.Store(ts.now().UnixNano())
		return uc, nil
	}
	var tlsConf *tls.Config
	if ts.TLSConfig != nil {
		tlsConf = ts.TLSConfig.Clone()
	} else {
		tlsConf = &tls.Config{}
	}
	tlsConf.NextProtos = nil // HTTP/1.1 to upstreams, as nginx
	return &http.Transport{
		Proxy:               nil, // never an environment proxy: holdfast is the proxy
		DialContext:         dial,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: t.Connect,
		DisableCompression:  true,
		// This transport carries only 100-continue requests and upgrades.
		// An upgraded connection is never reused anyway; a 100-continue
		// request has a body worth a fresh connection. Not pooling here
		// means every pooled connection is holdfast's own, checked for
		// being in step at each reuse (desync.go).
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  t.Read,
		ExpectContinueTimeout:  limits.ExpectContinueTimeout,
		MaxResponseHeaderBytes: limits.MaxResponseHeaderBytes,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
		ForceAttemptHTTP2:      false,
	}
}

// upConn wraps every upstream connection. It applies the send timeout to
// every write, counts the bytes written so that an attempt knows whether
// any request byte left, bounds what may be read of a response header, and
// learns the upstream's keep-alive timeout from idle closes.
type upConn struct {
	net.Conn
	send  time.Duration
	state *upstream.State
	// until is the attempt's total deadline (retry.timeout) while a
	// request is written and its header awaited; zero otherwise. Set and
	// read on the attempt's goroutine only (holdfast's own client).
	until time.Time
	now   func() time.Time

	readLimit atomic.Int64 // while > 0, bytes that may still be read (the response header limit)
	overLimit atomic.Bool  // a read went past readLimit
	lastRead  atomic.Int64 // unix ns of the last read that returned data
	lastWrite atomic.Int64 // unix ns of the last write
	written   atomic.Int64 // bytes written
	dead      atomic.Bool  // killed: the attempt's context ended
	writeErr  atomic.Pointer[error]
}

func (c *upConn) Read(p []byte) (int, error) {
	if lim := c.readLimit.Load(); lim > 0 {
		if int64(len(p)) > lim {
			p = p[:lim]
		}
	} else if lim < 0 {
		c.overLimit.Store(true)
		return 0, errHeaderTooLarge
	}
	n, err := c.Conn.Read(p)
	if lim := c.readLimit.Load(); lim > 0 {
		c.readLimit.Store(lim - int64(n))
		if lim-int64(n) == 0 {
			c.readLimit.Store(-1)
		}
	}
	if n > 0 {
		c.lastRead.Store(c.now().UnixNano())
	} else if err != nil && c.idleClose(err) {
		// The upstream closed a connection that sat idle in the pool:
		// that is its keep-alive timeout, learnt before any request races
		// it. A close right after a response (Connection: close, or a body
		// delimited by the close) says nothing about idling.
		now := c.now()
		if idle := time.Duration(now.UnixNano() - c.lastRead.Load()); idle >= minLearnIdle {
			c.state.LearnIdle(idle, now)
		}
	}
	return n, err
}

// minLearnIdle is the shortest idle time taken as an upstream's keep-alive
// timeout.
const minLearnIdle = 5 * time.Millisecond

// idleClose reports whether err ends a connection that the upstream closed
// while it was idle: the last thing on it was a response, not a request.
func (c *upConn) idleClose(err error) bool {
	lr, lw := c.lastRead.Load(), c.lastWrite.Load()
	if lw == 0 || lr < lw {
		return false // nothing sent yet, or a request is outstanding
	}
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

func (c *upConn) Write(p []byte) (int, error) {
	now := c.now()
	c.lastWrite.Store(now.UnixNano())
	if d := c.bound(now, c.send); !d.IsZero() {
		if err := c.Conn.SetWriteDeadline(d); err != nil {
			return 0, err
		}
	}
	if c.dead.Load() {
		// Killed after the check above could see it: the deadline just set
		// must not undo the kill.
		c.Conn.SetDeadline(aLongTimeAgo)
		return 0, os.ErrDeadlineExceeded
	}
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	if err != nil {
		e := err // a copy, so that err itself does not escape on every call
		c.writeErr.Store(&e)
	}
	return n, err
}

// writeWait writes p and, when all of it went at once, waits for the
// response's first bytes (idleProbe.writeWait: one system call less than a
// write and then a wait); written is called between the two. What did not
// go at once is written as Write writes it, and then waited reports false:
// the wait is the read's.
func (c *upConn) writeWait(probe *idleProbe, p []byte, written func()) (n int, waited bool, err error) {
	c.lastWrite.Store(c.now().UnixNano())
	if !c.dead.Load() {
		n, err, waited = probe.writeWait(p, written)
		c.written.Add(int64(n))
		if err != nil {
			err = &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
			e := err
			c.writeErr.Store(&e)
			return n, false, err
		}
	}
	if n < len(p) {
		m, err := c.Write(p[n:])
		return n + m, false, err
	}
	return n, waited, nil
}

// bound returns the deadline of an operation starting at now that may take
// d (0: no limit), cut short by the attempt's total deadline; zero for none.
func (c *upConn) bound(now time.Time, d time.Duration) time.Time {
	var t time.Time
	if d > 0 {
		t = now.Add(d)
	}
	if !c.until.IsZero() && (t.IsZero() || c.until.Before(t)) {
		t = c.until
	}
	return t
}

// aLongTimeAgo is a deadline that has passed: setting it wakes any blocked
// read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// kill aborts whatever the connection is blocked on, for good: later
// deadlines set by the attempt cannot revive it.
func (c *upConn) kill() {
	c.dead.Store(true)
	c.Conn.SetDeadline(aLongTimeAgo)
}

// setReadDeadline sets the read deadline unless the connection was killed.
func (c *upConn) setReadDeadline(t time.Time) {
	c.Conn.SetReadDeadline(t)
	if c.dead.Load() {
		c.Conn.SetDeadline(aLongTimeAgo)
	}
}

// WriteErr returns the error of the last failed write on the socket, or nil.
// net/http's request writer hides such errors inside an unexported type
// when they strike while copying a body.
func (c *upConn) WriteErr() error {
	if p := c.writeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Written returns the bytes written on the connection so far.
func (c *upConn) Written() int64 { return c.written.Load() }

// IdleSince returns when the connection last received data.
func (c *upConn) IdleSince() time.Time { return time.Unix(0, c.lastRead.Load()) }

// unwrapUpConn finds the upConn under a connection handed out by the
// transport (itself, or the raw connection of a TLS connection).
func unwrapUpConn(c net.Conn) *upConn {
	switch v := c.(type) {
	case *upConn:
		return v
	case *tls.Conn:
		if u, ok := v.NetConn().(*upConn); ok {
			return u
		}
	}
	return nil
}
