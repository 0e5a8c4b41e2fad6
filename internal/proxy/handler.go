// Package proxy is holdfast's request path: it routes a request, admits its
// body, picks a server, sends the attempt, classifies the outcome into a
// cause, decides whether another attempt is safe and useful, and answers the
// client, writing one access-log line with the ledger of every attempt.
package proxy

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/adaptive"
	"github.com/holdfast/holdfast/internal/cache"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/ratelimit"
	"github.com/holdfast/holdfast/internal/upstream"
)

// Options are what a Handler needs beyond its configuration.
type Options struct {
	// Transports hold the upstream connection pools; share one across
	// reloads so that pooled connections survive. nil means a new one.
	Transports *Transports
	// Metrics counts requests, attempts and retries. nil counts nothing.
	Metrics *metrics.Registry
	// Cache is the shared store of the routes that cache. nil: a store per
	// Handler, made from the configuration's cache settings.
	Cache *cache.Cache
	// RateLimits builds the routes' rate limits (shared through Redis when
	// it was made with a store). nil: a local-only limiter per Handler.
	RateLimits *ratelimit.Limiter
	// Adaptive returns the adaptive concurrency limiter of a pool whose
	// adaptive limit is enabled, kept across reloads by the caller. nil
	// means a new one per Handler.
	Adaptive func(pool string, c config.Adaptive) *adaptive.Limiter
	// Registry holds server health; share one across reloads so that
	// health survives. nil means a new one.
	Registry *upstream.Registry
	// Logger receives events (ejections, skipped retries). nil discards.
	Logger *slog.Logger
	// AccessLog receives one line per request. nil turns it off.
	AccessLog *AccessLog
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// Events, when set, is called for every attempt and every finished
	// request, for metrics and the demo. It must be fast and safe for
	// concurrent use.
	Events Observer
}

// Observer receives what the proxy did, for metrics and live displays.
type Observer interface {
	// Attempt is called after each attempt at an upstream server.
	Attempt(pool, server string, c cause.Cause, status int, retry bool)
	// Request is called once a request is answered.
	Request(route string, status int, c cause.Cause, attempts int, d time.Duration)
	// Ejected is called when a server is ejected, or would have been but
	// for the max_ejected_percent cap.
	Ejected(pool, server string, d time.Duration, capped bool)
}

// Handler proxies requests for one configuration. It is an http.Handler,
// immutable once built and safe for concurrent use; a reload builds a new
// Handler sharing Options.Transports and Options.Registry.
type Handler struct {
	router  *router
	pools   map[string]*pool
	list    []*pool
	trusted trustedSet
	expose  bool
	maxBody int64
	// maxHeaderCount is client.max_header_count.
	maxHeaderCount int
	// bodyTO and sendTO are client.body_timeout and client.send_timeout:
	// the longest wait for one read of a request body and for one write of
	// a response. 0 turns them off.
	bodyTO, sendTO time.Duration

	log        *slog.Logger
	access     *AccessLog
	now        func() time.Time
	events     Observer
	routes     []*route      // in file order
	cache      *cache.Cache  // the shared cache of the cached routes; nil when none caches
	refreshing chan struct{} // bounds the background refreshes of stale cached responses
	// noRoute counts the requests that matched no route; nil without
	// metrics.
	noRoute *metrics.Route
}

// pool is an upstream pool with its compiled policy.
type pool struct {
	*upstream.Pool
	transports []*http.Transport // by server index: for 100-continue
	h1         []*h1Pool         // by server index: everything else
	retryOn    conds
	failOn     conds
	tries      int
	total      time.Duration
	bodyBuffer int64
	nonIdem    bool
	retry      retryPolicy
	queue      *waitQueue        // nil: no queue
	limit      *adaptive.Limiter // nil: no adaptive limit
	shedLogAt  atomic.Int64      // unix ns before which no shed request is logged
	readTO     time.Duration
	hashKind   hashKind
	hashName   string
	m          *metrics.Pool           // nil without metrics
	sm         []*metrics.ServerCounts // by server index; nil without metrics
}

type hashKind uint8

const (
	hashClientIP hashKind = iota
	hashHeader
	hashCookie
)

// conds is a set of nginx-style conditions: error, timeout, http_5xx.
type conds uint16

const (
	condError conds = 1 << iota
	condTimeout
	cond500
	cond502
	cond503
	cond504
	cond429
)

