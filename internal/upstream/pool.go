package upstream

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/url"
	"time"

	"github.com/holdfast/holdfast/internal/config"
)

// Pool is a named set of servers with a balancing policy, passive health
// settings and a retry budget. A Pool is immutable once built, apart from the
// health and load counters of its servers; it is safe for concurrent use.
type Pool struct {
	Name    string
	Servers []*Server // primaries first, then backups, in file order
	Config  *config.Upstream

	primaries []*Server
	backups   []*Server
	policy    Policy
	backupPol Policy

	maxEjectedPercent float64
	maxEjectionTime   time.Duration

	Budget *Budget
}

// NewPool builds a pool from its configuration, taking server health state
// from reg (which may be nil for a pool whose state need not survive).
func NewPool(u *config.Upstream, reg *Registry) (*Pool, error) {
	if reg == nil {
		reg = new(Registry)
	}
	p := &Pool{
		Name:              u.Name,
		Config:            u,
		maxEjectedPercent: u.Passive.MaxEjectedPercent,
		maxEjectionTime:   u.Passive.MaxEjectionTime,
		Budget:            NewBudget(u.Retry.Budget, u.Retry.BudgetMin),
	}
	for i := range u.Servers {
		cs := &u.Servers[i]
		s, err := newServer(u, cs, reg)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: server %s: %w", u.Name, cs.URL, err)
		}
		if s.Backup {
			p.backups = append(p.backups, s)
		} else {
			p.primaries = append(p.primaries, s)
		}
	}
	if len(p.primaries) == 0 && u.Discover == nil {
		// A pool that discovers its servers may have none yet: it answers
		// 503 until the first good answer.
		return nil, fmt.Errorf("upstream %s: no primary server", u.Name)
	}
	if len(p.primaries) == 1 && len(p.backups) == 0 {
		// As nginx: a lone server is never marked unavailable, since
		// ejecting it could only turn a chance of success into a 503.
		p.primaries[0].MaxFails = 0
	}
	p.Servers = append(append(p.Servers, p.primaries...), p.backups...)
	for i, s := range p.Servers {
		s.index = i
	}
	var err error
	if p.policy, err = NewPolicy(u.Balance, p.primaries); err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.Name, err)
	}
	if len(p.backups) > 0 {
		if p.backupPol, err = NewPolicy(u.Balance, p.backups); err != nil {
			return nil, fmt.Errorf("upstream %s: %w", u.Name, err)
		}
	}
	return p, nil
}

