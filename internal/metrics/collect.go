package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/upstream"
)

// The series made at scrape time from the counters and the health state.
var (
	descRequests = prometheus.NewDesc("holdfast_requests_total",
		"Requests answered, by route, status code and cause (the RFC 9209 name, or none for a request that did not fail).",
		[]string{"route", "code", "cause"}, nil)
	descAttempts = prometheus.NewDesc("holdfast_upstream_attempts_total",
		"Attempts at an upstream server, by the cause they ended with (none for a response).",
		[]string{"pool", "server", "cause"}, nil)
	descRetries = prometheus.NewDesc("holdfast_upstream_retries_total",
		"Retries made, by pool and the cause of the attempt retried.",
		[]string{"pool", "reason"}, nil)
	descSkipped = prometheus.NewDesc("holdfast_upstream_retries_skipped_total",
		"Retries not made although the attempt failed, by pool and reason (budget, body_too_large, non_idempotent, deadline, no_server, retry_after, timeout_same_server, tries).",
		[]string{"pool", "reason"}, nil)
	descUp = prometheus.NewDesc("holdfast_upstream_server_up",
		"1 when the server takes new requests (up or slow_start), else 0.",
		[]string{"pool", "server"}, nil)
	descState = prometheus.NewDesc("holdfast_upstream_server_state",
		"1 for the server's current state (up, slow_start, down, ejected, draining), 0 for the others.",
		[]string{"pool", "server", "state"}, nil)
	descWeight = prometheus.NewDesc("holdfast_upstream_server_effective_weight",
		"The server's weight now: its configured weight, or less during a slow start.",
		[]string{"pool", "server"}, nil)
	descEjections = prometheus.NewDesc("holdfast_upstream_ejections_total",
		"Ejections of the server by passive health since it appeared.",
		[]string{"pool", "server"}, nil)
	descChecks = prometheus.NewDesc("holdfast_health_checks_total",
		"Active health checks of the server, by result (pass, fail).",
		[]string{"pool", "server", "result"}, nil)
	descInFlight = prometheus.NewDesc("holdfast_upstream_requests_in_flight",
		"Requests being sent to the server now.",
		[]string{"pool", "server"}, nil)
	descAvailable = prometheus.NewDesc("holdfast_upstream_pool_servers_available",
		"Servers of the pool that take new requests; 0 means every request to it gets 503.",
		[]string{"pool"}, nil)
	descServers = prometheus.NewDesc("holdfast_upstream_pool_servers",
		"Servers of the pool, whatever their state.",
		[]string{"pool"}, nil)
	descAdaptive = prometheus.NewDesc("holdfast_upstream_adaptive_limit",
		"The pool's adaptive concurrency limit now (pools with adaptive.enabled only).",
		[]string{"pool"}, nil)
	descQueued = prometheus.NewDesc("holdfast_upstream_queued_requests",
		"Requests waiting in the pool's queue for a slot.",
		[]string{"pool"}, nil)
	descCache = prometheus.NewDesc("holdfast_cache_requests_total",
		"Requests of cached routes, by what the cache did: hit, miss, stale (served in place of a failure), revalidated, bypass (a method not cached), collapsed (waited for another request's response).",
		[]string{"route", "result"}, nil)
	descReloads = prometheus.NewDesc("holdfast_config_reloads_total",
		"Configuration reloads, by result (success, failure).",
		[]string{"result"}, nil)
	descLastReload = prometheus.NewDesc("holdfast_config_last_reload_success_timestamp_seconds",
		"Time of the last successful reload (or of the start), in seconds since the epoch.",
		nil, nil)
	descBuild = prometheus.NewDesc("holdfast_build_info",
		"Always 1; the labels say which holdfast runs.",
		[]string{"version", "goversion"}, nil)
)

