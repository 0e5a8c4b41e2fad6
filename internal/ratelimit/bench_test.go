package ratelimit

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
)

func benchAllow(b *testing.B, r *Route) {
	ips := make([]string, 1000)
	for i := range ips {
		ips[i] = "198.51.100." + strconv.Itoa(i)
	}
	h := http.Header{"X-Api-Key": {"key-1"}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		r.Allow(ctx, ips[i%len(ips)], h)
		i++
	}
}

func BenchmarkAllowLocal(b *testing.B) {
	l, _ := New(Options{})
	r := mustRoute(b, l, "api", mustLimit(b, "client_ip", "1000000/s", 1000))
	benchAllow(b, r)
}

func BenchmarkAllowLocalThreeLimits(b *testing.B) {
	l, _ := New(Options{})
	r := mustRoute(b, l, "api",
		mustLimit(b, "client_ip", "1000000/s", 1000),
		mustLimit(b, "header:X-Api-Key", "1000000/s", 1000),
		mustLimit(b, "route", "1000000/s", 1000))
	benchAllow(b, r)
}

func BenchmarkAllowLocalParallel(b *testing.B) {
	l, _ := New(Options{})
	r := mustRoute(b, l, "api", mustLimit(b, "client_ip", "1000000/s", 1000))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Allow(context.Background(), "198.51.100."+strconv.Itoa(i%200), nil)
			i++
		}
	})
}

// BenchmarkAllowShared is one round trip to a redis-server on loopback per
// request: the cost the shared store adds.
func BenchmarkAllowShared(b *testing.B) {
	srv := testutil.Redis(b)
	r := mustRoute(b, sharedLimiter(b, srv.URL(), 1, nil), "api", mustLimit(b, "client_ip", "1000000/s", 1000))
	benchAllow(b, r)
}

func BenchmarkAllowSharedThreeLimits(b *testing.B) {
	srv := testutil.Redis(b)
	r := mustRoute(b, sharedLimiter(b, srv.URL(), 1, nil), "api",
		mustLimit(b, "client_ip", "1000000/s", 1000),
		mustLimit(b, "header:X-Api-Key", "1000000/s", 1000),
		mustLimit(b, "route", "1000000/s", 1000))
	benchAllow(b, r)
}
