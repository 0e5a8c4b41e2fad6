package cache

import (
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// Entry is one stored response. Entries are immutable once stored: the
// cache never changes one in place (a refresh stores a new Entry), so
// any number of goroutines may read an Entry, its Header and its Body at
// once. Callers must not modify them either.
type Entry struct {
	Status int
	// Header is the stored header: hop-by-hop fields and Content-Length
	// removed, Date added when the origin sent none (RFC 9110 6.6.1).
	Header http.Header
	Body   []byte
	// RequestTime and ResponseTime are the times the request that
	// fetched (or last revalidated) the response was sent and its
	// answer received; RFC 9111 4.2.3 computes the age from them.
	RequestTime, ResponseTime time.Time
	// Key is the primary key the entry is stored under (see KeyOf).
	Key string

	cc       CacheControl
	date     time.Time     // Date, or ResponseTime when absent or invalid
	ageValue time.Duration // the stored Age field, 0 when absent or invalid
	vary     []varyField   // the secondary key
	varyStar bool
	size     int64 // bytes charged against Config.MaxSize
	clock    func() time.Time
}

// varyField is one request field named by the stored response's Vary,
// with the normalised value the storing request had (absent: !present).
type varyField struct {
	name    string
	value   string
	present bool
}

// newEntry derives the parsed state of a stored response; h must
// already be the entry's own copy.
func newEntry(key string, r *http.Request, status int, h http.Header, body []byte, reqTime, respTime time.Time) *Entry {
	e := &Entry{
		Status:       status,
		Header:       h,
		Body:         body,
		RequestTime:  reqTime,
		ResponseTime: respTime,
		Key:          key,
		cc:           ParseCacheControl(h),
	}
	if t, err := http.ParseTime(h.Get("Date")); err == nil && len(h.Values("Date")) == 1 {
		e.date = t
	} else {
		e.date = respTime
		h.Set("Date", respTime.UTC().Format(http.TimeFormat))
	}
	if ages := h.Values("Age"); len(ages) > 0 {
		// One field line of digits; of a list packed without spaces
		// ("0,7200") the first member counts. Anything else (two lines,
		// "0, 0", parameters) is as the public cache conformance suite
		// reads it: not to be trusted.
		first, _, _ := strings.Cut(ages[0], ",")
		if d, ok := parseDelta(strings.TrimSpace(first)); ok && len(ages) == 1 && packedDigits(strings.TrimSpace(ages[0])) {
			e.ageValue = d
		} else {
			// An Age that is not one whole non-negative number cannot be
			// trusted to say the response is young: take it as stale, so
			// that it is revalidated before use.
			e.ageValue = (1 << 31) * time.Second // the largest delta-seconds (RFC 9111 1.2.2)
		}
	}
	e.vary, e.varyStar = secondaryKey(h, r)
	e.size = entrySize(key, h, body)
	return e
}

// entryOverhead approximates the bytes an Entry costs beyond its
// header and body, so that a flood of empty responses still counts.
const entryOverhead = 256

func entrySize(key string, h http.Header, body []byte) int64 {
	n := int64(entryOverhead + len(key) + len(body))
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// secondaryKey records, for each field the response varies on, the
// value the request had (RFC 9111 4.1).
func secondaryKey(h http.Header, r *http.Request) (fields []varyField, star bool) {
	for _, v := range h.Values("Vary") {
		for name := range strings.SplitSeq(v, ",") {
			name = trimOWS(name)
			if name == "" {
				continue
			}
			if name == "*" {
				return nil, true
			}
			name = textproto.CanonicalMIMEHeaderKey(name)
			f := varyField{name: name}
			if r != nil {
				f.value, f.present = normalizedField(r.Header, name)
			}
			fields = append(fields, f)
		}
	}
	return fields, false
}

// normalizedField combines a request's field lines into one value with
// the whitespace around commas removed, so that "a, b" and "a,b" and two
// lines "a" and "b" select the same variant (RFC 9111 4.1 allows this
// normalisation).
func normalizedField(h http.Header, name string) (string, bool) {
	vs, ok := h[name]
	if !ok {
		return "", false
	}
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		for p := range strings.SplitSeq(v, ",") {
			parts = append(parts, trimOWS(p))
		}
	}
	return strings.Join(parts, ","), true
}

// matches reports whether request r selects e by its secondary key.
func (e *Entry) matches(r *http.Request) bool {
	if e.varyStar {
		return false
	}
	for _, f := range e.vary {
		v, ok := normalizedField(r.Header, f.name)
		if ok != f.present || v != f.value {
			return false
		}
	}
	return true
}

// sameVariant reports whether e and o have the same secondary key, so
// that storing o replaces e.
func (e *Entry) sameVariant(o *Entry) bool {
	if len(e.vary) != len(o.vary) || e.varyStar || o.varyStar {
		return false
	}
	for i := range e.vary {
		if e.vary[i] != o.vary[i] {
			return false
		}
	}
	return true
}

// Age returns the entry's current_age at now (RFC 9111 4.2.3): the
// larger of the apparent age (ResponseTime - Date) and the corrected Age
// field (Age + response delay), plus the time it has been resident.
func (e *Entry) Age(now time.Time) time.Duration {
	apparent := max(0, e.ResponseTime.Sub(e.date))
	delay := max(0, e.ResponseTime.Sub(e.RequestTime))
	initial := max(apparent, e.ageValue+delay)
	return initial + max(0, now.Sub(e.ResponseTime))
}

// heuristicStatus holds the status codes RFC 9110 15.1 defines as
// heuristically cacheable.
var heuristicStatus = map[int]bool{
	200: true, 203: true, 204: true, 206: true, 300: true, 301: true,
	308: true, 404: true, 405: true, 410: true, 414: true, 501: true,
}

// maxHeuristic caps a heuristic freshness lifetime: 10% of a resource's
// age since Last-Modified is the customary rule (RFC 9111 4.2.2), and a
// day keeps a years-old file from being trusted for a month.
const maxHeuristic = 24 * time.Hour

// FreshnessLifetime returns the entry's freshness lifetime for a shared
// cache (RFC 9111 4.2.1): s-maxage, else max-age, else Expires minus
// Date, else a heuristic. A malformed or conflicting value of the first
// of these present gives 0, as does an invalid Expires (RFC 9111 5.3:
// such a response is already stale). The heuristic (10% of Date minus
// Last-Modified, at most a day) applies only where RFC 9111 4.2.2
// allows it: no explicit freshness and a heuristically cacheable status
// or public; and holdfast uses it only with a Last-Modified.
func (e *Entry) FreshnessLifetime() time.Duration {
	if d, ok := e.cc.Seconds("s-maxage"); ok {
		return d
	}
	if d, ok := e.cc.Seconds("max-age"); ok {
		return d
	}
	if vs := e.Header.Values("Expires"); len(vs) > 0 {
		if len(vs) > 1 {
			return 0
		}
		t, err := http.ParseTime(vs[0])
		if err != nil {
			return 0
		}
		return min(max(0, t.Sub(e.date)), maxDelta)
	}
	if !heuristicStatus[e.Status] && !e.cc.Has("public") {
		return 0
	}
	lm, err := http.ParseTime(e.Header.Get("Last-Modified"))
	if err != nil || !lm.Before(e.date) {
		return 0
	}
	return min(e.date.Sub(lm)/10, maxHeuristic)
}

// Fresh reports whether the entry is fresh at now.
func (e *Entry) Fresh(now time.Time) bool {
	return e.FreshnessLifetime() > e.Age(now)
}

// TTL returns the remaining freshness lifetime at now, negative once
// stale: the ttl of a Cache-Status member.
func (e *Entry) TTL(now time.Time) time.Duration {
	return e.FreshnessLifetime() - e.Age(now)
}

// Use says how a stored response may answer a request.
type Use int

const (
	// UseMiss: the entry cannot answer the request: no entry, a method
	// other than GET or HEAD, or, for a request with only-if-cached, an
	// entry that would need revalidation (see OnlyIfCached: the caller
	// then answers 504 instead of going upstream).
	UseMiss Use = iota
	// UseFresh: serve the entry as it is.
	UseFresh
	// UseStaleWhileRevalidate: serve the stale entry now and revalidate
	// it in the background. Given within the response's
	// stale-while-revalidate window (RFC 5861) and for a request whose
	// max-stale accepts the staleness: revalidating then keeps the
	// next request from paying for it.
	UseStaleWhileRevalidate
	// UseRevalidate: send a conditional request (see Conditional) and
	// serve the entry only on 304 (see Cache.Refresh).
	UseRevalidate
)

func (u Use) String() string {
	switch u {
	case UseMiss:
		return "miss"
	case UseFresh:
		return "fresh"
	case UseStaleWhileRevalidate:
		return "stale-while-revalidate"
	case UseRevalidate:
		return "revalidate"
	}
	return "Use(?)"
}

// OnlyIfCached reports whether r carries only-if-cached (RFC 9111
// 5.2.1.7): the caller must answer from the cache or with 504, never by
// going upstream.
func OnlyIfCached(r *http.Request) bool {
	return ParseCacheControl(r.Header).Has("only-if-cached")
}

// Usable reports how the entry may answer request r at now, honouring
// the response's no-cache, must-revalidate, proxy-revalidate, s-maxage
// and stale-while-revalidate and the request's max-age, min-fresh,
// max-stale, no-cache and only-if-cached. A nil entry gives UseMiss.
func (e *Entry) Usable(r *http.Request, now time.Time) Use {
	if e == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return UseMiss
	}
	req := ParseCacheControl(r.Header)
	u := e.usable(req, now)
	if u == UseRevalidate && req.Has("only-if-cached") {
		return UseMiss
	}
	return u
}

