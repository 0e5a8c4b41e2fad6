package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/holdfast/holdfast/internal/admin/ui"
	"github.com/holdfast/holdfast/internal/upstream"
)

// params are the path's variable segments, unescaped, and the query.
type params struct {
	pool, server string
	query        url.Values
}

// route is one path of the API and the one method that may call it.
type route struct {
	pattern string // as docs/admin.md writes it: for 405s and the log
	method  string
	api     bool     // under /api/: reads need the token with TokenForReads
	segs    []string // pattern split at "/"; "{pool}" and "{server}" capture
	serve   func(p params) *reply
}

// newRoutes lists the API's routes. The router is a table rather than an
// http.ServeMux: the mux decodes %2F before matching, which would split a
// server's escaped URL, and its own 404 and 405 are not problem details.
func (h *Handler) newRoutes() []route {
	r := func(method, pattern string, serve func(params) *reply) route {
		return route{
			pattern: pattern,
			method:  method,
			api:     strings.HasPrefix(pattern, "/api/") || pattern == "/metrics",
			segs:    strings.Split(strings.TrimPrefix(pattern, "/"), "/"),
			serve:   serve,
		}
	}
	const server = "/api/v1/pools/{pool}/servers/{server}"
	return []route{
		r(http.MethodGet, "/healthz", h.healthz),
		r(http.MethodGet, "/readyz", h.readyz),
		r(http.MethodGet, "/api/v1/pools", h.pools),
		r(http.MethodGet, "/api/v1/pools/{pool}", h.pool),
		r(http.MethodGet, server, h.server),
		r(http.MethodPost, server+"/drain", h.setDrained(true)),
		r(http.MethodPost, server+"/enable", h.setDrained(false)),
		r(http.MethodPost, "/api/v1/reload", h.reload),
		r(http.MethodGet, "/metrics", h.exposition),
		r(http.MethodGet, "/api/v1/stats", h.stats),
		r(http.MethodGet, "/api/v1/failures", h.failures),
		r(http.MethodGet, "/api/v1/rate_limits", h.rateLimitStatus),
		r(http.MethodGet, "/api/v1/cache", h.cacheStats),
		r(http.MethodPost, "/api/v1/cache/purge", h.cachePurge),
		r(http.MethodGet, "/", dashboard("index.html")),
		r(http.MethodGet, "/ui/app.js", dashboard("app.js")),
		r(http.MethodGet, "/ui/style.css", dashboard("style.css")),
	}
}

// dashboard returns the route of one file of the dashboard page. The page
// needs no token: it holds no data, and asks the user for the token when
// the API it reads or steers wants one.
func dashboard(name string) func(params) *reply {
	page, ok := ui.Handler(name)
	if !ok {
		panic("admin: the dashboard has no file " + name)
	}
	return func(params) *reply { return &reply{handler: page} }
}

func (h *Handler) cacheStats(params) *reply {
	if h.cache == nil {
		return problem(http.StatusNotFound, "no route of this gateway caches")
	}
	return ok(h.cache.Stats())
}

// cachePurge removes stored responses: ?url=TARGET for one, with
// &prefix=true for every one whose key starts with it.
func (h *Handler) cachePurge(p params) *reply {
	if h.cache == nil {
		return problem(http.StatusNotFound, "no route of this gateway caches")
	}
	if p.query == nil || p.query.Get("url") == "" {
		return problem(http.StatusBadRequest, "say what to purge: ?url=http://host/path (with &prefix=true for everything under it)")
	}
	target, prefix := p.query.Get("url"), p.query.Get("prefix") == "true"
	n := h.cache.Purge(target, prefix)
	rp := ok(map[string]any{"purged": n, "url": target, "prefix": prefix})
	rp.done = fmt.Sprintf("purged %d", n)
	return rp
}

func (h *Handler) rateLimitStatus(params) *reply {
	if h.rateLimits == nil {
		return problem(http.StatusNotFound, "this gateway keeps no rate limits")
	}
	return ok(h.rateLimits())
}

func (h *Handler) noMetrics() *reply {
	return problem(http.StatusNotFound, "metrics are not kept by this gateway")
}

