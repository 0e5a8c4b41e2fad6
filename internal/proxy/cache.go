package proxy

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/cache"
	"github.com/holdfast/holdfast/internal/config"
)

// routeCache is a route's caching: the shared store and the route's
// settings.
type routeCache struct {
	c           *cache.Cache
	budget      *storeBudget // shared by the handler's cached routes
	useStale    conds        // error, timeout, http_5xx of use_stale
	updating    bool         // use_stale lists updating
	lockTimeout time.Duration
	maxObject   int64
}

func newRouteCache(c *cache.Cache, rc *config.RouteCache, maxObject int64, budget *storeBudget) (*routeCache, error) {
	out := &routeCache{c: c, lockTimeout: rc.LockTimeout, maxObject: maxObject, budget: budget}
	var list []string
	for _, s := range rc.UseStale {
		if s == "updating" {
			out.updating = true
			continue
		}
		list = append(list, s)
	}
	var err error
	if out.useStale, err = parseConds(list); err != nil {
		return nil, err
	}
	return out, nil
}

// cacheState is what the cache step learnt about one request, kept in its
// exchange.
type cacheState struct {
	key     string       // the primary key; "" when the request is not cached
	stale   *cache.Entry // a stored response that may answer if the upstream fails
	reval   *cache.Entry // the stored response being revalidated
	done    func()       // releases the requests collapsed behind this one
	store   bool         // the response is to be stored
	reqTime time.Time
	result  string // for the access log: hit, miss, stale, revalidated, bypass
	// fwdStatus is the status the upstream answered when the stale
	// response replaces it; 0 when it answered nothing.
	fwdStatus int
}

// unkeyedFields are request fields that common origins and frameworks
// route or render by (a rewritten URL, a path prefix, a method override,
// a host), which the cache key does not hold. X-Forwarded-Host and -Proto
// are set by holdfast itself for peers it does not trust.
var unkeyedFields = []string{
	"X-Original-Url", "X-Rewrite-Url", "X-Forwarded-Prefix", "X-Forwarded-Port",
	"X-Forwarded-Scheme", "X-Forwarded-Ssl", "X-Host", "X-Forwarded-Server",
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
}

// unkeyed reports whether h carries a field that the cache key does not
// hold and that may change the response, spelt with '-' or '_'.
func unkeyed(h http.Header) bool {
	for k := range h {
		n := strings.ReplaceAll(k, "_", "-")
		for _, f := range unkeyedFields {
			if strings.EqualFold(n, f) {
				return true
			}
		}
	}
	return false
}

func schemeOf(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// fromCache is the cache step, after the rate limits: it answers from the
// route's cache when a stored response may answer, and otherwise notes
// what the attempts need (a stale response for errors, one to revalidate,
// the collapsing of concurrent misses). It reports whether it answered.
func (h *Handler) fromCache(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	rc := x.route.cache
	if rc == nil {
		return false
	}
	cs := &x.cache
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		cs.result = "bypass"
		return false
	}
	if unkeyed(r.Header) {
		// Headers some origins route or render by, and the key does not
		// hold: a response to them could be stored under another URL
		// (cache poisoning). Such requests neither read nor fill the
		// cache.
		cs.result = "bypass"
		rc.c.Count("bypass")
		return false
	}
	cs.key = cache.KeyOf(r, schemeOf(r))
	cs.reqTime = h.now()
	for round := 0; ; round++ {
		now := h.now()
		if e := rc.c.Lookup(r, cs.key); e != nil {
			use := e.Usable(r, now)
			if isRefresh(r) {
				use = cache.UseRevalidate // the refresh itself goes upstream
			}
			switch use {
			case cache.UseFresh:
				h.serveEntry(w, r, x, e, cache.Status{Hit: true, TTL: e.TTL(now), HasTTL: true}.String(), "hit")
				return true
			case cache.UseStaleWhileRevalidate:
				h.serveEntry(w, r, x, e, cache.Status{Hit: true, TTL: e.TTL(now), HasTTL: true, Detail: "stale-while-revalidate"}.String(), "stale")
				h.refreshLater(r, cs.key)
				return true
			case cache.UseMiss:
				if cache.OnlyIfCached(r) {
					x.cause, x.status = cause.DestinationUnavailable, http.StatusGatewayTimeout
					x.detail = "only-if-cached, and what is stored for " + cs.key + " would have to be revalidated"
					cs.result = "miss"
					h.answerError(w, r, x, 0, x.route.pages)
					return true
				}
				cs.stale = e
			case cache.UseRevalidate:
				if rc.updating && !isRefresh(r) && !e.Fresh(now) && e.StaleIfError(now, true) {
					// use_stale: updating: the stale response now, the
					// refresh behind it, once.
					h.serveEntry(w, r, x, e, cache.Status{Hit: true, TTL: e.TTL(now), HasTTL: true, Detail: "updating"}.String(), "stale")
					h.refreshLater(r, cs.key)
					return true
				}
				cs.reval, cs.stale = e, e
			default:
				cs.stale = e
			}
			cs.result = "revalidated"
			return false
		}
		if cache.OnlyIfCached(r) {
			x.cause, x.status = cause.DestinationUnavailable, http.StatusGatewayTimeout
			x.detail = "only-if-cached, and nothing is stored for " + cs.key
			cs.result = "miss"
			h.answerError(w, r, x, 0, x.route.pages)
			return true
		}
		cs.result = "miss"
		leader, done, wait := rc.c.Lead(cs.key)
		if leader {
			cs.done = done
			return false
		}
		if round > 0 || !wait(r.Context(), rc.lockTimeout) {
			return false // the first request took too long: go upstream
		}
		rc.c.Count("collapsed")
	}
}

