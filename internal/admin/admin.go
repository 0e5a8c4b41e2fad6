// Package admin serves holdfast's admin HTTP API: liveness and readiness
// for orchestrators (/healthz, /readyz), the state of every pool and server
// (/api/v1/pools), draining and enabling a server, reloading the
// configuration, the Prometheus metrics (/metrics), the rates and recent
// failures behind the dashboard, and the dashboard itself at /. The gateway
// implements Backend and mounts a Handler on the admin listener;
// docs/admin.md is the reference for the routes.
//
// The API answers JSON, errors as RFC 9457 problem details; /metrics is the
// Prometheus exposition and the dashboard is HTML. Only POST changes
// state, and only with the configured bearer token.
package admin

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/upstream"
)

// Backend is what the admin API reads and steers. The gateway implements
// it. Its methods are called from concurrent requests.
type Backend interface {
	// Pools returns a snapshot of every pool in force, in file order.
	Pools() []upstream.PoolStatus
	// SetDrained drains (true) or enables (false) the server with URL url
	// (exactly as ServerStatus.URL) of pool, and returns its state after
	// the change; an error wrapping ErrNotFound when either is gone.
	SetDrained(pool, url string, drained bool) (upstream.ServerStatus, error)
	// Reload reads the configuration file again and puts it in force; it
	// returns the new configuration's summary, or the error (config errors
	// are one per line, "file:line:col: key: message").
	Reload() (summary string, err error)
	// Ready returns nil when the listeners are bound and every pool has a
	// server that takes requests, else an error saying what is not ready.
	Ready() error
}

// ErrNotFound is wrapped by a Backend's error when the pool or server named
// no longer exists, for instance because a reload removed it. The API
// answers it with 404.
var ErrNotFound = errors.New("not found")

// Observer is where the admin API finds the gateway's metrics: the
// Prometheus exposition, the per-route rates of the last minutes and the
// recent failed requests. *metrics.Registry implements it.
type Observer interface {
	Handler() http.Handler
	Stats() metrics.Stats
	Failures() []metrics.Failure
}

// Cache is the shared cache as the admin API sees it.
type Cache interface {
	// Purge removes the entries whose key is target (scheme://host/path?query)
	// or, with prefix, starts with it, and returns how many.
	Purge(target string, prefix bool) int
	// Stats returns the cache's counters, JSON-encodable.
	Stats() any
}

// Options configure a Handler.
type Options struct {
	// Backend is the gateway the API reads and steers. Required.
	Backend Backend
	// Metrics serves /metrics, /api/v1/stats and /api/v1/failures. nil
	// answers them 404.
	Metrics Observer
	// RateLimits returns the state of the rate limits' store, served at
	// /api/v1/rate_limits. nil answers it 404.
	RateLimits func() any
	// Cache is the shared cache, for GET /api/v1/cache (its counters) and
	// POST /api/v1/cache/purge. nil answers them 404.
	Cache Cache
	// Token returns the bearer token that state-changing calls must
	// present, surrounding white space ignored. It is called on every
	// call that needs it, so a reload can change it. nil, or a function
	// returning "", means none is configured: every state-changing call is
	// refused with 403.
	Token func() string
	// TokenForReads makes the calls under /api/ that only read need the
	// token too, for a listener that is not on loopback. /healthz and
	// /readyz never need it. Default false.
	TokenForReads bool
	// Logger receives one Info record for every state-changing call,
	// refused or not. nil discards them.
	Logger *slog.Logger
}

// Handler serves the admin API. It is safe for concurrent use when its
// Backend is. Create it with New.
type Handler struct {
	backend       Backend
	metrics       Observer
	rateLimits    func() any
	cache         Cache
	token         func() string
	tokenForReads bool
	log           *slog.Logger
	routes        []route
}

// maxBody bounds what is read of a request body: no route takes one, and
// what little is read lets the connection be reused.
const maxBody = 4 << 10

