package upstream

import (
	"slices"
	"time"
)

// Transition is a change of a server's active health made by one check.
type Transition uint8

const (
	// NoChange: the check left the server as it was.
	NoChange Transition = iota
	// WentDown: the check was the fall-th failure in a row.
	WentDown
	// CameUp: the check was the rise-th pass in a row (or the first pass
	// of a server that awaited a mandatory check).
	CameUp
)

// CheckResult records the outcome of one active check at now: a pass, or a
// failure with its cause name and a detail for the operator. A server goes
// down after fall consecutive failures and comes up after rise consecutive
// passes; the returned Transition says whether this check did either.
func (st *State) CheckResult(pass bool, causeName, detail string, rise, fall int, now time.Time) Transition {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.lastCheck, st.lastCheckOK = now, pass
	if pass {
		st.checksPassed.Add(1)
		st.passes++
		st.failures = 0
		if st.activeDown.Load() && (st.passes >= rise || st.awaitingFirst) {
			st.awaitingFirst = false
			st.activeDown.Store(false)
			st.upSince.Store(now.UnixNano())
			return CameUp
		}
		return NoChange
	}
	st.checksFailed.Add(1)
	st.failures++
	st.passes = 0
	st.lastFailure = Failure{Cause: causeName, Detail: detail, Source: "active", At: now}
	if !st.activeDown.Load() && st.failures >= fall {
		st.activeDown.Store(true)
		return WentDown
	}
	return NoChange
}

// awaitFirstCheck makes a new server wait for one passing check.
func (st *State) awaitFirstCheck() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.awaitingFirst = true
	st.activeDown.Store(true)
}

// clearActive forgets active health: checks are off for the server.
func (st *State) clearActive() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.activeDown.Store(false)
	st.awaitingFirst = false
	st.passes, st.failures = 0, 0
}

// SetAddrs records a good DNS answer for the server's host at now.
func (st *State) SetAddrs(addrs []string, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.dnsAt, st.dnsFailure = now, Failure{}
	old := st.addrs.Load()
	if old != nil && slices.Equal(old.list, addrs) {
		return
	}
	next := &addrSet{list: slices.Clone(addrs)}
	if old != nil {
		next.gen = old.gen + 1
	}
	st.addrs.Store(next)
}

// DNSFailed records a failed or empty DNS answer at now. The last good
// addresses stay in use.
func (st *State) DNSFailed(causeName, detail string, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.dnsAt = now
	st.dnsFailure = Failure{Cause: causeName, Detail: detail, Source: "dns", At: now}
	st.lastFailure = st.dnsFailure
}

// Addrs returns the addresses DNS last gave for the server's host (nil when
// none is known: resolve at dial time) and their generation, which changes
// whenever the list does.
func (st *State) Addrs() (addrs []string, gen uint64) {
	a := st.addrs.Load()
	if a == nil {
		return nil, 0
	}
	return a.list, a.gen
}

// HasAddr reports whether ip is among the addresses of the last good DNS
// answer, or whether no answer is known.
func (st *State) HasAddr(ip string) bool {
	a := st.addrs.Load()
	return a == nil || slices.Contains(a.list, ip)
}

// EjectionsTotal returns the count of ejections since the state was made
// (the server's first appearance).
func (st *State) EjectionsTotal() int64 { return st.ejectionsTotal.Load() }

// ChecksTotal returns the active checks that passed and that failed since
// the state was made.
func (st *State) ChecksTotal() (passed, failed int64) {
	return st.checksPassed.Load(), st.checksFailed.Load()
}
