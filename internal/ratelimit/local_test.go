package ratelimit

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time for the local buckets, which x/time/rate lets us
// inject: tests then assert exact waits instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustLimit(t testing.TB, key, rate string, burst int) Limit {
	t.Helper()
	l, err := ParseLimit(key, rate, burst)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// localRoute builds a route of a local Limiter on clock c.
func localRoute(t testing.TB, c *clock, limits ...Limit) *Route {
	t.Helper()
	l, err := New(Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r, err := l.Route("api", limits)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLocalBurstThenRate(t *testing.T) {
	c := newClock()
	r := localRoute(t, c, mustLimit(t, "client_ip", "10/s", 5))
	ctx := context.Background()
	for i := range 5 {
		d := r.Allow(ctx, "192.0.2.1", nil)
		if !d.Allowed || d.Remaining != 4-i || d.Mode != ModeLocal {
			t.Fatalf("request %d of the burst: Allow = %+v, want allowed with %d remaining, mode local", i+1, d, 4-i)
		}
	}
	d := r.Allow(ctx, "192.0.2.1", nil)
	if d.Allowed || d.RetryAfter != 100*time.Millisecond || d.RetryAfterSeconds() != 1 {
		t.Fatalf("after the burst: Allow = %+v, want refused with RetryAfter 100ms (header 1)", d)
	}
	if d := r.Allow(ctx, "192.0.2.2", nil); !d.Allowed {
		t.Fatalf("another client: Allow = %+v, want allowed (its own bucket)", d)
	}

	// Then one request per 100ms, and no more.
	allowed := 0
	for range 1000 { // 10s in steps of 10ms
		c.advance(10 * time.Millisecond)
		for range 3 {
			if r.Allow(ctx, "192.0.2.1", nil).Allowed {
				allowed++
			}
		}
	}
	if allowed != 100 {
		t.Errorf("over 10s at 10/s: %d allowed, want 100", allowed)
	}

	// A quiet spell refills the bucket up to its burst, not beyond.
	c.advance(time.Hour)
	allowed = 0
	for range 20 {
		if r.Allow(ctx, "192.0.2.1", nil).Allowed {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("after an hour: %d allowed at once, want the burst, 5", allowed)
	}
}

func TestLocalRetryAfterExact(t *testing.T) {
	tests := []struct {
		rate        string
		burst       int
		wait        time.Duration // between the burst and the refused request
		wantRetry   time.Duration
		wantSeconds int
	}{
		{"1/s", 1, 0, time.Second, 1},
		{"2/s", 1, 0, 500 * time.Millisecond, 1},
		{"3/s", 1, 0, 333333333 * time.Nanosecond, 1},
		{"1/m", 1, 0, time.Minute, 60},
		{"1/m", 1, 20 * time.Second, 40 * time.Second, 40},
		{"1/m", 1, 19500 * time.Millisecond, 40500 * time.Millisecond, 41},
		{"1/h", 3, 0, time.Hour, 3600},
		{"10/m", 10, 0, 6 * time.Second, 6},
	}
	for _, tt := range tests {
		t.Run(tt.rate+"/"+tt.wait.String(), func(t *testing.T) {
			c := newClock()
			r := localRoute(t, c, mustLimit(t, "route", tt.rate, tt.burst))
			for range tt.burst {
				if d := r.Allow(context.Background(), "", nil); !d.Allowed {
					t.Fatalf("burst: Allow = %+v, want allowed", d)
				}
			}
			c.advance(tt.wait)
			d := r.Allow(context.Background(), "", nil)
			if d.Allowed || d.RetryAfter != tt.wantRetry || d.RetryAfterSeconds() != tt.wantSeconds {
				t.Fatalf("Allow = %+v (RetryAfterSeconds %d), want refused, RetryAfter %v, %ds",
					d, d.RetryAfterSeconds(), tt.wantRetry, tt.wantSeconds)
			}
			// Just before RetryAfter it is still refused; at it, allowed.
			c.advance(d.RetryAfter - time.Millisecond)
			if d := r.Allow(context.Background(), "", nil); d.Allowed {
				t.Fatalf("1ms before RetryAfter: Allow = %+v, want refused", d)
			}
			c.advance(time.Millisecond)
			if d := r.Allow(context.Background(), "", nil); !d.Allowed {
				t.Fatalf("at RetryAfter: Allow = %+v, want allowed", d)
			}
		})
	}
}

func TestLocalAllLimitsMustAllow(t *testing.T) {
	c := newClock()
	r := localRoute(t, c,
		mustLimit(t, "client_ip", "100/s", 10),
		mustLimit(t, "route", "3/s", 3),
		mustLimit(t, "header:X-Api-Key", "1/m", 2),
	)
	ctx := context.Background()
	key := func(v string) http.Header { return http.Header{"X-Api-Key": {v}} }

	// The header limit refuses a key's third request, although the other
	// limits have room.
	for i, want := range []bool{true, true, false} {
		d := r.Allow(ctx, "192.0.2.1", key("k1"))
		if d.Allowed != want {
			t.Fatalf("request %d with key k1: Allow = %+v, want allowed %v", i+1, d, want)
		}
		if !want && (d.Limit != 2 || d.Policy.Name != "header:X-Api-Key" || d.RetryAfter != time.Minute) {
			t.Fatalf("refused: Allow = %+v, want limit 2 (header:X-Api-Key) refusing, RetryAfter 1m", d)
		}
	}
	// The refused request took no token from the route limit: one is left.
	d := r.Allow(ctx, "192.0.2.2", key("k2"))
	if !d.Allowed || d.Limit != 1 || d.Remaining != 0 {
		t.Fatalf("third accepted request: Allow = %+v, want allowed, the route limit named with 0 remaining", d)
	}
	d = r.Allow(ctx, "192.0.2.3", key("k3"))
	if d.Allowed || d.Limit != 1 || d.Policy.Name != "route" {
		t.Fatalf("fourth request: Allow = %+v, want refused by the route limit", d)
	}
	// Two limits refusing: Retry-After is when both allow.
	d = r.Allow(ctx, "192.0.2.1", key("k1"))
	if d.Allowed || d.Limit != 2 || d.RetryAfter != time.Minute {
		t.Fatalf("k1 again: Allow = %+v, want refused by the header limit, the later of the two", d)
	}
}

func TestLocalHeaderKeys(t *testing.T) {
	c := newClock()
	r := localRoute(t, c, mustLimit(t, "header:X-Api-Key", "1/h", 1))
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		h    http.Header
		want bool
	}{
		{"first a", http.Header{"X-Api-Key": {"a"}}, true},
		{"second a", http.Header{"X-Api-Key": {"a"}}, false},
		{"b", http.Header{"X-Api-Key": {"b"}}, true},
		{"no header: the empty key", http.Header{}, true},
		{"empty value: the same empty key", http.Header{"X-Api-Key": {""}}, false},
		{"nil header: the same empty key", nil, false},
		{"a long value", http.Header{"X-Api-Key": {string(make([]byte, 10000))}}, true},
		{"the same long value", http.Header{"X-Api-Key": {string(make([]byte, 10000))}}, false},
		// Two values: which the upstream believes is its own business, so
		// every such request shares one bucket, whatever comes first.
		{"two values", http.Header{"X-Api-Key": {"x1", "b"}}, true},
		{"two other values", http.Header{"X-Api-Key": {"x2", "b"}}, false},
		{"a list in one line", http.Header{"X-Api-Key": {"x3, b"}}, false},
	} {
		if d := r.Allow(ctx, "192.0.2.1", tt.h); d.Allowed != tt.want {
			t.Errorf("%s: Allow = %+v, want allowed %v", tt.name, d, tt.want)
		}
	}
	if got := r.limits[0].local.len(); got != 5 {
		t.Errorf("keys tracked = %d, want 5 (a, b, empty, the long value's digest, the multi-valued key)", got)
	}
}

func TestDecisionHeaders(t *testing.T) {
	c := newClock()
	r := localRoute(t, c,
		mustLimit(t, "client_ip", "10/s", 2),
		mustLimit(t, "client_ip", "100/h", 0),
		mustLimit(t, "route", "1000/m", 50),
	)
	ctx := context.Background()
	const wantPolicy = `"client_ip#0";q=10;w=1, "client_ip#1";q=100;w=3600, "route";q=1000;w=60`

	d := r.Allow(ctx, "192.0.2.1", nil)
	h := http.Header{}
	d.WriteHeaders(h)
	want := http.Header{
		"Ratelimit-Policy": {wantPolicy},
		"Ratelimit":        {`"client_ip#0";r=1;t=1`}, // the fewest remaining; full again in 100ms
	}
	if !equalHeaders(h, want) {
		t.Errorf("allowed: WriteHeaders wrote %v, want %v", h, want)
	}

	r.Allow(ctx, "192.0.2.1", nil)
	c.advance(30 * time.Millisecond)
	d = r.Allow(ctx, "192.0.2.1", nil)
	h = http.Header{}
	d.WriteHeaders(h)
	want = http.Header{
		"Ratelimit-Policy": {wantPolicy},
		"Ratelimit":        {`"client_ip#0";r=0;t=1`},
		"Retry-After":      {"1"},
	}
	if d.Allowed || d.RetryAfter != 70*time.Millisecond || !equalHeaders(h, want) {
		t.Errorf("refused: Allow = %+v and WriteHeaders wrote %v, want RetryAfter 70ms and %v", d, h, want)
	}

	// A route without limits allows and writes nothing.
	empty := localRoute(t, c)
	d = empty.Allow(ctx, "192.0.2.1", nil)
	h = http.Header{}
	d.WriteHeaders(h)
	if !d.Allowed || d.Limit != -1 || len(h) != 0 || d.RateLimitValue() != "" || d.PolicyValue() != "" {
		t.Errorf("no limits: Allow = %+v, headers %v, want allowed and no header", d, h)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"route":            `"route"`,
		`a"b\c`:            `"a\"b\\c"`,
		"header:X-Api-Key": `"header:X-Api-Key"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if len(a[k]) != len(v) || a.Get(k) != v[0] {
			return false
		}
	}
	return true
}

// TestLocalKeysBounded floods a limit with distinct keys: the number of
// buckets stays at MaxKeys, and so does the memory they hold.
func TestLocalKeysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 150,000 buckets")
	}
	c := newClock()
	l, err := New(Options{Now: c.now}) // MaxKeys: the default, 100,000
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Route("api", []Limit{mustLimit(t, "header:X-Api-Key", "1/s", 1)})
	if err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	h := http.Header{"X-Api-Key": {""}}
	const flood = 150_000
	for i := range flood {
		// Keys of 40 bytes, so the test also weighs the keys kept.
		h["X-Api-Key"][0] = "key-" + strconv.Itoa(i) + "-0123456789abcdef0123456789abcdef"
		if !r.Allow(context.Background(), "", h).Allowed {
			t.Fatalf("key %d: refused, want allowed (a new bucket)", i)
		}
	}
	n := r.limits[0].local.len()
	after := heap()
	grown := int64(after) - int64(before)
	t.Logf("%d distinct keys: %d kept, heap grown by %.1f MiB (%d bytes per key kept)",
		flood, n, float64(grown)/(1<<20), grown/int64(max(n, 1)))
	if n != DefaultMaxKeys {
		t.Errorf("keys kept = %d, want %d", n, DefaultMaxKeys)
	}
	// About 250 bytes a key (bucket, list element, map slot, key), 24 MiB
	// in all: 64 MiB leaves room without hiding the evicted 50,000.
	if grown > 64<<20 {
		t.Errorf("heap grew by %d MiB for %d keys kept, want at most 64 MiB", grown>>20, n)
	}
	runtime.KeepAlive(r)

	// The most recently used keys are the ones kept.
	h["X-Api-Key"][0] = "key-" + strconv.Itoa(flood-1) + "-0123456789abcdef0123456789abcdef"
	if d := r.Allow(context.Background(), "", h); d.Allowed {
		t.Errorf("the last key again: Allow = %+v, want refused (its bucket was kept)", d)
	}
}

func TestBucketsSmallBoundExact(t *testing.T) {
	b := newBuckets(1, 1, 3)
	for _, k := range []string{"a", "b", "c", "a", "d"} { // "a" used again, so "b" goes
		b.get(k)
	}
	if n := b.len(); n != 3 {
		t.Fatalf("len = %d, want 3", n)
	}
	s := &b.shards[0]
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := s.index[k]; !ok {
			t.Errorf("key %q was evicted, want b evicted (least recently used)", k)
		}
	}
}

// TestLocalConcurrent runs many goroutines against one route, under -race:
// the buckets never allow more than the burst at one instant.
func TestLocalConcurrent(t *testing.T) {
	c := newClock()
	r := localRoute(t, c, mustLimit(t, "client_ip", "1/h", 50), mustLimit(t, "route", "1/h", 500))
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				if r.Allow(context.Background(), "192.0.2."+strconv.Itoa((g*1000+i)%20), nil).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	// 20 clients of burst 50 could make 1000, but the route allows 500.
	// A lost race may refuse a request early, never allow one more.
	if n := allowed.Load(); n > 500 || n < 480 {
		t.Errorf("allowed %d of 8000, want 500 (at most; a few fewer after lost races)", n)
	}
}
