package gateway

import (
	"bufio"
	"bytes"
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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// slowLog is a log sink safe for concurrent use, for the access and event
// logs of a gateway under test.
type slowLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *slowLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *slowLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *slowLog) lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, s := range strings.Split(l.b.String(), "\n") {
		m := map[string]any{}
		if json.Unmarshal([]byte(s), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// waitLine waits until d for a line whose key has the value want.
func (l *slowLog) waitLine(key, want string, d time.Duration) map[string]any {
	end := time.Now().Add(d)
	for {
		for _, m := range l.lines() {
			if fmt.Sprint(m[key]) == want {
				return m
			}
		}
		if time.Now().After(end) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startLogged is start with the access log (and, when events is set, the
// event log) captured.
func startLogged(t *testing.T, yaml string, events io.Writer) (*Gateway, string, *slowLog) {
	t.Helper()
	access := new(slowLog)
	logger := slog.New(slog.DiscardHandler)
	if events != nil {
		logger = slog.New(slog.NewJSONHandler(events, nil))
	}
	g, addr := startOpts(t, yaml, Options{Logger: logger, AccessLog: access})
	return g, addr, access
}

// slowBackend reports how its requests ended, by their query string (one
// per test case): /upload reads the body and reports the error that ended
// it (nil at its end), /big sends 64 MiB and reports the write error that
// ended it; /pause and /slowread are an upstream slow to send and to read;
// anything else is a 200 "ok".
type slowBackend struct {
	*testutil.Counting
	mu   sync.Mutex
	ends map[string]chan error
}

// end returns the channel that receives how the request with query ended.
func (b *slowBackend) end(query string) chan error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.ends[query]
	if !ok {
		ch = make(chan error, 1)
		b.ends[query] = ch
	}
	return ch
}

func newSlowBackend(t *testing.T) *slowBackend {
	b := &slowBackend{ends: map[string]chan error{}}
	b.Counting = testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			_, err := io.Copy(io.Discard, r.Body)
			b.end(r.URL.RawQuery) <- err
			io.WriteString(w, "ok")
		case "/pause": // a slow upstream, not a slow client
			io.WriteString(w, "first ")
			http.NewResponseController(w).Flush()
			time.Sleep(slowUpstream)
			io.WriteString(w, "second")
		case "/slowread": // reads the body late
			time.Sleep(slowUpstream)
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				w.WriteHeader(400)
			}
			fmt.Fprint(w, n)
		case "/big":
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			w.Header().Set("Content-Length", strconv.Itoa(2048*len(chunk)))
			var err error
			for i := 0; i < 2048 && err == nil; i++ {
				_, err = w.Write(chunk)
			}
			b.end(r.URL.RawQuery) <- err
		default:
			io.WriteString(w, "ok")
		}
	}))
	return b
}

// slowUpstream is how long /pause and /slowread keep the gateway waiting.
const slowUpstream = 1500 * time.Millisecond

// slowConfig is one route to a pool of server a (ejected at its first
// failure) with b as its backup: b answering proves a was blamed.
func slowConfig(listen, client, a, b string) string {
	return fmt.Sprintf("listen:\n%sclient: {%s}\nroutes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    retry: {body_buffer: 4KiB}\n    servers:\n      - {url: %q, max_fails: 1}\n      - {url: %q, backup: true}\n",
		listen, client, a, b)
}

func plainListen() string { return "  - addr: \"127.0.0.1:0\"\n" }

func tlsListen(t *testing.T) (string, *x509.CertPool) {
	cert, key, pool := writeCert(t)
	return fmt.Sprintf("  - addr: \"127.0.0.1:0\"\n    tls: {cert: %q, key: %q}\n", cert, key), pool
}