// New returns a Handler for o. It panics if o.Backend is nil.
func New(o Options) *Handler {
	if o.Backend == nil {
		panic("admin.New: nil Backend")
	}
	h := &Handler{
		backend:       o.Backend,
		metrics:       o.Metrics,
		rateLimits:    o.RateLimits,
		cache:         o.Cache,
		token:         o.Token,
		tokenForReads: o.TokenForReads,
		log:           o.Logger,
	}
	if h.token == nil {
		h.token = func() string { return "" }
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.routes = h.newRoutes()
	return h
}

// ServeHTTP answers one admin call. The checks run in a fixed order: the
// path (404), the method (405), the token (401, 403), then the call itself.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	rt, p := h.match(r.URL.EscapedPath())
	p.query = r.URL.Query()
	if rt == nil {
		write(w, problem(http.StatusNotFound, "no such path: the admin listener serves the dashboard at /, /metrics, /healthz, /readyz and /api/v1/... (see docs/admin.md)"))
		return
	}
	if !rt.allows(r.Method) {
		rp := problem(http.StatusMethodNotAllowed, r.Method+" is not allowed on "+rt.pattern+": use "+rt.allowed())
		rp.header = http.Header{"Allow": {rt.allowed()}}
		write(w, rp)
		return
	}
	changes := rt.method == http.MethodPost
	if !h.tokenForReads && !loopbackHost(r.Host) {
		// On loopback, reads need no token: a page whose name was made to
		// resolve to 127.0.0.1 (DNS rebinding) must not read them through
		// a browser on this machine.
		write(w, problem(http.StatusForbidden, "the admin listener answers only requests addressed to a loopback host (localhost, 127.0.0.1, [::1])"))
		return
	}
	rp := h.authorize(r, rt)
	if changes && rp == nil {
		// No route reads a body; a little is read so that a small one
		// does not cost the connection, and only once the caller is known.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
	}
	if rp == nil {
		rp = rt.serve(p)
	}
	if changes {
		h.logCall(r, rt, p, rp)
	}
	if rp.handler != nil {
		rp.handler.ServeHTTP(w, r)
		return
	}
	write(w, rp)
}

// logCall records a state-changing call and its outcome. The request's
// headers are never logged: the token must not reach a log.
func (h *Handler) logCall(r *http.Request, rt *route, p params, rp *reply) {
	attrs := []any{"route", rt.pattern}
	if p.pool != "" {
		attrs = append(attrs, "pool", clip(p.pool))
	}
	if p.server != "" {
		attrs = append(attrs, "server", clip(p.server))
	}
	attrs = append(attrs, "status", rp.status, "outcome", rp.outcome(), "remote", r.RemoteAddr)
	if pr, ok := rp.body.(*Problem); ok && len(pr.Errors) > 0 {
		attrs = append(attrs, "errors", pr.Errors)
	}
	h.log.Info("admin call", attrs...)
}

// authorize returns the refusal of r, or nil when r may proceed: every
// POST needs the token, and so does a read under /api/ with TokenForReads.
func (h *Handler) authorize(r *http.Request, rt *route) *reply {
	changes := rt.method == http.MethodPost
	if !changes && !(rt.api && h.tokenForReads) {
		return nil
	}
	want := strings.TrimSpace(h.token())
	if want == "" {
		if changes {
			return problem(http.StatusForbidden, "no admin token is configured, so no call may change state: set admin.token_file")
		}
		return problem(http.StatusForbidden, "this admin listener needs a token for every call and none is configured: set admin.token_file")
	}
	got, ok := bearer(r.Header.Get("Authorization"))
	var rp *reply
	switch {
	case !ok:
		rp = problem(http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer TOKEN, with the token in admin.token_file")
	case !sameToken(got, want):
		rp = problem(http.StatusUnauthorized, "wrong bearer token: send the token in admin.token_file")
	default:
		return nil
	}
	rp.header = http.Header{"WWW-Authenticate": {`Bearer realm="holdfast admin"`}}
	return rp
}

// clip bounds a string from a request before it is logged.
func clip(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}

// loopbackHost reports whether a Host header names this machine:
// localhost, or a loopback address, with any port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
