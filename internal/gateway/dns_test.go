package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// named is a backend that answers with its name.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
}

// steadyLoad sends requests from n clients (keep-alive) until stop is
// closed, and counts bodies and failures.
type steadyLoad struct {
	mu     sync.Mutex
	bodies map[string]int
	fails  []string
	wg     sync.WaitGroup
}

func startLoad(url string, n int, stop <-chan struct{}) *steadyLoad {
	l := &steadyLoad{bodies: map[string]int{}}
	for i := 0; i < n; i++ {
		l.wg.Go(func() {
			c := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				l.mu.Lock()
				if err != nil {
					l.fails = append(l.fails, err.Error())
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						l.fails = append(l.fails, fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("Proxy-Status")))
					} else {
						l.bodies[string(b)]++
					}
				}
				l.mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		})
	}
	return l
}

func (l *steadyLoad) snapshot() (map[string]int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.bodies))
	for k, v := range l.bodies {
		out[k] = v
	}
	return out, append([]string(nil), l.fails...)
}

// TestDNSChangeUnderLoad: when a server's name moves to a new address
// while load runs and the old address still answers, no client sees an
// error, new connections go to the new address within a refresh, and the
// pooled connections to the old one are retired.
func TestDNSChangeUnderLoad(t *testing.T) {
	t.Parallel()
	old := testutil.Backend(t, named("old"))
	_, port, _ := net.SplitHostPort(old.Addr)
	next := testutil.BackendAt(t, "127.0.0.2:"+port, named("new"))
	dns := testutil.NewDNS(t, map[string][]string{"api.test": {"127.0.0.1"}})
	yaml := fmt.Sprintf(`listen: [{addr: "127.0.0.1:0"}]
routes: [{upstream: p}]
upstreams:
  p:
    dns: {refresh: 50ms}
    servers: [{url: "http://api.test:%s"}]
`, port)
	g, addr := startOpts(t, yaml, Options{Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard, Resolver: dns.Resolver()})
	stop := make(chan struct{})
	l := startLoad("http://"+addr+"/", 8, stop)
	defer l.wg.Wait()
	defer close(stop)
	time.Sleep(300 * time.Millisecond)
	dns.Set(t, "api.test", "127.0.0.2")
	changedAt := time.Now()
	for {
		got, _ := l.snapshot()
		if got["new"] > 0 {
			break
		}
		if time.Since(changedAt) > 2*time.Second {
			t.Fatal("no request reached the new address 2s after the DNS change")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("first request at the new address %s after the change", time.Since(changedAt).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	oldBefore := old.Requests.Load()
	time.Sleep(300 * time.Millisecond)
	if n := old.Requests.Load() - oldBefore; n != 0 {
		t.Errorf("the old address still got %d requests well after the change: pooled connections to it were not retired", n)
	}
	got, fails := l.snapshot()
	if len(fails) > 0 {
		t.Errorf("%d client errors during the change, first: %s", len(fails), fails[0])
	}
	if got["old"] == 0 || got["new"] == 0 {
		t.Errorf("bodies = %v, want both addresses to have served", got)
	}
	st := g.Pools()[0].Servers[0]
	if len(st.Addresses) != 1 || st.Addresses[0] != "127.0.0.2" || st.DNS == nil || st.DNS.Error != nil {
		t.Errorf("admin state: addresses %v, dns %+v: want the new address and no error", st.Addresses, st.DNS)
	}
	_ = next
}

// TestSRVDiscoveryUnderLoad: a pool built from SRV records follows them
// while load runs: a server that appears takes traffic, one that
// disappears gets no new requests, and no client sees an error.
func TestSRVDiscoveryUnderLoad(t *testing.T) {
	t.Parallel()
	a := testutil.Backend(t, named("a"))
	b := testutil.Backend(t, named("b"))
	_, pa, _ := net.SplitHostPort(a.Addr)
	_, pb, _ := net.SplitHostPort(b.Addr)
	port := func(p string) uint16 {
		var n uint16
		fmt.Sscan(p, &n)
		return n
	}
	dns := testutil.NewDNS(t, map[string][]string{"a.test": {"127.0.0.1"}, "b.test": {"127.0.0.1"}})
	const srv = "_http._tcp.api.test"
	dns.SetSRV(srv, testutil.SRV{Target: "a.test", Port: port(pa), Weight: 1})
	yaml := `listen: [{addr: "127.0.0.1:0"}]
routes: [{upstream: api}]
upstreams:
  api:
    discover: {srv: _http._tcp.api.test, refresh: 50ms, server: {max_fails: 2}}
`
	g, addr := startOpts(t, yaml, Options{Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard, Resolver: dns.Resolver()})
	if ps := g.Pools(); len(ps[0].Servers) != 1 || ps[0].Discover != srv {
		t.Fatalf("at start: %+v, want the one server of the SRV answer", ps)
	}
	stop := make(chan struct{})
	l := startLoad("http://"+addr+"/", 6, stop)
	defer l.wg.Wait()
	defer close(stop)
	time.Sleep(200 * time.Millisecond)

	dns.SetSRV(srv, testutil.SRV{Target: "a.test", Port: port(pa), Weight: 1}, testutil.SRV{Target: "b.test", Port: port(pb), Weight: 1})
	deadline := time.Now().Add(2 * time.Second)
	for b.Requests.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if b.Requests.Load() == 0 {
		t.Fatal("the server that appeared in SRV got no request")
	}
	for _, s := range g.Pools()[0].Servers {
		if s.Passive.MaxFails != 2 {
			t.Errorf("%s: max_fails %d, want 2 from discover.server", s.URL, s.Passive.MaxFails)
		}
	}
	dns.SetSRV(srv, testutil.SRV{Target: "b.test", Port: port(pb), Weight: 1})
	deadline = time.Now().Add(2 * time.Second)
	for len(g.Pools()[0].Servers) != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	aBefore := a.Requests.Load()
	time.Sleep(300 * time.Millisecond)
	if n := a.Requests.Load() - aBefore; n != 0 {
		t.Errorf("the server that left SRV got %d requests after it left", n)
	}
	_, fails := l.snapshot()
	if len(fails) > 0 {
		t.Errorf("%d client errors while the pool changed, first: %s", len(fails), fails[0])
	}
	ps := g.Pools()[0]
	if len(ps.Servers) != 1 || !strings.Contains(ps.Servers[0].URL, "b.test") {
		t.Errorf("pool after the change: %+v, want b.test alone", ps.Servers)
	}
}

// TestSRVFirstLookupFails: a pool whose SRV name does not resolve at start
// answers 503 without crashing the gateway, and takes its servers once the
// name resolves.
func TestSRVFirstLookupFails(t *testing.T) {
	t.Parallel()
	a := testutil.Backend(t, named("a"))
	_, pa, _ := net.SplitHostPort(a.Addr)
	var n uint16
	fmt.Sscan(pa, &n)
	dns := testutil.NewDNS(t, map[string][]string{"a.test": {"127.0.0.1"}})
	yaml := `listen: [{addr: "127.0.0.1:0"}]
routes: [{upstream: api}]
upstreams:
  api:
    discover: {srv: _http._tcp.late.test, refresh: 50ms}
`
	var logs slowLog
	_, addr := startOpts(t, yaml, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), AccessLog: io.Discard, Resolver: dns.Resolver()})
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("before any server is found: status %d, want 503", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "SRV lookup failed") {
		t.Errorf("log = %s, want the failed lookup", logs.String())
	}
	dns.SetSRV("_http._tcp.late.test", testutil.SRV{Target: "a.test", Port: n, Weight: 1})
	var ok atomic.Bool
	deadline := time.Now().Add(2 * time.Second)
	for !ok.Load() && time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			ok.Store(resp.StatusCode == http.StatusOK)
			resp.Body.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !ok.Load() {
		t.Error("the pool did not take its servers once the SRV name resolved")
	}
}
