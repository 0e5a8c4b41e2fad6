package cache

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// t0 is the time the test responses were received.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func date(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// entryAt builds an entry received at t0 (sent at t0 too) from header
// lines given as name, value pairs.
func entryAt(status int, kv ...string) *Entry {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return newEntry("http://example.com/", httptest.NewRequest("GET", "/", nil), status, h, []byte("body"), t0, t0)
}

func TestFreshnessLifetime(t *testing.T) {
	tests := []struct {
		name   string
		status int
		kv     []string
		want   time.Duration
	}{
		{"s-maxage over max-age", 200, []string{"Cache-Control", "max-age=10, s-maxage=30"}, 30 * time.Second},
		{"max-age over Expires", 200, []string{"Cache-Control", "max-age=10", "Date", date(t0), "Expires", date(t0.Add(time.Hour))}, 10 * time.Second},
		{"Expires minus Date", 200, []string{"Date", date(t0.Add(-time.Minute)), "Expires", date(t0.Add(time.Minute))}, 2 * time.Minute},
		{"Expires without Date uses receipt", 200, []string{"Expires", date(t0.Add(time.Minute))}, time.Minute},
		{"invalid Expires is stale", 200, []string{"Expires", "0", "Last-Modified", date(t0.Add(-100 * time.Hour))}, 0},
		{"Expires in the past", 200, []string{"Date", date(t0), "Expires", date(t0.Add(-time.Hour))}, 0},
		{"two Expires are stale", 200, []string{"Expires", date(t0.Add(time.Hour)), "Expires", date(t0.Add(2 * time.Hour))}, 0},
		{"invalid max-age is stale", 200, []string{"Cache-Control", "max-age=soon", "Expires", date(t0.Add(time.Hour))}, 0},
		{"conflicting max-age is stale", 200, []string{"Cache-Control", "max-age=10", "Cache-Control", "max-age=20"}, 0},
		{"heuristic 10% of Last-Modified age", 200, []string{"Date", date(t0), "Last-Modified", date(t0.Add(-10 * time.Hour))}, time.Hour},
		{"heuristic capped at a day", 200, []string{"Date", date(t0), "Last-Modified", date(t0.Add(-1000 * time.Hour))}, 24 * time.Hour},
		{"heuristic for 404", 404, []string{"Date", date(t0), "Last-Modified", date(t0.Add(-10 * time.Hour))}, time.Hour},
		{"no heuristic for 302", 302, []string{"Date", date(t0), "Last-Modified", date(t0.Add(-10 * time.Hour))}, 0},
		{"heuristic for public 302", 302, []string{"Cache-Control", "public", "Date", date(t0), "Last-Modified", date(t0.Add(-10 * time.Hour))}, time.Hour},
		{"no heuristic without Last-Modified", 200, []string{"Date", date(t0), "ETag", `"x"`}, 0},
		{"no heuristic for Last-Modified after Date", 200, []string{"Date", date(t0), "Last-Modified", date(t0.Add(time.Hour))}, 0},
		{"explicit max-age=0 wins over heuristic", 200, []string{"Cache-Control", "max-age=0", "Last-Modified", date(t0.Add(-10 * time.Hour))}, 0},
		{"max-age capped at 2^31", 200, []string{"Cache-Control", "max-age=9999999999999"}, maxDelta},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entryAt(tt.status, tt.kv...)
			if got := e.FreshnessLifetime(); got != tt.want {
				t.Errorf("FreshnessLifetime() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		name              string
		kv                []string
		reqTime, respTime time.Time
		now               time.Time
		want              time.Duration
	}{
		{"resident time only", nil, t0, t0, t0.Add(5 * time.Second), 5 * time.Second},
		{"Age field added", []string{"Age", "100", "Date", date(t0)}, t0, t0, t0.Add(5 * time.Second), 105 * time.Second},
		{"response delay added to Age", []string{"Age", "10", "Date", date(t0.Add(2 * time.Second))}, t0, t0.Add(2 * time.Second), t0.Add(2 * time.Second), 12 * time.Second},
		{"apparent age from Date", []string{"Date", date(t0.Add(-30 * time.Second))}, t0, t0, t0, 30 * time.Second},
		{"apparent age wins over smaller corrected age", []string{"Date", date(t0.Add(-30 * time.Second)), "Age", "3"}, t0, t0, t0, 30 * time.Second},
		{"Date in the future is no negative age", []string{"Date", date(t0.Add(time.Hour))}, t0, t0, t0, 0},
		// An Age that cannot be read is taken as old as can be (stale),
		// as the public cache conformance suite's age-parse tests expect.
		{"negative Age: stale", []string{"Age", "-4", "Date", date(t0)}, t0, t0, t0, (1 << 31) * time.Second},
		{"float Age: stale", []string{"Age", "1.0", "Date", date(t0)}, t0, t0, t0, (1 << 31) * time.Second},
		{"two Age lines: stale", []string{"Age", "1", "Age", "7200", "Date", date(t0)}, t0, t0, t0, (1 << 31) * time.Second},
		{"a list with spaces: stale", []string{"Age", "0, 0", "Date", date(t0)}, t0, t0, t0, (1 << 31) * time.Second},
		{"a list: the first member counts", []string{"Age", "0,7200", "Date", date(t0)}, t0, t0, t0, 0},
		{"a list led by garbage: stale", []string{"Age", "old, 0", "Date", date(t0)}, t0, t0, t0, (1 << 31) * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tt.kv); i += 2 {
				h.Add(tt.kv[i], tt.kv[i+1])
			}
			e := newEntry("k", httptest.NewRequest("GET", "/", nil), 200, h, nil, tt.reqTime, tt.respTime)
			if got := e.Age(tt.now); got != tt.want {
				t.Errorf("Age(now) = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFresh(t *testing.T) {
	e := entryAt(200, "Cache-Control", "max-age=60", "Age", "50")
	if !e.Fresh(t0.Add(9 * time.Second)) {
		t.Errorf("Fresh(t0+9s) = false, want true (age 59s of 60s)")
	}
	if e.Fresh(t0.Add(10 * time.Second)) {
		t.Errorf("Fresh(t0+10s) = true, want false (age 60s of 60s)")
	}
}

func TestUsable(t *testing.T) {
	tests := []struct {
		name   string
		resp   string // response Cache-Control
		req    string // request Cache-Control
		method string
		after  time.Duration // since the response was received
		want   Use
	}{
		{"fresh", "max-age=60", "", "GET", 10 * time.Second, UseFresh},
		{"fresh HEAD", "max-age=60", "", "HEAD", 10 * time.Second, UseFresh},
		{"POST never", "max-age=60", "", "POST", 0, UseMiss},
		{"stale", "max-age=60", "", "GET", 61 * time.Second, UseRevalidate},
		{"response no-cache", "max-age=60, no-cache", "", "GET", 0, UseRevalidate},
		{"request no-cache", "max-age=60", "no-cache", "GET", 0, UseRevalidate},
		{"request max-age exceeded", "max-age=60", "max-age=5", "GET", 10 * time.Second, UseRevalidate},
		{"request max-age met", "max-age=60", "max-age=50", "GET", 10 * time.Second, UseFresh},
		{"request max-age=0", "max-age=60", "max-age=0", "GET", time.Second, UseRevalidate},
		{"min-fresh not met", "max-age=60", "min-fresh=55", "GET", 10 * time.Second, UseRevalidate},
		{"min-fresh met", "max-age=60", "min-fresh=30", "GET", 10 * time.Second, UseFresh},
		{"invalid min-fresh never met", "max-age=60", "min-fresh=x", "GET", 0, UseRevalidate},
		{"max-stale any", "max-age=60", "max-stale", "GET", time.Hour, UseStaleWhileRevalidate},
		{"max-stale within", "max-age=60", "max-stale=30", "GET", 80 * time.Second, UseStaleWhileRevalidate},
		{"max-stale past", "max-age=60", "max-stale=30", "GET", 100 * time.Second, UseRevalidate},
		{"max-stale vs must-revalidate", "max-age=60, must-revalidate", "max-stale", "GET", 100 * time.Second, UseRevalidate},
		{"max-stale vs s-maxage", "s-maxage=60", "max-stale", "GET", 100 * time.Second, UseRevalidate},
		{"stale-while-revalidate within", "max-age=60, stale-while-revalidate=30", "", "GET", 80 * time.Second, UseStaleWhileRevalidate},
		{"stale-while-revalidate past", "max-age=60, stale-while-revalidate=30", "", "GET", 91 * time.Second, UseRevalidate},
		{"stale-while-revalidate vs proxy-revalidate", "max-age=60, proxy-revalidate, stale-while-revalidate=30", "", "GET", 80 * time.Second, UseRevalidate},
		{"only-if-cached fresh", "max-age=60", "only-if-cached", "GET", 0, UseFresh},
		{"only-if-cached stale", "max-age=60", "only-if-cached", "GET", time.Hour, UseMiss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entryAt(200, "Cache-Control", tt.resp)
			r := httptest.NewRequest(tt.method, "/", nil)
			if tt.req != "" {
				r.Header.Set("Cache-Control", tt.req)
			}
			if got := e.Usable(r, t0.Add(tt.after)); got != tt.want {
				t.Errorf("Usable(%s %q) at +%v = %v, want %v", tt.method, tt.req, tt.after, got, tt.want)
			}
		})
	}
	var nilEntry *Entry
	if got := nilEntry.Usable(httptest.NewRequest("GET", "/", nil), t0); got != UseMiss {
		t.Errorf("(*Entry)(nil).Usable() = %v, want miss", got)
	}
}

func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name     string
		cc       string
		after    time.Duration
		override bool
		want     bool
	}{
		{"fresh", "max-age=60", 10 * time.Second, false, true},
		{"stale, no extension", "max-age=60", 70 * time.Second, false, false},
		{"stale-if-error within", "max-age=60, stale-if-error=30", 80 * time.Second, false, true},
		{"stale-if-error past", "max-age=60, stale-if-error=30", 100 * time.Second, false, false},
		{"override", "max-age=60", time.Hour, true, true},
		{"must-revalidate wins over stale-if-error", "max-age=60, must-revalidate, stale-if-error=30", 80 * time.Second, false, false},
		{"must-revalidate wins over override", "max-age=60, must-revalidate", 80 * time.Second, true, false},
		{"proxy-revalidate wins over override", "max-age=60, proxy-revalidate", 80 * time.Second, true, false},
		{"s-maxage wins over override", "s-maxage=60", 80 * time.Second, true, false},
		{"no-cache even when fresh", "max-age=60, no-cache", 0, true, false},
		{"must-revalidate while fresh", "max-age=60, must-revalidate", 10 * time.Second, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entryAt(200, "Cache-Control", tt.cc)
			if got := e.StaleIfError(t0.Add(tt.after), tt.override); got != tt.want {
				t.Errorf("StaleIfError(+%v, %v) = %v, want %v", tt.after, tt.override, got, tt.want)
			}
		})
	}
}

func TestConditional(t *testing.T) {
	e := entryAt(200, "ETag", `"v1"`, "Last-Modified", date(t0.Add(-time.Hour)))
	h := http.Header{"If-None-Match": {`"client"`}, "Range": {"bytes=0-1"}, "If-Range": {`"client"`}}
	e.Conditional(h)
	if got := h.Get("If-None-Match"); got != `"v1"` {
		t.Errorf("If-None-Match = %q, want %q", got, `"v1"`)
	}
	if got := h.Get("If-Modified-Since"); got != date(t0.Add(-time.Hour)) {
		t.Errorf("If-Modified-Since = %q, want the Last-Modified", got)
	}
	if h.Get("Range") != "" || h.Get("If-Range") != "" {
		t.Errorf("Conditional left the client's Range: %v", h)
	}
}
