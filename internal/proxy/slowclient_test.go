package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// slowPoolConfig routes to server a, ejected at its first failure, with
// backup b: a request reaching b proves a was blamed.
func slowPoolConfig(client, a, b string) string {
	return fmt.Sprintf("client: {%s}\nroutes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    servers:\n      - {url: %q, max_fails: 1}\n      - {url: %q, backup: true}\n", client, a, b)
}

// wantNotBlamed checks that a normal request reaches server a afterwards.
func wantNotBlamed(t *testing.T, e *env, a, backup *testutil.Counting) {
	t.Helper()
	before := a.Requests.Load()
	wantStatus(t, e.do("GET", "/ok", ""), 200)
	if a.Requests.Load() == before || backup.Requests.Load() != 0 {
		t.Errorf("the next request went to the backup: the server was blamed for a slow client")
	}
	if n := e.events.ejected(a.URL); n != 0 {
		t.Errorf("server ejected %d times", n)
	}
}

// wantLoggedTimeout checks that the request to path was logged with cause
// client_timeout. The line is written once the handler returns, which may be just after
// the upstream saw its connection closed: it is waited for, briefly.
func wantLoggedTimeout(t *testing.T, e *env, path string) {
	t.Helper()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		for _, l := range e.accessLines() {
			if l["path"] == path {
				if l["cause"] != "client_timeout" {
					t.Errorf("access log: %v, want cause client_timeout", l)
				}
				return
			}
		}
	}
	t.Errorf("no access-log line for %s", path)
}

// A body sent after "Expect: 100-continue" streams through net/http's
// Transport, which reads it on a goroutine of its own: the timeout holds
// there too, and the upstream request is aborted.
func TestBodyTimeoutAfterContinue(t *testing.T) {
	const timeout = 300 * time.Millisecond
	bodyEnd := make(chan error, 1)
	a := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/upload" {
			_, err := io.Copy(io.Discard, r.Body)
			bodyEnd <- err
		}
		io.WriteString(w, "ok")
	}))
	backup := testutil.Backend(t, nil)
	e := newEnv(t, slowPoolConfig("body_timeout: 300ms", a.URL, backup.URL))

	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n")
	// The 100 comes once the upstream asked for the body.
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 100 {
		t.Fatalf("want 100 Continue: %v %v", resp, err)
	}
	io.WriteString(c, "abc")
	stalled := time.Now()
	c.SetReadDeadline(stalled.Add(timeout + time.Second))
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within %v of the body stalling: %v", timeout+time.Second, err)
	}
	resp.Body.Close()
	t.Logf("answered %d after %v", resp.StatusCode, time.Since(stalled).Round(time.Millisecond))
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(resp.Header.Get("Proxy-Status"), "error=client_timeout") {
		t.Errorf("got %d %q, want 408 client_timeout", resp.StatusCode, resp.Header.Get("Proxy-Status"))
	}
	select {
	case err := <-bodyEnd:
		if err == nil {
			t.Error("the backend read a complete body")
		}
	case <-time.After(time.Until(stalled.Add(timeout + time.Second))):
		t.Error("the backend's request was not aborted")
	}
	wantLoggedTimeout(t, e, "/upload")
	wantNotBlamed(t, e, a, backup)
}

// An event stream is flushed at every event: a client that stops reading
// is cut when a flush waits past the timeout, and the upstream with it.
func TestSendTimeoutEventStream(t *testing.T) {
	const timeout = 300 * time.Millisecond
	sendEnd := make(chan error, 1)
	a := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		event := "data: " + strings.Repeat("x", 64<<10) + "\n\n"
		var err error
		for i := 0; i < 1024 && err == nil; i++ { // 64 MiB
			if _, err = io.WriteString(w, event); err == nil {
				err = http.NewResponseController(w).Flush()
			}
		}
		sendEnd <- err
	}))
	backup := testutil.Backend(t, nil)
	e := newEnv(t, slowPoolConfig("send_timeout: 300ms", a.URL, backup.URL))

	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /events: %v %v", resp, err)
	}
	stopped := time.Now() // and the client reads no more
	select {
	case err := <-sendEnd:
		if err == nil {
			t.Fatal("the backend sent the whole stream to a client that reads nothing")
		}
		t.Logf("backend's write failed %v after the client stopped reading: %v", time.Since(stopped).Round(time.Millisecond), err)
	case <-time.After(timeout + time.Second):
		t.Fatal("the backend is still sending: a client that reads nothing holds the upstream connection")
	}
	wantLoggedTimeout(t, e, "/events")
	wantNotBlamed(t, e, a, backup)
}