func parseConds(list []string) (conds, error) {
	var c conds
	for _, s := range list {
		switch s {
		case "error":
			c |= condError
		case "timeout":
			c |= condTimeout
		case "http_500":
			c |= cond500
		case "http_502":
			c |= cond502
		case "http_503":
			c |= cond503
		case "http_504":
			c |= cond504
		case "http_429":
			c |= cond429
		default:
			return 0, fmt.Errorf("unknown condition %q", s)
		}
	}
	return c, nil
}

// status reports whether the set holds the condition for an upstream status.
func (c conds) status(code int) bool {
	switch code {
	case 500:
		return c&cond500 != 0
	case 502:
		return c&cond502 != 0
	case 503:
		return c&cond503 != 0
	case 504:
		return c&cond504 != 0
	case 429:
		return c&cond429 != 0
	}
	return false
}

// failure reports whether the set holds the condition for a failed attempt.
func (c conds) failure(k cause.Cause) bool {
	if k.IsTimeout() {
		return c&condTimeout != 0
	}
	return c&condError != 0
}

// New compiles a configuration into a Handler.
func New(cfg *config.Config, o Options) (*Handler, error) {
	if o.Transports == nil {
		o.Transports = new(Transports)
	}
	if o.Registry == nil {
		o.Registry = new(upstream.Registry)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{
		pools:          make(map[string]*pool),
		expose:         cfg.ExposeDetails,
		maxBody:        cfg.Client.MaxBodyBytes,
		maxHeaderCount: cfg.Client.MaxHeaderCount,
		bodyTO:         cfg.Client.BodyTimeout,
		sendTO:         cfg.Client.SendTimeout,
		log:            o.Logger,
		access:         o.AccessLog,
		now:            o.Now,
		events:         o.Events,
	}
	for _, s := range cfg.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		h.trusted = append(h.trusted, p)
	}
	for _, u := range cfg.Upstreams {
		p, err := newPool(u, o)
		if err != nil {
			return nil, err
		}
		h.pools[u.Name] = p
		h.list = append(h.list, p)
	}
	var routes []*route
	var budget *storeBudget // of the bodies being collected for the cache
	for i := range cfg.Routes {
		cr := &cfg.Routes[i]
		p, ok := h.pools[cr.Upstream]
		if !ok {
			return nil, fmt.Errorf("route %s: unknown upstream %q", routeName(cr.Match), cr.Upstream)
		}
		pg, err := loadPages(cr.ErrorPages)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", routeName(cr.Match), err)
		}
		prefix := cr.Match.PathPrefix
		if prefix == "" {
			prefix = "/"
		}
		nonIdem := p.nonIdem
		if cr.NonIdempotent != nil {
			nonIdem = *cr.NonIdempotent
		}
		var rm *metrics.Route
		if o.Metrics != nil {
			rm = o.Metrics.Route(routeName(cr.Match))
		}
		rl, err := rateLimits(cr, &o)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", routeName(cr.Match), err)
		}
		var rcache *routeCache
		if c := cr.Cache; c != nil && c.Enabled {
			if o.Cache == nil {
				o.Cache = cache.New(cache.Config{MaxSize: cfg.Cache.MaxSize, MaxObject: cfg.Cache.MaxObject})
			}
			if budget == nil {
				// A quarter of the store, and never less than one object.
				budget = &storeBudget{max: max(cfg.Cache.MaxSize/4, cfg.Cache.MaxObject)}
			}
			if rcache, err = newRouteCache(o.Cache, c, cfg.Cache.MaxObject, budget); err != nil {
				return nil, fmt.Errorf("route %s: cache.use_stale: %w", routeName(cr.Match), err)
			}
		}
		routes = append(routes, &route{
			m:       rm,
			limits:  rl,
			cache:   rcache,
			name:    routeName(cr.Match),
			host:    strings.ToLower(cr.Match.Host),
			prefix:  prefix,
			strip:   cr.StripPrefix,
			pool:    p,
			nonIdem: nonIdem,
			pages:   pg,
		})
	}
	h.router = newRouter(routes)
	h.routes = routes
	h.cache = o.Cache
	h.refreshing = make(chan struct{}, 32)
	if o.Metrics != nil {
		h.noRoute = o.Metrics.Route(metrics.NoRoute)
	}
	return h, nil
}

