package upstream

import (
	"net/netip"
	"time"
)

// PoolStatus is a snapshot of one pool, as the admin API shows it and the
// metrics read it.
type PoolStatus struct {
	Name    string `json:"name"`
	Balance string `json:"balance"`
	// Available counts the servers that take new requests.
	Available int `json:"available"`
	// Discover is the SRV name the servers come from, or "".
	Discover string         `json:"discover,omitempty"`
	Servers  []ServerStatus `json:"servers"`
	// Adaptive is the pool's adaptive concurrency limit; nil when off.
	Adaptive *LimitStatus `json:"adaptive,omitempty"`
	// Queued counts the requests waiting for a slot.
	Queued int `json:"queued"`
}

// LimitStatus is the state of a pool's adaptive concurrency limit.
type LimitStatus struct {
	Limit       int     `json:"limit"`
	InFlight    int     `json:"in_flight"`
	MinRTTms    float64 `json:"min_rtt_ms"`    // the no-load latency it measured
	SampleRTTms float64 `json:"sample_rtt_ms"` // the latency of its last window
	Probing     bool    `json:"probing"`       // re-measuring the no-load latency at its minimum
}

// ServerStatus is a snapshot of one server of a pool.
type ServerStatus struct {
	Index  int    `json:"index"` // its position in the pool: primaries, then backups
	URL    string `json:"url"`
	Backup bool   `json:"backup"`
	// State is up, slow_start, down, ejected or draining; Available is
	// whether it takes new requests (up or slow_start).
	State     Condition `json:"state"`
	Available bool      `json:"available"`
	// Weight is the configured weight; EffectiveWeight is lower while a
	// slow start is in progress.
	Weight          int     `json:"weight"`
	EffectiveWeight float64 `json:"effective_weight"`
	InFlight        int64   `json:"in_flight"`
	// LastFailure is the most recent failure by any source, nil if none.
	LastFailure *Failure       `json:"last_failure,omitempty"`
	Active      *ActiveStatus  `json:"active,omitempty"` // nil when checks are off
	Passive     PassiveStatus  `json:"passive"`
	Breaker     *BreakerStatus `json:"breaker,omitempty"` // nil without a breaker
	MaxConns    int            `json:"max_conns,omitempty"`
	// Addresses are the IP addresses its host resolved to at the last
	// good lookup (its own address when the URL holds one).
	Addresses []string   `json:"addresses"`
	DNS       *DNSStatus `json:"dns,omitempty"` // nil for an IP address
}

// ActiveStatus is the state of a server's active checks.
type ActiveStatus struct {
	ConsecutivePasses   int       `json:"consecutive_passes"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	Passed              int64     `json:"passed"` // in total
	Failed              int64     `json:"failed"` // in total
	LastCheck           time.Time `json:"last_check,omitzero"`
	LastResult          string    `json:"last_result,omitempty"` // "pass" or "fail"; "" before the first
	AwaitingFirst       bool      `json:"awaiting_first,omitempty"`
}

// PassiveStatus is the state of a server's passive health.
type PassiveStatus struct {
	Fails          int       `json:"fails"` // in the current fail_timeout window
	MaxFails       int       `json:"max_fails"`
	EjectedUntil   time.Time `json:"ejected_until,omitzero"`
	Ejections      int       `json:"ejections"`       // consecutive, for the growing ejection time
	EjectionsTotal int64     `json:"ejections_total"` // since the server appeared
}

// DNSStatus is the state of the resolution of a server's host name.
type DNSStatus struct {
	Name       string    `json:"name"`
	LastLookup time.Time `json:"last_lookup,omitzero"`
	// Error is the last lookup's failure; nil when it succeeded.
	Error *Failure `json:"error,omitempty"`
}

// Status returns a snapshot of the pool at now.
func (p *Pool) Status(now time.Time) PoolStatus {
	ps := PoolStatus{Name: p.Name, Balance: p.Config.Balance, Servers: make([]ServerStatus, len(p.Servers))}
	if p.Config.Discover != nil {
		ps.Discover = p.Config.Discover.SRV
	}
	checks := p.Config.Health.Path != ""
	for i, s := range p.Servers {
		ps.Servers[i] = s.Status(now, checks)
		if ps.Servers[i].Available {
			ps.Available++
		}
	}
	return ps
}

// Status returns a snapshot of the server at now; checks says whether its
// pool runs active checks.
func (s *Server) Status(now time.Time, checks bool) ServerStatus {
	st := s.State
	ss := ServerStatus{
		Index:           s.index,
		URL:             s.Name,
		Backup:          s.Backup,
		State:           s.Condition(now),
		Available:       s.Available(now),
		Weight:          s.Weight,
		EffectiveWeight: s.EffectiveWeight(now),
		InFlight:        s.Active(),
		Passive: PassiveStatus{
			MaxFails:       s.MaxFails,
			EjectedUntil:   st.EjectedUntil(),
			EjectionsTotal: st.EjectionsTotal(),
		},
	}
	if !ss.Passive.EjectedUntil.After(now) {
		ss.Passive.EjectedUntil = time.Time{}
	}
	ss.Breaker = s.breakerStatus(now)
	ss.MaxConns = s.MaxConns
	st.mu.Lock()
	defer st.mu.Unlock()
	if now.Before(st.windowEnd) {
		ss.Passive.Fails = st.fails
	}
	ss.Passive.Ejections = st.ejections
	if st.lastFailure.Cause != "" {
		f := st.lastFailure
		ss.LastFailure = &f
	}
	if checks {
		a := &ActiveStatus{
			ConsecutivePasses:   st.passes,
			ConsecutiveFailures: st.failures,
			Passed:              st.checksPassed.Load(),
			Failed:              st.checksFailed.Load(),
			LastCheck:           st.lastCheck,
			AwaitingFirst:       st.awaitingFirst,
		}
		if !st.lastCheck.IsZero() {
			a.LastResult = "fail"
			if st.lastCheckOK {
				a.LastResult = "pass"
			}
		}
		ss.Active = a
	}
	host := s.URL.Hostname()
	if addrs, _ := st.Addrs(); addrs != nil {
		ss.Addresses = addrs
	}
	if !isIP(host) {
		d := &DNSStatus{Name: host, LastLookup: st.dnsAt}
		if st.dnsFailure.Cause != "" {
			f := st.dnsFailure
			d.Error = &f
		}
		ss.DNS = d
	} else {
		ss.Addresses = []string{host}
	}
	if ss.Addresses == nil {
		ss.Addresses = []string{}
	}
	return ss
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}
