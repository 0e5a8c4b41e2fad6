package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/upstream"
)

// flaky is a backend whose health path can be made to fail, and which
// counts the client requests (not the checks) it serves. Once watch is set,
// every check it answers records the server's state as the check found it:
// checks of one server run one at a time, so that state holds the outcome
// of every earlier check and none of this one.
type flaky struct {
	*testutil.Counting
	healthy atomic.Bool
	body    atomic.Value // string: the health body
	served  atomic.Int64 // client requests
	watch   atomic.Pointer[upstream.Server]

	mu     sync.Mutex
	checks []seenCheck
}

// seenCheck is one check a flaky backend answered: whether it answered
// healthy, and the server's state when the check arrived.
type seenCheck struct {
	healthy bool
	st      upstream.ServerStatus
}

func newFlaky(t *testing.T, name string) *flaky {
	f := &flaky{}
	f.healthy.Store(true)
	f.body.Store(`{"status":"ok"}`)
	f.Counting = testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			healthy := f.healthy.Load()
			if s := f.watch.Load(); s != nil {
				f.mu.Lock()
				f.checks = append(f.checks, seenCheck{healthy, s.Status(time.Now(), true)})
				f.mu.Unlock()
			}
			if !healthy {
				w.WriteHeader(http.StatusInternalServerError)
			}
			io.WriteString(w, f.body.Load().(string))
			return
		}
		f.served.Add(1)
		io.WriteString(w, name)
	}))
	return f
}

// seen returns the checks answered so far since watch was set.
func (f *flaky) seen() []seenCheck {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenCheck(nil), f.checks...)
}

// awaitCheck waits up to 2 seconds for a check, answered healthy or not as
// given, that found the server available or not as given, and returns the
// checks answered so far.
func (f *flaky) awaitCheck(t *testing.T, healthy, available bool) []seenCheck {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		seen := f.seen()
		for _, c := range seen {
			if c.healthy == healthy && c.st.Available == available {
				return seen
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no check answered healthy=%v found the server available=%v within 2s; checks: %+v", healthy, available, seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// healthConfig is one pool of the given servers with checks every 100ms,
// no retries (so that detection is what is measured) and no passive
// ejection.
func healthConfig(extra string, urls ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `listen: [{addr: "127.0.0.1:0"}]
routes: [{upstream: p}]
upstreams:
  p:
    retry: {tries: 1}
    health: {path: /health, interval: 100ms, timeout: 50ms, rise: 2, fall: 3%s}
    servers:
`, extra)
	for _, u := range urls {
		fmt.Fprintf(&b, "      - {url: %q, max_fails: 0}\n", u)
	}
	return b.String()
}

// send makes n requests to addr and returns how many of each body came
// back, and the statuses other than 200.
func send(t *testing.T, addr string, n int) (bodies map[string]int, bad []int) {
	t.Helper()
	bodies = map[string]int{}
	for i := 0; i < n; i++ {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			bad = append(bad, resp.StatusCode)
			continue
		}
		bodies[string(b)]++
	}
	return bodies, bad
}

func serverOf(g *Gateway, url string) *upstream.Server {
	for _, p := range g.Handler().Pools() {
		for _, s := range p.Servers {
			if s.Name == url {
				return s
			}
		}
	}
	return nil
}

// TestActiveHealthDetection measures the figures of active checks: a
// server whose health path starts failing leaves rotation at the fall-th
// failed check, not one check earlier or later, and no client request
// reaches it afterwards; once it recovers it is back at the rise-th passed
// check. The figures are counted in checks, which is what rise and fall
// mean: under load a check may be late, never miscounted.
func TestActiveHealthDetection(t *testing.T) {
	t.Parallel()
	const rise, fall = 2, 3 // as healthConfig sets them
	a, b := newFlaky(t, "a"), newFlaky(t, "b")
	g, addr := start(t, healthConfig("", a.URL, b.URL))
	if got, bad := send(t, addr, 20); got["a"] == 0 || got["b"] == 0 || len(bad) > 0 {
		t.Fatalf("before: %v, failures %v: want both servers serving", got, bad)
	}
	sb := serverOf(g, b.URL)

	// Every check records the state the earlier ones left: available
	// exactly while fewer than fall checks in a row have failed, then
	// unavailable until rise checks in a row have passed.
	b.watch.Store(sb)
	failAt := time.Now()
	b.healthy.Store(false)
	b.awaitCheck(t, false, false)
	detect := time.Since(failAt)
	before := b.served.Load()
	got, bad := send(t, addr, 50)
	if n := b.served.Load() - before; n != 0 || len(bad) > 0 || got["a"] != 50 {
		t.Errorf("after detection: the down server got %d requests, bodies %v, failures %v: want all 50 on a", n, got, bad)
	}
	if st := sb.Status(time.Now(), true); st.State != upstream.Down || st.LastFailure.Cause != "upstream_status" {
		t.Errorf("state %s, last failure %+v: want down with upstream_status", st.State, st.LastFailure)
	}

	upAt := time.Now()
	b.healthy.Store(true)
	seen := b.awaitCheck(t, true, true)
	recover := time.Since(upAt)
	if got, _ := send(t, addr, 20); got["b"] == 0 {
		t.Errorf("after recovery: %v, want b serving again", got)
	}

	down := false // whether the server has gone down since the checks began
	for i, c := range seen {
		act := c.st.Active
		if act == nil {
			t.Fatalf("check %d: no active status", i)
		}
		if act.ConsecutiveFailures >= fall {
			down = true
		} else if act.ConsecutivePasses >= rise {
			down = false
		}
		if c.st.Available == down {
			t.Errorf("check %d (answered healthy=%v) found the server available=%v after %d passes and %d failures in a row: want available=%v (rise %d, fall %d)",
				i, c.healthy, c.st.Available, act.ConsecutivePasses, act.ConsecutiveFailures, !down, rise, fall)
		}
	}
	t.Logf("%d checks; detected in %s, recovered in %s", len(seen), detect.Round(time.Millisecond), recover.Round(time.Millisecond))
}

// TestHealthBodyMismatch: a check whose body does not match the regular
// expression fails, and the server leaves rotation.
func TestHealthBodyMismatch(t *testing.T) {
	t.Parallel()
	a, b := newFlaky(t, "a"), newFlaky(t, "b")
	g, addr := start(t, healthConfig(`, body: '"status":"ok"'`, a.URL, b.URL))
	sb := serverOf(g, b.URL)
	b.body.Store(`{"status":"degraded"}`)
	deadline := time.Now().Add(2 * time.Second)
	for sb.Available(time.Now()) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st := sb.Status(time.Now(), true)
	if st.Available || st.LastFailure == nil || !strings.Contains(st.LastFailure.Detail, "body does not match") {
		t.Fatalf("status %+v: want down for a body that does not match", st)
	}
	if got, bad := send(t, addr, 10); got["a"] != 10 || len(bad) > 0 {
		t.Errorf("requests: %v, failures %v: want all on a", got, bad)
	}
}

// TestAllDownAnswers503: when every server is down by active checks, the
// answer is the all-ejected one: 503, Retry-After, destination_unavailable,
// and nothing is dialled.
func TestAllDownAnswers503(t *testing.T) {
	t.Parallel()
	a := newFlaky(t, "a")
	a.healthy.Store(false)
	g, addr := start(t, healthConfig("", a.URL))
	sa := serverOf(g, a.URL)
	deadline := time.Now().Add(2 * time.Second)
	for sa.Available(time.Now()) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(resp.Header.Get("Proxy-Status"), "error=destination_unavailable") {
		t.Errorf("status %d, Retry-After %q, Proxy-Status %q: want 503 destination_unavailable with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Proxy-Status"))
	}
	if n := a.served.Load(); n != 0 {
		t.Errorf("the down server got %d client requests, want 0", n)
	}
}

