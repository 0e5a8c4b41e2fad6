package proxy

import (
	"net"
	"sort"
	"strings"

	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/ratelimit"
)

// route is one compiled route.
type route struct {
	name    string // host+prefix, for logs and metrics
	host    string // lower case; "" any; "*.x" wildcard
	prefix  string
	strip   bool
	pool    *pool
	nonIdem bool
	pages   *pages
	m       *metrics.Route   // nil without metrics
	limits  *ratelimit.Route // nil without rate limits
	cache   *routeCache      // nil when the route does not cache
}

// router finds the route for a request: the most specific host first (exact,
// then wildcard, then any host), then the longest path prefix within it, as
// nginx picks a server block and then a location.
type router struct {
	exact    map[string][]*route
	wildcard []*route // sorted: longest suffix first, then longest prefix
	any      []*route
}

func newRouter(routes []*route) *router {
	r := &router{exact: make(map[string][]*route)}
	for _, rt := range routes {
		switch {
		case rt.host == "":
			r.any = append(r.any, rt)
		case strings.HasPrefix(rt.host, "*."):
			r.wildcard = append(r.wildcard, rt)
		default:
			r.exact[rt.host] = append(r.exact[rt.host], rt)
		}
	}
	byPrefix := func(rs []*route) {
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].prefix) > len(rs[j].prefix) })
	}
	for _, rs := range r.exact {
		byPrefix(rs)
	}
	byPrefix(r.any)
	sort.SliceStable(r.wildcard, func(i, j int) bool {
		if len(r.wildcard[i].host) != len(r.wildcard[j].host) {
			return len(r.wildcard[i].host) > len(r.wildcard[j].host)
		}
		return len(r.wildcard[i].prefix) > len(r.wildcard[j].prefix)
	})
	return r
}

// match returns the route for host (as sent, perhaps with a port) and path,
// or nil.
func (r *router) match(host, path string) *route {
	host = normalHost(host)
	if rs, ok := r.exact[host]; ok {
		if rt := longest(rs, path); rt != nil {
			return rt
		}
	}
	for _, rt := range r.wildcard {
		if strings.HasSuffix(host, rt.host[1:]) && len(host) > len(rt.host)-1 && prefixMatch(rt.prefix, path) {
			return rt
		}
	}
	return longest(r.any, path)
}

func longest(rs []*route, path string) *route {
	for _, rt := range rs {
		if prefixMatch(rt.prefix, path) {
			return rt
		}
	}
	return nil
}

// prefixMatch matches whole path segments: "/api" matches "/api" and
// "/api/users" but not "/apix"; a prefix ending in "/" matches everything
// below it.
func prefixMatch(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// normalHost lowercases host and drops a port and a trailing dot.
func normalHost(host string) string {
	if strings.IndexByte(host, ':') >= 0 {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

func routeName(m config.Match) string {
	h := m.Host
	if h == "" {
		h = "*"
	}
	return h + m.PathPrefix
}