func (h *Handler) exposition(params) *reply {
	if h.metrics == nil {
		return h.noMetrics()
	}
	return &reply{handler: h.metrics.Handler()}
}

func (h *Handler) stats(params) *reply {
	if h.metrics == nil {
		return h.noMetrics()
	}
	return ok(h.metrics.Stats())
}

func (h *Handler) failures(params) *reply {
	if h.metrics == nil {
		return h.noMetrics()
	}
	return ok(FailureList{Failures: h.metrics.Failures()})
}

// match returns the route of an escaped path and its parameters, or nil.
// Each segment is unescaped only after the path is split, so that a
// server's URL, escaped with its slashes as %2F, stays one segment.
func (h *Handler) match(escaped string) (*route, params) {
	segs := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, params{}
		}
		segs[i] = u
	}
	for i := range h.routes {
		if p, ok := h.routes[i].match(segs); ok {
			return &h.routes[i], p
		}
	}
	return nil, params{}
}

func (rt *route) match(segs []string) (params, bool) {
	var p params
	if len(segs) != len(rt.segs) {
		return p, false
	}
	for i, want := range rt.segs {
		switch got := segs[i]; {
		case want == "{pool}" && got != "":
			p.pool = got
		case want == "{server}" && got != "":
			p.server = got
		case want != got:
			return p, false
		}
	}
	return p, true
}

// allows reports whether method may call rt: its own, and HEAD where GET is.
func (rt *route) allows(method string) bool {
	return method == rt.method || (rt.method == http.MethodGet && method == http.MethodHead)
}

// allowed is the Allow header of rt.
func (rt *route) allowed() string {
	if rt.method == http.MethodGet {
		return "GET, HEAD"
	}
	return rt.method
}

func (h *Handler) healthz(params) *reply { return ok(health{Status: "ok"}) }

func (h *Handler) readyz(params) *reply {
	if err := h.backend.Ready(); err != nil {
		return problem(http.StatusServiceUnavailable, err.Error())
	}
	return ok(health{Status: "ready"})
}

func (h *Handler) pools(params) *reply {
	ps := h.backend.Pools()
	if ps == nil {
		ps = []upstream.PoolStatus{}
	}
	return ok(PoolList{Pools: ps})
}

func (h *Handler) pool(p params) *reply {
	pool, rp := h.findPool(p.pool)
	if rp != nil {
		return rp
	}
	return ok(pool)
}

func (h *Handler) server(p params) *reply {
	_, s, rp := h.findServer(p)
	if rp != nil {
		return rp
	}
	return ok(s)
}

// setDrained returns the route that drains (true) or enables (false) a
// server. The server is resolved from a snapshot; the Backend says if it
// went away in between.
func (h *Handler) setDrained(drained bool) func(params) *reply {
	verb, done := "enable", "enabled"
	if drained {
		verb, done = "drain", "drained"
	}
	return func(p params) *reply {
		pool, s, rp := h.findServer(p)
		if rp != nil {
			return rp
		}
		st, err := h.backend.SetDrained(pool.Name, s.URL, drained)
		switch {
		case errors.Is(err, ErrNotFound):
			return problem(http.StatusNotFound, fmt.Sprintf("cannot %s %s in pool %q: %v", verb, s.URL, pool.Name, err))
		case err != nil:
			return problem(http.StatusInternalServerError, fmt.Sprintf("cannot %s %s in pool %q: %v", verb, s.URL, pool.Name, err))
		}
		rp = ok(st)
		rp.done = done
		return rp
	}
}

func (h *Handler) reload(params) *reply {
	summary, err := h.backend.Reload()
	if err != nil {
		rp := problem(http.StatusBadRequest, "the configuration was rejected: the previous configuration keeps serving")
		rp.body.(*Problem).Errors = lines(err.Error())
		return rp
	}
	rp := ok(Reloaded{Status: "reloaded", Summary: summary})
	rp.done = "reloaded"
	return rp
}

// lines splits s at newlines, leaving out empty lines.
func lines(s string) []string {
	out := []string{}
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimRight(l, "\r\t "); l != "" {
			out = append(out, l)
		}
	}
	return out
}
