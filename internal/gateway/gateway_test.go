package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/testutil"
)

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

// start runs a gateway for yaml and returns it with its first address.
func start(t *testing.T, yaml string) (*Gateway, string) {
	t.Helper()
	return startOpts(t, yaml, Options{Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard})
}

// startOpts runs a gateway for yaml with o, listening, shut down at cleanup.
func startOpts(t *testing.T, yaml string, o Options) (*Gateway, string) {
	t.Helper()
	g, err := New(parse(t, yaml), o)
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
	return g, g.Addrs()[0].String()
}

func oneRoute(listen, extra string, urls ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen:\n  - addr: %q\n%sroutes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    servers:\n", listen, extra)
	for _, u := range urls {
		fmt.Fprintf(&b, "      - {url: %q}\n", u)
	}
	return b.String()
}

func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, req)
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestMalformedClientRequests(t *testing.T) {
	b := testutil.Backend(t, nil)
	_, addr := start(t, oneRoute("127.0.0.1:0", "client: {max_header_bytes: 8KiB, read_header_timeout: 300ms}\n", b.URL))
	cases := []struct {
		name, req, want string
	}{
		{"garbage request line", "NOT HTTP AT ALL\r\n\r\n", "400"},
		{"header over the limit", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", "431"},
		{"Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n", "400"},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400"},
		{"bad chunking", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "400"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := rawRequest(t, addr, tc.req)
			if !strings.HasPrefix(got, "HTTP/1.1 "+tc.want) {
				t.Errorf("response = %.80q, want status %s", got, tc.want)
			}
		})
	}
	if n := b.Requests.Load(); n != 0 {
		t.Errorf("backend received %d malformed requests", n)
	}
	t.Run("slow header is cut by read_header_timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
		c.SetDeadline(time.Now().Add(3 * time.Second))
		start := time.Now()
		io.ReadAll(c)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("connection held %v with an unfinished header", d)
		}
	})
}

// writeCert writes a self-signed certificate for 127.0.0.1 and returns the
// files and a pool that trusts it.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "holdfast test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

func TestTLSListenerSpeaksHTTP2(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Via")+" "+r.Header.Get("X-Forwarded-Proto"))
	}))
	cert, key, pool := writeCert(t)
	yaml := fmt.Sprintf("listen:\n  - addr: \"127.0.0.1:0\"\n    tls: {cert: %q, key: %q}\nroutes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    servers:\n      - {url: %q}\n", cert, key, b.URL)
	_, addr := start(t, yaml)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 {
		t.Errorf("client spoke %s, want HTTP/2", resp.Proto)
	}
	if string(body) != "2 holdfast https" {
		t.Errorf("upstream saw Via/X-Forwarded-Proto %q", body)
	}
}

// load sends requests from n goroutines until stop is closed, counting
// statuses; every request carries a unique X-Test-Id.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	wg         sync.WaitGroup
}

func runLoad(url string, n int, method string, stop <-chan struct{}, prefix string) *load {
	l := &load{}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var seq atomic.Int64
	for i := 0; i < n; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s-%d", prefix, seq.Add(1))
				req, _ := http.NewRequest(method, url, strings.NewReader("body-"+id))
				req.Header.Set(testutil.TestIDHeader, id)
				resp, err := client.Do(req)
				if err != nil {
					l.fail(id + ": " + err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.fail(fmt.Sprintf("%s: status %d %s", id, resp.StatusCode, resp.Header.Get("Proxy-Status")))
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *load) fail(s string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, s)
	}
	l.mu.Unlock()
}

