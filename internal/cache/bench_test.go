package cache

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkLookupUsable measures the hit path: key, lookup with a Vary
// match, and the freshness decision.
func BenchmarkLookupUsable(b *testing.B) {
	c := New(Config{Now: func() time.Time { return t0 }})
	defer c.Close()
	for i := range 1000 {
		r := get(fmt.Sprintf("http://example.com/%d", i), "Accept-Encoding", "gzip")
		c.Store(r, KeyOf(r, "http"), response(200, "Cache-Control", "max-age=60", "Vary", "Accept-Encoding"), make([]byte, 512), t0, t0)
	}
	r := httptest.NewRequest("GET", "http://example.com/500", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	b.ReportAllocs()
	for b.Loop() {
		e := c.Lookup(r, KeyOf(r, "http"))
		if e.Usable(r, t0) != UseFresh {
			b.Fatal("not fresh")
		}
	}
}
