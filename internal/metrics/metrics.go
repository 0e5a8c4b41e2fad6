// Package metrics counts what the gateway does, for Prometheus and for the
// admin dashboard: requests by route, status and cause; attempts, retries
// and skipped retries by pool and server; server health, read from the
// health state at scrape time; reloads; and, for people, the recent failed
// requests with their attempt ledgers and per-route rates over the last
// minutes.
//
// The request path never looks a series up by its labels: a Route, Pool or
// ServerCounts is resolved once when a configuration is built, and counting
// is an atomic add. The exposition uses client_golang; label values come
// only from the configuration and the cause vocabulary, so the number of
// series is bounded by the configuration whatever clients send.
package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/upstream"
)

// NoRoute is the route label of requests that matched no route.
const NoRoute = "none"

// Options configure a Registry. The zero value is ready.
type Options struct {
	// Version is holdfast's version for holdfast_build_info. "" means
	// "dev".
	Version string
	// Pools returns the pools in force, for the health series; read at
	// every scrape. nil exports none.
	Pools func() []upstream.PoolStatus
	// Now is the clock of the rate samples. nil means time.Now.
	Now func() time.Time
}

// Registry holds holdfast's metrics. Its methods are safe for concurrent
// use. Counters survive reloads for the routes, pools and servers that
// remain; Retain forgets the others, whose series then disappear.
type Registry struct {
	reg      *prometheus.Registry
	duration *prometheus.HistogramVec
	o        Options

	mu      sync.Mutex
	routes  map[string]*Route
	pools   map[string]*Pool
	servers map[serverKey]*ServerCounts

	reloadsOK, reloadsFailed atomic.Uint64
	lastReload               atomic.Int64 // unix ns of the last successful reload (or start)
	lastFailedReload         atomic.Int64 // unix ns of the last failed reload; 0: none

	failures *ring
	samples  *sampler
}

type serverKey struct{ pool, url string }

// New returns a Registry with the Go runtime and process collectors.
func New(o Options) *Registry {
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Registry{
		reg:      prometheus.NewRegistry(),
		o:        o,
		routes:   make(map[string]*Route),
		pools:    make(map[string]*Pool),
		servers:  make(map[serverKey]*ServerCounts),
		failures: newRing(100),
	}
	r.samples = newSampler(r, 5*time.Second, 180)
	r.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "holdfast_request_duration_seconds",
		Help: "Time from a request's arrival to its answer's end, by route.",
		// Classic buckets for an API, from 5ms to 60s, and a native
		// histogram for servers that take it.
		Buckets:                         []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, []string{"route"})
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.duration,
		(*collector)(r),
	)
	r.lastReload.Store(o.Now().UnixNano())
	return r
}

// Handler serves the exposition (GET /metrics).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// Gatherer returns the registry, for tests and embedding.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Route returns the counters of the route named name (NoRoute for requests
// that matched none), creating them if needed.
func (r *Registry) Route(name string) *Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := r.routes[name]
	if rt == nil {
		rt = &Route{name: name, dur: r.duration.WithLabelValues(name), failures: r.failures, now: r.o.Now}
		r.routes[name] = rt
	}
	return rt
}

// Pool returns the counters of the pool named name, creating them if
// needed.
func (r *Registry) Pool(name string) *Pool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pools[name]
	if p == nil {
		p = &Pool{name: name}
		r.pools[name] = p
	}
	return p
}

// Server returns the counters of the server with URL url in pool,
// creating them if needed.
func (r *Registry) Server(pool, url string) *ServerCounts {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := serverKey{pool, url}
	s := r.servers[k]
	if s == nil {
		s = &ServerCounts{}
		r.servers[k] = s
	}
	return s
}

