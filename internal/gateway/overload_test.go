package gateway

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// ratioBackend answers 500 to a share of its requests that the test sets,
// and counts them.
type ratioBackend struct {
	*testutil.Counting
	failPermille atomic.Int64
}

func newRatioBackend(t *testing.T, name string) *ratioBackend {
	b := &ratioBackend{}
	b.Counting = testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rand.Int64N(1000) < b.failPermille.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, name)
	}))
	return b
}

// TestBreakerOpensAndCloses: a server whose error ratio passes the
// breaker's opens it (and gets no requests while open), the trials of the
// half-open breaker close it once the server is well, and a pool whose
// every breaker is open answers 503 with Retry-After without dialling.
func TestBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	a, b := newRatioBackend(t, "a"), newRatioBackend(t, "b")
	yaml := fmt.Sprintf(`listen: [{addr: "127.0.0.1:0"}]
routes: [{upstream: p}]
upstreams:
  p:
    retry: {tries: 1}
    passive: {fail_on: [http_500]}
    breaker: {error_ratio: 0.5, min_requests: 10, window: 2s, open_for: 300ms, half_open_requests: 2}
    servers:
      - {url: %q, max_fails: 0}
      - {url: %q, max_fails: 0}
`, a.URL, b.URL)
	g, addr := start(t, yaml)
	sb := serverOf(g, b.URL)

	// b fails 80% of its requests: the breaker opens after 10 of them.
	b.failPermille.Store(800)
	for i := 0; i < 40 && sb.Available(time.Now()); i++ {
		send(t, addr, 1)
	}
	st := sb.Status(time.Now(), false)
	if st.Breaker == nil || st.Breaker.State != "open" || st.Available {
		t.Fatalf("after 40 requests at 80%% errors: breaker %+v, available %v", st.Breaker, st.Available)
	}
	before := b.Requests.Load()
	got, _ := send(t, addr, 20)
	if n := b.Requests.Load() - before; n != 0 || got["a"] != 20 {
		t.Errorf("while open: b got %d requests, bodies %v: want all 20 on a", n, got)
	}

	// Still failing when open_for is over: the trial reopens it, longer.
	time.Sleep(350 * time.Millisecond)
	b.failPermille.Store(1000)
	for i := 0; i < 10 && sb.Status(time.Now(), false).Breaker.Opens < 2; i++ {
		send(t, addr, 1)
	}
	if bs := sb.Status(time.Now(), false).Breaker; bs.Opens != 2 || bs.State != "open" ||
		time.Until(bs.OpenUntil) < 400*time.Millisecond {
		t.Errorf("a failed trial: %+v, want open again for about 600ms (open_for doubled)", bs)
	}

	// Well again: after open_for, two passing trials close it.
	b.failPermille.Store(0)
	time.Sleep(650 * time.Millisecond)
	deadline := time.Now().Add(2 * time.Second)
	for sb.Status(time.Now(), false).Breaker.State != "closed" && time.Now().Before(deadline) {
		send(t, addr, 1)
	}
	if bs := sb.Status(time.Now(), false).Breaker; bs.State != "closed" || bs.Opens != 0 {
		t.Errorf("after passing trials: %+v, want closed", bs)
	}

	// Every server open: 503 at once, Retry-After, destination_unavailable.
	a.failPermille.Store(1000)
	b.failPermille.Store(1000)
	for i := 0; i < 60; i++ {
		send(t, addr, 1)
	}
	aBefore, bBefore := a.Requests.Load(), b.Requests.Load()
	began := time.Now()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(began)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(resp.Header.Get("Proxy-Status"), "destination_unavailable") {
		t.Errorf("every breaker open: %d, Retry-After %q, Proxy-Status %q", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Proxy-Status"))
	}
	if a.Requests.Load() != aBefore || b.Requests.Load() != bBefore {
		t.Error("a server was dialled while every breaker was open")
	}
	t.Logf("refused with every breaker open in %s", took)
	if st := g.Pools()[0]; st.Available != 0 || st.Servers[0].State != "breaker_open" {
		t.Errorf("admin state: %+v", st)
	}
}

