package admin

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/internal/upstream"
)

// findPool returns the pool called name in a fresh snapshot, or a 404.
func (h *Handler) findPool(name string) (upstream.PoolStatus, *reply) {
	ps := h.backend.Pools()
	names := make([]string, len(ps))
	for i, p := range ps {
		if p.Name == name {
			return p, nil
		}
		names[i] = p.Name
	}
	return upstream.PoolStatus{}, problem(http.StatusNotFound,
		fmt.Sprintf("no pool %q (pools: %s)", name, strings.Join(names, ", ")))
}

// findServer returns the pool and server that p names, or a 404.
func (h *Handler) findServer(p params) (upstream.PoolStatus, upstream.ServerStatus, *reply) {
	pool, rp := h.findPool(p.pool)
	if rp != nil {
		return pool, upstream.ServerStatus{}, rp
	}
	if s, ok := serverOf(pool, p.server); ok {
		return pool, s, nil
	}
	return pool, upstream.ServerStatus{}, problem(http.StatusNotFound,
		fmt.Sprintf("no server %q in pool %q: give its index or its URL, as GET /api/v1/pools/%s lists them", p.server, pool.Name, url.PathEscape(pool.Name)))
}

// serverOf returns the server of pool that ref names: its index in
// decimal, or its URL, which matches whether or not it spells out the
// scheme's default port and whatever the case of its scheme and host.
func serverOf(pool upstream.PoolStatus, ref string) (upstream.ServerStatus, bool) {
	if isDecimal(ref) {
		n, err := strconv.Atoi(ref)
		for _, s := range pool.Servers {
			if err == nil && s.Index == n {
				return s, true
			}
		}
		return upstream.ServerStatus{}, false
	}
	want, ok := serverKey(ref)
	for _, s := range pool.Servers {
		if s.URL == ref {
			return s, true
		}
		if k, kok := serverKey(s.URL); ok && kok && k == want {
			return s, true
		}
	}
	return upstream.ServerStatus{}, false
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// serverKey normalises a server's URL for comparison: lower-case scheme
// and host, an explicit port (80 for http, 443 for https), and the path
// without a trailing slash. It reports false for what is not an absolute
// http or https URL.
func serverKey(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		default:
			return "", false
		}
	}
	host := net.JoinHostPort(strings.ToLower(u.Hostname()), port)
	return scheme + "://" + host + strings.TrimSuffix(u.EscapedPath(), "/"), true
}
