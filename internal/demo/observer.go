package demo

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/proxy"
)

// counters is the demo's proxy.Observer: it counts what the gateway did,
// with atomics only, so that the proxy's hot path never waits on the
// display. It is safe for concurrent use; the server map is fixed when it is
// built.
type counters struct {
	requests  atomic.Int64
	failed    atomic.Int64 // requests answered with a status other than 2xx
	attempts  atomic.Int64
	retries   atomic.Int64
	ejections atomic.Int64
	capped    atomic.Int64 // ejections skipped for max_ejected_percent
	byCause   [256]atomic.Int64
	servers   map[string]*serverCounters // by server URL
}

// serverCounters are the gateway's counts for one upstream server.
type serverCounters struct {
	ejections atomic.Int64
}

// Interface guard.
var _ proxy.Observer = (*counters)(nil)

func newCounters(urls []string) *counters {
	c := &counters{servers: make(map[string]*serverCounters, len(urls))}
	for _, u := range urls {
		c.servers[u] = new(serverCounters)
	}
	return c
}

// Attempt implements proxy.Observer.
func (c *counters) Attempt(_, _ string, k cause.Cause, _ int, retry bool) {
	c.attempts.Add(1)
	if retry {
		c.retries.Add(1)
	}
	if k != cause.None {
		c.byCause[k].Add(1)
	}
}

// Request implements proxy.Observer.
func (c *counters) Request(_ string, status int, _ cause.Cause, _ int, _ time.Duration) {
	c.requests.Add(1)
	if status < 200 || status > 299 {
		c.failed.Add(1)
	}
}

// Ejected implements proxy.Observer.
func (c *counters) Ejected(_, server string, _ time.Duration, capped bool) {
	if capped {
		c.capped.Add(1)
		return
	}
	c.ejections.Add(1)
	if s := c.servers[server]; s != nil {
		s.ejections.Add(1)
	}
}

// stats returns the counts so far.
func (c *counters) stats() GatewayStats {
	g := GatewayStats{
		Requests:        c.requests.Load(),
		Failed:          c.failed.Load(),
		Attempts:        c.attempts.Load(),
		Retries:         c.retries.Load(),
		Ejections:       c.ejections.Load(),
		CappedEjections: c.capped.Load(),
	}
	for _, k := range cause.All() {
		if n := c.byCause[k].Load(); n > 0 {
			g.Causes = append(g.Causes, CauseCount{Cause: k.String(), N: n})
		}
	}
	sort.SliceStable(g.Causes, func(i, j int) bool { return g.Causes[i].N > g.Causes[j].N })
	return g
}

// ejectionsOf returns how many times the server with base URL u was
// ejected.
func (c *counters) ejectionsOf(u string) int64 {
	if s := c.servers[u]; s != nil {
		return s.ejections.Load()
	}
	return 0
}
