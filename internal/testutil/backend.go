package testutil

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestIDHeader is the request header by which [Counting] tells requests
// apart, so that a test can prove one request reached the backend once.
const TestIDHeader = "X-Test-Id"

// Counting is a well-behaved HTTP backend that counts what reaches it: the
// baseline against which retries and duplicates are measured. Its methods
// are safe for concurrent use.
type Counting struct {
	// URL is the base URL, http://127.0.0.1:port.
	URL string
	// Addr is the host:port it listens on.
	Addr string
	// Requests counts requests that reached the handler.
	Requests atomic.Int64

	mu   sync.Mutex
	seen map[string]int
}

// Backend starts an HTTP server on loopback that serves h (a 200 "ok" if h
// is nil) and counts requests in total and by their X-Test-Id header.
func Backend(t testing.TB, h http.Handler) *Counting {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	}
	b := &Counting{seen: map[string]int{}}
	srv := httptest.NewServer(b.wrap(h))
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	b.Addr = srv.Listener.Addr().String()
	return b
}

// Seen returns how many requests with X-Test-Id: id reached the backend.
func (b *Counting) Seen(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[id]
}

// wrap counts requests before handing them to h (a 200 "ok" if nil).
func (b *Counting) wrap(h http.Handler) http.Handler {
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.Requests.Add(1)
		if id := r.Header.Get(TestIDHeader); id != "" {
			b.mu.Lock()
			b.seen[id]++
			b.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}
