package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRetryAfterDoesNotDelayOtherServers(t *testing.T) {
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(503)
	}))
	defer busy.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer ok.Close()
	e := newEnv(t, poolConfig("", busy.URL, ok.URL))
	for i := 0; i < 2; i++ {
		t0 := time.Now()
		r := e.do("GET", "/", "")
		d := time.Since(t0)
		t.Logf("status %d after %v", r.status, d)
		if d > time.Second {
			t.Errorf("a GET waited %v before trying the healthy server: Retry-After of one server delays the retry to another, with no cap (retry.timeout defaults to 0)", d)
		}
	}
}
