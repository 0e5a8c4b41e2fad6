package cache

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestWriteTo(t *testing.T) {
	lm := t0.Add(-time.Hour)
	body := "0123456789"
	tests := []struct {
		name       string
		method     string
		kv         []string // request fields
		wantStatus int
		wantBody   string
		wantFields map[string]string
	}{
		{"full", "GET", nil, 200, body, map[string]string{"Content-Length": "10", "Age": "5", "Cache-Status": "holdfast; hit; ttl=55"}},
		{"HEAD", "HEAD", nil, 200, "", map[string]string{"Content-Length": "10"}},
		{"If-None-Match match", "GET", []string{"If-None-Match", `"other", W/"v1"`}, 304, "", map[string]string{"ETag": `"v1"`, "Content-Type": ""}},
		{"If-None-Match star", "GET", []string{"If-None-Match", "*"}, 304, "", nil},
		{"If-None-Match no match", "GET", []string{"If-None-Match", `"v2"`, "If-Modified-Since", date(t0)}, 200, body, nil},
		{"If-Modified-Since not modified", "GET", []string{"If-Modified-Since", date(lm)}, 304, "", nil},
		{"If-Modified-Since modified", "GET", []string{"If-Modified-Since", date(lm.Add(-time.Second))}, 200, body, nil},
		{"range", "GET", []string{"Range", "bytes=2-4"}, 206, "234", map[string]string{"Content-Range": "bytes 2-4/10", "Content-Length": "3"}},
		{"open range", "GET", []string{"Range", "bytes=7-"}, 206, "789", map[string]string{"Content-Range": "bytes 7-9/10"}},
		{"suffix range", "GET", []string{"Range", "bytes=-3"}, 206, "789", nil},
		{"range past end clipped", "GET", []string{"Range", "bytes=8-100"}, 206, "89", nil},
		{"unsatisfiable", "GET", []string{"Range", "bytes=10-"}, 416, "", map[string]string{"Content-Range": "bytes */10"}},
		{"multi-range full", "GET", []string{"Range", "bytes=0-1,4-5"}, 200, body, nil},
		{"malformed range full", "GET", []string{"Range", "bytes=x-1"}, 200, body, nil},
		{"other unit full", "GET", []string{"Range", "items=0-1"}, 200, body, nil},
		{"If-Range match", "GET", []string{"Range", "bytes=0-0", "If-Range", `"v1"`}, 206, "0", nil},
		{"If-Range mismatch", "GET", []string{"Range", "bytes=0-0", "If-Range", `"v0"`}, 200, body, nil},
		{"If-Range date", "GET", []string{"Range", "bytes=0-0", "If-Range", date(lm)}, 206, "0", nil},
		{"HEAD ignores Range", "HEAD", []string{"Range", "bytes=0-0"}, 200, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Cache-Control": {"max-age=60"}, "Etag": {`"v1"`}, "Last-Modified": {date(lm)}, "Content-Type": {"text/plain"}}
			e := newEntry("k", httptest.NewRequest("GET", "/", nil), 200, h, []byte(body), t0, t0)
			e.clock = func() time.Time { return t0.Add(5 * time.Second) }
			r := httptest.NewRequest(tt.method, "/", nil)
			for i := 0; i+1 < len(tt.kv); i += 2 {
				r.Header.Add(tt.kv[i], tt.kv[i+1])
			}
			w := httptest.NewRecorder()
			n, err := e.WriteTo(w, r, CacheStatus(true, "", false, "", e.TTL(t0.Add(5*time.Second))))
			if err != nil {
				t.Fatalf("WriteTo() error = %v", err)
			}
			if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody || n != int64(len(tt.wantBody)) {
				t.Errorf("WriteTo() = %d %q (%d bytes), want %d %q", w.Code, w.Body.String(), n, tt.wantStatus, tt.wantBody)
			}
			for k, want := range tt.wantFields {
				if got := w.Header().Get(k); got != want {
					t.Errorf("WriteTo() %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestWriteToAppendsCacheStatus(t *testing.T) {
	h := http.Header{"Cache-Control": {"max-age=60"}, "Cache-Status": {"origin-cache; hit"}}
	e := newEntry("k", httptest.NewRequest("GET", "/", nil), 200, h, nil, t0, t0)
	w := httptest.NewRecorder()
	if _, err := e.WriteAt(w, httptest.NewRequest("GET", "/", nil), "holdfast; hit", t0); err != nil {
		t.Fatal(err)
	}
	got := w.Header().Values("Cache-Status")
	if len(got) != 2 || got[0] != "origin-cache; hit" || got[1] != "holdfast; hit" {
		t.Errorf("Cache-Status = %q, want the origin's member then holdfast's", got)
	}
}