// wantServed checks that another client is served normally, meanwhile or
// afterwards, and by server a: it was not ejected.
func wantServed(t *testing.T, c *http.Client, url string, a *slowBackend, backup *testutil.Counting) {
	t.Helper()
	before := a.Requests.Load()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("another client not served: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("another client got %d %q", resp.StatusCode, body)
	}
	if a.Requests.Load() == before || backup.Requests.Load() != 0 {
		t.Fatalf("the request went to the backup (%d requests): the slow client's server was blamed", backup.Requests.Load())
	}
}

func wantNotEjected(t *testing.T, g *Gateway) {
	t.Helper()
	for _, p := range g.Handler().Pools() {
		for _, s := range p.Servers {
			if s.State.Ejected(time.Now()) {
				t.Errorf("server %s ejected for a slow client", s.Name)
			}
		}
	}
}

// wantTimeoutLogged checks the access-log line of the request to path.
func wantTimeoutLogged(t *testing.T, access *slowLog, path string, d time.Duration) {
	t.Helper()
	m := access.waitLine("path", path, d)
	if m == nil {
		t.Fatalf("no access-log line for %s", path)
	}
	if m["cause"] != "client_timeout" {
		t.Errorf("access log: cause %v, want client_timeout: %v", m["cause"], m)
	}
	if ledger, _ := m["ledger"].([]any); len(ledger) > 1 {
		t.Errorf("a slow client's request was retried: %v", ledger)
	}
}

// trickle sends one byte every interval until the connection fails or stop
// is closed.
func trickle(c net.Conn, interval time.Duration, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
		if _, err := c.Write([]byte("a")); err != nil {
			return
		}
	}
}

func TestBodyTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	a, backup := newSlowBackend(t), testutil.Backend(t, nil)
	g, addr, access := startLogged(t, slowConfig(plainListen(), "body_timeout: 300ms", a.URL, backup.URL), nil)
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	for _, tc := range []struct {
		name          string
		length, first int
		streamed      bool
	}{
		{"buffered", 100, 1, false},
		// Over retry.body_buffer: streamed, and the upstream holds a
		// connection for as long as the body lasts.
		{"streamed", 1 << 20, 64 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.Requests.Load()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			stop := make(chan struct{})
			defer close(stop)
			path := "/upload?" + tc.name
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", path, tc.length)
			if _, err := c.Write(bytes.Repeat([]byte("a"), tc.first)); err != nil {
				t.Fatal(err)
			}
			stalled := time.Now()
			go trickle(c, 2*time.Second, stop)

			wantServed(t, client, "http://"+addr+"/ok", a, backup)

			c.SetReadDeadline(stalled.Add(timeout + time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer within %v of the body stalling: %v", timeout+time.Second, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Logf("answered %d after %v: %s", resp.StatusCode, time.Since(stalled).Round(time.Millisecond), resp.Header.Get("Proxy-Status"))
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("status %d, want 408", resp.StatusCode)
			}
			if ps := resp.Header.Get("Proxy-Status"); !strings.Contains(ps, "error=client_timeout") {
				t.Errorf("Proxy-Status %q, want error=client_timeout", ps)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" || !bytes.Contains(body, []byte(`"cause":"client_timeout"`)) {
				t.Errorf("body %s %q, want a problem+json document", ct, body)
			}

			if tc.streamed {
				select {
				case err := <-a.end(tc.name):
					if err == nil {
						t.Error("the backend read a complete body")
					}
					t.Logf("backend's request aborted %v after the stall: %v", time.Since(stalled).Round(time.Millisecond), err)
				case <-time.After(time.Until(stalled.Add(timeout + time.Second))):
					t.Error("the backend's request was not aborted: the slow body holds an upstream connection")
				}
			} else if a.Requests.Load() != before+1 { // the /ok above
				t.Errorf("a body that never arrived was sent upstream")
			}
			wantTimeoutLogged(t, access, "/upload", time.Second)
			wantServed(t, client, "http://"+addr+"/ok", a, backup)
			wantNotEjected(t, g)
			access.mu.Lock()
			access.b.Reset()
			access.mu.Unlock()
		})
	}

	t.Run("a body faster than the timeout is not cut, and the connection is kept", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
		for i := 0; i < 8; i++ { // 800ms in all, 100ms between bytes
			time.Sleep(timeout / 3)
			c.Write([]byte("a"))
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("trickle within the timeout: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		// No deadline is left behind on the kept-alive connection.
		time.Sleep(2 * timeout)
		io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err = http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("second request on the kept-alive connection: %v %v", resp, err)
		}
	})

	t.Run("HTTP/2", func(t *testing.T) {
		listen, pool := tlsListen(t)
		g2, addr2, access2 := startLogged(t, slowConfig(listen, "body_timeout: 300ms", a.URL, backup.URL), nil)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		h2 := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		defer tr.CloseIdleConnections()
		for _, tc := range []struct {
			name          string
			length, first int
			streamed      bool
		}{
			{"buffered", 100, 1, false},
			{"streamed", 1 << 20, 64 << 10, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pr, pw := io.Pipe()
				defer pw.Close()
				ctx, cancel := context.WithTimeout(context.Background(), timeout+2*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+addr2+"/upload?h2-"+tc.name, pr)
				req.ContentLength = int64(tc.length)
				stalled := make(chan time.Time, 1)
				go func() {
					pw.Write(bytes.Repeat([]byte("a"), tc.first))
					stalled <- time.Now()
				}()
				resp, err := h2.Do(req)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				defer resp.Body.Close()
				at := <-stalled
				t.Logf("%s answered %d after %v", resp.Proto, resp.StatusCode, time.Since(at).Round(time.Millisecond))
				if resp.ProtoMajor != 2 {
					t.Errorf("client spoke %s", resp.Proto)
				}
				if resp.StatusCode != http.StatusRequestTimeout {
					t.Errorf("status %d, want 408", resp.StatusCode)
				}
				if d := time.Since(at); d > timeout+time.Second {
					t.Errorf("answered %v after the body stalled", d)
				}
				if tc.streamed {
					select {
					case err := <-a.end("h2-" + tc.name):
						if err == nil {
							t.Error("the backend read a complete body")
						}
					case <-time.After(time.Until(at.Add(timeout + time.Second))):
						t.Error("the backend's request was not aborted")
					}
				}
				wantTimeoutLogged(t, access2, "/upload", time.Second)
				wantServed(t, h2, "https://"+addr2+"/ok", a, backup)
				wantNotEjected(t, g2)
				access2.mu.Lock()
				access2.b.Reset()
				access2.mu.Unlock()
			})
		}
	})
}

func TestSendTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	a, backup := newSlowBackend(t), testutil.Backend(t, nil)
	g, addr, access := startLogged(t, slowConfig(plainListen(), "send_timeout: 300ms", a.URL, backup.URL), nil)
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	// slowRead reads 1 KiB every 100ms (the client's side of a 32 KiB write
	// then takes seconds) until the backend's response ends; it returns
	// when that happened, measured from the first slow read.
	slowRead := func(t *testing.T, body io.Reader, query string) time.Duration {
		t.Helper()
		from := time.Now()
		buf := make([]byte, 1<<10)
		for time.Since(from) < timeout+time.Second {
			select {
			case err := <-a.end(query):
				if err == nil {
					t.Fatal("the backend sent its whole response to a client reading 1 KiB every 100ms")
				}
				d := time.Since(from)
				t.Logf("backend's write failed %v after the client slowed down: %v", d.Round(time.Millisecond), err)
				return d
			case <-time.After(100 * time.Millisecond):
				io.ReadFull(body, buf)
			}
		}
		t.Fatalf("the backend is still sending %v after the client slowed down: the slow reader holds the upstream connection", timeout+time.Second)
		return 0
	}

	t.Run("HTTP/1.1", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /big?h1 HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 1<<10), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /big: %v %v", resp, err)
		}
		// Another client is served meanwhile.
		wantServed(t, client, "http://"+addr+"/ok", a, backup)
		slowRead(t, resp.Body, "h1")

		// The client connection is cut: what is left arrives at once, then
		// the end, well before the 64 MiB announced.
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := io.Copy(io.Discard, resp.Body)
		var ne net.Error
		switch {
		case err == nil:
			t.Errorf("the client read the whole response")
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("the client connection is still open after the send timeout (%d more bytes)", n)
		default:
			t.Logf("client connection cut after %d more bytes: %v", n, err)
		}
		wantTimeoutLogged(t, access, "/big", time.Second)
		wantServed(t, client, "http://"+addr+"/ok", a, backup)
		wantNotEjected(t, g)
	})

	t.Run("a kept-alive connection outlives the timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for i := 0; i < 2; i++ {
			io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("request %d on the kept-alive connection: %v %v", i+1, resp, err)
			}
			io.Copy(io.Discard, resp.Body)
			time.Sleep(2 * timeout)
		}
		// net/http's own answers, written outside any handler, find no
		// deadline left over either.
		io.WriteString(c, "BAD REQUEST LINE\r\n\r\n")
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 400 {
			t.Fatalf("a malformed request on the kept-alive connection: %v %v", resp, err)
		}
	})

	t.Run("HTTP/2", func(t *testing.T) {
		listen, pool := tlsListen(t)
		g2, addr2, access2 := startLogged(t, slowConfig(listen, "send_timeout: 300ms", a.URL, backup.URL), nil)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
			// A small window: the gateway's writes block soon.
			HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10}}
		h2 := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		defer tr.CloseIdleConnections()
		resp, err := h2.Get("https://" + addr2 + "/big?h2")
		if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("GET /big: %v %v", resp, err)
		}
		defer resp.Body.Close()
		slowRead(t, resp.Body, "h2")
		wantTimeoutLogged(t, access2, "/big", time.Second)
		wantServed(t, h2, "https://"+addr2+"/ok", a, backup)
		wantNotEjected(t, g2)
	})
}

// TestSlowUpstreamIsNotASlowClient: the client timeouts bound the client's
// reads and writes only, not the waits on the upstream between them: an
// upstream that pauses mid-response, or reads a streamed body late, longer
// than both timeouts, is served in full, on HTTP/1.1 and HTTP/2.
func TestSlowUpstreamIsNotASlowClient(t *testing.T) {
	a, backup := newSlowBackend(t), testutil.Backend(t, nil)
	listen, pool := tlsListen(t)
	const client = "body_timeout: 600ms, send_timeout: 600ms" // slowUpstream is 1.5s
	_, plain, access1 := startLogged(t, slowConfig(plainListen(), client, a.URL, backup.URL), nil)
	_, secure, access2 := startLogged(t, slowConfig(listen, client, a.URL, backup.URL), nil)
	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer h2.CloseIdleConnections()
	for _, tc := range []struct {
		name   string
		c      *http.Client
		url    string
		access *slowLog
	}{
		{"HTTP/1.1", &http.Client{Timeout: 10 * time.Second}, "http://" + plain, access1},
		{"HTTP/2", &http.Client{Transport: h2, Timeout: 10 * time.Second}, "https://" + secure, access2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.c.Get(tc.url + "/pause")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != "first second" {
				t.Errorf("an upstream pausing mid-response: %q, %v", body, err)
			}
			// 16 MiB, more than the socket buffers hold while the upstream
			// does not read.
			const size = 16 << 20
			resp, err = tc.c.Post(tc.url+"/slowread", "application/octet-stream", bytes.NewReader(make([]byte, size)))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != strconv.Itoa(size) {
				t.Errorf("a body the upstream reads late: %d %q", resp.StatusCode, body)
			}
			for _, m := range tc.access.lines() {
				if m["cause"] != nil {
					t.Errorf("access log: %v", m)
				}
			}
		})
	}
}