// TestMaxConnsQueue: with max_conns 2 and a queue of 3, ten simultaneous
// slow requests: 2 go at once, 3 wait for a slot and are served, 5 are
// refused at once with 503 connection_limit_reached; the server never has
// more than 2 in flight; a queued client that leaves frees its place.
func TestMaxConnsQueue(t *testing.T) {
	t.Parallel()
	var inFlight testutil.InFlight
	release := make(chan struct{})
	slow := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer inFlight.Enter()()
		<-release
		io.WriteString(w, "ok")
	}))
	yaml := fmt.Sprintf(`listen: [{addr: "127.0.0.1:0"}]
routes: [{upstream: p}]
upstreams:
  p:
    retry: {tries: 1, timeout: 0s}
    queue: {size: 3, timeout: 2s}
    servers: [{url: %q, max_conns: 2}]
`, slow.URL)
	_, addr := start(t, yaml)
	type result struct {
		status int
		ps     string
		took   time.Duration
	}
	results := make(chan result, 10)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Go(func() {
			began := time.Now()
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get("Proxy-Status"), time.Since(began)}
		})
	}
	// The 5 refused answer while the 2 in flight hold their slots.
	var refused []result
	for len(refused) < 5 {
		select {
		case r := <-results:
			refused = append(refused, r)
		case <-time.After(3 * time.Second):
			t.Fatalf("only %d answers before the backend released any request", len(refused))
		}
	}
	for _, r := range refused {
		if r.status != 503 || !strings.Contains(r.ps, "error=connection_limit_reached") {
			t.Errorf("refused request: %d %q, want 503 connection_limit_reached", r.status, r.ps)
		}
		t.Logf("refused in %s", r.took)
	}
	for end := time.Now().Add(3 * time.Second); inFlight.Now() < 2 && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(results)
	ok := 0
	for r := range results {
		if r.status == 200 {
			ok++
		}
	}
	if ok != 5 || inFlight.Peak() != 2 {
		t.Errorf("%d served (want 5: 2 at once, 3 from the queue), peak in flight %d (want 2)", ok, inFlight.Peak())
	}
}

// TestQueueTimeout: a request that waits past queue.timeout gets 503
// connection_limit_reached, and one whose client leaves stops waiting.
func TestQueueTimeout(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	defer close(hold)
	slow := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	yaml := fmt.Sprintf(`listen: [{addr: "127.0.0.1:0"}]
routes: [{upstream: p}]
upstreams:
  p:
    retry: {tries: 1, timeout: 0s}
    queue: {size: 10, timeout: 200ms}
    servers: [{url: %q, max_conns: 1}]
`, slow.URL)
	g, addr := start(t, yaml)
	go http.Get("http://" + addr + "/") // holds the one slot
	time.Sleep(100 * time.Millisecond)

	// A client that gives up leaves the queue at once.
	quick := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := quick.Get("http://" + addr + "/"); err == nil {
		t.Fatal("a queued request was answered while the slot was held")
	}
	deadline := time.Now().Add(time.Second)
	for g.Pools()[0].Queued != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if q := g.Pools()[0].Queued; q != 0 {
		t.Errorf("%d still queued after its client left", q)
	}

	began := time.Now()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(began)
	if resp.StatusCode != 503 || !strings.Contains(resp.Header.Get("Proxy-Status"), "connection_limit_reached") ||
		took < 190*time.Millisecond || took > time.Second {
		t.Errorf("queued past its timeout: %d %q after %s, want 503 connection_limit_reached after about 200ms",
			resp.StatusCode, resp.Header.Get("Proxy-Status"), took)
	}
}