// TestSlowStartRamp measures slow_start: a server that comes back takes a
// share of requests that grows in each 2-second window of its 10-second
// ramp and reaches its weight at the end.
func TestSlowStartRamp(t *testing.T) {
	if testing.Short() {
		t.Skip("12 seconds")
	}
	t.Parallel()
	a, b := newFlaky(t, "a"), newFlaky(t, "b")
	g, addr := start(t, healthConfig(", slow_start: 10s", a.URL, b.URL))
	sb := serverOf(g, b.URL)
	b.healthy.Store(false)
	for sb.Available(time.Now()) {
		time.Sleep(5 * time.Millisecond)
	}
	b.healthy.Store(true)
	for !sb.Available(time.Now()) {
		time.Sleep(5 * time.Millisecond)
	}
	// Steady load from 4 clients; each request is counted in the window
	// of its answer.
	start := time.Now()
	var mu sync.Mutex
	var windows [6][2]int // per 2s window: requests to b, all requests
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Go(func() {
			client := &http.Client{}
			for time.Since(start) < 12*time.Second {
				resp, err := client.Get("http://" + addr + "/")
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				w := int(time.Since(start) / (2 * time.Second))
				mu.Lock()
				if w < len(windows) {
					windows[w][1]++
					if string(body) == "b" {
						windows[w][0]++
					}
				}
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	var shares []float64
	for _, w := range windows {
		shares = append(shares, float64(w[0])/float64(max(w[1], 1)))
	}
	t.Logf("share of b per 2s window: %.3f", shares)
	for i := 1; i < 5; i++ {
		if shares[i] <= shares[i-1] {
			t.Errorf("share in window %d (%.3f) is not above window %d (%.3f)", i+1, shares[i], i, shares[i-1])
		}
	}
	if shares[0] > 0.25 {
		t.Errorf("share in the first window = %.3f, want well below its full 0.5", shares[0])
	}
	if shares[5] < 0.45 || shares[5] > 0.55 {
		t.Errorf("share after the ramp = %.3f, want its weight's 0.5", shares[5])
	}
}

// TestMandatoryAcrossReload: a server added by a reload to a pool with
// mandatory checks takes no request before it passes one; one that fails
// its checks never does. Health and drain state survive the reload for
// servers that remain.
func TestMandatoryAcrossReload(t *testing.T) {
	t.Parallel()
	a, b, c := newFlaky(t, "a"), newFlaky(t, "b"), newFlaky(t, "c")
	c.healthy.Store(false)
	extra := ", mandatory: true"
	g, addr := start(t, healthConfig(extra, a.URL))
	sa := serverOf(g, a.URL)
	deadline := time.Now().Add(2 * time.Second)
	for !sa.Available(time.Now()) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !sa.Available(time.Now()) {
		t.Fatal("server a never passed its mandatory first check")
	}
	sa.State.SetDrained(true)
	passedBefore := sa.Status(time.Now(), true).Active.Passed

	if err := g.Reload(parse(t, healthConfig(extra, a.URL, b.URL, c.URL))); err != nil {
		t.Fatal(err)
	}
	sb, sc := serverOf(g, b.URL), serverOf(g, c.URL)
	// Its first check may already have passed (loopback answers within
	// microseconds of the reload); available before any passed is the
	// fault. Passed only grows, so it is read after Available.
	if now := time.Now(); sb.Available(now) && sb.Status(now, true).Active.Passed == 0 {
		t.Error("a server added by a reload takes requests before its mandatory first check")
	}
	deadline = time.Now().Add(2 * time.Second)
	for !sb.Available(time.Now()) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got, bad := send(t, addr, 30)
	if got["b"] != 30 || len(bad) > 0 {
		t.Errorf("requests: %v, failures %v: want all on b (a drained, c failing its checks)", got, bad)
	}
	if c.served.Load() != 0 {
		t.Errorf("c, failing its mandatory check, got %d requests", c.served.Load())
	}
	sa = serverOf(g, a.URL)
	if st := sa.Status(time.Now(), true); st.State != upstream.Draining || st.Active.Passed < passedBefore {
		t.Errorf("a after the reload: %s, %d checks passed (was %d): want still draining, its counts kept", st.State, st.Active.Passed, passedBefore)
	}
	if st := sc.Status(time.Now(), true); st.State != upstream.Down || !st.Active.AwaitingFirst {
		t.Errorf("c: %s, awaiting first %v: want down, awaiting its first pass", st.State, st.Active.AwaitingFirst)
	}
}

// TestHealthTasksFollowReloads: checks stop when a reload turns them off,
// and no task is left after shutdown.
func TestHealthTasksFollowReloads(t *testing.T) {
	t.Parallel()
	a := newFlaky(t, "a")
	a.healthy.Store(false)
	g, err := New(parse(t, healthConfig("", a.URL)), Options{Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if n := g.health.Tasks(); n != 1 {
		t.Fatalf("tasks = %d, want 1", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for serverOf(g, a.URL).Available(time.Now()) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	off := strings.Replace(healthConfig("", a.URL), "path: /health, ", "", 1)
	if err := g.Reload(parse(t, off)); err != nil {
		t.Fatal(err)
	}
	if n := g.health.Tasks(); n != 0 {
		t.Errorf("tasks after checks were turned off = %d, want 0", n)
	}
	if !serverOf(g, a.URL).Available(time.Now()) {
		t.Error("a server down by checks stays down after the checks were turned off")
	}
	g.Shutdown(t.Context())
	if n := g.health.Tasks(); n != 0 {
		t.Errorf("tasks after shutdown = %d", n)
	}
}

// TestRampSurvivesReload: a slow start in progress goes on across a reload
// of an unchanged server; a reload does not restart it or end it.
func TestRampSurvivesReload(t *testing.T) {
	t.Parallel()
	a, b := newFlaky(t, "a"), newFlaky(t, "b")
	yaml := healthConfig(", slow_start: 10s", a.URL, b.URL)
	g, _ := start(t, yaml)
	sb := serverOf(g, b.URL)
	b.healthy.Store(false)
	for sb.Available(time.Now()) {
		time.Sleep(5 * time.Millisecond)
	}
	b.healthy.Store(true)
	for !sb.Available(time.Now()) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	before := sb.EffectiveWeight(time.Now())
	if err := g.Reload(parse(t, yaml)); err != nil {
		t.Fatal(err)
	}
	after := serverOf(g, b.URL)
	if after == sb {
		t.Fatal("the reload did not build a new pool")
	}
	w := after.EffectiveWeight(time.Now())
	if st := after.Condition(time.Now()); st != upstream.SlowStart || w < before || w > before+0.1 {
		t.Errorf("after the reload: %s at weight %.2f, want slow_start going on from %.2f", st, w, before)
	}
}
