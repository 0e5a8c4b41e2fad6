package limits_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/client"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/gateway"
	"github.com/holdfast/holdfast/internal/probe"
	"github.com/holdfast/holdfast/internal/testutil"
)

// target is where a fault can be reached: a URL, and the CA that signed
// its certificate (nil when the fault needs none trusted).
type target struct {
	url   string
	roots *x509.CertPool
}

// timeouts of the faults that only a timer can reveal (a connect that
// never completes, a resolver that never answers, an upstream that never
// answers), short so that the suite does not wait out the defaults; every
// other fault gets the generous one and shows at once.
const (
	shortTimeout = 300 * time.Millisecond
	longTimeout  = 5 * time.Second
)

// TestToolsAgree sends each real failure, on loopback, through the
// gateway, the probe and the client package, and checks that the three
// name the same cause: they share one vocabulary (package cause) and one
// set of limits (this package), and this is what keeps the two in step.
// Each tool makes one attempt: the matrix is about how a failure is named,
// not how it is retried, which each tool's own tests cover.
func TestToolsAgree(t *testing.T) {
	dns := testutil.NewDNS(t, map[string][]string{"known.test": {"127.0.0.1"}})
	dns.Silence("silent.test")
	plain := func(addr string) func(*testing.T) target {
		return func(*testing.T) target { return target{url: "http://" + addr + "/"} }
	}
	tlsFault := func(b *testutil.TLSBackend) target { return target{url: b.URL + "/", roots: b.Roots} }

	faults := []struct {
		name  string
		want  cause.Cause
		slow  bool // shows only when a timeout fires
		start func(t *testing.T) target
	}{
		{"refused", cause.ConnectionRefused, false, func(t *testing.T) target { return plain(testutil.DeadAddr(t))(t) }},
		{"connect timeout", cause.ConnectionTimeout, true, func(t *testing.T) target { return plain(testutil.NoAccept(t))(t) }},
		{"hang", cause.HTTPResponseTimeout, true, func(t *testing.T) target { return plain(testutil.Hang(t).Addr)(t) }},
		{"reset after the request", cause.ConnectionTerminated, false, func(t *testing.T) target { return plain(testutil.ResetAfterRequest(t).Addr)(t) }},
		{"closed after the request", cause.ConnectionTerminated, false, func(t *testing.T) target { return plain(testutil.CloseAfterRequest(t).Addr)(t) }},
		{"garbage", cause.HTTPProtocolError, false, func(t *testing.T) target { return plain(testutil.Garbage(t).Addr)(t) }},
		{"100 KiB response header", cause.HTTPResponseHeaderSectionSize, false, func(t *testing.T) target { return plain(testutil.BigHeader(t, 100<<10).Addr)(t) }},
		{"reset mid-body", cause.HTTPResponseIncomplete, false, func(t *testing.T) target { return plain(testutil.ResetMidBody(t).Addr)(t) }},
		{"nxdomain", cause.DNSError, false, func(t *testing.T) target {
			return plain("missing.test:" + port(t, testutil.Backend(t, nil).Addr))(t)
		}},
		{"silent resolver", cause.DNSTimeout, true, func(t *testing.T) target {
			return plain("silent.test:" + port(t, testutil.Backend(t, nil).Addr))(t)
		}},
		{"plain HTTP on an https URL", cause.TLSProtocolError, false, func(t *testing.T) target {
			return target{url: "https://" + testutil.Backend(t, nil).Addr + "/"}
		}},
		{"certificate expired", cause.TLSCertificateError, false, func(t *testing.T) target {
			return tlsFault(testutil.NewTLSBackend(t, testutil.TLSExpired, nil))
		}},
		{"certificate for another name", cause.TLSCertificateError, false, func(t *testing.T) target {
			return tlsFault(testutil.NewTLSBackend(t, testutil.TLSWrongName, nil))
		}},
		{"certificate from an unknown authority", cause.TLSCertificateError, false, func(t *testing.T) target {
			return tlsFault(testutil.NewTLSBackend(t, testutil.TLSUnknownAuthority, nil))
		}},
		{"client certificate required", cause.TLSAlertReceived, false, func(t *testing.T) target {
			return tlsFault(testutil.TLSRequireClientCert(t))
		}},
	}

	var table strings.Builder
	fmt.Fprintf(&table, "\n%-38s %-34s %-34s %s\n", "fault", "gateway", "probe", "client")
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			tg := f.start(t)
			timeout := longTimeout
			if f.slow {
				timeout = shortTimeout
			}
			got := map[string]cause.Cause{
				"gateway": viaGateway(t, tg, dns.Resolver(), f.slow),
				"probe":   viaProbe(tg, dns.Resolver(), timeout),
				"client":  viaClient(t, tg, dns.Resolver(), timeout),
			}
			fmt.Fprintf(&table, "%-38s %-34s %-34s %s\n", f.name, got["gateway"], got["probe"], got["client"])
			for _, tool := range []string{"gateway", "probe", "client"} {
				if got[tool] != f.want {
					t.Errorf("%s: cause = %v, want %v", tool, got[tool], f.want)
				}
			}
		})
	}
	t.Log(table.String())
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// viaGateway runs a gateway in front of tg alone, sends it one GET and
// returns the cause it logged; when the gateway answered with an error of
// its own, the cause in its Proxy-Status must be the same.
func viaGateway(t *testing.T, tg target, resolver *net.Resolver, slow bool) cause.Cause {
	t.Helper()
	pool := "retry: {tries: 1}"
	if slow {
		pool += "\n    timeouts: {connect: 300ms, read: 300ms}"
	}
	yaml := fmt.Sprintf(`listen:
  - addr: "127.0.0.1:0"
routes:
  - match: {path_prefix: /}
    upstream: p
upstreams:
  p:
    %s
    servers:
      - {url: %q}
`, pool, strings.TrimSuffix(tg.url, "/"))
	cfg, err := config.Parse([]byte(yaml), "agree.yaml")
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	var access testutil.LogBuffer
	o := gateway.Options{Logger: slog.New(slog.DiscardHandler), AccessLog: &access, Resolver: resolver}
	if tg.roots != nil {
		o.UpstreamTLS = &tls.Config{RootCAs: tg.roots}
	}
	g, err := gateway.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})

	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + g.Addrs()[0].String() + "/")
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	io.Copy(io.Discard, resp.Body) // a stream the gateway aborts ends in an error here
	resp.Body.Close()

	logged := accessCause(t, &access)
	if resp.StatusCode >= 500 {
		ps := probe.ParseProxyStatus(resp.Header.Values("Proxy-Status"))
		if len(ps) != 1 || ps[0].Error != logged {
			t.Errorf("gateway: status %d with Proxy-Status %+v, but the access log says %q", resp.StatusCode, ps, logged)
		}
	}
	if logged == "" {
		return cause.None
	}
	c, ok := cause.Parse(logged)
	if !ok {
		t.Errorf("gateway: access log cause %q is no cause", logged)
	}
	return c
}

