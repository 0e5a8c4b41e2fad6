package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/upstream"
)

// strayBackend is an upstream that, for paths starting with /evil, writes
// one unsolicited extra response after the correct one: a buggy or
// compromised server that desynchronises keep-alive connections. Every
// response echoes the X-Test-Id of the request it answers, so a client can
// tell whether it got its own response. write decides how the correct
// response and the stray one reach the wire.
type strayBackend struct {
	addr  string
	conns atomic.Int64
}

// strayConn is a backend connection, with a way to put several writes (over
// TLS: several records) into one packet.
type strayConn struct {
	net.Conn
	raw    net.Conn // below TLS, or Conn itself
	corked bool
	held   []byte
}

// together writes parts in one write to the socket: one TCP segment on
// loopback, each part still its own TLS record.
func (c *strayConn) together(parts ...[]byte) {
	c.corked = true
	for _, p := range parts {
		c.Conn.Write(p)
	}
	c.corked = false
	c.raw.Write(c.held)
	c.held = c.held[:0]
}

// corkable holds writes back while its strayConn is corked.
type corkable struct {
	net.Conn
	sc *strayConn
}

func (c *corkable) Write(p []byte) (int, error) {
	if c.sc.corked {
		c.sc.held = append(c.sc.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func startStrayBackend(t *testing.T, tlsConf *tls.Config, write func(c *strayConn, good, stray []byte)) *strayBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &strayBackend{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			sc := &strayConn{raw: raw}
			sc.Conn = &corkable{Conn: raw, sc: sc}
			if tlsConf != nil {
				sc.Conn = tls.Server(sc.Conn, tlsConf)
			}
			c := net.Conn(sc)
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					c.Close()
				}()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					id := req.Header.Get("X-Test-Id")
					good := echoResponse(id)
					if strings.HasPrefix(req.URL.Path, "/evil") {
						write(sc, good, echoResponse("stray-"+id))
					} else if _, err := c.Write(good); err != nil {
						return
					}
				}
			}()
		}
	}()
	return b
}

func echoResponse(id string) []byte {
	body := "id=" + id
	return []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
}

// The ways a stray response reaches the wire.
var (
	strayInSameWrite = func(c *strayConn, good, stray []byte) {
		c.together(good, stray)
	}
	// The stray response's first bytes ride with the correct one, the rest
	// follows in later packets.
	straySplit = func(c *strayConn, good, stray []byte) {
		c.together(good, stray[:7])
		time.Sleep(2 * time.Millisecond)
		c.Write(stray[7:20])
		time.Sleep(time.Millisecond)
		c.Write(stray[20:])
	}
	// The stray response comes on its own, later, in two packets.
	strayDelayed = func(c *strayConn, good, stray []byte) {
		c.Write(good)
		time.Sleep(2 * time.Millisecond)
		c.Write(stray[:10])
		time.Sleep(time.Millisecond)
		c.Write(stray[10:])
	}
)

