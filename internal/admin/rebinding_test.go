package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLoopbackHostOnly: on a loopback listener, where reads need no
// token, a request addressed to another host name (a page that made its
// name resolve to 127.0.0.1) is refused.
func TestLoopbackHostOnly(t *testing.T) {
	h := New(Options{Backend: newFakeBackend(), Token: func() string { return token }})
	for host, want := range map[string]int{
		"127.0.0.1:9901": 200, "localhost:9901": 200, "[::1]:9901": 200, "LOCALHOST": 200,
		"evil.example:9901": 403, "evil.example": 403, "10.0.0.1:9901": 403,
	} {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/pools", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
	}
}
