package health

import (
	"context"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/upstream"
)

// TestResolveFollowsDNS: the addresses of a server follow its DNS answer;
// a failed lookup (NXDOMAIN is not possible once known, so an empty answer
// and then silence) keeps the last good ones and is recorded with its
// cause.
func TestResolveFollowsDNS(t *testing.T) {
	dns := testutil.NewDNS(t, map[string][]string{"api.test": {"127.0.0.2", "127.0.0.1"}})
	p := pool(t, nil, "p", time.Second, "http://api.test:8080")
	p.Config.Health.Path = ""
	p.Config.DNS.Refresh = 30 * time.Millisecond
	var logs testutil.LogBuffer
	r := newRunner(t, Options{Resolver: dns.Resolver(), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	r.Sync([]*upstream.Pool{p})
	st := p.Servers[0].State
	addrs := func() []string { a, _ := st.Addrs(); return a }
	waitFor(t, 2*time.Second, "no answer recorded", func() bool { return addrs() != nil })
	if got := addrs(); !reflect.DeepEqual(got, []string{"127.0.0.1", "127.0.0.2"}) {
		t.Fatalf("addresses = %v, want both, sorted", got)
	}
	_, gen := st.Addrs()

	dns.Set(t, "api.test", "127.0.0.3")
	waitFor(t, 2*time.Second, "new answer not followed", func() bool { return slices.Equal(addrs(), []string{"127.0.0.3"}) })
	if _, g := st.Addrs(); g == gen {
		t.Error("the generation did not change with the answer")
	}
	if st.HasAddr("127.0.0.1") || !st.HasAddr("127.0.0.3") {
		t.Error("HasAddr does not follow the answer")
	}

	dns.Set(t, "api.test") // an empty answer
	waitFor(t, 2*time.Second, "empty answer not recorded", func() bool {
		d := p.Servers[0].Status(time.Now(), false).DNS
		return d.Error != nil && d.Error.Cause == "dns_error"
	})
	if got := addrs(); !slices.Equal(got, []string{"127.0.0.3"}) {
		t.Errorf("after an empty answer, addresses = %v, want the last good ones", got)
	}

	dns.Silence("api.test")
	waitFor(t, 3*time.Second, "silence not recorded as dns_timeout", func() bool {
		d := p.Servers[0].Status(time.Now(), false).DNS
		return d.Error != nil && d.Error.Cause == "dns_timeout"
	})
	if got := addrs(); !slices.Equal(got, []string{"127.0.0.3"}) {
		t.Errorf("after a timeout, addresses = %v, want the last good ones", got)
	}
	// One log line when failures begin, not one per lookup.
	if n := strings.Count(logs.String(), "DNS lookup failed"); n != 1 {
		t.Errorf("%d failure lines logged, want 1:\n%s", n, logs.String())
	}
}

// TestFirstLookupFails: a name that does not resolve at start is logged as
// an error and leaves the server to resolve at dial time.
func TestFirstLookupFails(t *testing.T) {
	dns := testutil.NewDNS(t, nil)
	p := pool(t, nil, "p", time.Second, "http://missing.test:8080")
	p.Config.Health.Path = ""
	p.Config.DNS.Refresh = time.Hour
	var logs testutil.LogBuffer
	r := newRunner(t, Options{Resolver: dns.Resolver(), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	r.Sync([]*upstream.Pool{p})
	waitFor(t, 2*time.Second, "failure not logged", func() bool { return strings.Contains(logs.String(), "DNS lookup failed") })
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), `"cause":"dns_error"`) {
		t.Errorf("log = %s, want an error line with cause dns_error", logs.String())
	}
	if a, _ := p.Servers[0].State.Addrs(); a != nil {
		t.Errorf("addresses = %v, want none", a)
	}
}

func TestServersFromSRV(t *testing.T) {
	two := 2
	d := config.Discover{SRV: "_http._tcp.api.test", Scheme: "https", Server: config.ServerTemplate{MaxFails: &two, FailTimeout: 5 * time.Second}}
	recs := []*net.SRV{
		{Target: "b.test.", Port: 8080, Priority: 10, Weight: 65535},
		{Target: "a.test.", Port: 8080, Priority: 10, Weight: 655},
		{Target: "c.test.", Port: 9090, Priority: 20, Weight: 0},
		{Target: "A.test.", Port: 8080, Priority: 10, Weight: 1}, // the same server as a.test
		{Target: ".", Port: 0, Priority: 0, Weight: 0},           // "no service"
	}
	got := serversFromSRV(recs, d)
	want := []config.Server{
		{URL: "https://a.test:8080", Weight: 1, MaxFails: &two, FailTimeout: 5 * time.Second},
		{URL: "https://b.test:8080", Weight: 100, MaxFails: &two, FailTimeout: 5 * time.Second},
		{URL: "https://c.test:9090", Weight: 1, MaxFails: &two, FailTimeout: 5 * time.Second, Backup: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("serversFromSRV =\n%+v\nwant\n%+v", got, want)
	}
}

// TestDiscoverFollowsSRV: the servers of a discovered pool follow the SRV
// answer; a failed answer keeps the last good servers.
func TestDiscoverFollowsSRV(t *testing.T) {
	dns := testutil.NewDNS(t, nil)
	name := "_http._tcp.api.test"
	dns.SetSRV(name, testutil.SRV{Target: "a.test", Port: 8080, Weight: 1})
	var changes atomic.Int64
	r := newRunner(t, Options{Resolver: dns.Resolver(), Discovered: func(string) { changes.Add(1) }})
	d := config.Discover{SRV: name, Refresh: 30 * time.Millisecond, Scheme: "http"}
	cfg := &config.Config{Upstreams: []*config.Upstream{{Name: "api", Discover: &d}}}
	r.Prime(context.Background(), cfg)
	urls := func() []string { return serverURLs(r.Found("api", d)) }
	if got := urls(); !slices.Equal(got, []string{"http://a.test:8080"}) {
		t.Fatalf("after Prime, servers = %v", got)
	}

	u := &config.Upstream{Name: "api", Balance: "round_robin", Discover: &d, Servers: r.Found("api", d)}
	p, err := upstream.NewPool(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Sync([]*upstream.Pool{p})
	dns.SetSRV(name, testutil.SRV{Target: "a.test", Port: 8080, Weight: 1}, testutil.SRV{Target: "b.test", Port: 8080, Weight: 1, Priority: 1})
	waitFor(t, 2*time.Second, "new record not followed", func() bool { return len(urls()) == 2 })
	if c := changes.Load(); c != 1 {
		t.Errorf("Discovered called %d times, want 1", c)
	}
	if f := r.Found("api", d); !f[1].Backup || f[0].Backup {
		t.Errorf("servers = %+v, want b.test (priority 1) as a backup", f)
	}
	dns.SetSRV(name) // empty
	time.Sleep(150 * time.Millisecond)
	if got := urls(); len(got) != 2 {
		t.Errorf("after an empty answer, servers = %v, want the last good two", got)
	}
	if c := changes.Load(); c != 1 {
		t.Errorf("Discovered called %d times after an empty answer, want still 1", c)
	}
}
