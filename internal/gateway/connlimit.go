package gateway

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/holdfast/holdfast/internal/h1"
)

// client.max_connections. An idle keep-alive connection costs memory (a
// few hundred bytes parked in plain HTTP/1.1, tens of kilobytes with TLS:
// buffers, a goroutine, TLS state), so a flood of them exhausts
// memory long before it exhausts file descriptors: holdfast caps the client
// connections open at once over all its listeners. The count is the
// Gateway's, so it spans the listeners of every configuration, those still
// draining after a reload included, and a reload only moves the cap.
//
// The limit sits right above the socket, below the framing scanner and TLS:
// what net/http sees is unchanged (the framingConn it expects, or the TLS
// connection it must own), and a connection counts from accept until it is
// closed, hijacked ones (WebSocket tunnels) included.

// connLimit is the count of client connections and its cap.
type connLimit struct {
	max     atomic.Int64
	open    atomic.Int64
	refused atomic.Uint64
	log     *slog.Logger

	mu      sync.Mutex // guards what follows: the rate-limited warning
	lastLog time.Time
	pending uint64      // refused since the last line
	flush   *time.Timer // set while a line for pending is due
}

func newConnLimit(max int, log *slog.Logger) *connLimit {
	l := &connLimit{log: log}
	l.max.Store(int64(max))
	return l
}

// setMax moves the cap. Connections already open stay; if they are over the
// new cap, new ones are refused until enough have closed.
func (l *connLimit) setMax(max int) { l.max.Store(int64(max)) }

// acquire takes a slot, or reports false if none is free.
func (l *connLimit) acquire() bool {
	for {
		n := l.open.Load()
		if n >= l.max.Load() {
			return false
		}
		if l.open.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (l *connLimit) release() { l.open.Add(-1) }

// refuse counts a refused connection and warns, at most once a second: a
// flood must not turn into a flood of log lines. Refusals within the second
// after a line are told by the next one, due a second after it.
func (l *connLimit) refuse() {
	l.refused.Add(1)
	l.mu.Lock()
	l.pending++
	n := l.due(time.Now())
	l.mu.Unlock()
	l.warn(n)
}

// flushed runs when a line for refusals told late is due.
func (l *connLimit) flushed() {
	l.mu.Lock()
	l.flush = nil
	n := l.due(time.Now())
	l.mu.Unlock()
	l.warn(n)
}

// due returns how many refusals to tell now, or 0 when a line was written
// less than a second ago (a line is then scheduled). l.mu is held.
func (l *connLimit) due(now time.Time) uint64 {
	if l.pending == 0 {
		return 0
	}
	if wait := time.Second - now.Sub(l.lastLog); wait > 0 {
		if l.flush == nil {
			l.flush = time.AfterFunc(wait, l.flushed)
		}
		return 0
	}
	n := l.pending
	l.pending, l.lastLog = 0, now
	return n
}

func (l *connLimit) warn(n uint64) {
	if n == 0 {
		return
	}
	l.log.Warn("client connections refused: client.max_connections reached",
		"refused", n, "max_connections", l.max.Load(), "refused_total", l.refused.Load())
}

// limitListener closes the connections it accepts beyond the cap at once.
type limitListener struct {
	net.Listener
	lim *connLimit
}

func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ln.lim.acquire() {
			return &limitConn{Conn: c, lim: ln.lim}, nil
		}
		// Accepted and closed, rather than left in the backlog: the client
		// learns at once, and the kernel's queue does not fill with
		// connections that would be stale by the time a slot frees.
		// Counted first: whoever sees the close sees the count.
		ln.lim.refuse()
		c.Close()
	}
}

// limitConn holds its slot until it is closed.
type limitConn struct {
	net.Conn
	lim    *connLimit
	closed atomic.Bool
}

// Close gives the slot back, once however often it is called (net/http,
// TLS and a tunnel may each close the same connection).
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.lim.release()
	}
	return err
}

// RefusedConnections returns how many client connections were refused since
// the gateway started because client.max_connections were open already. It
// only grows; reloads do not reset it.
func (g *Gateway) RefusedConnections() uint64 { return g.conns.refused.Load() }

// NetConn returns the connection it wraps. With SetNetConn, it lets the
// HTTP/1.1 server park an idle connection as its socket alone (see
// h1.ConnWrapper): the slot stays taken until the wrapper is closed.
func (c *limitConn) NetConn() net.Conn { return c.Conn }

// SetNetConn makes nc the wrapped connection: the same socket, made again
// when a parked connection's next request arrives.
func (c *limitConn) SetNetConn(nc net.Conn) { c.Conn = nc }

// SyscallConn exposes the socket, so that the HTTP/1.1 server can wait for
// a request on an idle connection without holding a buffer.
func (c *limitConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite half-closes the connection, for a graceful close after a
// request whose body was not read.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// A parked client connection keeps its slot through the wrapper.
var _ h1.ConnWrapper = (*limitConn)(nil)
