package cause

import (
	"context"
	"crypto/tls"
	"net/http/httptrace"
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
// hooks from its own goroutines. The zero value is ready.
type Tracker struct {
	phase   atomic.Uint32
	reused  atomic.Bool
	written atomic.Bool
	idle    atomic.Int64
}

// WithContext returns ctx carrying the tracker's hooks, composed with any
// trace already in ctx.
func (t *Tracker) WithContext(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { t.advance(PhaseResolve) },
		ConnectStart:      func(string, string) { t.advance(PhaseConnect) },
		TLSHandshakeStart: func() { t.advance(PhaseTLS) },
		TLSHandshakeDone:  func(tls.ConnectionState, error) {},
		GotConn: func(info httptrace.GotConnInfo) {
			t.advance(PhaseWrite)
			t.reused.Store(info.Reused)
			t.idle.Store(int64(info.IdleTime))
		},
		// WroteHeaders fires once the header is in the connection's write
		// buffer, perhaps not yet on the wire: counting it as written errs
		// on the safe side for retry decisions.
		WroteHeaders: func() { t.written.Store(true) },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				t.advance(PhaseWait)
			}
		},
		GotFirstResponseByte: func() { t.advance(PhaseWait) },
	})
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
