package upstream

import (
	"net"
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
	next := &addrSet{list: slices.Clone(addrs), gen: 1}
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

// DialAddrs returns where to connect to the server: host:port for each
// address of the last good DNS answer, starting at a position that moves
// with every call, so that new connections spread over all of them. It
// returns nil when no answer is known (an IP address, or DNS refresh off):
// then the host is resolved at dial time.
func (s *Server) DialAddrs() []string {
	addrs, _ := s.State.Addrs()
	if len(addrs) == 0 {
		return nil
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	start := int(s.State.nextAddr.Add(1) % uint64(len(addrs)))
	out := make([]string, len(addrs))
	for i := range addrs {
		out[i] = net.JoinHostPort(addrs[(start+i)%len(addrs)], port)
	}
	return out
}

// AwaitingFirstCheck reports whether the server is new and waits for a
// mandatory first passing check.
func (st *State) AwaitingFirstCheck() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.awaitingFirst
}