// refreshKey marks the request of a background refresh in its context.
type refreshKey struct{}

func isRefresh(r *http.Request) bool { return r.Context().Value(refreshKey{}) != nil }

// refreshLater revalidates the stored response for key in the background,
// once however many requests ask (the collapsing lock of the key's
// refresh): the request goes through the handler as a client's would,
// answered into nothing, and its response refreshes or replaces the entry.
// It is bounded by the pool's timeouts like any request.
func (h *Handler) refreshLater(r *http.Request, key string) {
	rc := h.routeCacheOf(r)
	if rc == nil {
		return
	}
	select {
	case h.refreshing <- struct{}{}:
	default:
		return // enough refreshes in flight: a later request will ask again
	}
	leader, done, _ := rc.c.Lead(key + "\x00refresh")
	if !leader {
		<-h.refreshing
		return
	}
	ctx := context.WithValue(context.Background(), refreshKey{}, true)
	req := r.Clone(ctx)
	req.Method = http.MethodGet // a HEAD's answer could not be stored
	req.Body = http.NoBody
	req.Header.Del("Range")
	req.Header.Del("If-None-Match")
	req.Header.Del("If-Modified-Since")
	// A background refresh is owned by nothing but the request it
	// stands for: it ends with the pool's own timeouts.
	go func() {
		defer func() { <-h.refreshing }()
		defer done()
		h.ServeHTTP(discard{header: http.Header{}}, req)
	}()
}

func (h *Handler) routeCacheOf(r *http.Request) *routeCache {
	if rt := h.router.match(r.Host, r.URL.Path); rt != nil {
		return rt.cache
	}
	return nil
}

// discard is a ResponseWriter that keeps nothing: the answer of a
// background refresh, whose only purpose is to update the cache.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}

// serveEntry answers r with a stored response.
func (h *Handler) serveEntry(w http.ResponseWriter, r *http.Request, x *exchange, e *cache.Entry, cacheStatus, result string) {
	w.Header().Set("X-Request-Id", x.reqID)
	x.send.start()
	n, _ := e.WriteTo(w, r, cacheStatus)
	x.send.end()
	x.bytesOut += n
	x.status = e.Status
	if n == 0 && (r.Method == http.MethodHead || e.Status == http.StatusNotModified) {
		x.status = e.Status
	}
	x.cache.result = result
	x.route.cache.c.Count(result)
}

// revalidate adds the stored response's validators to the outgoing header
// of a revalidation, in place of the client's own: the answer must be about
// the stored response.
func (cs *cacheState) revalidate(hdr http.Header) {
	if cs.reval == nil {
		return
	}
	hdr.Del("If-None-Match")
	hdr.Del("If-Modified-Since")
	hdr.Del("If-Match")
	hdr.Del("If-Unmodified-Since")
	hdr.Del("If-Range")
	cs.reval.Conditional(hdr)
}