// rateLimits builds a route's rate limits, or nil when it has none. Their
// name in a shared store is the route's host and path prefix.
func rateLimits(cr *config.Route, o *Options) (*ratelimit.Route, error) {
	if len(cr.RateLimits) == 0 {
		return nil, nil
	}
	if o.RateLimits == nil {
		l, err := ratelimit.New(ratelimit.Options{Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		o.RateLimits = l
	}
	limits := make([]ratelimit.Limit, len(cr.RateLimits))
	for i, c := range cr.RateLimits {
		l, err := ratelimit.ParseLimit(c.Key, c.Rate, c.Burst)
		if err != nil {
			return nil, fmt.Errorf("rate_limits[%d]: %w", i, err)
		}
		limits[i] = l
	}
	return o.RateLimits.Route(routeName(cr.Match), limits)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func newPool(u *config.Upstream, o Options) (*pool, error) {
	up, err := upstream.NewPool(u, o.Registry)
	if err != nil {
		return nil, err
	}
	p := &pool{
		Pool:       up,
		tries:      max(u.Retry.Tries, 1),
		total:      u.Retry.Timeout,
		bodyBuffer: u.Retry.BodyBuffer,
		nonIdem:    u.Retry.NonIdempotent,
		retry: retryPolicy{
			sameOnTimeout: u.Retry.SameServerOnTimeout,
			backoff:       u.Retry.Backoff,
			backoffMax:    u.Retry.BackoffMax,
		},
		readTO: u.Timeouts.Read,
	}
	if q := u.Queue; q != nil {
		p.queue = newWaitQueue(q.Size, q.Timeout)
	}
	if a := u.Adaptive; a != nil && a.Enabled {
		if o.Adaptive != nil {
			p.limit = o.Adaptive(u.Name, *a)
		} else {
			p.limit = adaptive.New(adaptive.Config{MinLimit: a.MinLimit, MaxLimit: a.MaxLimit})
		}
	}
	if p.retryOn, err = parseConds(u.Retry.On); err != nil {
		return nil, fmt.Errorf("upstream %s: retry.on: %w", u.Name, err)
	}
	if p.failOn, err = parseConds(u.Passive.FailOn); err != nil {
		return nil, fmt.Errorf("upstream %s: passive.fail_on: %w", u.Name, err)
	}
	switch {
	case u.Hash == "" || u.Hash == "client_ip":
		p.hashKind = hashClientIP
	case strings.HasPrefix(u.Hash, "header:"):
		p.hashKind, p.hashName = hashHeader, http.CanonicalHeaderKey(strings.TrimPrefix(u.Hash, "header:"))
	case strings.HasPrefix(u.Hash, "cookie:"):
		p.hashKind, p.hashName = hashCookie, strings.TrimPrefix(u.Hash, "cookie:")
	default:
		return nil, fmt.Errorf("upstream %s: hash: unknown key %q", u.Name, u.Hash)
	}
	p.transports = make([]*http.Transport, len(up.Servers))
	p.h1 = make([]*h1Pool, len(up.Servers))
	for i, s := range up.Servers {
		p.transports[i] = o.Transports.For(s, u.Timeouts)
		p.h1[i] = o.Transports.h1For(s, u.Timeouts)
	}
	if o.Metrics != nil {
		p.m = o.Metrics.Pool(u.Name)
		p.sm = make([]*metrics.ServerCounts, len(up.Servers))
		for i, s := range up.Servers {
			p.sm[i] = o.Metrics.Server(u.Name, s.Name)
		}
	}
	return p, nil
}

// Cache returns the shared cache of the handler's cached routes, or nil.
func (h *Handler) Cache() *cache.Cache { return h.cache }

// RouteNames returns the names of the handler's routes, as logs and
// metrics label them.
func (h *Handler) RouteNames() []string {
	out := make([]string, 0, len(h.routes))
	for _, r := range h.routes {
		out = append(out, r.name)
	}
	return out
}

// PoolLimits returns the state of a pool's concurrency limits: its adaptive
// limiter's (ok false without one) and the requests waiting in its queue.
func (h *Handler) PoolLimits(name string) (lim adaptive.Snapshot, ok bool, queued int) {
	p := h.pools[name]
	if p == nil {
		return lim, false, 0
	}
	if p.queue != nil {
		queued = p.queue.Len()
	}
	if p.limit != nil {
		return p.limit.Snapshot(), true, queued
	}
	return lim, false, queued
}

// Pools returns the handler's pools, in file order.
func (h *Handler) Pools() []*upstream.Pool {
	out := make([]*upstream.Pool, len(h.list))
	for i, p := range h.list {
		out[i] = p.Pool
	}
	return out
}

// exchangePool recycles per-request state: the ledger, the candidate buffer
// and the tried set, so that the hot path does not allocate them.
var exchangePool = sync.Pool{New: func() any { return new(exchange) }}
