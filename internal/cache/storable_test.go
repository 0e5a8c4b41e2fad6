package cache

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func response(status int, kv ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return &http.Response{StatusCode: status, Header: h, ContentLength: -1}
}

func TestStorable(t *testing.T) {
	lm := date(t0)
	tests := []struct {
		name   string
		method string
		reqKV  []string
		status int
		respKV []string
		want   bool
		why    string // part of the reason, when refused
	}{
		{"max-age", "GET", nil, 200, []string{"Cache-Control", "max-age=60"}, true, ""},
		{"HEAD not stored", "HEAD", nil, 200, []string{"Cache-Control", "max-age=60"}, false, "method"},
		{"POST not stored", "POST", nil, 200, []string{"Cache-Control", "max-age=60"}, false, "method"},
		{"response no-store", "GET", nil, 200, []string{"Cache-Control", "max-age=60, no-store"}, false, "no-store"},
		{"request no-store", "GET", []string{"Cache-Control", "no-store"}, 200, []string{"Cache-Control", "max-age=60"}, false, "no-store"},
		{"must-understand overrides no-store", "GET", nil, 200, []string{"Cache-Control", "max-age=60, no-store, must-understand"}, true, ""},
		{"private", "GET", nil, 200, []string{"Cache-Control", "max-age=60, private"}, false, "private"},
		{"qualified private", "GET", nil, 200, []string{"Cache-Control", `max-age=60, private="X-User"`}, false, "private"},
		{"authorization alone", "GET", []string{"Authorization", "Bearer x"}, 200, []string{"Cache-Control", "max-age=60"}, false, "authorization"},
		{"authorization with public", "GET", []string{"Authorization", "Bearer x"}, 200, []string{"Cache-Control", "public, max-age=60"}, true, ""},
		{"authorization with s-maxage", "GET", []string{"Authorization", "Bearer x"}, 200, []string{"Cache-Control", "s-maxage=60"}, true, ""},
		{"authorization with must-revalidate", "GET", []string{"Authorization", "Bearer x"}, 200, []string{"Cache-Control", "max-age=60, must-revalidate"}, true, ""},
		{"vary star", "GET", nil, 200, []string{"Cache-Control", "max-age=60", "Vary", "Accept, *"}, false, "vary"},
		{"vary accept", "GET", nil, 200, []string{"Cache-Control", "max-age=60", "Vary", "Accept"}, true, ""},
		{"206", "GET", nil, 206, []string{"Cache-Control", "max-age=60"}, false, "partial"},
		{"304", "GET", nil, 304, []string{"Cache-Control", "max-age=60"}, false, "status"},
		{"1xx", "GET", nil, 103, []string{"Cache-Control", "max-age=60"}, false, "final"},
		{"unknown status", "GET", nil, 599, []string{"Cache-Control", "max-age=60"}, false, "status"},
		{"must-understand unknown status", "GET", nil, 299, []string{"Cache-Control", "max-age=60, must-understand"}, false, "must-understand"},
		// One request's error is not stored, whatever its freshness: a
		// crafted request would answer everyone (poisoning by error page).
		{"500 with max-age", "GET", nil, 500, []string{"Cache-Control", "max-age=5"}, false, "not cacheable"},
		{"405 with max-age", "GET", nil, 405, []string{"Cache-Control", "max-age=60"}, false, "not cacheable"},
		{"410 with max-age", "GET", nil, 410, []string{"Cache-Control", "max-age=60"}, true, ""},
		{"200 with Last-Modified only", "GET", nil, 200, []string{"Last-Modified", lm}, true, ""},
		{"404 with ETag only", "GET", nil, 404, []string{"ETag", `"a"`}, true, ""},
		{"200 with nothing", "GET", nil, 200, nil, false, "freshness"},
		{"Expires", "GET", nil, 302, []string{"Expires", date(t0)}, true, ""},
		{"public alone", "GET", nil, 302, []string{"Cache-Control", "public"}, true, ""},
		{"set-cookie with max-age", "GET", nil, 200, []string{"Cache-Control", "max-age=60", "Set-Cookie", "a=b"}, false, "set-cookie"},
		{"set-cookie with public", "GET", nil, 200, []string{"Cache-Control", "public, max-age=60", "Set-Cookie", "a=b"}, true, ""},
		{"set-cookie with s-maxage", "GET", nil, 200, []string{"Cache-Control", "s-maxage=60", "Set-Cookie", "a=b"}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/", nil)
			for i := 0; i+1 < len(tt.reqKV); i += 2 {
				r.Header.Add(tt.reqKV[i], tt.reqKV[i+1])
			}
			ok, why := Storable(r, response(tt.status, tt.respKV...))
			if ok != tt.want {
				t.Fatalf("Storable() = %v (%q), want %v", ok, why, tt.want)
			}
			if !ok && !strings.Contains(strings.ToLower(why), tt.why) {
				t.Errorf("Storable() why = %q, want it to mention %q", why, tt.why)
			}
		})
	}
}

func TestKeyOf(t *testing.T) {
	tests := []struct {
		name   string
		r      *http.Request
		scheme string
		want   string
	}{
		{"path and query as received", httptest.NewRequest("GET", "http://Example.COM/a%2Fb?x=1&y", nil), "http", "http://example.com/a%2Fb?x=1&y"},
		{"HEAD shares GET's key", httptest.NewRequest("HEAD", "http://example.com/a", nil), "https", "https://example.com/a"},
		{"Host header wins", func() *http.Request {
			r := httptest.NewRequest("GET", "/p", nil)
			r.Host = "API.example.com:8080"
			return r
		}(), "http", "http://api.example.com:8080/p"},
		{"built request", &http.Request{Method: "GET", URL: mustURL(t, "http://h/q?z")}, "http", "http://h/q?z"},
	}
	for _, tt := range tests {
		if got := KeyOf(tt.r, tt.scheme); got != tt.want {
			t.Errorf("%s: KeyOf() = %q, want %q", tt.name, got, tt.want)
		}
	}
}
