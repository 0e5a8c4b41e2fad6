package probe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/testutil"
)

// TestProbeNamesEveryCause produces each failure for real on loopback and
// checks that the probe names it.
func TestProbeNamesEveryCause(t *testing.T) {
	dns := testutil.NewDNS(t, map[string][]string{"known.test": {"127.0.0.1"}})
	dns.Silence("silent.test")
	good := testutil.Backend(t, nil)
	_, port, _ := strings.Cut(good.Addr, ":")

	type tc struct {
		name string
		url  string
		opts func(*Options)
		want cause.Cause
	}
	cases := []tc{
		{"refused", "http://" + testutil.DeadAddr(t) + "/", nil, cause.ConnectionRefused},
		{"hang", "http://" + testutil.Hang(t).Addr + "/", func(o *Options) { o.Timeout = 300 * time.Millisecond }, cause.HTTPResponseTimeout},
		{"reset", "http://" + testutil.ResetAfterRequest(t).Addr + "/", nil, cause.ConnectionTerminated},
		{"garbage", "http://" + testutil.Garbage(t).Addr + "/", nil, cause.HTTPProtocolError},
		{"100KiB header", "http://" + testutil.BigHeader(t, 100<<10).Addr + "/", nil, cause.HTTPResponseHeaderSectionSize},
		{"reset mid-body", "http://" + testutil.ResetMidBody(t).Addr + "/", nil, cause.HTTPResponseIncomplete},
		{"nxdomain", "http://missing.test:" + port + "/", nil, cause.DNSError},
		{"silent resolver", "http://silent.test:" + port + "/", func(o *Options) { o.Timeout = 300 * time.Millisecond }, cause.DNSTimeout},
		{"plain HTTP on an https URL", "https://" + good.Addr + "/", nil, cause.TLSProtocolError},
	}
	for _, kind := range []testutil.TLSKind{testutil.TLSExpired, testutil.TLSWrongName, testutil.TLSUnknownAuthority} {
		b := testutil.NewTLSBackend(t, kind, nil)
		cases = append(cases, tc{"certificate " + kind.String(), b.URL + "/", func(o *Options) { o.RootCAs = b.Roots }, cause.TLSCertificateError})
	}
	mtls := testutil.TLSRequireClientCert(t)
	cases = append(cases, tc{"client certificate required", mtls.URL + "/", func(o *Options) { o.RootCAs = mtls.Roots }, cause.TLSAlertReceived})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Resolver: dns.Resolver(), Timeout: 3 * time.Second}
			if c.opts != nil {
				c.opts(&o)
			}
			r := Probe(context.Background(), c.url, o)
			if r.OK || r.Cause != c.want {
				t.Fatalf("cause = %v (ok %v, error %q), want %v", r.Cause, r.OK, r.Error, c.want)
			}
			if r.Explain == "" || r.Advice == "" {
				t.Errorf("no explanation or advice: %+v", r)
			}
		})
	}
}

func TestProbeConnectTimeout(t *testing.T) {
	addr := testutil.NoAccept(t) // skips where a never-accepting address cannot be made
	r := Probe(context.Background(), "http://"+addr+"/", Options{Timeout: 300 * time.Millisecond})
	if r.OK || r.Cause != cause.ConnectionTimeout {
		t.Fatalf("cause = %v (error %q), want connection_timeout", r.Cause, r.Error)
	}
}

func TestProbeSuccessAndTimings(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, "hello")
	}))
	r := Probe(context.Background(), b.URL+"/x", Options{})
	if !r.OK || r.Status != 200 || r.BodyBytes != 5 || r.Cause != cause.None {
		t.Fatalf("result %+v", r)
	}
	if r.Timings.Connect <= 0 || r.Timings.FirstByte < 20*time.Millisecond || r.Timings.Total < r.Timings.FirstByte {
		t.Errorf("timings %+v", r.Timings)
	}
}

func TestProbeConnectToKeepsHost(t *testing.T) {
	var host string
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host = r.Host }))
	r := Probe(context.Background(), "http://api.example.com/users", Options{ConnectTo: b.Addr})
	if !r.OK || host != "api.example.com" {
		t.Errorf("ok %v, backend saw Host %q, want api.example.com", r.OK, host)
	}
}