// fakeDeadlines records the deadlines set on it.
type fakeDeadlines struct {
	mu          sync.Mutex
	read, write []time.Time
}

func (f *fakeDeadlines) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.read = append(f.read, t)
	return nil
}

func (f *fakeDeadlines) SetWriteDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write = append(f.write, t)
	return nil
}

func (f *fakeDeadlines) writes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.write...)
}

// errReader returns its chunks one read at a time, then err.
type errReader struct {
	chunks []string
	err    error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, r.err
	}
	n := copy(p, r.chunks[0])
	r.chunks = r.chunks[1:]
	return n, nil
}

func TestClientTimeoutDeadlines(t *testing.T) {
	t.Run("HTTP/1: set sparingly, cleared at EOF, never set after it", func(t *testing.T) {
		f := &fakeDeadlines{}
		cb := clientBody{r: &errReader{chunks: []string{"a", "b", "c"}, err: io.EOF}, ctx: context.Background(), st: newStall(time.Minute, f, false, false)}
		b, err := io.ReadAll(&cb)
		if err != nil || string(b) != "abc" {
			t.Fatalf("read %q, %v", b, err)
		}
		cb.Read(make([]byte, 1)) // after EOF
		if len(f.read) != 2 || f.read[0].IsZero() || !f.read[1].IsZero() {
			t.Errorf("read deadlines set: %v; want one, then cleared at EOF", f.read)
		}
	})
	t.Run("HTTP/1: a deadline that ran out is the body timeout, and stays", func(t *testing.T) {
		f := &fakeDeadlines{}
		cb := clientBody{r: &errReader{err: fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)}, ctx: context.Background(), st: newStall(time.Minute, f, false, false)}
		if _, err := cb.Read(make([]byte, 1)); err != errBodyTimeout {
			t.Errorf("err %v, want errBodyTimeout", err)
		}
		if _, err := cb.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("second read: %v", err)
		}
		if len(f.read) != 1 {
			t.Errorf("read deadlines set: %v; the one that ran out must stay", f.read)
		}
	})
	t.Run("HTTP/1: every operation gets the whole timeout", func(t *testing.T) {
		s := newStall(160*time.Millisecond, &fakeDeadlines{}, false, true)
		for i := 0; i < 50; i++ {
			s.start()
			if left := time.Until(s.at); left < s.d-5*time.Millisecond || left > s.d+s.d/16 {
				t.Fatalf("operation %d: %v left", i, left)
			}
			time.Sleep(3 * time.Millisecond)
		}
	})
	t.Run("HTTP/2: only an operation in progress is cut", func(t *testing.T) {
		f := &fakeDeadlines{}
		s := newStall(100*time.Millisecond, f, true, true)
		defer s.stop()
		s.start()
		s.end()
		time.Sleep(300 * time.Millisecond) // idle for three timeouts: an upstream pausing
		if w := f.writes(); len(w) != 0 || s.expired() {
			t.Fatalf("deadlines set while idle: %v", w)
		}
		s.start() // and never ends
		time.Sleep(300 * time.Millisecond)
		w := f.writes()
		if len(w) != 1 || !w[0].Before(time.Now()) || !s.expired() {
			t.Fatalf("an operation in progress for three timeouts: deadlines %v, expired %v", w, s.expired())
		}
		s.stop()
	})
}

// deadlineRecorder is a ResponseRecorder with deadlines, as net/http's
// writers have, so that the benchmark pays for the client timeouts.
type deadlineRecorder struct{ *httptest.ResponseRecorder }

func (deadlineRecorder) SetReadDeadline(time.Time) error  { return nil }
func (deadlineRecorder) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkServeHTTPClientTimeouts is BenchmarkServeHTTP with the
// client.send_timeout deadlines set as on a real connection.
func BenchmarkServeHTTPClientTimeouts(b *testing.B) {
	be := testutil.Backend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	h := benchHandler(b, "access_log: {path: \"off\"}\n"+poolConfig("", be.URL))
	req := httptest.NewRequest("GET", "http://example.com/x", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := deadlineRecorder{httptest.NewRecorder()}
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