// getID sends a request with id through the proxy and returns the body.
func getID(c *http.Client, url, path, id string) (string, error) {
	req, _ := http.NewRequest("GET", url+path, nil)
	req.Header.Set("X-Test-Id", id)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestStrayResponseNeverReachesAnotherClient is the attack: 16 clients ×
// 150 requests, half of them to paths where the upstream writes an extra
// response. No client may ever receive a response to another request.
func TestStrayResponseNeverReachesAnotherClient(t *testing.T) {
	modes := []struct {
		name  string
		write func(*strayConn, []byte, []byte)
		// maxWrong bounds responses to the wrong request. Bytes that arrive
		// after the next request was written cannot be told from its
		// response by any HTTP/1.1 client; every such case is itself caught
		// (the real response follows the stray one), and from then on the
		// server's connections are not reused, so at most one per client
		// connection in flight can be hit, and only before the first catch.
		maxWrong int
	}{
		{"same write", strayInSameWrite, 0},
		{"split across packets", straySplit, 0},
		{"delayed", strayDelayed, 16},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			b := startStrayBackend(t, nil, m.write)
			e := newEnv(t, poolConfig("retry: {tries: 1}", "http://"+b.addr))
			const clients, each = 16, 150
			var wrong, failed, ok atomic.Int64
			var wg sync.WaitGroup
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
					defer hc.CloseIdleConnections()
					for i := 0; i < each; i++ {
						id := fmt.Sprintf("c%d-r%d", c, i)
						path := "/ok"
						if i%2 == 1 {
							path = "/evil"
						}
						body, err := getID(hc, e.URL, path, id)
						switch {
						case err != nil:
							failed.Add(1)
						case body != "id="+id:
							if wrong.Add(1) <= 3 {
								t.Logf("request %s got %q", id, body)
							}
						default:
							ok.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			st := e.h.Pools()[0].Servers[0].State
			t.Logf("%d right, %d wrong, %d failed; %d upstream connections; %d desyncs caught",
				ok.Load(), wrong.Load(), failed.Load(), b.conns.Load(), st.DesyncCount())
			if n := wrong.Load(); n > int64(m.maxWrong) {
				t.Errorf("%d responses went to the wrong request, want at most %d", n, m.maxWrong)
			}
			if st.DesyncCount() == 0 {
				t.Error("no desynchronisation was caught")
			}
		})
	}
}

// TestStrayBytesFoundAtReuse: bytes that arrive while a connection idles in
// the pool are found before the next request is written, however short the
// idle time. The clock is frozen, so every reuse idles 0 s.
func TestStrayBytesFoundAtReuse(t *testing.T) {
	release, sent := make(chan struct{}), make(chan struct{})
	b := startStrayBackend(t, nil, func(c *strayConn, good, stray []byte) {
		c.Write(good)
		<-release
		c.Write(stray)
		close(sent)
	})
	frozen := time.Now()
	logs := new(testutil.LogBuffer)
	e := newEnv(t, poolConfig("", "http://"+b.addr), func(o *Options) {
		o.Transports.Now = func() time.Time { return frozen }
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	hc := &http.Client{Timeout: 5 * time.Second}
	if body, err := getID(hc, e.URL, "/evil", "first"); err != nil || body != "id=first" {
		t.Fatalf("first = %q, %v", body, err)
	}
	close(release)
	<-sent
	// Loopback hands the bytes over within the write; the margin is for a
	// busy machine.
	time.Sleep(20 * time.Millisecond)
	body, err := getID(hc, e.URL, "/ok", "second")
	if err != nil || body != "id=second" {
		t.Fatalf("second = %q, %v: the stray response reached the next request", body, err)
	}
	st := e.h.Pools()[0].Servers[0].State
	if st.DesyncCount() != 1 || b.conns.Load() != 2 {
		t.Errorf("desyncs = %d, upstream connections = %d; want 1 and 2", st.DesyncCount(), b.conns.Load())
	}
	if !strings.Contains(logs.String(), `"cause":"http_protocol_error"`) {
		t.Errorf("no http_protocol_error in the event log:\n%s", logs)
	}
}

// TestStrayBytesBufferedAfterResponse: bytes past the end of a response that
// are already in the read buffer close the connection, and the server is
// charged with a protocol error (two in a row eject it with max_fails 2),
// while a 408 sent on an idle connection is an ordinary close.
func TestStrayBytesBufferedAfterResponse(t *testing.T) {
	b := startStrayBackend(t, nil, strayInSameWrite)
	other := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "id="+r.Header.Get("X-Test-Id"))
	}))
	e := newEnv(t, "routes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    servers:\n"+
		"      - {url: \"http://"+b.addr+"\", max_fails: 2, fail_timeout: 10s}\n"+
		"      - {url: \""+other.URL+"\", max_fails: 2, fail_timeout: 10s}\n    balance: hash\n    hash: header:X-Pin\n")
	hc := &http.Client{Timeout: 5 * time.Second}
	// Find which id the hash sends to the stray backend.
	var evil string
	for i := 0; i < 64 && evil == ""; i++ {
		k := fmt.Sprint("k", i)
		if pickFor(e, k) == "http://"+b.addr {
			evil = k
		}
	}
	if evil == "" {
		t.Fatal("no hash key maps to the stray backend")
	}
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("GET", e.URL+"/evil", nil)
		req.Header.Set("X-Test-Id", fmt.Sprint("e", i))
		req.Header.Set("X-Pin", evil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != fmt.Sprint("id=e", i) {
			t.Fatalf("request %d got %q", i, body)
		}
	}
	if n := e.events.ejected("http://" + b.addr); n != 1 {
		t.Errorf("stray backend ejected %d times after two protocol errors, want 1", n)
	}
	if n := b.conns.Load(); n != 2 {
		t.Errorf("%d upstream connections for 2 requests, want 2 (an out-of-step connection is never reused)", n)
	}
}

// pickFor returns the server the hash policy picks for key.
func pickFor(e *env, key string) string {
	p := e.h.list[0]
	var tried upstream.Tried
	var cands [16]*upstream.Server
	s, _ := p.Pick(&tried, upstream.HashString(key), true, time.Now(), cands[:0])
	return s.Name
}

