package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
)

// BenchmarkServeHTTP measures the proxy's own cost per request: a GET through
// the handler (called directly, no client-side network) to a real loopback
// backend over pooled keep-alive connections.
func BenchmarkServeHTTP(b *testing.B) {
	be := testutil.Backend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	cfg := poolConfig("", be.URL)
	h := benchHandler(b, "access_log: {path: \"off\"}\n"+cfg)
	req := httptest.NewRequest("GET", "http://example.com/x", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
