// Package upstream holds pools of upstream servers: their health state,
// passive ejection, the balancing policies that choose among them, and the
// retry budget of each pool.
//
// A Pool is built from configuration and replaced whole on reload; the
// health of a server lives in a State that a Registry hands out by URL, so
// that it survives a reload for servers that remain.
package upstream

import (
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Server is one member of a pool. Its configuration fields are fixed after
// the pool is built; its health lives in State. A Server is safe for
// concurrent use.
type Server struct {
	URL    *url.URL // scheme and host only
	Name   string   // URL as a string: the server's name in logs and metrics
	Addr   string   // host:port, the port made explicit
	Weight int      // >= 1
	Backup bool

	// MaxFails failures within FailTimeout eject the server; 0 never ejects.
	MaxFails    int
	FailTimeout time.Duration
	// SlowStart is the time over which the server's weight ramps up when it
	// comes back; 0: full weight at once.
	SlowStart time.Duration
	// Breaker configures the server's circuit breaker; nil: none.
	Breaker *BreakerConfig
	// MaxConns caps the requests in flight to the server; 0: no cap.
	MaxConns int

	State *State // health, shared across reloads

	key    string       // the State's key in the Registry: pool and URL
	index  int          // position in the pool, for the tried set
	active atomic.Int64 // requests in flight, for least_conn and p2c

	// current is the smooth weighted round robin's running weight,
	// guarded by the policy's mutex.
	current int64
}

// String returns the server's URL, the name used in logs and metrics.
func (s *Server) String() string { return s.Name }

// Index is the server's position in its pool.
func (s *Server) Index() int { return s.index }

// Active returns the number of requests in flight to the server.
func (s *Server) Active() int64 { return s.active.Load() }

// Acquire counts a request in flight; call the returned func when it ends.
func (s *Server) Acquire() (release func()) {
	s.active.Add(1)
	return s.release
}

func (s *Server) release() { s.active.Add(-1) }

// TryAcquire counts a request in flight unless the server is at its
// MaxConns, and reports whether it did; call Release when the request
// ends. The check and the count are one atomic step, so that concurrent
// requests never pass the cap.
func (s *Server) TryAcquire() bool {
	if s.MaxConns <= 0 {
		s.active.Add(1)
		return true
	}
	for {
		n := s.active.Load()
		if n >= int64(s.MaxConns) {
			return false
		}
		if s.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release ends a request counted by TryAcquire or Acquire.
func (s *Server) Release() { s.active.Add(-1) }

// weightScale is the unit of effective weights: a weight of 1 is 1000, so
// that a ramp has a thousand steps even for servers of weight 1.
const weightScale = 1000

// minRampShare is where a ramp starts, in thousandths of the full weight:
// a tenth, as Envoy's min_weight_percent, so that a server that comes back
// is seen at once rather than after a silent first stretch.
const minRampShare = 100

// rampShare returns the server's share of its weight at now, in
// thousandths: 1000 unless a slow start is in progress.
func (s *Server) rampShare(now time.Time) int64 {
	if s.SlowStart <= 0 {
		return weightScale
	}
	from := max(s.State.upSince.Load(), s.State.ejectedUntil.Load())
	if from == 0 {
		return weightScale
	}
	el := now.UnixNano() - from
	if el < 0 || el >= int64(s.SlowStart) {
		return weightScale
	}
	return max(minRampShare, el*weightScale/int64(s.SlowStart))
}

// scaledWeight returns the server's weight at now in units of
// 1/weightScale, lowered while a slow start is in progress.
func (s *Server) scaledWeight(now time.Time) int64 {
	return int64(s.Weight) * s.rampShare(now)
}

// EffectiveWeight returns the server's weight at now: its weight, or less
// while a slow start is in progress.
func (s *Server) EffectiveWeight(now time.Time) float64 {
	return float64(s.scaledWeight(now)) / weightScale
}

// Available reports whether the server may take new requests at now: it is
// not drained, not down by active checks and not ejected by passive health.
func (s *Server) Available(now time.Time) bool {
	st := s.State
	return !st.drained.Load() && !st.activeDown.Load() && !st.Ejected(now) && !s.breakerBlocks(now)
}

// Full reports whether the server has MaxConns requests in flight.
func (s *Server) Full() bool {
	return s.MaxConns > 0 && s.active.Load() >= int64(s.MaxConns)
}

// Condition returns the server's state at now, as the admin API and the
// metrics name it.
func (s *Server) Condition(now time.Time) Condition {
	st := s.State
	switch {
	case st.drained.Load():
		return Draining
	case st.activeDown.Load():
		return Down
	case st.Ejected(now):
		return Ejected
	case s.breakerBlocks(now):
		return BreakerOpen
	case s.rampShare(now) < weightScale:
		return SlowStart
	}
	return Up
}

// Condition names a server's state.
type Condition string

// The states of a server. A server takes new requests when it is Up or in
// SlowStart.
const (
	Up          Condition = "up"           // takes requests at full weight
	SlowStart   Condition = "slow_start"   // takes requests, its weight ramping up
	Down        Condition = "down"         // failed its active checks (or awaits a mandatory first one)
	Ejected     Condition = "ejected"      // ejected by passive health until a set time
	BreakerOpen Condition = "breaker_open" // its circuit breaker is open (or its half-open trials are all taken)
	Draining    Condition = "draining"     // taken out by the operator; finishes requests in flight
)

// Conditions lists every state, for metrics that export one series each.
func Conditions() []Condition {
	return []Condition{Up, SlowStart, Down, Ejected, BreakerOpen, Draining}
}

// State is the health of one server, kept across reloads. All methods are
// safe for concurrent use. The zero value is a healthy server.
type State struct {
	ejectedUntil atomic.Int64 // unix nanoseconds; 0 when not ejected
	drained      atomic.Bool  // taken out of rotation by the operator

	// idleLimit is a learned upper bound on how long a pooled connection to
	// this server may idle before reuse (unix nanoseconds of expiry in
	// idleLimitUntil); 0 when none was learned.
	idleLimit      atomic.Int64
	idleLimitUntil atomic.Int64

	staleRetired atomic.Int64 // pooled connections retired at reuse

	desyncs       atomic.Int64 // times the server sent bytes outside any response
	desyncPending atomic.Int64 // of those, not yet taken by TakeDesyncs
	reuseOffUntil atomic.Int64 // unix ns: until then no connection to it is reused

	activeDown atomic.Bool  // down by active checks
	upSince    atomic.Int64 // unix ns when it last came back or joined; 0: not since start

	ejectionsTotal atomic.Int64 // every ejection since the state was made
	checksPassed   atomic.Int64 // active checks that passed, in total
	checksFailed   atomic.Int64 // active checks that failed, in total

	brk      atomic.Pointer[breaker] // the circuit breaker's state; nil until first used
	addrs    atomic.Pointer[addrSet] // the addresses DNS gave for its host; nil: none yet
	nextAddr atomic.Uint64           // rotates the first address dialled

	mu         sync.Mutex
	fails      int
	windowEnd  time.Time // end of the current failure-counting window
	ejections  int       // consecutive ejections, for growing ejection time
	lastReturn time.Time // when the last ejection ended
	lastCause  string

	lastFailure Failure // the most recent failure seen, by any source

	// Active checks.
	passes, failures int  // consecutive
	awaitingFirst    bool // mandatory: down until the first pass
	lastCheck        time.Time
	lastCheckOK      bool

	// DNS.
	dnsAt      time.Time // the last lookup, good or not
	dnsFailure Failure   // the last failed lookup, cleared by a good one
}

// Failure is one failure of a server, as the admin API shows it.
type Failure struct {
	Cause  string    `json:"cause"`            // the cause's RFC 9209 name
	Detail string    `json:"detail,omitempty"` // what was seen, for the operator
	Source string    `json:"source"`           // "passive" (a request), "active" (a check) or "dns"
	At     time.Time `json:"at"`
}

// addrSet is one DNS answer for a server's host.
type addrSet struct {
	list []string // IP addresses, in the resolver's order
	gen  uint64   // increases with every change of list
}

// Ejected reports whether the server is ejected at now.
func (st *State) Ejected(now time.Time) bool {
	u := st.ejectedUntil.Load()
	return u != 0 && now.UnixNano() < u
}

// EjectedUntil returns the end of the current ejection, or the zero time.
func (st *State) EjectedUntil() time.Time {
	u := st.ejectedUntil.Load()
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(0, u)
}

// Drained reports whether the operator took the server out of rotation.
func (st *State) Drained() bool { return st.drained.Load() }

// SetDrained takes the server out of rotation (true) or returns it (false).
func (st *State) SetDrained(v bool) { st.drained.Store(v) }

// Ejections returns the count of consecutive ejections.
func (st *State) Ejections() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ejections
}

// LearnIdle records that the server closed a pooled connection after it had
// idled for d: for the next minute, connections idle longer than
// d - max(d/4, 10ms) are not reused. The margin covers the scheduling delay
// between the check at reuse and the request reaching the server.
func (st *State) LearnIdle(d time.Duration, now time.Time) {
	limit := d - max(d/4, 10*time.Millisecond)
	if limit < time.Millisecond {
		limit = time.Millisecond
	}
	for {
		cur := st.idleLimit.Load()
		if cur != 0 && st.idleLimitUntil.Load() > now.UnixNano() && cur <= int64(limit) {
			break
		}
		if st.idleLimit.CompareAndSwap(cur, int64(limit)) {
			break
		}
	}
	st.idleLimitUntil.Store(now.Add(time.Minute).UnixNano())
}

// IdleLimit returns the learned idle limit in force at now, or 0.
func (st *State) IdleLimit(now time.Time) time.Duration {
	if st.idleLimitUntil.Load() <= now.UnixNano() {
		return 0
	}
	return time.Duration(st.idleLimit.Load())
}

// StaleRetired counts a pooled connection found closed or past its idle
// limit at the moment of reuse and retired before any byte was written.
func (st *State) StaleRetired() { st.staleRetired.Add(1) }

// StaleRetiredCount returns how many pooled connections were retired at reuse.
func (st *State) StaleRetiredCount() int64 { return st.staleRetired.Load() }

// DesyncQuarantine is how long connections to a server that sent bytes
// outside any response are used for one request each. HTTP/1.1 cannot tell
// stray bytes that arrive after the next request was written from that
// request's response, so a server caught once is not trusted with reuse
// until it has been clean for this long.
const DesyncQuarantine = time.Minute

// Desynced records that the server sent bytes that belong to no request (an
// extra response, bytes past the end of a body): the connection was out of
// step and has been closed. For DesyncQuarantine no connection to the
// server is reused.
func (st *State) Desynced(now time.Time) {
	st.desyncs.Add(1)
	st.desyncPending.Add(1)
	st.reuseOffUntil.Store(now.Add(DesyncQuarantine).UnixNano())
}

// ReuseSuspended reports whether connections to the server must not be
// reused at now, after it sent bytes outside any response.
func (st *State) ReuseSuspended(now time.Time) bool {
	return now.UnixNano() < st.reuseOffUntil.Load()
}

// DesyncCount returns how many times the server sent bytes outside any
// response.
func (st *State) DesyncCount() int64 { return st.desyncs.Load() }

// TakeDesyncs returns the desynchronisations recorded since the last call
// and forgets them, so that each is reported to passive health once.
func (st *State) TakeDesyncs() int64 {
	if st.desyncPending.Load() == 0 {
		return 0
	}
	return st.desyncPending.Swap(0)
}

// Registry hands out one State per server of a pool, by pool name and
// URL, so that health survives a reload for servers that remain. It is safe
// for concurrent use; the zero value is ready.
type Registry struct {
	// Now is the clock. nil means time.Now.
	Now func() time.Time

	started atomic.Bool

	mu     sync.Mutex
	states map[string]*State
}

// MarkStarted records that the first configuration is in force: servers
// that appear from now on (by reload or discovery) are new, and start with
// a slow start and, when checks are mandatory, down until one passes.
func (r *Registry) MarkStarted() { r.started.Store(true) }

// state returns the state for key, creating it if needed; created reports
// whether it was, and late whether that was after MarkStarted.
func (r *Registry) state(key string) (st *State, created, late bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.states == nil {
		r.states = make(map[string]*State)
	}
	st, ok := r.states[key]
	if !ok {
		st = new(State)
		r.states[key] = st
	}
	return st, !ok, !ok && r.started.Load()
}

// noteJoined starts the slow start of a server that joined after start.
func (r *Registry) noteJoined(st *State) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	st.upSince.Store(now().UnixNano())
}

// Retain forgets the states of servers not in keep (keys as Server.Key),
// after a reload.
func (r *Registry) Retain(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.states {
		if !keep[k] {
			delete(r.states, k)
		}
	}
}
