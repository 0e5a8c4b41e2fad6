package client

import (
	"fmt"
	"sync"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// BudgetConfig sets the retry budget kept per host, a token bucket in the
// manner of gRPC's retry throttling: the bucket starts full at MaxTokens,
// every failed attempt takes one token, every successful one gives back
// TokenRatio, and a retry is allowed only while more than half of
// MaxTokens remain. With the defaults (10 tokens, 0.1), after a quiet
// spell four failures in a row are all retried and the fifth is not; under
// sustained failure retries go on only as fast as successes earn them back
// (one per ten successes), so they add at most about a tenth to the load
// on a struggling host.
//
// The zero value is the default budget.
type BudgetConfig struct {
	// Disabled turns the budget off: retries are bounded only by
	// MaxAttempts and the deadline.
	Disabled bool
	// MaxTokens is the bucket's size. If zero, 10.
	MaxTokens float64
	// TokenRatio is what a success gives back. If zero, 0.1.
	TokenRatio float64
}

// BreakerConfig sets the circuit breaker kept per host. Closed, it counts
// attempts over a rolling Window; when at least MinAttempts were made and
// at least FailureRatio of them failed, it opens: attempts to the host are
// refused at once with cause destination_unavailable (and go to the next
// fallback, if any) for CoolDown. Then it is half-open: up to
// HalfOpenProbes attempts go through; the first that succeeds closes it,
// the first that fails opens it for another CoolDown.
//
// A failure is what the Transport retries on: a connection error or
// timeout, 502, 503, 504 (and 429 with Retry429). A request canceled by its
// caller counts as nothing. The zero value is the default breaker.
type BreakerConfig struct {
	// Disabled turns the breaker off.
	Disabled bool
	// FailureRatio is the share of failed attempts that opens the circuit.
	// If zero, 0.5: a host failing half the time is better left alone.
	FailureRatio float64
	// MinAttempts is how many attempts the window must hold before the
	// ratio counts, so that two failures in a quiet minute do not open it.
	// If zero, 10.
	MinAttempts int
	// Window is the rolling window the ratio is taken over. If zero, 10s.
	Window time.Duration
	// CoolDown is how long the circuit stays open. If zero, 5s: long
	// enough not to hammer a restarting server, short enough to find a
	// recovered one quickly.
	CoolDown time.Duration
	// HalfOpenProbes is how many attempts may be in flight while
	// half-open. If zero, 3: one unlucky probe does not keep a recovered
	// host shunned, and a dead host costs at most three failures per
	// CoolDown.
	HalfOpenProbes int
}

// outcome is what an attempt tells the budget and the breaker.
type outcome uint8

const (
	ignored outcome = iota // canceled by the caller, or the request's own fault
	success
	failure
)

func outcomeOf(c cause.Cause) outcome {
	switch c {
	case cause.None:
		return success
	case cause.ClientClosed, cause.HTTPRequestError:
		return ignored
	}
	return failure
}

// host is the state kept per upstream host.
type host struct {
	budget   budget
	breaker  breaker
	throttle throttle
	lastUsed time.Time // guarded by Transport.mu
}

// newHost returns the state of the host keyed key ("https://api.example.com"),
// configured by t.
func newHost(t *Transport, key string) *host {
	bc, kc := t.Budget, t.Breaker
	h := &host{}
	h.budget.off = bc.Disabled
	h.budget.max = orDefault(bc.MaxTokens, 10)
	h.budget.ratio = orDefault(bc.TokenRatio, 0.1)
	h.budget.tokens = h.budget.max
	h.breaker.off = kc.Disabled
	h.breaker.ratio = orDefault(kc.FailureRatio, 0.5)
	h.breaker.minAttempts = orDefault(kc.MinAttempts, 10)
	h.breaker.slot = max(orDefault(kc.Window, 10*time.Second)/slots, 1)
	h.breaker.coolDown = orDefault(kc.CoolDown, 5*time.Second)
	h.breaker.probes = orDefault(kc.HalfOpenProbes, 3)
	if k := t.AdaptiveThrottle.K; k > 0 {
		h.throttle.k = max(k, 1)
	}
	if f := t.OnStateChange; f != nil {
		h.breaker.notify = func(from, to BreakerState) { f(key, from, to) }
	}
	return h
}

func orDefault[T int | float64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

type budget struct {
	off        bool
	max, ratio float64

	mu     sync.Mutex
	tokens float64
}

// allow reports whether a retry may be sent to the host.
func (b *budget) allow() bool {
	if b.off {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens > b.max/2
}

// spend takes a token for a hedge, if a retry would be allowed.
func (b *budget) spend() bool {
	if b.off {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens <= b.max/2 {
		return false
	}
	b.tokens--
	return true
}

// refund gives back the token of a hedge that was not sent.
func (b *budget) refund() {
	if b.off {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.tokens+1, b.max)
}

func (b *budget) record(o outcome) {
	if b.off || o == ignored {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if o == failure {
		b.tokens = max(b.tokens-1, 0)
	} else {
		b.tokens = min(b.tokens+b.ratio, b.max)
	}
}

const slots = 10 // the rolling window is kept in ten slots

// BreakerState is the state of a host's circuit breaker. The zero value
// is BreakerClosed.
type BreakerState uint8

// The states of a circuit breaker; see BreakerConfig.
const (
	BreakerClosed   BreakerState = iota // attempts go through, and are counted
	BreakerOpen                         // attempts are refused at once, for CoolDown
	BreakerHalfOpen                     // up to HalfOpenProbes attempts go through, to test the host
)

// String returns "closed", "open" or "half-open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("BreakerState(%d)", uint8(s))
}

type breaker struct {
	off         bool
	ratio       float64
	minAttempts int
	slot        time.Duration
	coolDown    time.Duration
	probes      int

	// notify, if not nil, is told of every transition, without mu held.
	notify func(from, to BreakerState)

	mu       sync.Mutex
	state    BreakerState
	openedAt time.Time
	inFlight int    // probes in flight while half-open
	gen      uint64 // counts half-open periods, to tell a probe's own from a stale one
	window   [slots]struct{ epoch, total, failed int64 }
	changes  [][2]BreakerState // transitions not yet passed to notify, in order
	telling  bool              // a goroutine is passing changes to notify
}

// set moves the breaker to state to and queues the transition for notify.
// Called with b.mu held.
func (b *breaker) set(to BreakerState) {
	if to != b.state && b.notify != nil {
		b.changes = append(b.changes, [2]BreakerState{b.state, to})
	}
	b.state = to
}

// unlock releases b.mu and passes queued transitions to notify. notify
// runs without the lock, so that it may read the state; one goroutine at a
// time passes them on, in the order they happened, and any made meanwhile
// (by another request, or by a request that notify itself sends) are
// queued for it rather than reported out of order.
func (b *breaker) unlock() {
	if b.telling || len(b.changes) == 0 {
		b.mu.Unlock()
		return
	}
	b.telling = true
	for len(b.changes) > 0 {
		c := b.changes[0]
		b.changes = b.changes[1:]
		b.mu.Unlock()
		b.notify(c[0], c[1])
		b.mu.Lock()
	}
	b.changes, b.telling = nil, false
	b.mu.Unlock()
}

// current returns the state; BreakerClosed when the breaker is off.
func (b *breaker) current() BreakerState {
	if b.off {
		return BreakerClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// closedNow reports whether the circuit is closed (or the breaker off).
func (b *breaker) closedNow() bool { return b.current() == BreakerClosed }

// allow reports whether an attempt may go to the host and, for a
// half-open probe, the period it belongs to (0 otherwise), to be passed
// back to record.
func (b *breaker) allow(now time.Time) (probe uint64, ok bool) {
	if b.off {
		return 0, true
	}
	b.mu.Lock()
	defer b.unlock()
	switch b.state {
	case BreakerClosed:
		return 0, true
	case BreakerOpen:
		if now.Sub(b.openedAt) < b.coolDown {
			return 0, false
		}
		b.set(BreakerHalfOpen)
		b.inFlight = 0
		b.gen++
	}
	if b.inFlight >= b.probes {
		return 0, false
	}
	b.inFlight++
	return b.gen, true
}

func (b *breaker) record(now time.Time, o outcome, probe uint64) {
	if b.off {
		return
	}
	b.mu.Lock()
	defer b.unlock()
	switch b.state {
	case BreakerHalfOpen:
		if probe == 0 || probe != b.gen {
			return // began before this half-open period: says nothing of now
		}
		b.inFlight--
		switch o {
		case success:
			b.set(BreakerClosed)
			b.window = [slots]struct{ epoch, total, failed int64 }{}
		case failure:
			b.set(BreakerOpen)
			b.openedAt = now
		}
	case BreakerClosed:
		if o == ignored {
			return
		}
		epoch := now.UnixNano() / int64(b.slot)
		s := &b.window[epoch%slots]
		if s.epoch != epoch {
			s.epoch, s.total, s.failed = epoch, 0, 0
		}
		s.total++
		if o == success {
			return
		}
		s.failed++
		var total, failed int64
		for _, s := range b.window {
			if s.epoch > epoch-slots {
				total, failed = total+s.total, failed+s.failed
			}
		}
		if total >= int64(b.minAttempts) && float64(failed) >= b.ratio*float64(total) {
			b.set(BreakerOpen)
			b.openedAt = now
		}
	}
}