// Retain forgets the routes, pools and servers not listed (servers as
// pool and URL pairs), after a reload: their series disappear. NoRoute is
// always kept.
func (r *Registry) Retain(routes, pools []string, servers [][2]string) {
	keepR := map[string]bool{NoRoute: true}
	for _, n := range routes {
		keepR[n] = true
	}
	keepP := map[string]bool{}
	for _, n := range pools {
		keepP[n] = true
	}
	keepS := map[serverKey]bool{}
	for _, s := range servers {
		keepS[serverKey{s[0], s[1]}] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for n := range r.routes {
		if !keepR[n] {
			delete(r.routes, n)
			r.duration.DeleteLabelValues(n)
		}
	}
	for n := range r.pools {
		if !keepP[n] {
			delete(r.pools, n)
		}
	}
	for k := range r.servers {
		if !keepS[k] {
			delete(r.servers, k)
		}
	}
}

// Reloaded counts a reload, successful or not.
func (r *Registry) Reloaded(ok bool) {
	if ok {
		r.reloadsOK.Add(1)
		r.lastReload.Store(r.o.Now().UnixNano())
		return
	}
	r.reloadsFailed.Add(1)
	r.lastFailedReload.Store(r.o.Now().UnixNano())
}

// LastReloads returns the time of the last successful reload (or of the
// start) and of the last failed one (zero if none).
func (r *Registry) LastReloads() (ok, failed time.Time) {
	ok = time.Unix(0, r.lastReload.Load())
	if f := r.lastFailedReload.Load(); f != 0 {
		failed = time.Unix(0, f)
	}
	return ok, failed
}

// SkippedTotal returns the retries of pool skipped for reason since it
// appeared.
func (r *Registry) SkippedTotal(pool, reason string) uint64 {
	r.mu.Lock()
	p := r.pools[pool]
	r.mu.Unlock()
	if p == nil {
		return 0
	}
	for i, sr := range SkipReasons {
		if sr == reason {
			return p.skipped[i].Load()
		}
	}
	return 0
}

// Start samples the per-route counters every 5 seconds for Stats, until
// Close.
func (r *Registry) Start() { r.samples.start() }

// Sample takes a sample of the per-route counters now, as Start's ticker
// does (for tests that drive time).
func (r *Registry) Sample() { r.samples.take() }

// Close stops the sampling and waits for it.
func (r *Registry) Close() { r.samples.stop() }

// goVersion is the Go version of the build, for holdfast_build_info.
func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.GoVersion != "" {
		return bi.GoVersion
	}
	return runtime.Version()
}

// CacheResults are the outcomes of a cached route's lookups, as
// holdfast_cache_requests_total labels them.
var CacheResults = [...]string{"hit", "miss", "stale", "revalidated", "bypass", "collapsed"}

// Route counts the requests of one route. Safe for concurrent use.
type Route struct {
	name     string
	cache    [len(CacheResults)]atomic.Uint64
	codes    codeTable
	byCause  [maxCauses]atomic.Uint64
	dur      prometheus.Observer
	failures *ring
	now      func() time.Time
}

// Name returns the route's label value.
func (rt *Route) Name() string { return rt.name }

// Observe counts one answered request: its status, its cause (cause.None
// for a request that did not fail) and how long it took.
func (rt *Route) Observe(status int, c cause.Cause, d time.Duration) {
	rt.codes.add(status, c)
	if int(c) < maxCauses {
		rt.byCause[c].Add(1)
	}
	rt.dur.Observe(d.Seconds())
}

// Cached counts one outcome of the route's cache (one of CacheResults;
// others are not counted).
func (rt *Route) Cached(result string) {
	for i, r := range CacheResults {
		if r == result {
			rt.cache[i].Add(1)
			return
		}
	}
}

// Failed keeps a failed request for the dashboard's list of recent
// failures (the last 100).
func (rt *Route) Failed(f Failure) {
	f.Route = rt.name
	if f.Time.IsZero() {
		f.Time = rt.now()
	}
	rt.failures.add(f)
}

// Pool counts the retries of one pool, and the retries it skipped, by
// reason. Safe for concurrent use.
type Pool struct {
	name    string
	retries [maxCauses]atomic.Uint64 // by the cause of the attempt retried
	skipped [len(SkipReasons)]atomic.Uint64
}

// SkipReasons are the reasons a retry is skipped, as the access log's
// retry_skipped names them.
var SkipReasons = [...]string{
	"budget", "body_too_large", "non_idempotent", "deadline", "no_server",
	"retry_after", "timeout_same_server", "tries",
}

// Retried counts a retry of an attempt that failed with c.
func (p *Pool) Retried(c cause.Cause) {
	if int(c) < maxCauses {
		p.retries[c].Add(1)
	}
}

// Skipped counts a retry that was not made, for reason (one of
// SkipReasons; others are not counted).
func (p *Pool) Skipped(reason string) {
	for i, r := range SkipReasons {
		if r == reason {
			p.skipped[i].Add(1)
			return
		}
	}
}

// ServerCounts counts the attempts at one server of a pool, by cause
// (cause.None for attempts that got a response). Safe for concurrent use.
type ServerCounts struct {
	attempts [maxCauses]atomic.Uint64
}

// Attempt counts one attempt that ended with c.
func (s *ServerCounts) Attempt(c cause.Cause) {
	if int(c) < maxCauses {
		s.attempts[c].Add(1)
	}
}
