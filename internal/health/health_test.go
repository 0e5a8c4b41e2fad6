package health

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/upstream"
)

// pool builds a pool of the given server URLs with checks on /health every
// interval.
func pool(t *testing.T, reg *upstream.Registry, name string, interval time.Duration, urls ...string) *upstream.Pool {
	t.Helper()
	u := &config.Upstream{
		Name: name, Balance: "round_robin", Hash: "client_ip",
		Passive: config.Passive{MaxEjectedPercent: 50, MaxEjectionTime: time.Minute},
		Health: config.Health{Path: "/health", Interval: interval, Timeout: interval, Method: "GET",
			Status: "200-299", Rise: 2, Fall: 3},
	}
	one := 1
	for _, s := range urls {
		u.Servers = append(u.Servers, config.Server{URL: s, Weight: 1, MaxFails: &one, FailTimeout: time.Second})
	}
	p, err := upstream.NewPool(u, reg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// names returns n server URLs that all lead to backend b, each by its own
// host name (so that the backend can tell them apart by Host), and the
// resolver that knows the names.
func names(t *testing.T, b *testutil.Counting, n int) ([]string, *testutil.DNS) {
	t.Helper()
	records := map[string][]string{}
	var urls []string
	_, port, _ := strings.Cut(b.Addr, ":")
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("s%d.test", i)
		records[name] = []string{"127.0.0.1"}
		urls = append(urls, "http://"+name+":"+port)
	}
	return urls, testutil.NewDNS(t, records)
}

func newRunner(t *testing.T, o Options) *Runner {
	r := New(o)
	t.Cleanup(r.Close)
	return r
}

// waitFor polls cond every 5ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCheckCauses runs one server per kind of failure and checks that each
// goes down after fall checks with the cause a request would get.
func TestCheckCauses(t *testing.T) {
	status := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	body := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"degraded"}`)
	}))
	hang := testutil.Hang(t)
	cases := []struct {
		name, url, body string
		cause, detail   string
	}{
		{"status 500", status.URL, "", "upstream_status", "status 500, want 200-299"},
		{"body mismatch", body.URL, `"status":"ok"`, "upstream_status", "body does not match"},
		{"no answer", "http://" + hang.Addr, "", "http_response_timeout", ""},
		{"refused", "http://" + testutil.DeadAddr(t), "", "connection_refused", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := pool(t, nil, "p", 40*time.Millisecond, c.url, "http://127.0.0.1:1")
			p.Config.Health.Body = c.body
			r := newRunner(t, Options{})
			r.Sync([]*upstream.Pool{p})
			s := p.Servers[0]
			waitFor(t, 2*time.Second, "server not down", func() bool { return s.Condition(time.Now()) == upstream.Down })
			st := s.Status(time.Now(), true)
			if st.LastFailure == nil || st.LastFailure.Cause != c.cause || st.LastFailure.Source != "active" {
				t.Fatalf("last failure = %+v, want cause %s from active checks", st.LastFailure, c.cause)
			}
			if !strings.Contains(st.LastFailure.Detail, c.detail) {
				t.Errorf("detail = %q, want it to contain %q", st.LastFailure.Detail, c.detail)
			}
			if st.Active.ConsecutiveFailures < 3 || st.Available {
				t.Errorf("active = %+v, available %v: want down after 3 failures", st.Active, st.Available)
			}
		})
	}
}

// TestRiseAndFall follows one server through failing and recovering:
// fall failures in a row take it down, rise passes bring it back, and a
// single failure in between does neither.
func TestRiseAndFall(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	var checks atomic.Int64
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
		if r.Header.Get("User-Agent") != UserAgent || r.Header.Get("X-Check") != "yes" || r.Host != "health.example" {
			t.Errorf("check request: UA %q, X-Check %q, Host %q", r.Header.Get("User-Agent"), r.Header.Get("X-Check"), r.Host)
		}
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	p := pool(t, nil, "p", 30*time.Millisecond, b.URL)
	p.Config.Health.Host = "health.example"
	p.Config.Health.Headers = map[string]string{"X-Check": "yes"}
	r := newRunner(t, Options{})
	r.Sync([]*upstream.Pool{p})
	s := p.Servers[0]
	waitFor(t, time.Second, "no check passed", func() bool { return s.Status(time.Now(), true).Active.Passed >= 2 })
	healthy.Store(false)
	waitFor(t, 2*time.Second, "server not down", func() bool { return !s.Available(time.Now()) })
	if f := s.Status(time.Now(), true).Active.ConsecutiveFailures; f != 3 {
		t.Errorf("went down after %d failures, want 3 (fall)", f)
	}
	healthy.Store(true)
	waitFor(t, 2*time.Second, "server not back up", func() bool { return s.Available(time.Now()) })
	if n := s.Status(time.Now(), true).Active.ConsecutivePasses; n != 2 {
		t.Errorf("came up after %d passes, want 2 (rise)", n)
	}
}

// TestMandatory: a new server awaits its first pass when checks are
// mandatory, and one pass is enough.
func TestMandatory(t *testing.T) {
	b := testutil.Backend(t, nil)
	u := &config.Upstream{Name: "p", Balance: "round_robin", Hash: "client_ip",
		Passive: config.Passive{MaxEjectedPercent: 50, MaxEjectionTime: time.Minute},
		Health: config.Health{Path: "/health", Interval: time.Hour, Timeout: time.Second, Method: "GET",
			Status: "200-299", Rise: 5, Fall: 3, Mandatory: true},
		Servers: []config.Server{{URL: b.URL, Weight: 1}},
	}
	p, err := upstream.NewPool(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Servers[0]
	if s.Available(time.Now()) || s.Condition(time.Now()) != upstream.Down {
		t.Fatalf("new server with mandatory checks: condition %s, want down until checked", s.Condition(time.Now()))
	}
	r := newRunner(t, Options{})
	r.Sync([]*upstream.Pool{p})
	// The interval is an hour: only the prompt first check of a server
	// awaiting a mandatory one can bring it up.
	waitFor(t, 2*time.Second, "mandatory first check did not bring the server up", func() bool { return s.Available(time.Now()) })
}

// TestChecksStopCleanly counts goroutines: every task of a Sync stops on
// the next Sync without it, and on Close, with checks in flight.
func TestChecksStopCleanly(t *testing.T) {
	slow := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
	}))
	urls, dns := names(t, slow, 20)
	base := runtime.NumGoroutine()
	r := New(Options{Resolver: dns.Resolver()})
	p := pool(t, nil, "p", 20*time.Millisecond, urls...)
	p.Config.DNS.Refresh = 20 * time.Millisecond
	r.Sync([]*upstream.Pool{p})
	if n := r.Tasks(); n != 40 {
		t.Fatalf("tasks = %d, want 40 (20 checks, 20 lookups)", n)
	}
	time.Sleep(100 * time.Millisecond) // checks in flight
	// A reload that keeps half the servers keeps their tasks.
	half := pool(t, nil, "p", 20*time.Millisecond, urls[:10]...)
	half.Config.DNS.Refresh = 20 * time.Millisecond
	r.Sync([]*upstream.Pool{half})
	if n := r.Tasks(); n != 20 {
		t.Fatalf("tasks after a smaller Sync = %d, want 20", n)
	}
	r.Close()
	waitFor(t, 2*time.Second, "goroutines left behind", func() bool {
		// The backend's own handlers end within its second.
		return runtime.NumGoroutine() <= base+2
	})
}

// TestJitterSpreadsChecks: 60 servers sharing an interval are not checked
// in step: their first checks spread over the interval.
func TestJitterSpreadsChecks(t *testing.T) {
	var mu sync.Mutex
	first := map[string]time.Time{}
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := first[r.Host]; !ok {
			first[r.Host] = time.Now()
		}
	}))
	urls, dns := names(t, b, 60)
	start := time.Now()
	p := pool(t, nil, "p", 600*time.Millisecond, urls...)
	r := newRunner(t, Options{Resolver: dns.Resolver()})
	r.Sync([]*upstream.Pool{p})
	waitFor(t, 3*time.Second, "not every server checked", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(first) == 60
	})
	mu.Lock()
	defer mu.Unlock()
	buckets := make([]int, 6) // 100ms each
	var offs []time.Duration
	for _, at := range first {
		off := at.Sub(start)
		offs = append(offs, off)
		if i := int(off / (100 * time.Millisecond)); i < len(buckets) {
			buckets[i]++
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	// Uniform over 600ms: about 10 a bucket. In step, all 60 would land
	// in the first.
	for i, n := range buckets {
		if n > 25 {
			t.Errorf("first checks per 100ms = %v: %d in bucket %d, want them spread", buckets, n, i)
		}
	}
	if spread := offs[len(offs)-1] - offs[0]; spread < 300*time.Millisecond {
		t.Errorf("first checks spread over %s, want most of the 600ms interval", spread)
	}
}

// TestConcurrencyBound: with MaxConcurrent 3, no more than 3 checks are in
// flight at once, however many servers are due.
func TestConcurrencyBound(t *testing.T) {
	var inFlight testutil.InFlight
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer inFlight.Enter()()
		time.Sleep(150 * time.Millisecond)
	}))
	urls, dns := names(t, b, 12)
	// Twelve checks of 150ms each due every 300ms want six in flight on
	// average, so an unbounded runner would exceed 3 and a bounded one
	// reaches it. The timeout (the interval) stays above the 150ms a check
	// takes: a check abandoned at its timeout would leave its request
	// running at the backend while the next one starts.
	p := pool(t, nil, "p", 300*time.Millisecond, urls...)
	r := newRunner(t, Options{MaxConcurrent: 3, Resolver: dns.Resolver()})
	r.Sync([]*upstream.Pool{p})
	waitFor(t, 5*time.Second, "checks did not run", func() bool { return b.Requests.Load() >= 24 })
	if got := inFlight.Peak(); got != 3 {
		t.Errorf("peak checks in flight = %d, want 3 (12 servers due, at most 3 at once)", got)
	}
}
