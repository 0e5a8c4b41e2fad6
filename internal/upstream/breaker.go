package upstream

import (
	"sync"
	"sync/atomic"
	"time"
)

// BreakerConfig configures a server's circuit breaker.
type BreakerConfig struct {
	ErrorRatio       float64       // open when failures/requests exceed it over Window
	MinRequests      int           // ... with at least this many requests in Window
	Window           time.Duration // the rolling window of counts
	OpenFor          time.Duration // the first time open; doubles on each reopening
	MaxOpenFor       time.Duration // the cap on OpenFor's growth
	HalfOpenRequests int           // trial requests at a time while half-open, all of which must pass
}

// The breaker's states, kept in an atomic so that picks read them without
// the lock.
const (
	breakerClosed uint32 = iota
	breakerOpen
	breakerHalfOpen
)

// breakerBuckets is the number of slices of the rolling window.
const breakerBuckets = 10

// breaker is the state of one server's circuit breaker, kept in its State
// across reloads. Its counts are per window slice; the state and the end
// of an open period are atomics for the pick's fast path.
type breaker struct {
	state     atomic.Uint32
	openUntil atomic.Int64 // unix ns; while open
	trials    atomic.Int32 // trial requests in flight while half-open

	mu      sync.Mutex
	buckets [breakerBuckets]breakerBucket
	opens   int // consecutive openings, for the growing open time
	passed  int // trials passed in this half-open period
	total   int64
}

type breakerBucket struct {
	slot           int64 // which slice of time it counts
	requests, fail int
}

// BreakerStatus is the state of a server's circuit breaker.
type BreakerStatus struct {
	State     string    `json:"state"` // closed, open or half_open
	OpenUntil time.Time `json:"open_until,omitzero"`
	Requests  int       `json:"requests"` // in the window
	Failures  int       `json:"failures"` // in the window
	Opens     int       `json:"opens"`    // consecutive openings
	Total     int64     `json:"opened_total"`
}

// breakerFor returns the server's breaker state, creating it on first use.
func (st *State) breakerFor() *breaker {
	if b := st.brk.Load(); b != nil {
		return b
	}
	st.brk.CompareAndSwap(nil, new(breaker))
	return st.brk.Load()
}

// breakerBlocks reports whether the server's breaker keeps new requests
// from it at now: open and not yet due for a trial, or half-open with every
// trial slot taken. It does not change the state.
func (s *Server) breakerBlocks(now time.Time) bool {
	if s.Breaker == nil {
		return false
	}
	b := s.State.brk.Load()
	if b == nil {
		return false
	}
	switch b.state.Load() {
	case breakerOpen:
		return now.UnixNano() < b.openUntil.Load() || int(b.trials.Load()) >= s.Breaker.HalfOpenRequests
	case breakerHalfOpen:
		return int(b.trials.Load()) >= s.Breaker.HalfOpenRequests
	}
	return false
}

// Admit is called just before an attempt at the server. It reports
// whether the attempt may go (false: the breaker's trial slots were taken
// since the pick), and whether it is a trial of a half-open breaker, which
// Report must be told.
func (s *Server) Admit(now time.Time) (ok, trial bool) {
	if s.Breaker == nil {
		return true, false
	}
	b := s.State.brk.Load()
	if b == nil || b.state.Load() == breakerClosed {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case breakerClosed:
		return true, false
	case breakerOpen:
		if now.UnixNano() < b.openUntil.Load() {
			return false, false
		}
		b.state.Store(breakerHalfOpen)
		b.passed = 0
	}
	if int(b.trials.Load()) >= s.Breaker.HalfOpenRequests {
		return false, false
	}
	b.trials.Add(1)
	return true, true
}

// BreakerRecord counts one attempt's outcome at the server (h, as passive
// health classified it by passive.fail_on; neutral outcomes are not
// counted) and opens or closes its breaker; trial is what Admit said. It
// reports whether this outcome opened the breaker.
func (s *Server) BreakerRecord(h Health, trial bool, now time.Time) (opened bool) {
	return s.breakerRecord(h == SoftFailure || h == HardFailure, h == Neutral, trial, now)
}

func (s *Server) breakerRecord(failed, neutral, trial bool, now time.Time) (opened bool) {
	c := s.Breaker
	if c == nil {
		return false
	}
	b := s.State.breakerFor()
	b.mu.Lock()
	defer b.mu.Unlock()
	if trial {
		b.trials.Add(-1)
		if b.state.Load() != breakerHalfOpen || neutral {
			return false
		}
		if failed {
			return b.open(c, now)
		}
		if b.passed++; b.passed >= c.HalfOpenRequests {
			b.state.Store(breakerClosed)
			b.opens = 0
			b.buckets = [breakerBuckets]breakerBucket{}
		}
		return false
	}
	if neutral || b.state.Load() != breakerClosed {
		return false
	}
	width := max(int64(c.Window)/breakerBuckets, 1)
	slot := now.UnixNano() / width
	bk := &b.buckets[slot%breakerBuckets]
	if bk.slot != slot {
		*bk = breakerBucket{slot: slot}
	}
	bk.requests++
	if failed {
		bk.fail++
	}
	var req, fail int
	for i := range b.buckets {
		if x := &b.buckets[i]; slot-x.slot < breakerBuckets {
			req += x.requests
			fail += x.fail
		}
	}
	if failed && req >= c.MinRequests && float64(fail) > c.ErrorRatio*float64(req) {
		return b.open(c, now)
	}
	return false
}

// open opens the breaker for OpenFor, doubled for each consecutive
// opening up to MaxOpenFor. Called with b.mu held.
func (b *breaker) open(c *BreakerConfig, now time.Time) bool {
	d := c.OpenFor
	for i := 0; i < b.opens && (c.MaxOpenFor <= 0 || d < c.MaxOpenFor); i++ {
		d *= 2
	}
	if c.MaxOpenFor > 0 && d > c.MaxOpenFor {
		d = c.MaxOpenFor
	}
	b.opens++
	b.total++
	b.openUntil.Store(now.Add(d).UnixNano())
	b.state.Store(breakerOpen)
	b.buckets = [breakerBuckets]breakerBucket{}
	return true
}

// breakerStatus returns the breaker's state for the admin API, or nil
// when the server has none.
func (s *Server) breakerStatus(now time.Time) *BreakerStatus {
	if s.Breaker == nil {
		return nil
	}
	b := s.State.breakerFor()
	b.mu.Lock()
	defer b.mu.Unlock()
	bs := &BreakerStatus{Opens: b.opens, Total: b.total}
	switch b.state.Load() {
	case breakerClosed:
		bs.State = "closed"
	case breakerOpen:
		bs.State = "open"
		if u := time.Unix(0, b.openUntil.Load()); u.After(now) {
			bs.OpenUntil = u
		} else {
			bs.State = "half_open" // due: the next request is a trial
		}
	default:
		bs.State = "half_open"
	}
	width := max(int64(s.Breaker.Window)/breakerBuckets, 1)
	slot := now.UnixNano() / width
	for i := range b.buckets {
		if x := &b.buckets[i]; slot-x.slot < breakerBuckets {
			bs.Requests += x.requests
			bs.Failures += x.fail
		}
	}
	return bs
}

// breakerOpenUntil returns when an open breaker lets a trial through, or
// the zero time.
func (s *Server) breakerOpenUntil() time.Time {
	if s.Breaker == nil {
		return time.Time{}
	}
	if b := s.State.brk.Load(); b != nil && b.state.Load() == breakerOpen {
		return time.Unix(0, b.openUntil.Load())
	}
	return time.Time{}
}
