package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WriteTo writes the entry to w as the answer to r, with the Age field
// set from the clock of the Cache that stored it (Config.Now) and
// cacheStatus appended to any
// Cache-Status the entry carries (RFC 9211 2: the member closest to the
// client comes last; "" adds none). It answers the client's own
// conditional request with 304 (RFC 9111 4.3.2), a single-range request
// on a 200 with 206 and an unsatisfiable one with 416; a multi-range
// request gets the full 200. A HEAD gets no body. It returns the body
// bytes written.
func (e *Entry) WriteTo(w http.ResponseWriter, r *http.Request, cacheStatus string) (int64, error) {
	now := time.Now
	if e.clock != nil {
		now = e.clock
	}
	return e.WriteAt(w, r, cacheStatus, now())
}

// WriteAt is WriteTo with the current time given, for a caller with its
// own clock.
func (e *Entry) WriteAt(w http.ResponseWriter, r *http.Request, cacheStatus string, now time.Time) (int64, error) {
	h := w.Header()
	if e.notModified(r) {
		for _, k := range notModifiedFields {
			if vs := e.Header.Values(k); len(vs) > 0 {
				h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
			}
		}
		if e.Header.Get("ETag") == "" {
			if lm := e.Header.Get("Last-Modified"); lm != "" {
				h.Set("Last-Modified", lm)
			}
		}
		e.setAge(h, now, cacheStatus)
		w.WriteHeader(http.StatusNotModified)
		return 0, nil
	}
	for k, vs := range e.Header {
		h[k] = append([]string(nil), vs...)
	}
	e.setAge(h, now, cacheStatus)

	status, body := e.Status, e.Body
	if e.Status == http.StatusOK && r.Method == http.MethodGet && r.Header.Get("Range") != "" && e.ifRange(r) {
		size := int64(len(e.Body))
		switch start, end, res := parseRange(r.Header.Get("Range"), size); res {
		case rangeOne:
			status, body = http.StatusPartialContent, e.Body[start:end+1]
			h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(size, 10))
		case rangeUnsatisfiable:
			for _, k := range []string{"Content-Type", "Content-Encoding", "ETag", "Last-Modified", "Expires", "Cache-Control"} {
				h.Del(k)
			}
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			status, body = http.StatusRequestedRangeNotSatisfiable, nil
		}
	}
	if bodyAllowed(status) {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead || !bodyAllowed(status) || len(body) == 0 {
		return 0, nil
	}
	n, err := w.Write(body)
	return int64(n), err
}

// notModifiedFields are the fields RFC 9110 15.4.5 asks a 304 to carry.
var notModifiedFields = []string{"Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Vary"}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func (e *Entry) setAge(h http.Header, now time.Time, cacheStatus string) {
	age := min(e.Age(now), maxDelta)
	h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	if cacheStatus != "" {
		h["Cache-Status"] = append(h["Cache-Status"], cacheStatus)
	}
}

// notModified evaluates the client's If-None-Match, or else its
// If-Modified-Since, against the entry (RFC 9110 13.2.2 order; RFC 9111
// 4.3.2). Conditions are evaluated only where the answer would be 2xx,
// and preconditions meant for the origin (If-Match,
// If-Unmodified-Since) are left alone.
func (e *Entry) notModified(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || e.Status < 200 || e.Status > 299 {
		return false
	}
	if inm := r.Header.Values("If-None-Match"); len(inm) > 0 {
		etag := e.Header.Get("ETag")
		for _, v := range inm {
			for tag := range strings.SplitSeq(v, ",") {
				tag = trimOWS(tag)
				if tag == "*" || (etag != "" && weakMatch(tag, etag)) {
					return true
				}
			}
		}
		return false
	}
	ims, err := http.ParseTime(r.Header.Get("If-Modified-Since"))
	if err != nil {
		return false
	}
	last := e.date
	if lm, err := http.ParseTime(e.Header.Get("Last-Modified")); err == nil {
		last = lm
	}
	return !last.After(ims)
}

// weakMatch compares entity tags with the weak comparison (RFC 9110
// 8.8.3.2): equal opaque tags, W/ prefixes ignored.
func weakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// ifRange reports whether the Range of r applies (RFC 9110 13.1.5): no
// If-Range, or one that matches the entry by the strong comparison.
func (e *Entry) ifRange(r *http.Request) bool {
	v := trimOWS(r.Header.Get("If-Range"))
	if v == "" {
		return true
	}
	if strings.HasPrefix(v, `"`) {
		etag := e.Header.Get("ETag")
		return etag != "" && !strings.HasPrefix(etag, "W/") && etag == v
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(e.Header.Get("Last-Modified"))
	return err == nil && lm.Equal(t)
}

type rangeResult int

const (
	rangeIgnore rangeResult = iota // absent, malformed, another unit, or several ranges: send it all
	rangeOne
	rangeUnsatisfiable
)

// parseRange reads a "bytes=" Range (RFC 9110 14.1.2) against a body of
// size bytes and returns the first and last byte of a single range.
func parseRange(v string, size int64) (start, end int64, res rangeResult) {
	unit, set, ok := strings.Cut(trimOWS(v), "=")
	if !ok || !strings.EqualFold(trimOWS(unit), "bytes") {
		return 0, 0, rangeIgnore
	}
	spec := trimOWS(set)
	if strings.Contains(spec, ",") {
		return 0, 0, rangeIgnore
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, rangeIgnore
	}
	first, last = trimOWS(first), trimOWS(last)
	if first == "" {
		// Suffix range: the last n bytes.
		n, ok := parseDigits(last)
		if !ok {
			return 0, 0, rangeIgnore
		}
		if n == 0 || size == 0 {
			return 0, 0, rangeUnsatisfiable
		}
		return max(0, size-n), size - 1, rangeOne
	}
	s, ok := parseDigits(first)
	if !ok {
		return 0, 0, rangeIgnore
	}
	e := size - 1
	if last != "" {
		l, ok := parseDigits(last)
		if !ok || l < s {
			return 0, 0, rangeIgnore
		}
		e = min(l, size-1)
	}
	if s >= size {
		return 0, 0, rangeUnsatisfiable
	}
	return s, e, rangeOne
}

func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}