// TestRateLimit429: over a route's limit the answer is 429 with
// Retry-After, the RateLimit headers and http_request_denied, without
// reaching the backend; X-Forwarded-For names the client only from a
// trusted proxy.
func TestRateLimit429(t *testing.T) {
	t.Parallel()
	be := testutil.Backend(t, nil)
	yaml := fmt.Sprintf(`listen: [{addr: "127.0.0.1:0"}]
trusted_proxies: [127.0.0.1]
routes:
  - upstream: p
    rate_limits: [{key: client_ip, rate: 5/m, burst: 5}]
upstreams:
  p: {servers: [{url: %q}]}
`, be.URL)
	_, addr := start(t, yaml)
	get := func(xff string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	codes := map[int]int{}
	var last *http.Response
	for i := 0; i < 8; i++ {
		last = get("203.0.113.7")
		codes[last.StatusCode]++
	}
	if codes[200] != 5 || codes[429] != 3 || be.Requests.Load() != 5 {
		t.Fatalf("8 requests of one client against 5/m: %v, backend got %d", codes, be.Requests.Load())
	}
	if ra := last.Header.Get("Retry-After"); ra == "" || ra == "0" ||
		!strings.Contains(last.Header.Get("Proxy-Status"), "error=http_request_denied") ||
		last.Header.Get("RateLimit-Policy") != `"client_ip";q=5;w=60` ||
		!strings.HasPrefix(last.Header.Get("RateLimit"), `"client_ip";r=0;t=`) {
		t.Errorf("429 headers: Retry-After %q, Proxy-Status %q, RateLimit-Policy %q, RateLimit %q",
			ra, last.Header.Get("Proxy-Status"), last.Header.Get("RateLimit-Policy"), last.Header.Get("RateLimit"))
	}
	// Another client behind the same trusted proxy has its own bucket.
	if resp := get("203.0.113.8"); resp.StatusCode != 200 {
		t.Errorf("a second client behind the trusted proxy: %d, want 200", resp.StatusCode)
	}
}

// TestRateLimitUntrustedXFF: from a peer that is not a trusted proxy,
// X-Forwarded-For is ignored: changing it does not buy a new bucket.
func TestRateLimitUntrustedXFF(t *testing.T) {
	t.Parallel()
	be := testutil.Backend(t, nil)
	yaml := fmt.Sprintf(`listen: [{addr: "127.0.0.1:0"}]
routes:
  - upstream: p
    rate_limits: [{rate: 3/m}]
upstreams:
  p: {servers: [{url: %q}]}
`, be.URL)
	_, addr := start(t, yaml)
	ok := 0
	for i := 0; i < 10; i++ {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			ok++
		}
	}
	if ok != 3 {
		t.Errorf("%d of 10 allowed with forged X-Forwarded-For, want 3", ok)
	}
}

// TestAdaptiveLimitHolds: with an adaptive limit, the backend never sees
// more requests at once than the limit's maximum, however many clients
// send at once; the excess waits in the queue and is served.
func TestAdaptiveLimitHolds(t *testing.T) {
	t.Parallel()
	var inFlight testutil.InFlight
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer inFlight.Enter()()
		time.Sleep(20 * time.Millisecond)
	}))
	yaml := fmt.Sprintf(`listen: [{addr: "127.0.0.1:0"}]
routes: [{upstream: p}]
upstreams:
  p:
    retry: {tries: 1, timeout: 0s}
    adaptive: {enabled: true, min_limit: 2, max_limit: 4}
    queue: {size: 100, timeout: 10s}
    servers: [{url: %q}]
`, be.URL)
	g, addr := start(t, yaml)
	var wg sync.WaitGroup
	var ok, bad atomic.Int64
	for c := 0; c < 20; c++ {
		wg.Go(func() {
			for i := 0; i < 10; i++ {
				resp, err := http.Get("http://" + addr + "/")
				if err != nil || resp.StatusCode != 200 {
					bad.Add(1)
				} else {
					ok.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	if inFlight.Peak() > 4 || ok.Load() != 200 {
		t.Errorf("peak in flight at the backend %d (want at most max_limit 4), %d served, %d failed", inFlight.Peak(), ok.Load(), bad.Load())
	}
	st := g.Pools()[0]
	if st.Adaptive == nil || st.Adaptive.Limit < 2 || st.Adaptive.Limit > 4 || st.Adaptive.MinRTTms <= 0 {
		t.Errorf("admin state of the limit: %+v", st.Adaptive)
	}
}