func newServer(pu *config.Upstream, cs *config.Server, reg *Registry) (*Server, error) {
	u, err := url.Parse(cs.URL)
	if err != nil {
		return nil, err
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	base := &url.URL{Scheme: u.Scheme, Host: u.Host}
	maxFails := 1
	if cs.MaxFails != nil {
		maxFails = *cs.MaxFails
	}
	w := cs.Weight
	if w < 1 {
		w = 1
	}
	ft := cs.FailTimeout
	if ft <= 0 {
		ft = 10 * time.Second
	}
	key := pu.Name + " " + base.String()
	st, created, late := reg.state(key)
	switch {
	case pu.Health.Path == "":
		// Checks are off (or were turned off by a reload): nothing can
		// bring a server up again, so none stays down.
		st.clearActive()
	case created && pu.Health.Mandatory:
		st.awaitFirstCheck()
	}
	if late {
		reg.noteJoined(st)
	}
	var brk *BreakerConfig
	if b := pu.Breaker; b != nil {
		brk = &BreakerConfig{ErrorRatio: b.ErrorRatio, MinRequests: b.MinRequests, Window: b.Window,
			OpenFor: b.OpenFor, MaxOpenFor: b.MaxOpenFor, HalfOpenRequests: b.HalfOpenRequests}
	}
	return &Server{
		URL:         base,
		Name:        base.String(),
		Addr:        net.JoinHostPort(host, port),
		Weight:      w,
		Backup:      cs.Backup,
		MaxFails:    maxFails,
		FailTimeout: ft,
		SlowStart:   pu.Health.SlowStart,
		Breaker:     brk,
		MaxConns:    cs.MaxConns,
		State:       st,
		key:         key,
	}, nil
}

// Key identifies the server's health state in the Registry: its pool's
// name and its URL.
func (s *Server) Key() string { return s.key }

// Tried is the set of servers of one pool already tried for a request. The
// zero value is empty. It does not allocate for pools of up to 64 servers.
type Tried struct {
	low  uint64
	high map[int]bool
}

// Add marks s as tried.
func (t *Tried) Add(s *Server) {
	if s.index < 64 {
		t.low |= 1 << uint(s.index)
		return
	}
	if t.high == nil {
		t.high = make(map[int]bool)
	}
	t.high[s.index] = true
}

// Has reports whether s was tried.
func (t *Tried) Has(s *Server) bool {
	if s.index < 64 {
		return t.low&(1<<uint(s.index)) != 0
	}
	return t.high[s.index]
}

// Len returns how many servers were tried.
func (t *Tried) Len() int { return bits.OnesCount64(t.low) + len(t.high) }

// Pick chooses the server for the next attempt of a request. It prefers, in
// order: an untried available primary; an untried available backup; an
// already tried available primary, then backup (a pool of one server may
// be retried). Available means neither ejected nor drained. key feeds the
// hash policy (ok false when the request has no key). buf is scratch space
// for the candidate list, reused across calls to avoid allocation.
//
// Pick returns nil when no server is available; retryAt is then the
// earliest time an ejected server returns (zero if none will by itself).
func (p *Pool) Pick(tried *Tried, key uint64, hasKey bool, now time.Time, buf []*Server) (s *Server, retryAt time.Time) {
	for pass := 0; pass < 2; pass++ {
		allowTried := pass == 1
		if s := pickTier(p.policy, p.primaries, tried, allowTried, key, hasKey, now, buf); s != nil {
			return s, time.Time{}
		}
		if p.backupPol != nil {
			if s := pickTier(p.backupPol, p.backups, tried, allowTried, key, hasKey, now, buf); s != nil {
				return s, time.Time{}
			}
		}
	}
	for _, s := range p.Servers {
		if u := s.State.EjectedUntil(); !u.IsZero() && (retryAt.IsZero() || u.Before(retryAt)) {
			retryAt = u
		}
		if u := s.breakerOpenUntil(); !u.IsZero() && (retryAt.IsZero() || u.Before(retryAt)) {
			retryAt = u
		}
	}
	return nil, retryAt
}

func pickTier(pol Policy, servers []*Server, tried *Tried, allowTried bool, key uint64, hasKey bool, now time.Time, buf []*Server) *Server {
	cands := buf[:0]
	all := true
	var ramping *Server // one left out for its slow start
	_, own := pol.(rampsOwn)
	for _, s := range servers {
		if !s.Available(now) || s.Full() || (!allowTried && tried.Has(s)) {
			all = false
			continue
		}
		if !own {
			if share := s.rampShare(now); share < weightScale && rand.Int64N(weightScale) >= share {
				all, ramping = false, s
				continue
			}
		}
		cands = append(cands, s)
	}
	if len(cands) == 0 {
		// Only servers in slow start are left: better one of them than
		// none.
		if ramping != nil {
			return ramping
		}
		return nil
	}
	return pol.Pick(cands, all, key, hasKey, now)
}

// AtCapacity reports whether a server of the pool could take requests at
// now but for its max_conns: when Pick found none, the request may wait
// for a slot rather than be refused.
func (p *Pool) AtCapacity(now time.Time) bool {
	for _, s := range p.Servers {
		if s.Full() && s.Available(now) {
			return true
		}
	}
	return false
}

// Primaries returns the pool's primary servers.
func (p *Pool) Primaries() []*Server { return p.primaries }

// Backups returns the pool's backup servers.
func (p *Pool) Backups() []*Server { return p.backups }

// Health is what one attempt showed about a server's health.
type Health uint8

const (
	// Neutral: the attempt says nothing about the server (the client went
	// away, or the client's own request was bad).
	Neutral Health = iota
	// Success: the server answered.
	Success
	// SoftFailure: the server failed in a way that overload can explain
	// (timeouts, 5xx statuses, resets): ejection is capped by
	// max_ejected_percent.
	SoftFailure
	// HardFailure: the server is not there (refused, DNS, TLS): ejection
	// is not capped, since dialling it again cannot help.
	HardFailure
)

// Ejection reports a server's ejection caused by a Report.
type Ejection struct {
	Server   *Server
	Duration time.Duration // how long it is ejected
	Count    int           // consecutive ejections, this one included
	Capped   bool          // ejection was due but skipped: max_ejected_percent reached
}

// Report records the outcome of one attempt at s: its health, and for a
// failure its cause name and a detail (such as "status 502"). When it ejects
// s (or would have, but for the cap) it returns the ejection.
func (p *Pool) Report(s *Server, h Health, causeName, detail string, now time.Time) (ev Ejection, ok bool) {
	if h == Neutral || s.MaxFails <= 0 {
		return ev, false
	}
	st := s.State
	if h == Success {
		st.mu.Lock()
		if st.ejections > 0 && !st.lastReturn.IsZero() && now.Sub(st.lastReturn) > s.FailTimeout {
			st.ejections = 0
		}
		st.mu.Unlock()
		return ev, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.Ejected(now) {
		return ev, false
	}
	if now.After(st.windowEnd) {
		st.fails = 0
		st.windowEnd = now.Add(s.FailTimeout)
	}
	st.fails++
	st.lastCause = causeName
	st.lastFailure = Failure{Cause: causeName, Detail: detail, Source: "passive", At: now}
	if st.fails < s.MaxFails {
		return ev, false
	}
	ev.Server = s
	if h == SoftFailure && !s.Backup && p.ejectionCapped(s, now) {
		ev.Capped = true
		st.fails = 0
		return ev, true
	}
	d := s.FailTimeout
	for i := 0; i < st.ejections && d < p.maxEjectionTime; i++ {
		d *= 2
	}
	if p.maxEjectionTime > 0 && d > p.maxEjectionTime {
		d = p.maxEjectionTime
	}
	st.ejections++
	st.ejectionsTotal.Add(1)
	st.fails = 0
	until := now.Add(d)
	st.lastReturn = until
	st.ejectedUntil.Store(until.UnixNano())
	ev.Duration, ev.Count = d, st.ejections
	return ev, true
}

// ejectionCapped reports whether ejecting s would put more than
// max_ejected_percent of the primaries out at once. Called with s's lock
// held; reads only other servers' atomics.
func (p *Pool) ejectionCapped(s *Server, now time.Time) bool {
	if p.maxEjectedPercent >= 100 {
		return false
	}
	n := 1
	for _, o := range p.primaries {
		if o != s && o.State.Ejected(now) {
			n++
		}
	}
	// As Envoy does, one server may always be ejected, whatever the share:
	// otherwise a pool of one could never be.
	return n > 1 && float64(n)*100 > p.maxEjectedPercent*float64(len(p.primaries))
}

// LastCause returns the cause name of the server's most recent failure.
func (st *State) LastCause() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.lastCause
}