// accessCause waits for the access log line of the one request (written
// once the response is done, which the client may see first) and returns
// its cause.
func accessCause(t *testing.T, access *testutil.LogBuffer) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if line, _, ok := strings.Cut(access.String(), "\n"); ok {
			var rec struct {
				Cause string `json:"cause"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("access log line %q: %v", line, err)
			}
			return rec.Cause
		}
		if time.Now().After(deadline) {
			t.Fatal("no access log line")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// viaProbe probes tg once, as `holdfast probe` does.
func viaProbe(tg target, resolver *net.Resolver, timeout time.Duration) cause.Cause {
	r := probe.Probe(context.Background(), tg.url, probe.Options{Resolver: resolver, RootCAs: tg.roots, Timeout: timeout})
	return r.Cause
}

// viaClient sends one GET to tg through the client package and returns
// the cause of its *client.Error or, for a response, of the error reading
// its body (None if the body reads clean). The client keeps its default
// base transport, unless the fault needs the test's resolver or CA: then
// the base is net/http's default transport with those put in (which, past
// the header limit set here, is what the client's default base starts
// from).
func viaClient(t *testing.T, tg target, resolver *net.Resolver, timeout time.Duration) cause.Cause {
	t.Helper()
	opts := []client.Option{client.WithMaxAttempts(1), client.WithTimeout(timeout)}
	if needsBase(tg) {
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.DialContext = (&net.Dialer{Resolver: resolver}).DialContext
		base.TLSClientConfig = &tls.Config{RootCAs: tg.roots}
		base.MaxResponseHeaderBytes = client.DefaultMaxResponseHeaderBytes
		// HTTP/1.1, as the gateway and the probe speak to upstreams. Over
		// HTTP/2, Go's client may report a refused client certificate as
		// "client conn could not be established", without the alert.
		base.ForceAttemptHTTP2 = false
		defer base.CloseIdleConnections()
		opts = append(opts, client.WithBase(base))
	}
	hc := client.New(opts...)
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(tg.url)
	if err != nil {
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Fatalf("client: %v is no *client.Error", err)
		}
		return ce.Cause
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return cause.Of(err)
}

func needsBase(tg target) bool {
	if tg.roots != nil {
		return true
	}
	host := strings.TrimPrefix(strings.TrimPrefix(tg.url, "http://"), "https://")
	host, _, _ = strings.Cut(host, "/")
	h, _, err := net.SplitHostPort(host)
	return err != nil || net.ParseIP(h) == nil
}
