package ratelimit

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/holdfast/holdfast/internal/testutil"
)

// records is a slog.Handler that keeps what is logged, so that a test can
// count the changes of mode.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}

// count returns how many records have a message starting with prefix, and
// the value of attr in the last of them.
func (h *records) count(prefix, attr string) (n int, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if strings.HasPrefix(r.Message, prefix) {
			n++
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == attr {
					value = a.Value.String()
				}
				return true
			})
		}
	}
	return n, value
}

const (
	msgFallback = "rate limit store unreachable"
	msgShared   = "rate limit store reachable again"
)

// sharedLimiter returns a Limiter on the Redis at url, closed at cleanup.
func sharedLimiter(t testing.TB, url string, instances int, log slog.Handler) *Limiter {
	t.Helper()
	opts := Options{Store: &StoreOptions{URL: url, Instances: instances}}
	if log != nil {
		opts.Logger = slog.New(log)
	}
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustRoute(t testing.TB, l *Limiter, name string, limits ...Limit) *Route {
	t.Helper()
	r, err := l.Route(name, limits)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tally counts decisions by outcome and mode.
type tally struct {
	allowed, refused atomic.Int64
	modes            [3]atomic.Int64
	slowest          atomic.Int64 // nanoseconds
}

// offer sends requests to r at perSecond, paced on the wall clock, for d,
// and counts the decisions.
func offer(r *Route, perSecond int, d time.Duration, tl *tally) {
	start := time.Now()
	interval := time.Second / time.Duration(perSecond)
	for n := 0; ; n++ {
		at := start.Add(time.Duration(n) * interval)
		if at.Sub(start) >= d {
			return
		}
		time.Sleep(time.Until(at))
		t0 := time.Now()
		dec := r.Allow(context.Background(), "192.0.2.1", nil)
		if el := int64(time.Since(t0)); el > tl.slowest.Load() {
			tl.slowest.Store(el)
		}
		if dec.Allowed {
			tl.allowed.Add(1)
		} else {
			tl.refused.Add(1)
		}
		tl.modes[dec.Mode].Add(1)
	}
}

func within(got, want int64, frac float64) bool {
	return float64(got) >= float64(want)*(1-frac) && float64(got) <= float64(want)*(1+frac)
}

// TestSharedAcrossInstances runs two limiters, as two gateways would, on one
// redis-server, each offered 150 requests/s against a shared 100/s: they
// accept 100/s between them, plus the burst.
func TestSharedAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 6s")
	}
	srv := testutil.Redis(t)
	lim := mustLimit(t, "route", "100/s", 10)
	const d = 6 * time.Second
	var tallies [2]tally
	var wg sync.WaitGroup
	for i := range tallies {
		r := mustRoute(t, sharedLimiter(t, srv.URL(), 2, nil), "api", lim)
		wg.Go(func() { offer(r, 150, d, &tallies[i]) })
	}
	wg.Wait()
	total := tallies[0].allowed.Load() + tallies[1].allowed.Load()
	want := int64(100*d/time.Second + 10)
	t.Logf("accepted %d + %d = %d of %d offered over %v, want %d ±10%%",
		tallies[0].allowed.Load(), tallies[1].allowed.Load(), total,
		total+tallies[0].refused.Load()+tallies[1].refused.Load(), d, want)
	if !within(total, want, 0.10) {
		t.Errorf("accepted %d in all, want %d ±10%%", total, want)
	}
	for i := range tallies {
		if n := tallies[i].modes[ModeShared].Load(); n != tallies[i].allowed.Load()+tallies[i].refused.Load() {
			t.Errorf("instance %d: %d decisions of the shared store, want all", i, n)
		}
	}
	// How the total splits between the instances is not asserted: two
	// clients paced in lockstep split a shared bucket by who comes first
	// after a token, which is the pacing's doing, not the limiter's.
}

