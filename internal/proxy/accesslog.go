package proxy

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/metrics"
)

// logRequest writes the request's access-log line: one JSON object with the
// route, status, cause, timing, sizes, request id and the attempt ledger
// (encoded in accesslog_json.go), and tells the observer.
func (h *Handler) logRequest(r *http.Request, x *exchange) {
	d := h.now().Sub(x.start)
	if x.status == 0 {
		x.status = http.StatusOK
	}
	routeName, poolName := "", ""
	if x.route != nil {
		routeName, poolName = x.route.name, x.route.pool.Name
	}
	if h.events != nil {
		h.events.Request(routeName, x.status, x.cause, len(x.attempts), d)
	}
	h.count(r, x, d)
	if h.access != nil {
		h.access.write(r, x, routeName, poolName, d)
	}
}

// count adds the request to the metrics: its route's counters, the
// pool's skipped retry, and, for a failure, the list of recent failures
// with its ledger.
func (h *Handler) count(r *http.Request, x *exchange, d time.Duration) {
	rm := h.noRoute
	if x.route != nil {
		rm = x.route.m
	}
	if rm == nil {
		return
	}
	rm.Observe(x.status, x.cause, d)
	if x.cache.result != "" {
		rm.Cached(x.cache.result)
	}
	if x.cause == cause.None {
		return
	}
	f := metrics.Failure{
		RequestID:  x.reqID,
		Method:     r.Method,
		Path:       r.URL.Path,
		Status:     x.status,
		Cause:      x.cause.String(),
		Detail:     x.detail,
		DurationMS: ms(d),
		Attempts:   make([]metrics.Attempt, len(x.attempts)),
	}
	if x.route != nil {
		f.Pool = x.route.pool.Name
		if x.retrySkipped != "" && x.route.pool.m != nil {
			x.route.pool.m.Skipped(x.retrySkipped)
		}
	}
	for i, a := range x.attempts {
		f.Attempts[i] = metrics.Attempt{
			Server: a.Server, Phase: a.Phase.String(), Reused: a.Reused, IdleMS: a.IdleMS,
			Written: a.Written, Status: a.Status, DurationMS: a.Duration,
		}
		if a.Cause != cause.None {
			f.Attempts[i].Cause = a.Cause.String()
		}
	}
	rm.Failed(f)
}

// tlsVersion names the TLS version of the client's connection ("TLS 1.3"),
// or "" for plain HTTP.
func tlsVersion(r *http.Request) string {
	if r.TLS == nil {
		return ""
	}
	return tls.VersionName(r.TLS.Version)
}