func TestProbeReadsProxyStatus(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Proxy-Status", `envoy; error=connection_timeout; next-hop="10.0.0.7:8080"`)
		w.Header().Add("Proxy-Status", `cdn; received-status=504`)
		w.WriteHeader(504)
	}))
	r := Probe(context.Background(), b.URL, Options{})
	if r.OK || r.Cause != cause.ConnectionTimeout || r.ReportedBy != "envoy" || len(r.Proxies) != 2 {
		t.Fatalf("result %+v", r)
	}
	if !strings.Contains(r.Explain, "10.0.0.7:8080") {
		t.Errorf("explanation does not name the next hop: %q", r.Explain)
	}
	if r.Proxies[1].ReceivedStatus != 504 {
		t.Errorf("second member: %+v", r.Proxies[1])
	}
}

func TestParseProxyStatus(t *testing.T) {
	got := ParseProxyStatus([]string{`a; error=dns_error; details="x, \"y\"; z", b;received-status=503`, `"quoted proxy"`})
	want := []ProxyStatus{
		{Proxy: "a", Error: "dns_error", Details: `x, "y"; z`},
		{Proxy: "b", ReceivedStatus: 503},
		{Proxy: "quoted proxy"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ParseProxyStatus = %+v, want %+v", got, want)
	}
}

func TestRepeatCountsIntermittentFailures(t *testing.T) {
	var n atomic.Int64
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.WriteHeader(502)
		}
	}))
	var progress int
	s := Repeat(context.Background(), b.URL, Options{}, RepeatOptions{Count: 30, Progress: func(Summary) { progress++ }})
	if s.Requests != 30 || s.ByStatus["200"] != 20 || s.ByStatus["502"] != 10 || s.Failed != 10 {
		t.Errorf("summary %+v, want 30 probes: 20 of 200, 10 of 502", s)
	}
	if s.ByCause["upstream_status"] != 10 || progress != 30 || s.Example == nil || s.Example.Status != 502 {
		t.Errorf("by cause %v, progress calls %d, example %v", s.ByCause, progress, s.Example)
	}
	if s.P50 <= 0 || s.P99 < s.P50 {
		t.Errorf("percentiles p50 %v p99 %v", s.P50, s.P99)
	}
}

func TestRepeatDurationAndRate(t *testing.T) {
	b := testutil.Backend(t, nil)
	start := time.Now()
	s := Repeat(context.Background(), b.URL, Options{}, RepeatOptions{Duration: 500 * time.Millisecond, Rate: 20})
	if d := time.Since(start); d < 450*time.Millisecond || d > 2*time.Second {
		t.Errorf("ran %v, want about 500ms", d)
	}
	if s.Requests < 8 || s.Requests > 12 {
		t.Errorf("%d probes in 500ms at 20/s, want about 10", s.Requests)
	}
}

func TestCheckConfigOneServerDown(t *testing.T) {
	up := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			w.WriteHeader(404)
		}
	}))
	dead := testutil.DeadAddr(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`routes:
  - match: {path_prefix: /}
    upstream: api
upstreams:
  api:
    servers:
      - {url: %q}
      - {url: "http://%s"}
    health: {path: /health}
`, up.URL, dead)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := CheckConfig(context.Background(), cfg, Options{Timeout: 2 * time.Second})
	if len(checks) != 2 {
		t.Fatalf("%d checks", len(checks))
	}
	if !checks[0].OK || checks[0].Status != 200 || checks[0].Path != "/health" {
		t.Errorf("live server: %+v", checks[0])
	}
	if checks[1].OK || checks[1].Cause != cause.ConnectionRefused {
		t.Errorf("dead server: %+v", checks[1])
	}
	var b strings.Builder
	WriteChecks(&b, checks)
	for _, want := range []string{"POOL", "api", "/health", "connection_refused", "ok",
		"nothing listens on " + dead + "\n  next: Nothing listens on"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