// TestRedisKilledMidRun kills Redis under load: decisions keep coming,
// locally at half the limit (two instances), the change is logged once, and
// the limits are shared again soon after Redis is back.
func TestRedisKilledMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 6s")
	}
	srv := testutil.Redis(t)
	log := &records{}
	l := sharedLimiter(t, srv.URL(), 2, log)
	r := mustRoute(t, l, "api", mustLimit(t, "route", "40/s", 8))

	var before tally
	offer(r, 150, time.Second, &before)
	if n := before.modes[ModeShared].Load(); n != before.allowed.Load()+before.refused.Load() {
		t.Fatalf("before the kill: %d of %d decisions shared, want all", n, before.allowed.Load()+before.refused.Load())
	}

	srv.Stop()
	var during tally
	offer(r, 150, 3*time.Second, &during)
	st := l.Status()
	t.Logf("Redis down: %d accepted of %d over 3s, slowest decision %v; status %+v",
		during.allowed.Load(), during.allowed.Load()+during.refused.Load(), time.Duration(during.slowest.Load()), st)
	// The local share: 20/s and a burst of 4.
	if want := int64(3*20 + 4); !within(during.allowed.Load(), want, 0.10) {
		t.Errorf("Redis down: accepted %d, want %d ±10%% (local, half the limit)", during.allowed.Load(), want)
	}
	if n := during.modes[ModeFallback].Load(); n < during.allowed.Load()+during.refused.Load()-1 {
		t.Errorf("Redis down: %d decisions in local-fallback, want all but the first at most", n)
	}
	if slow := time.Duration(during.slowest.Load()); slow > 250*time.Millisecond {
		t.Errorf("Redis down: the slowest decision took %v, want under 250ms", slow)
	}
	if st.Mode != ModeFallback || st.LastError == "" || st.Since.IsZero() {
		t.Errorf("Redis down: Status() = %+v, want local-fallback with the error", st)
	}
	n, cause := log.count(msgFallback, "cause")
	if n != 1 || (cause != CauseConnectionRefused && cause != CauseOther) {
		t.Errorf("Redis down: logged the fall back %d times (cause %q), want once, connection_refused or other", n, cause)
	}

	srv.Start()
	deadline := time.Now().Add(5 * time.Second)
	for l.Status().Mode != ModeShared {
		if time.Now().After(deadline) {
			t.Fatalf("Redis back: Status() = %+v after 5s, want shared", l.Status())
		}
		r.Allow(context.Background(), "192.0.2.1", nil)
		time.Sleep(10 * time.Millisecond)
	}
	if n, _ := log.count(msgShared, "store"); n != 1 {
		t.Errorf("Redis back: logged the recovery %d times, want once", n)
	}
	if d := r.Allow(context.Background(), "192.0.2.1", nil); d.Mode != ModeShared {
		t.Errorf("Redis back: Allow = %+v, want decided by the shared store", d)
	}
	if n, _ := log.count(msgFallback, "cause"); n != 1 {
		t.Errorf("after the recovery: logged the fall back %d times, want still once", n)
	}
}

// TestRedisSlowFallsBack pauses Redis: a request waits no longer than the
// store timeout, and the cause is a timeout.
func TestRedisSlowFallsBack(t *testing.T) {
	srv := testutil.Redis(t)
	log := &records{}
	l := sharedLimiter(t, srv.URL(), 1, log)
	r := mustRoute(t, l, "api", mustLimit(t, "client_ip", "10/s", 10))
	if d := r.Allow(context.Background(), "192.0.2.1", nil); d.Mode != ModeShared || !d.Allowed {
		t.Fatalf("Allow = %+v, want allowed by the shared store", d)
	}

	srv.Pause()
	t0 := time.Now()
	d := r.Allow(context.Background(), "192.0.2.1", nil)
	el := time.Since(t0)
	if d.Mode != ModeFallback || !d.Allowed || el > 250*time.Millisecond {
		t.Errorf("Redis paused: Allow = %+v after %v, want allowed locally within the 50ms timeout (and some slack)", d, el)
	}
	// The next requests do not wait for Redis at all (waiting, 100 of
	// them would take 5s).
	t0 = time.Now()
	for range 100 {
		r.Allow(context.Background(), "192.0.2.2", nil)
	}
	if el := time.Since(t0); el > 500*time.Millisecond {
		t.Errorf("Redis paused: 100 more decisions took %v, want no wait for Redis", el)
	}
	if st := l.Status(); st.Mode != ModeFallback || st.Cause != CauseTimeout {
		t.Errorf("Redis paused: Status() = %+v, want local-fallback, cause timeout", st)
	}
	if n, cause := log.count(msgFallback, "cause"); n != 1 || cause != CauseTimeout {
		t.Errorf("logged the fall back %d times, cause %q, want once, timeout", n, cause)
	}

	srv.Resume()
	waitMode(t, l, ModeShared, 5*time.Second)
}

