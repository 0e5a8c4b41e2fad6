package cause

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// Tracker follows one HTTP attempt made with net/http through its client
// trace hooks: the furthest phase reached, whether the connection was
// reused, and whether any of the request was written. With those, an error
// from the attempt is classified by [Tracker.Classify], and a retry
// decision can ask [Tracker.Written].
//
// Use one Tracker per attempt: attach it with [Tracker.WithContext] before
// sending. Its methods are safe for concurrent use, as net/http calls the
// hooks from its own goroutines. The zero value is ready; a Tracker from
// [AcquireTracker] is reused once its attempt is over (see there).
type Tracker struct {
	phase   atomic.Uint32
	reused  atomic.Bool
	written atomic.Bool
	idle    atomic.Int64

	// Only for a Tracker from AcquireTracker:
	pooled bool
	life   atomic.Uint32         // what the attempt went through: the life* bits
	gen    atomic.Uint64         // bumped at each reuse, which detaches older contexts
	trace  httptrace.ClientTrace // the hooks, bound to this Tracker once
	hooks  context.Context       // the Background context carrying trace
}

// The life bits of a pooled Tracker. It goes back to the pool only when
// nothing net/http still holds can call its hooks again: the attempt got an
// HTTP/1 connection straight from the idle pool, so no dial was started
// for it (a dial runs on in the background with the attempt's hooks, even
// when the attempt got another connection), the request was written to
// its end (net/http may still be writing it after an early response), and
// the caller is done with the response.
const (
	lifeGotConn  = 1 << iota // a connection was handed to the attempt
	lifeWriting              // a connection was handed over, its request not yet written
	lifeTainted              // a dial hook fired, or the connection was HTTP/2 or not from the idle pool: never reused
	lifeDone                 // Release was called
	lifeReleased             // back in the pool
)

// trackers holds the Trackers of AcquireTracker.
var trackers sync.Pool

func init() { trackers.New = newPooledTracker }

// holdBack, when set, takes released Trackers instead of the pool: tests
// hold them out of use for a while, so that a hook arriving too late
// finds its Tracker still released and is caught.
var holdBack atomic.Pointer[func(*Tracker)]

// newPooledTracker makes a Tracker for the pool, its hooks built once.
func newPooledTracker() any {
	t := &Tracker{pooled: true}
	t.trace = httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) {
			t.life.Or(lifeTainted)
			t.advance(PhaseResolve)
		},
		ConnectStart: func(string, string) {
			t.life.Or(lifeTainted)
			t.advance(PhaseConnect)
		},
		TLSHandshakeStart: func() {
			t.life.Or(lifeTainted)
			t.advance(PhaseTLS)
		},
		GotConn: func(info httptrace.GotConnInfo) {
			bits := uint32(lifeGotConn | lifeWriting)
			if !info.WasIdle || isHTTP2(info.Conn) {
				bits |= lifeTainted
			}
			t.life.Or(bits)
			t.gotConn(info)
		},
		WroteHeaders: t.wroteHeaders,
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			t.wroteRequest(info)
			t.life.And(^uint32(lifeWriting))
			t.maybeRelease() // last: the Tracker may be reused from here on
		},
		GotFirstResponseByte: func() { t.advance(PhaseWait) },
	}
	t.hooks = httptrace.WithClientTrace(context.Background(), &t.trace)
	return t
}

// isHTTP2 reports whether c is a TLS connection that negotiated HTTP/2.
// Over HTTP/2, net/http's own pool reports GotConn, and its WasIdle says
// only that the connection had no stream open, not that no dial was
// started for the attempt: such an attempt is never reused.
func isHTTP2(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}

// AcquireTracker returns a Tracker for one attempt that goes back to a pool
// for a later attempt once the attempt is over, which saves the dozen
// allocations of building the hooks each time. Call [Tracker.Release] once
// when done with the attempt's response (its body closed, or none); the
// Tracker is reused only when, besides, its attempt ran over HTTP/1 on a
// connection taken from the idle pool and its request was written to its
// end: then net/http holds nothing that can call its hooks. Otherwise (the
// attempt dialed, waited for a connection, went over HTTP/2, failed, or
// Release was never called) it is left to the garbage collector. After
// Release, read nothing from the Tracker.
//
// The rule holds for net/http's own Transport over HTTP/1.1 and TLS. Use
// it only with an *http.Transport that does not speak unencrypted HTTP/2
// (its Protocols); another RoundTripper may call hooks after RoundTrip
// returns, or call them for another request with the same context, and
// should get a Tracker of its own (the zero value).
//
// A context from WithContext carries the hooks only until the Tracker is
// reused; then it carries its parent's values alone, so a request kept
// past its attempt (resp.Request) cannot reach the next attempt's hooks.
func AcquireTracker() *Tracker {
	t := trackers.Get().(*Tracker)
	t.phase.Store(0)
	t.reused.Store(false)
	t.written.Store(false)
	t.idle.Store(0)
	t.life.Store(0)
	return t
}