func TestReloadUnderLoad(t *testing.T) {
	a := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") }))
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") }))
	g, addr := start(t, oneRoute("127.0.0.1:0", "", a.URL))
	listen := "127.0.0.1:0" // the same listener key: the socket is kept

	stop := make(chan struct{})
	gets := runLoad("http://"+addr+"/", 4, "GET", stop, "get")
	posts := runLoad("http://"+addr+"/", 2, "POST", stop, "post")
	time.Sleep(200 * time.Millisecond)

	for i := 0; i < 10; i++ {
		url := b.URL
		if i%2 == 1 {
			url = a.URL
		}
		if err := g.Reload(parse(t, oneRoute(listen, "", url))); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	// A configuration that cannot be built is refused; the old one serves on.
	bad := parse(t, oneRoute(listen, "", b.URL))
	bad.Routes[0].Upstream = "nope"
	if err := g.Reload(bad); err == nil {
		t.Error("reload of a broken configuration accepted")
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	gets.wg.Wait()
	posts.wg.Wait()

	if gets.failed.Load()+posts.failed.Load() != 0 {
		t.Errorf("errors during reloads: GET %d, POST %d; first: %v %v", gets.failed.Load(), posts.failed.Load(), gets.errs, posts.errs)
	}
	if a.Requests.Load() == 0 || b.Requests.Load() == 0 {
		t.Errorf("a got %d, b got %d: reloads did not switch pools", a.Requests.Load(), b.Requests.Load())
	}
	t.Logf("during 10 reloads: %d GET and %d POST answered, 0 errors", gets.ok.Load(), posts.ok.Load())
}

func TestHealthSurvivesReload(t *testing.T) {
	good := testutil.Backend(t, nil)
	dead := "http://" + testutil.DeadAddr(t)
	g, addr := start(t, oneRoute("127.0.0.1:0", "", dead, good.URL))
	for i := 0; i < 4; i++ {
		resp, err := http.Get("http://" + addr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if err := g.Reload(parse(t, oneRoute("127.0.0.1:0", "", dead, good.URL))); err != nil {
		t.Fatal(err)
	}
	for _, p := range g.Handler().Pools() {
		for _, s := range p.Servers {
			if s.URL.String() == dead && !s.State.Ejected(time.Now()) {
				t.Error("the dead server's ejection did not survive the reload")
			}
		}
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	slow := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "done")
	}))
	g, err := New(parse(t, oneRoute("127.0.0.1:0", "", slow.URL)), Options{Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := g.Addrs()[0].String()

	const n = 20
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				failed.Add(1)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(b) == "done" {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		}()
	}
	// Wait until all are in flight at the backend.
	deadline := time.Now().Add(3 * time.Second)
	for slow.Requests.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	wg.Wait()
	if ok.Load() != n || failed.Load() != 0 {
		t.Errorf("in flight at shutdown: %d completed, %d failed; want %d and 0", ok.Load(), failed.Load(), n)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting connections after Shutdown")
	}
}

func TestBackendKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a load for two seconds")
	}
	var victim *testutil.Counting
	backends := make([]*testutil.Counting, 3)
	var kill func()
	for i := range backends {
		if i == 0 {
			victim, kill = testutil.KillableBackend(t, nil)
			backends[i] = victim
			continue
		}
		backends[i] = testutil.Backend(t, nil)
	}
	_, addr := start(t, oneRoute("127.0.0.1:0", "", backends[0].URL, backends[1].URL, backends[2].URL))

	stop := make(chan struct{})
	before := runLoad("http://"+addr+"/", 4, "GET", stop, "warm")
	time.Sleep(300 * time.Millisecond)
	close(stop)
	before.wg.Wait()

	stop = make(chan struct{})
	gets := runLoad("http://"+addr+"/", 4, "GET", stop, "get")
	posts := runLoad("http://"+addr+"/", 2, "POST", stop, "post")
	time.Sleep(300 * time.Millisecond)
	kill()
	// Handlers that read their request just before the kill may still
	// count it: sample once they have.
	time.Sleep(50 * time.Millisecond)
	killedAt := victim.Requests.Load()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	gets.wg.Wait()
	posts.wg.Wait()

	if gets.failed.Load() != 0 {
		t.Errorf("GET errors with a backend killed: %d; first: %v", gets.failed.Load(), gets.errs)
	}
	dups := 0
	for i := int64(1); i <= posts.ok.Load()+posts.failed.Load()+10; i++ {
		id := fmt.Sprintf("post-%d", i)
		n := 0
		for _, b := range backends {
			n += b.Seen(id)
		}
		if n > 1 {
			dups++
		}
	}
	if dups != 0 {
		t.Errorf("%d POSTs delivered more than once", dups)
	}
	if victim.Requests.Load() != killedAt {
		t.Errorf("killed backend received requests after it died")
	}
	t.Logf("after the kill: %d GET ok, 0 failed; %d POST ok, %d POST failed (in flight at the kill), %d duplicates",
		gets.ok.Load(), posts.ok.Load(), posts.failed.Load(), dups)
}

func TestReloadSwitchesAddressBetweenPlainAndTLS(t *testing.T) {
	b := testutil.Backend(t, nil)
	addr := testutil.FreeAddr(t) // kept across the reloads
	cert, key, pool := writeCert(t)
	plain := oneRoute(addr, "", b.URL)
	tlsCfg := fmt.Sprintf("listen:\n  - addr: %q\n    tls: {cert: %q, key: %q}\nroutes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    servers:\n      - {url: %q}\n", addr, cert, key, b.URL)
	g, _ := start(t, plain)
	httpsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer httpsClient.CloseIdleConnections()

	get := func(c *http.Client, url string) (int, error) {
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(http.DefaultClient, "http://"+addr+"/"); err != nil || code != 200 {
		t.Fatalf("plain before: %d %v", code, err)
	}
	if err := g.Reload(parse(t, tlsCfg)); err != nil {
		t.Fatalf("reload to TLS on the same address: %v", err)
	}
	if code, err := get(httpsClient, "https://"+addr+"/"); err != nil || code != 200 {
		t.Fatalf("https after the switch: %d %v", code, err)
	}
	if err := g.Reload(parse(t, plain)); err != nil {
		t.Fatalf("reload back to plain: %v", err)
	}
	if code, err := get(http.DefaultClient, "http://"+addr+"/"); err != nil || code != 200 {
		t.Fatalf("plain after switching back: %d %v", code, err)
	}
	select {
	case err := <-g.Errors():
		t.Errorf("a retired listener was reported as failed: %v", err)
	default:
	}
}

// TestReloadClosesRetiredListenerAfterDrain: a listener a reload removes
// drains like a shutdown: a request still in flight when
// shutdown.drain_timeout has passed has its connection closed, rather than
// holding it (and the retired server) open until the upstream answers.
func TestReloadClosesRetiredListenerAfterDrain(t *testing.T) {
	hang := testutil.Hang(t) // reads the request, never answers
	cfg := func(addr string) string {
		return oneRoute(addr, "shutdown: {drain_timeout: 300ms}\n", "http://"+hang.Addr)
	}
	first, second := testutil.FreeAddr(t), testutil.FreeAddr(t)
	g, _ := start(t, cfg(first))
	c, err := net.Dial("tcp", first)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for hang.Requests.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // until it is in flight, upstream
	}
	if err := g.Reload(parse(t, cfg(second))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.SetReadDeadline(start.Add(5 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the retired listener's connection was still open %v after the reload (drain timeout 300ms)", time.Since(start))
	}
	t.Logf("closed %v after the reload (%v)", time.Since(start).Round(time.Millisecond), err)
}