func waitMode(t *testing.T, l *Limiter, want Mode, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for l.Status().Mode != want {
		if time.Now().After(deadline) {
			t.Fatalf("Status() = %+v after %v, want %v", l.Status(), within, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisRefused points the store at a port where nothing listens.
func TestRedisRefused(t *testing.T) {
	log := &records{}
	l := sharedLimiter(t, "redis://"+testutil.DeadAddr(t)+"/0", 4, log)
	r := mustRoute(t, l, "api", mustLimit(t, "route", "100/s", 8))
	allowed := 0
	for range 10 {
		d := r.Allow(context.Background(), "", nil)
		if d.Mode != ModeFallback {
			t.Fatalf("Allow = %+v, want decided locally", d)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("allowed %d at once, want the local share of the burst, 8/4 = 2", allowed)
	}
	st := l.Status()
	if st.Mode != ModeFallback || st.Cause != CauseConnectionRefused || st.Instances != 4 || !strings.HasPrefix(st.Store, "127.0.0.1:") {
		t.Errorf("Status() = %+v, want local-fallback, connection_refused, 4 instances", st)
	}
	if n, _ := log.count(msgFallback, "cause"); n != 1 {
		t.Errorf("logged the fall back %d times, want once", n)
	}
}

func TestRedisRetryAfter(t *testing.T) {
	srv := testutil.Redis(t)
	l := sharedLimiter(t, srv.URL(), 1, nil)
	for _, tt := range []struct {
		rate        string
		burst       int
		wantRetry   time.Duration
		wantSeconds int
	}{
		{"1/s", 1, time.Second, 1},
		{"2/s", 3, 500 * time.Millisecond, 1},
		{"1/m", 2, time.Minute, 60},
		{"1/h", 1, time.Hour, 3600},
	} {
		t.Run(tt.rate, func(t *testing.T) {
			r := mustRoute(t, l, "retry-"+tt.rate, mustLimit(t, "route", tt.rate, tt.burst))
			for i := range tt.burst {
				d := r.Allow(context.Background(), "", nil)
				if !d.Allowed || d.Remaining != tt.burst-1-i || d.Mode != ModeShared {
					t.Fatalf("burst %d: Allow = %+v, want allowed, %d remaining, shared", i, d, tt.burst-1-i)
				}
			}
			d := r.Allow(context.Background(), "", nil)
			// Redis's clock moved on by the time of one round trip.
			if d.Allowed || d.RetryAfter > tt.wantRetry || d.RetryAfter < tt.wantRetry-50*time.Millisecond ||
				d.RetryAfterSeconds() != tt.wantSeconds || d.Remaining != 0 || d.Limit != 0 {
				t.Fatalf("Allow = %+v (%ds), want refused with RetryAfter just under %v, %ds",
					d, d.RetryAfterSeconds(), tt.wantRetry, tt.wantSeconds)
			}
		})
	}
}

// TestRedisKeysAndAllOrNothing looks at what the script leaves in Redis:
// namespaced, bounded keys that expire, and no token taken for a request
// that a limit refuses.
func TestRedisKeysAndAllOrNothing(t *testing.T) {
	srv := testutil.Redis(t)
	l := sharedLimiter(t, srv.URL(), 1, nil)
	r := mustRoute(t, l, "a:b", // a ':' in a route's name is escaped
		mustLimit(t, "header:X-Api-Key", "100/h", 100), // its key lasts 36s
		mustLimit(t, "route", "1/h", 1))
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()

	long := strings.Repeat("k", 1000)
	if d := r.Allow(ctx, "", http.Header{"X-Api-Key": {long}}); !d.Allowed {
		t.Fatalf("first request: Allow = %+v, want allowed", d)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	want := []string{"holdfast:rl:a%3Ab:0:" + boundKey(long), "holdfast:rl:a%3Ab:1:"}
	if !slices.Equal(keys, want) || len(boundKey(long)) != len("sha256:")+32 {
		t.Fatalf("keys in Redis = %q, want %q", keys, want)
	}
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("PTTL %s = %v, %v, want until the bucket is full (at most an hour)", k, ttl, err)
		}
	}

	before, _ := rdb.Get(ctx, want[0]).Result()
	d := r.Allow(ctx, "", http.Header{"X-Api-Key": {long}})
	if d.Allowed || d.Limit != 1 || d.Policy.Name != "route" {
		t.Fatalf("second request: Allow = %+v, want refused by the route limit", d)
	}
	after, _ := rdb.Get(ctx, want[0]).Result()
	if before != after {
		t.Errorf("the header limit's state went from %s to %s for a refused request, want unchanged", before, after)
	}
	if d := r.Allow(ctx, "", http.Header{"X-Api-Key": {"short"}}); d.Allowed {
		t.Errorf("another key: Allow = %+v, want refused by the route limit", d)
	}
	if n, _ := rdb.Exists(ctx, "holdfast:rl:a%3Ab:0:short").Result(); n != 0 {
		t.Errorf("a refused request created its key, want nothing written")
	}
}

// TestCloseStopsGoroutines counts goroutines around a Limiter's life,
// through a fall back and a recovery.
func TestCloseStopsGoroutines(t *testing.T) {
	srv := testutil.Redis(t)
	before := runtime.NumGoroutine()
	l, err := New(Options{Store: &StoreOptions{URL: srv.URL(), ProbeInterval: 50 * time.Millisecond}, Logger: slog.New(&records{})})
	if err != nil {
		t.Fatal(err)
	}
	r := mustRoute(t, l, "api", mustLimit(t, "client_ip", "100/s", 10))
	r.Allow(context.Background(), "192.0.2.1", nil)
	srv.Stop()
	r.Allow(context.Background(), "192.0.2.1", nil)
	srv.Start()
	waitMode(t, l, ModeShared, 5*time.Second)
	r.Allow(context.Background(), "192.0.2.1", nil)
	if err := l.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if d := r.Allow(context.Background(), "192.0.2.1", nil); d.Mode != ModeFallback || !d.Allowed {
		t.Errorf("after Close: Allow = %+v, want allowed locally", d)
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisLatency measures what the shared store adds to a request: one
// script call on loopback.
func TestRedisLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 round trips")
	}
	srv := testutil.Redis(t)
	shared := mustRoute(t, sharedLimiter(t, srv.URL(), 1, nil), "api", mustLimit(t, "client_ip", "1000000/s", 1000))
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	local := mustRoute(t, l, "api", mustLimit(t, "client_ip", "1000000/s", 1000))
	ips := make([]string, 100)
	for i := range ips {
		ips[i] = "192.0.2." + string(rune('0'+i%10)) + string(rune('0'+i/10))
	}
	measure := func(r *Route) (p50, p99 time.Duration) {
		const n = 10_000
		lat := make([]time.Duration, n)
		for i := range lat {
			t0 := time.Now()
			d := r.Allow(context.Background(), ips[i%len(ips)], nil)
			lat[i] = time.Since(t0)
			if !d.Allowed {
				t.Fatalf("request %d: Allow = %+v, want allowed", i, d)
			}
		}
		slices.Sort(lat)
		return lat[n/2], lat[n*99/100]
	}
	p50, p99 := measure(shared)
	l50, l99 := measure(local)
	t.Logf("Allow over 10,000 requests: shared (Redis on loopback) p50 %v p99 %v; local p50 %v p99 %v", p50, p99, l50, l99)
	if p99 > 50*time.Millisecond {
		t.Errorf("shared p99 = %v, over the 50ms store timeout", p99)
	}
}