// Names lists the names of every holdfast_* metric the registry exports,
// for the shipped rules and dashboards to be checked against.
func Names() []string {
	return []string{
		"holdfast_requests_total",
		"holdfast_request_duration_seconds",
		"holdfast_upstream_attempts_total",
		"holdfast_upstream_retries_total",
		"holdfast_upstream_retries_skipped_total",
		"holdfast_upstream_server_up",
		"holdfast_upstream_server_state",
		"holdfast_upstream_server_effective_weight",
		"holdfast_upstream_ejections_total",
		"holdfast_health_checks_total",
		"holdfast_upstream_requests_in_flight",
		"holdfast_upstream_pool_servers_available",
		"holdfast_upstream_pool_servers",
		"holdfast_upstream_adaptive_limit",
		"holdfast_upstream_queued_requests",
		"holdfast_cache_requests_total",
		"holdfast_config_reloads_total",
		"holdfast_config_last_reload_success_timestamp_seconds",
		"holdfast_build_info",
	}
}

// collector exports the Registry's own counters and the health state.
type collector Registry

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descAttempts, descRetries, descSkipped, descUp,
		descState, descWeight, descEjections, descChecks, descInFlight, descAvailable, descServers, descAdaptive, descQueued, descCache,
		descReloads, descLastReload, descBuild} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := (*Registry)(c)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	r.mu.Lock()
	routes := make([]*Route, 0, len(r.routes))
	for _, rt := range r.routes {
		routes = append(routes, rt)
	}
	pools := make([]*Pool, 0, len(r.pools))
	for _, p := range r.pools {
		pools = append(pools, p)
	}
	type server struct {
		k serverKey
		s *ServerCounts
	}
	servers := make([]server, 0, len(r.servers))
	for k, s := range r.servers {
		servers = append(servers, server{k, s})
	}
	r.mu.Unlock()

	for _, rt := range routes {
		rt.codes.each(func(code int, cs cause.Cause, n uint64) {
			counter(descRequests, n, rt.name, strconv.Itoa(code), causeLabel(cs))
		})
		for i, res := range CacheResults {
			if n := rt.cache[i].Load(); n > 0 {
				counter(descCache, n, rt.name, res)
			}
		}
	}
	for _, s := range servers {
		for i := range s.s.attempts {
			if n := s.s.attempts[i].Load(); n > 0 {
				counter(descAttempts, n, s.k.pool, s.k.url, causeLabel(cause.Cause(i)))
			}
		}
	}
	for _, p := range pools {
		for i := range p.retries {
			if n := p.retries[i].Load(); n > 0 {
				counter(descRetries, n, p.name, causeLabel(cause.Cause(i)))
			}
		}
		// Every reason is exported, zeros included, so that a rate over
		// it exists before the first skip.
		for i, reason := range SkipReasons {
			counter(descSkipped, p.skipped[i].Load(), p.name, reason)
		}
	}
	if r.o.Pools != nil {
		for _, p := range r.o.Pools() {
			gauge(descAvailable, float64(p.Available), p.Name)
			gauge(descServers, float64(len(p.Servers)), p.Name)
			gauge(descQueued, float64(p.Queued), p.Name)
			if p.Adaptive != nil {
				gauge(descAdaptive, float64(p.Adaptive.Limit), p.Name)
			}
			for _, s := range p.Servers {
				collectServer(gauge, counter, p.Name, s)
			}
		}
	}
	counter(descReloads, r.reloadsOK.Load(), "success")
	counter(descReloads, r.reloadsFailed.Load(), "failure")
	gauge(descLastReload, float64(r.lastReload.Load())/1e9)
	gauge(descBuild, 1, r.o.Version, goVersion())
}

func collectServer(gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string), pool string, s upstream.ServerStatus) {
	up := 0.0
	if s.Available {
		up = 1
	}
	gauge(descUp, up, pool, s.URL)
	for _, st := range upstream.Conditions() {
		v := 0.0
		if s.State == st {
			v = 1
		}
		gauge(descState, v, pool, s.URL, string(st))
	}
	gauge(descWeight, s.EffectiveWeight, pool, s.URL)
	gauge(descInFlight, float64(s.InFlight), pool, s.URL)
	counter(descEjections, uint64(s.Passive.EjectionsTotal), pool, s.URL)
	if a := s.Active; a != nil {
		counter(descChecks, uint64(a.Passed), pool, s.URL, "pass")
		counter(descChecks, uint64(a.Failed), pool, s.URL, "fail")
	}
}

// causeLabel is the cause label of c: its RFC 9209 name, or none.
func causeLabel(c cause.Cause) string {
	if c == cause.None {
		return "none"
	}
	return c.String()
}
