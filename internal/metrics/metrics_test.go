package metrics

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/upstream"
)

func TestCauseVocabularyFits(t *testing.T) {
	for _, c := range cause.All() {
		if int(c) >= maxCauses {
			t.Fatalf("cause %s has value %d: raise maxCauses (%d)", c, c, maxCauses)
		}
	}
}

// TestCodeTable counts from many goroutines at once, past the table's
// slots into its overflow, and checks every count.
func TestCodeTable(t *testing.T) {
	var tab codeTable
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 1000; i++ {
				// 40 distinct pairs: more than the 32 slots.
				tab.add(200+i%20, cause.Cause(i%2))
			}
		})
	}
	wg.Wait()
	got := map[[2]int]uint64{}
	var total uint64
	tab.each(func(code int, c cause.Cause, n uint64) {
		k := [2]int{code, int(c)}
		if _, dup := got[k]; dup {
			t.Errorf("pair %v listed twice", k)
		}
		got[k] = n
		total += n
	})
	if len(got) != 20 || total != 8000 {
		t.Errorf("%d pairs, %d in total: want 20 pairs (code and cause go together), 8000", len(got), total)
	}
	for k, n := range got {
		if n != 400 {
			t.Errorf("pair %v counted %d, want 400", k, n)
		}
	}
}

func TestCodeTableOverflow(t *testing.T) {
	var tab codeTable
	for code := 100; code < 160; code++ {
		tab.add(code, cause.None)
		tab.add(code, cause.None)
	}
	n := 0
	tab.each(func(code int, c cause.Cause, v uint64) {
		n++
		if v != 2 {
			t.Errorf("code %d counted %d, want 2", code, v)
		}
	})
	if n != 60 {
		t.Errorf("%d pairs, want 60", n)
	}
}

func TestSeriesAndRetain(t *testing.T) {
	pools := []upstream.PoolStatus{{Name: "api", Available: 1, Servers: []upstream.ServerStatus{
		{URL: "http://a:1", State: upstream.Up, Available: true, Weight: 1, EffectiveWeight: 1,
			Active: &upstream.ActiveStatus{Passed: 3, Failed: 1}, Passive: upstream.PassiveStatus{EjectionsTotal: 2}},
		{URL: "http://b:1", State: upstream.Ejected, Weight: 1, EffectiveWeight: 1},
	}}}
	r := New(Options{Version: "v1.2.3", Pools: func() []upstream.PoolStatus { return pools }})
	api, old := r.Route("api/"), r.Route("old/")
	api.Observe(200, cause.None, 10*time.Millisecond)
	api.Observe(502, cause.ConnectionRefused, time.Millisecond)
	api.Observe(502, cause.ConnectionRefused, time.Millisecond)
	old.Observe(200, cause.None, time.Millisecond)
	r.Pool("api").Retried(cause.ConnectionRefused)
	r.Pool("api").Skipped("budget")
	r.Pool("api").Skipped("not a reason")
	r.Server("api", "http://a:1").Attempt(cause.None)
	r.Server("api", "http://b:1").Attempt(cause.ConnectionRefused)

	want := `
# HELP holdfast_requests_total Requests answered, by route, status code and cause (the RFC 9209 name, or none for a request that did not fail).
# TYPE holdfast_requests_total counter
holdfast_requests_total{cause="connection_refused",code="502",route="api/"} 2
holdfast_requests_total{cause="none",code="200",route="api/"} 1
holdfast_requests_total{cause="none",code="200",route="old/"} 1
`
	if err := testutil.GatherAndCompare(r.Gatherer(), strings.NewReader(want), "holdfast_requests_total"); err != nil {
		t.Error(err)
	}
	for name, want := range map[string]int{
		"holdfast_upstream_attempts_total":          2,
		"holdfast_upstream_retries_total":           1,
		"holdfast_upstream_retries_skipped_total":   len(SkipReasons),
		"holdfast_upstream_server_up":               2,
		"holdfast_upstream_server_state":            2 * len(upstream.Conditions()),
		"holdfast_health_checks_total":              2,
		"holdfast_upstream_ejections_total":         2,
		"holdfast_upstream_pool_servers_available":  1,
		"holdfast_build_info":                       1,
		"holdfast_request_duration_seconds":         2,
		"holdfast_config_reloads_total":             2,
		"holdfast_upstream_requests_in_flight":      2,
		"holdfast_upstream_server_effective_weight": 2,
	} {
		if n, err := testutil.GatherAndCount(r.Gatherer(), name); err != nil || n != want {
			t.Errorf("%s: %d series (%v), want %d", name, n, err, want)
		}
	}

	// A reload without the old route and server b: their series go.
	pools[0].Servers = pools[0].Servers[:1]
	r.Retain([]string{"api/"}, []string{"api"}, [][2]string{{"api", "http://a:1"}})
	for name, want := range map[string]int{
		"holdfast_requests_total":           2,
		"holdfast_request_duration_seconds": 1,
		"holdfast_upstream_attempts_total":  1,
		"holdfast_upstream_server_up":       1,
	} {
		if n, _ := testutil.GatherAndCount(r.Gatherer(), name); n != want {
			t.Errorf("after Retain, %s: %d series, want %d", name, n, want)
		}
	}
	if r.Route("api/") != api {
		t.Error("a route kept by Retain lost its counters")
	}
}

