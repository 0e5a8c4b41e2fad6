package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Policy describes one limit as the RateLimit-Policy header advertises it
// (draft-ietf-httpapi-ratelimit-headers-10): Quota requests per Window,
// with bursts of up to Burst.
type Policy struct {
	// Name identifies the limit in the RateLimit and RateLimit-Policy
	// headers: its key ("client_ip", "route", "header:X-Api-Key"), followed
	// by "#" and its index when two limits of a route share a key.
	Name string
	// Quota is the configured N of N/s, N/m or N/h: the "q" parameter.
	Quota int
	// Window is the configured period: the "w" parameter, in seconds.
	Window time.Duration
	// Burst is the size of the token bucket.
	Burst int
}

// item writes p as an item of the RateLimit-Policy list:
// "client_ip";q=100;w=1.
func (p Policy) item() string {
	return quote(p.Name) + ";q=" + strconv.Itoa(p.Quota) + ";w=" + strconv.Itoa(int(p.Window/time.Second))
}

// Decision is the answer to one request: whether every limit of its route
// allows it, and what to tell the client. Its zero value allows.
//
// When the request is refused, the limit named is the one that refused (of
// several, the one that frees up last, so that RetryAfter is when all of
// them allow). When it is allowed, it is the limit with the fewest requests
// remaining, the one a client should pace itself by.
type Decision struct {
	// Allowed is whether every limit allows the request. When it is false
	// the caller answers 429 with the headers of WriteHeaders.
	Allowed bool
	// RetryAfter is, for a refused request, the time until every limit
	// would allow it; zero for an allowed one.
	RetryAfter time.Duration
	// Remaining is how many more requests the limit named allows at once
	// (the tokens left in its bucket, whole).
	Remaining int
	// Reset is the time until the limit named is back to a full bucket.
	Reset time.Duration
	// Limit is the index, in the route's limits, of the limit named; -1
	// when the route has no limit.
	Limit int
	// Policy is the limit named, as configured.
	Policy Policy
	// Mode says who decided: the local buckets (ModeLocal, or
	// ModeFallback while the shared store is unreachable) or the shared
	// store (ModeShared).
	Mode Mode

	route *Route
}

// RetryAfterSeconds is the Retry-After header's value for a refused
// request: RetryAfter rounded up to whole seconds, at least 1. It is 0 for
// an allowed one.
func (d Decision) RetryAfterSeconds() int {
	if d.Allowed {
		return 0
	}
	return max(1, ceilSeconds(d.RetryAfter))
}

// RateLimitValue is the RateLimit header's value for the limit named:
// "client_ip";r=0;t=3. The reset parameter t is, for a refused request,
// RetryAfterSeconds (the draft wants Retry-After no earlier than it), and
// for an allowed one the seconds until the bucket is full again, rounded
// up. It is empty when the route has no limit.
func (d Decision) RateLimitValue() string {
	if d.Limit < 0 {
		return ""
	}
	t := ceilSeconds(d.Reset)
	if !d.Allowed {
		t = d.RetryAfterSeconds()
	}
	return quote(d.Policy.Name) + ";r=" + strconv.Itoa(d.Remaining) + ";t=" + strconv.Itoa(t)
}

// PolicyValue is the RateLimit-Policy header's value: every limit of the
// route, as "client_ip";q=100;w=1, "route";q=1000;w=60. It is empty when
// the route has no limit.
func (d Decision) PolicyValue() string {
	if d.route == nil {
		return ""
	}
	return d.route.policyValue
}

// WriteHeaders sets RateLimit-Policy and RateLimit on h and, for a refused
// request, Retry-After. A route with no limit sets nothing. The caller
// decides on which responses to write them: on a 429 they say when to come
// back; on other responses they let a client pace itself, but they replace
// any RateLimit fields the upstream sent.
func (d Decision) WriteHeaders(h http.Header) {
	if d.Limit < 0 || d.route == nil {
		return
	}
	h.Set("RateLimit-Policy", d.route.policyValue)
	h.Set("RateLimit", d.RateLimitValue())
	if !d.Allowed {
		h.Set("Retry-After", strconv.Itoa(d.RetryAfterSeconds()))
	}
}

// ceilSeconds rounds d up to whole seconds; negative durations are 0.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// quote writes s as a Structured Fields String (RFC 9651, section 3.3.3):
// in double quotes, with '"' and '\' escaped. Policy names are made of a
// key and a header name, all visible ASCII, so nothing else needs care.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}
