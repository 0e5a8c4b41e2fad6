package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/holdfast/holdfast/internal/h1"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/upstream"
)

// env is a holdfast handler in front of test backends, served by a real
// loopback HTTP server, with its access log captured.
type env struct {
	t      *testing.T
	h      *Handler
	addr   string // the listener's host:port
	URL    string
	logBuf *testutil.LogBuffer
	events *recorder
}

// recorder is an Observer that counts attempts per server and ejections.
type recorder struct {
	mu        sync.Mutex
	attempts  map[string]int
	causes    map[cause.Cause]int
	ejections map[string]int
}

func (r *recorder) Attempt(pool, server string, c cause.Cause, status int, retry bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[server]++
	r.causes[c]++
}

func (r *recorder) Request(string, int, cause.Cause, int, time.Duration) {}

func (r *recorder) Ejected(pool, server string, d time.Duration, capped bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !capped {
		r.ejections[server]++
	}
}

func (r *recorder) attemptsTo(server string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[server]
}

func (r *recorder) ejected(server string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ejections[server]
}

// newEnv parses yaml (a complete configuration without listeners) and serves
// it. opts may adjust the handler's options (a resolver, TLS roots).
func newEnv(t *testing.T, yaml string, opts ...func(*Options)) *env {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	e := &env{t: t, logBuf: new(testutil.LogBuffer), events: &recorder{attempts: map[string]int{}, causes: map[cause.Cause]int{}, ejections: map[string]int{}}}
	o := Options{
		Transports: new(Transports),
		Registry:   new(upstream.Registry),
		AccessLog:  NewAccessLog(e.logBuf),
		Events:     e.events,
	}
	for _, f := range opts {
		f(&o)
	}
	h, err := New(cfg, o)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	e.h = h
	// The gateway's server for plain listeners, as in production.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{Handler: h, Reject: h.Reject, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
		o.Transports.CloseIdle()
	})
	e.addr = ln.Addr().String()
	e.URL = "http://" + e.addr
	return e
}

// pool returns a configuration with one route to one pool of the given
// server URLs, plus extra YAML lines inside the pool.
func poolConfig(extra string, urls ...string) string {
	var b strings.Builder
	b.WriteString("routes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    servers:\n")
	for _, u := range urls {
		fmt.Fprintf(&b, "      - {url: %q}\n", u)
	}
	for _, l := range strings.Split(strings.TrimSpace(extra), "\n") {
		if l != "" {
			b.WriteString("    " + l + "\n")
		}
	}
	return b.String()
}

type result struct {
	status int
	header http.Header
	body   string
	err    error
}

func (e *env) do(method, path string, body string, hdr ...string) result {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

// problem decodes a problem+json body.
func (r result) problem(t *testing.T) Problem {
	t.Helper()
	var p Problem
	if err := json.Unmarshal([]byte(r.body), &p); err != nil {
		t.Fatalf("body is not problem+json: %v: %q", err, r.body)
	}
	return p
}

// proxyCause returns the error= parameter of Proxy-Status.
func (r result) proxyCause() string {
	ps := r.header.Get("Proxy-Status")
	i := strings.Index(ps, "error=")
	if i < 0 {
		return ""
	}
	s := ps[i+len("error="):]
	if j := strings.IndexByte(s, ';'); j >= 0 {
		s = s[:j]
	}
	return strings.TrimSpace(s)
}

// accessLines decodes the access log.
func (e *env) accessLines() []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(e.logBuf.String()), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			e.t.Fatalf("access log line is not JSON: %v: %q", err, l)
		}
		out = append(out, m)
	}
	return out
}

func wantStatus(t *testing.T, r result, want int) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("request failed: %v", r.err)
	}
	if r.status != want {
		t.Fatalf("status = %d, want %d; headers %v; body %q", r.status, want, r.header, r.body)
	}
}

func benchHandler(b *testing.B, yaml string) *Handler {
	b.Helper()
	cfg, err := config.Parse([]byte(yaml), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	tr := new(Transports)
	// Metrics on, as in production.
	h, err := New(cfg, Options{Transports: tr, Metrics: metrics.New(metrics.Options{})})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(tr.CloseIdle)
	return h
}