// Release says the caller is done with the tracked attempt's response.
// Call it at most once: a second call could come after the Tracker went to
// another attempt. It is a no-op for a Tracker that does not come from
// AcquireTracker.
func (t *Tracker) Release() {
	if !t.pooled {
		return
	}
	t.life.Or(lifeDone)
	t.maybeRelease()
}

// maybeRelease puts the Tracker back in the pool, once, when its attempt
// can no longer call its hooks.
func (t *Tracker) maybeRelease() {
	for {
		old := t.life.Load()
		if old&(lifeGotConn|lifeWriting|lifeTainted|lifeDone|lifeReleased) != lifeGotConn|lifeDone {
			return
		}
		if t.life.CompareAndSwap(old, old|lifeReleased) {
			t.gen.Add(1)
			if hold := holdBack.Load(); hold != nil {
				(*hold)(t)
				return
			}
			trackers.Put(t)
			return
		}
	}
}

// WithContext returns ctx carrying the tracker's hooks, composed with any
// trace already in ctx.
func (t *Tracker) WithContext(ctx context.Context) context.Context {
	if t.pooled && httptrace.ContextClientTrace(ctx) == nil {
		return &tracedCtx{Context: ctx, t: t, gen: t.gen.Load()}
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { t.advance(PhaseResolve) },
		ConnectStart:      func(string, string) { t.advance(PhaseConnect) },
		TLSHandshakeStart: func() { t.advance(PhaseTLS) },
		GotConn: func(info httptrace.GotConnInfo) {
			if t.pooled {
				t.life.Or(lifeTainted) // composed with another trace: never reused
			}
			t.gotConn(info)
		},
		WroteHeaders:         t.wroteHeaders,
		WroteRequest:         t.wroteRequest,
		GotFirstResponseByte: func() { t.advance(PhaseWait) },
	})
}

// tracedCtx is a context carrying a pooled Tracker's hooks on top of its
// parent without building them again: it answers the trace's keys from
// the Tracker's own context while the Tracker serves its attempt (the
// generation it was made in), and everything else from the parent.
type tracedCtx struct {
	context.Context
	t   *Tracker
	gen uint64
}

// Value implements context.Context.
func (c *tracedCtx) Value(key any) any {
	if c.t.gen.Load() == c.gen {
		if v := c.t.hooks.Value(key); v != nil {
			return v
		}
	}
	return c.Context.Value(key)
}

func (t *Tracker) gotConn(info httptrace.GotConnInfo) {
	t.advance(PhaseWrite)
	t.reused.Store(info.Reused)
	t.idle.Store(int64(info.IdleTime))
}

// wroteHeaders marks the request written. WroteHeaders fires once the
// header is in the connection's write buffer, perhaps not yet on the wire:
// counting it as written errs on the safe side for retry decisions.
func (t *Tracker) wroteHeaders() { t.written.Store(true) }

// wroteRequest ends the write: what comes next is the wait for the
// response.
func (t *Tracker) wroteRequest(info httptrace.WroteRequestInfo) {
	if info.Err == nil {
		t.advance(PhaseWait)
	}
}

func (t *Tracker) advance(p Phase) {
	for {
		cur := t.phase.Load()
		if cur >= uint32(p) || t.phase.CompareAndSwap(cur, uint32(p)) {
			return
		}
	}
}

// Phase returns the furthest phase the attempt reached.
func (t *Tracker) Phase() Phase { return Phase(t.phase.Load()) }

// Reading marks that the response header arrived: later errors come from
// reading the body.
func (t *Tracker) Reading() { t.advance(PhaseRead) }

// Written reports whether any part of the request may have left: once
// true, only an idempotent request may be sent again.
func (t *Tracker) Written() bool { return t.written.Load() }

// Reused reports whether the attempt ran on a pooled connection.
func (t *Tracker) Reused() bool { return t.reused.Load() }

// IdleTime returns how long the pooled connection had idled, if reused.
func (t *Tracker) IdleTime() time.Duration { return time.Duration(t.idle.Load()) }

// Classify names the cause of err, which ended the tracked attempt.
func (t *Tracker) Classify(err error) Cause { return Classify(err, t.Phase()) }

// RetryableFor reports whether the attempt, having failed with c, may be
// sent again: see [Cause.RetryableFor], with what the tracker saw written.
func (t *Tracker) RetryableFor(c Cause, idempotent bool) bool {
	return c.RetryableFor(idempotent, t.Written())
}