func TestStats(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := New(Options{Now: func() time.Time { return now }})
	rt := r.Route("api/")
	r.samples.take()
	for i := 0; i < 10; i++ {
		rt.Observe(200, cause.None, time.Millisecond)
	}
	rt.Observe(502, cause.ConnectionRefused, time.Millisecond)
	rt.Observe(504, cause.HTTPResponseTimeout, time.Millisecond)
	rt.Observe(500, cause.None, time.Millisecond) // an upstream's own 500, passed on
	now = now.Add(5 * time.Second)
	r.samples.take()
	rt.Observe(200, cause.None, time.Millisecond)
	now = now.Add(5 * time.Second)
	r.samples.take()

	st := r.Stats()
	if len(st.Routes) != 1 || len(st.Routes[0].Points) != 2 {
		t.Fatalf("Stats = %+v: want one route with two points", st)
	}
	p := st.Routes[0].Points[0]
	if p.Requests != 13 || p.Errors != 2 || p.Codes5xx != 3 ||
		p.Causes["connection_refused"] != 1 || p.Causes["http_response_timeout"] != 1 || len(p.Causes) != 2 {
		t.Errorf("first point = %+v: want 13 requests, 2 errors by cause, 3 answered 5xx", p)
	}
	if q := st.Routes[0].Points[1]; q.Requests != 1 || q.Errors != 0 {
		t.Errorf("second point = %+v: want 1 request, no error", q)
	}
}

func TestFailuresRing(t *testing.T) {
	r := New(Options{})
	rt := r.Route("api/")
	for i := 0; i < 150; i++ {
		rt.Failed(Failure{RequestID: string(rune('a' + i%26)), Status: 502, Path: strings.Repeat("x", 1000)})
	}
	fs := r.Failures()
	if len(fs) != 100 {
		t.Fatalf("%d failures kept, want the last 100", len(fs))
	}
	if fs[0].RequestID != string(rune('a'+149%26)) || fs[0].Route != "api/" {
		t.Errorf("newest = %+v, want request %q of route api/", fs[0], string(rune('a'+149%26)))
	}
	if len(fs[0].Path) > maxPath+len("…") {
		t.Errorf("a path of %d bytes was kept whole", len(fs[0].Path))
	}
}

// BenchmarkObserve is the cost a request pays for metrics.
func BenchmarkObserve(b *testing.B) {
	r := New(Options{})
	rt := r.Route("api/")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rt.Observe(200, cause.None, time.Millisecond)
		}
	})
}