// cachedAnswer handles an upstream response for a cached route before it
// is passed on: a 304 to a revalidation refreshes the stored response and
// answers from it; an error status that use_stale covers answers with the
// stale response. It reports whether it answered; otherwise it decided
// whether the response is to be stored as it streams.
func (h *Handler) cachedAnswer(w http.ResponseWriter, r *http.Request, x *exchange, resp *http.Response) bool {
	rc := x.route.cache
	cs := &x.cache
	if rc == nil || cs.key == "" {
		if rc != nil && resp.StatusCode < 400 && !cache.SafeMethod(r.Method) {
			rc.c.Invalidate(r, schemeOf(r), resp) // an unsafe method changed the resource
		}
		return false
	}
	now := h.now()
	if cs.reval != nil && resp.StatusCode == http.StatusNotModified {
		e := rc.c.Refresh(r, cs.key, cs.reval, resp, cs.reqTime, now)
		resp.Body.Close()
		if v := resp.Header.Values("Set-Cookie"); len(v) > 0 {
			// The 304's cookie is for this client alone: not stored.
			w.Header()["Set-Cookie"] = v
		}
		h.serveEntry(w, r, x, e, cache.Status{Fwd: cache.FwdStale, FwdStatus: http.StatusNotModified, TTL: e.TTL(now), HasTTL: true}.String(), "revalidated")
		return true
	}
	if resp.StatusCode >= 500 && cs.stale != nil {
		cond := "http_" + strconv.Itoa(resp.StatusCode)
		if allowed := rc.useStale.status(resp.StatusCode); cs.stale.StaleIfError(now, allowed) {
			resp.Body.Close()
			cs.fwdStatus = resp.StatusCode
			h.serveStale(w, r, x, cause.UpstreamStatus, cond)
			return true
		}
	}
	ok, _ := cache.Storable(r, resp)
	// A body delimited by the connection's close cannot be told from one
	// cut short when the upstream died: never stored.
	closeDelimited := resp.ContentLength < 0 && len(resp.TransferEncoding) == 0
	cs.store = ok && resp.ContentLength <= rc.maxObject && !closeDelimited
	if !cs.store && cs.done != nil {
		// Nothing to wait for: the requests collapsed behind this one go
		// upstream now rather than when its body has streamed.
		cs.done()
		cs.done = nil
	}
	fwd := "uri-miss"
	if cs.reval != nil {
		fwd = "stale"
	}
	w.Header().Set("Cache-Status", cache.Status{Fwd: fwd, FwdStatus: resp.StatusCode, Stored: cs.store}.String())
	return false
}

// serveStale answers with the stored stale response in place of a failure
// of cause c, when the response's stale-if-error or the route's use_stale
// allows it. Proxy-Status still records the upstream's failure.
func (h *Handler) serveStale(w http.ResponseWriter, r *http.Request, x *exchange, c cause.Cause, cond string) bool {
	rc := x.route.cache
	cs := &x.cache
	if rc == nil || cs.stale == nil {
		return false
	}
	if cond == "" {
		cond = "error"
		if c.IsTimeout() {
			cond = "timeout"
		}
	}
	allowed := rc.useStale.failure(c)
	if strings.HasPrefix(cond, "http_") {
		code, _ := strconv.Atoi(strings.TrimPrefix(cond, "http_"))
		allowed = rc.useStale.status(code)
	}
	if !cs.stale.StaleIfError(h.now(), allowed) {
		if cc := cache.ParseCacheControl(cs.stale.Header); cc.Has("must-revalidate") || cc.Has("proxy-revalidate") {
			// RFC 9111 5.2.2.2: a stored response that must be revalidated
			// and cannot be is answered 504.
			x.clientStatus = http.StatusGatewayTimeout
			x.status = http.StatusGatewayTimeout
		}
		return false
	}
	x.cause = c
	w.Header().Set("Proxy-Status", proxyStatus(c, c.Summary()))
	// A hit that went forward first: the stored response answers, in place
	// of the failure the forwarded request met (the and nginx's
	// sense of "stale"; RFC 9211's fwd=stale and its detail say why).
	st := cache.Name + "; hit; fwd=stale"
	if fs := x.cache.fwdStatus; fs != 0 {
		st += "; fwd-status=" + strconv.Itoa(fs)
	}
	st += "; detail=" + strconv.Quote(c.String())
	h.serveEntry(w, r, x, cs.stale, st, "stale")
	return true
}

// storeBudget bounds the bytes of all the bodies being collected for the
// cache at once: each may be up to max_object, and without a bound, many
// large misses read slowly by their clients would hold that much each.
// Past it, a response is passed on and not stored.
type storeBudget struct {
	used atomic.Int64
	max  int64
}

func (b *storeBudget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

// storeSink collects a response's body as it streams, up to max bytes and
// within the handler's budget.
type storeSink struct {
	buf    bytes.Buffer
	max    int64
	budget *storeBudget
	held   int64 // bytes taken from the budget
	over   bool
}

func (s *storeSink) write(p []byte) {
	if s.over {
		return
	}
	if int64(s.buf.Len()+len(p)) > s.max || !s.budget.take(int64(len(p))) {
		s.drop()
		return
	}
	s.held += int64(len(p))
	s.buf.Write(p)
}

// drop gives up storing, and gives back the budget.
func (s *storeSink) drop() {
	s.over = true
	s.buf = bytes.Buffer{}
	s.release()
}

// release gives back the budget the sink holds.
func (s *storeSink) release() {
	s.budget.used.Add(-s.held)
	s.held = 0
}