func (e *Entry) usable(req CacheControl, now time.Time) Use {
	if req.Has("no-cache") || e.cc.Has("no-cache") {
		return UseRevalidate
	}
	age, life := e.Age(now), e.FreshnessLifetime()
	if d, ok := req.Seconds("max-age"); ok && age > d {
		return UseRevalidate
	}
	if req.Has("min-fresh") {
		// An unreadable min-fresh is read as "never fresh enough".
		d := maxDelta
		if req.valid("min-fresh") {
			d, _ = req.Seconds("min-fresh")
		}
		if life-age < d {
			return UseRevalidate
		}
	}
	if life > age {
		return UseFresh
	}
	if e.mustNotServeStale() {
		return UseRevalidate
	}
	staleness := age - life
	if v, ok := req.Get("max-stale"); ok {
		if v == "" && !req.conflict["max-stale"] {
			return UseStaleWhileRevalidate // max-stale with no value: any staleness
		}
		if d, _ := req.Seconds("max-stale"); staleness <= d {
			return UseStaleWhileRevalidate
		}
	}
	if d, ok := e.cc.Seconds("stale-while-revalidate"); ok && staleness <= d {
		return UseStaleWhileRevalidate
	}
	return UseRevalidate
}

// mustNotServeStale reports the directives with which RFC 9111 4.2.4
// forbids a shared cache to serve the response stale.
func (e *Entry) mustNotServeStale() bool {
	return e.cc.Has("must-revalidate") || e.cc.Has("proxy-revalidate") ||
		e.cc.Has("s-maxage") || e.cc.Has("no-cache") || e.FreshnessLifetime() <= 0
}