// TestIdle408IsNotADesync: a server that announces the close of an idle
// connection with "408 Request Timeout" (some do) is not blamed, and the
// next request goes out on a fresh connection.
func TestIdle408IsNotADesync(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				c.Write(echoResponse(req.Header.Get("X-Test-Id")))
				time.Sleep(50 * time.Millisecond)
				io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
				time.Sleep(2 * time.Second) // keeps the socket open: the 408 alone must retire it
			}()
		}
	}()
	e := newEnv(t, poolConfig("", "http://"+ln.Addr().String()))
	hc := &http.Client{Timeout: 5 * time.Second}
	for i, wait := range []time.Duration{0, 200 * time.Millisecond} {
		time.Sleep(wait)
		if body, err := getID(hc, e.URL, "/", fmt.Sprint(i)); err != nil || body != fmt.Sprint("id=", i) {
			t.Fatalf("request %d = %q, %v", i, body, err)
		}
	}
	st := e.h.Pools()[0].Servers[0].State
	if st.DesyncCount() != 0 || conns.Load() != 2 {
		t.Errorf("desyncs = %d, connections = %d; want 0 and 2", st.DesyncCount(), conns.Load())
	}
}

// loopbackCert returns httptest's certificate for 127.0.0.1, for a raw TLS
// listener, and the roots that trust it.
func loopbackCert() (*tls.Config, *x509.CertPool) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	defer ts.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	return &tls.Config{Certificates: ts.TLS.Certificates}, roots
}

// TestStrayResponseOverTLS: over TLS the stray response may sit whole in the
// TLS layer's buffers when the correct one ends, where neither the read
// buffer nor a peek at the socket can see it.
func TestStrayResponseOverTLS(t *testing.T) {
	serverConf, roots := loopbackCert()
	// Two TLS records in one packet: the TLS layer reads both from the
	// socket and hands out the first.
	b := startStrayBackend(t, serverConf, strayInSameWrite)
	e := newEnv(t, poolConfig("", "https://"+b.addr), func(o *Options) {
		o.Transports.TLSConfig = &tls.Config{RootCAs: roots}
	})
	hc := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 20; i++ {
		path := "/ok"
		if i%2 == 0 {
			path = "/evil"
		}
		id := fmt.Sprint(i)
		if body, err := getID(hc, e.URL, path, id); err != nil || body != "id="+id {
			t.Fatalf("request %d (%s) = %q, %v", i, path, body, err)
		}
	}
	if st := e.h.Pools()[0].Servers[0].State; st.DesyncCount() == 0 {
		t.Error("no desynchronisation was caught over TLS")
	}
}

// BenchmarkIdleProbe is the cost the peek adds to every reuse of a pooled
// connection.
func BenchmarkIdleProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var p idleProbe
	p.init(c)
	b.ReportAllocs()
	for b.Loop() {
		if st, _ := p.peek(); st != peekOpen {
			b.Fatal("connection not open")
		}
	}
}

// TestTLSCloseNotifyAfterResponse: an upstream that ends a TLS connection
// with close_notify right after a response (in the same packet) is not
// blamed, and the next request, a POST, does not go out on that connection
// (where it would fail after being written, and could not be retried).
func TestTLSCloseNotifyAfterResponse(t *testing.T) {
	serverConf, roots := loopbackCert()
	b := startStrayBackend(t, serverConf, func(c *strayConn, good, _ []byte) {
		c.corked = true
		c.Conn.Write(good)
		c.Conn.(*tls.Conn).CloseWrite()
		c.raw.SetWriteDeadline(time.Time{}) // CloseWrite ends writing on the socket
		c.corked = false
		c.raw.Write(c.held)
		c.held = c.held[:0]
	})
	e := newEnv(t, poolConfig("timeouts: {read: 2s}", "https://"+b.addr), func(o *Options) {
		o.Transports.TLSConfig = &tls.Config{RootCAs: roots}
	})
	for i, path := range []string{"/evil", "/ok"} {
		req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader("payload"))
		req.Header.Set("X-Test-Id", fmt.Sprint(i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != fmt.Sprint("id=", i) {
			t.Fatalf("POST %s: %d %q", path, resp.StatusCode, body)
		}
	}
	if st := e.h.Pools()[0].Servers[0].State; st.DesyncCount() != 0 || b.conns.Load() != 2 {
		t.Errorf("desyncs = %d, connections = %d; want 0 and 2", st.DesyncCount(), b.conns.Load())
	}
}
