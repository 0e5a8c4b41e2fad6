package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rstServer answers every request with 200 "ok" (keep-alive) and records the
// bodies it received; the first connection is reset right after its first
// response, without Connection: close (an upstream that crashed or hit its
// per-connection request limit).
type rstServer struct {
	ln     net.Listener
	mu     sync.Mutex
	bodies []string
	conns  int
}

func newRSTServer(t *testing.T) *rstServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rstServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			first := s.conns == 1
			s.mu.Unlock()
			go s.serve(c.(*net.TCPConn), first)
		}
	}()
	return s
}

func (s *rstServer) serve(c *net.TCPConn, resetAfterFirst bool) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, req.Method+" "+string(b))
		s.mu.Unlock()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if resetAfterFirst {
			c.SetLinger(0)
			return
		}
	}
}

// slowClock makes pooled connections look idle for well under a millisecond
// (a busy pool), so that the peek at reuse is skipped, as in production.
func slowClock() func() time.Time {
	start := time.Now()
	return func() time.Time { return start.Add(time.Since(start) / 1000) }
}

type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestStaleConnectionRetryStreamedBody(t *testing.T) {
	up := newRSTServer(t)
	e := newEnv(t, poolConfig("retry: {body_buffer: 1KiB}", "http://"+up.ln.Addr().String()), func(o *Options) {
		o.Transports = &Transports{Now: slowClock()}
	})
	wantStatus(t, e.do("GET", "/", ""), 200)
	time.Sleep(50 * time.Millisecond) // the RST has arrived; the connection sits in the pool

	body := strings.Repeat("a", 4096)
	req, _ := http.NewRequest("POST", e.URL+"/", chunked{strings.NewReader(body)})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	up.mu.Lock()
	defer up.mu.Unlock()
	t.Logf("client status %d; upstream saw %d requests", resp.StatusCode, len(up.bodies))
	for i, b := range up.bodies {
		t.Logf("  %d: %.20q (len %d)", i, b, len(b))
	}
	for _, l := range e.accessLines() {
		t.Logf("%v", l)
	}
	last := up.bodies[len(up.bodies)-1]
	if last != "POST "+body {
		t.Errorf("upstream received a POST with a %d-byte body, client sent %d bytes; client got %d", len(last)-5, len(body), resp.StatusCode)
	}
}

func TestStaleConnectionRetryRewindsBufferedBody(t *testing.T) {
	up := newRSTServer(t)
	e := newEnv(t, poolConfig("retry: {tries: 1}", "http://"+up.ln.Addr().String()), func(o *Options) {
		o.Transports = &Transports{Now: slowClock()}
	})
	wantStatus(t, e.do("GET", "/", ""), 200)
	time.Sleep(50 * time.Millisecond)
	r := e.do("POST", "/", "hello")
	t.Logf("status %d cause %q body %q", r.status, r.proxyCause(), r.body)
	for _, l := range e.accessLines() {
		t.Logf("%v", l)
	}
	if r.status != 200 {
		t.Errorf("a POST whose pooled connection was reset before any byte was written got %d (%s), want 200 after a transparent retry", r.status, r.proxyCause())
	}
}