// The last condition: a response that was never fresh (only a validator,
// no freshness of its own) is stored to be revalidated, never to be served
// as it is. Served stale, it would be one client's answer given to
// another: a per-user page with an ETag and nothing else is exactly that.

// StaleIfError reports whether the entry may be served at now in place
// of an error from upstream: when still fresh; when the response's
// stale-if-error=N (RFC 5861) covers its staleness; or when the operator
// allows it (overrideAllowed: the caller's use_stale list covers the
// failure). Never when the response has must-revalidate,
// proxy-revalidate, s-maxage or no-cache: RFC 9111 4.2.4 forbids a
// shared cache to serve such a response stale, whatever it is told.
func (e *Entry) StaleIfError(now time.Time, overrideAllowed bool) bool {
	if e == nil {
		return false
	}
	age, life := e.Age(now), e.FreshnessLifetime()
	if life > age && !e.cc.Has("no-cache") {
		return true
	}
	if e.mustNotServeStale() {
		return false
	}
	if overrideAllowed {
		return true
	}
	d, ok := e.cc.Seconds("stale-if-error")
	return ok && age-life <= d
}

// Validatable reports whether the entry has a validator (ETag or
// Last-Modified) so that a conditional request can revalidate it.
func (e *Entry) Validatable() bool {
	return e.Header.Get("ETag") != "" || e.Header.Get("Last-Modified") != ""
}

// Conditional prepares the outgoing request header h to revalidate e
// (RFC 9111 4.3.1): If-None-Match with e's ETag and If-Modified-Since
// with its Last-Modified. It first removes the client's own conditional
// and Range fields, so that a 304 speaks of e alone and a 200 is a full
// response the cache can store.
func (e *Entry) Conditional(h http.Header) {
	for _, k := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		h.Del(k)
	}
	if et := e.Header.Values("ETag"); len(et) > 0 {
		h["If-None-Match"] = append([]string(nil), et...)
	}
	if lm := e.Header.Get("Last-Modified"); lm != "" {
		h.Set("If-Modified-Since", lm)
	}
}

// packedDigits reports whether s is digits, or digit runs joined by
// commas without spaces.
func packedDigits(s string) bool {
	if s == "" || s[0] == ',' || s[len(s)-1] == ',' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != ',' {
			return false
		}
	}
	return !strings.Contains(s, ",,")
}
