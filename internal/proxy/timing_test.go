package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

func TestBodyStallAbortsStream(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "first part")
		w.(http.Flusher).Flush()
		select { // stall far longer than the read timeout
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	e := newEnv(t, poolConfig("timeouts: {read: 200ms}", b.URL))
	start := time.Now()
	resp, err := http.Get(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("a stalled body reached the client as complete: %q", body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stall detected after %v, want about the 200ms read timeout", d)
	}
	if !strings.HasPrefix(string(body), "first part") {
		t.Errorf("body so far = %q", body)
	}
	time.Sleep(50 * time.Millisecond)
	if !strings.Contains(e.logBuf.String(), `"cause":"connection_read_timeout"`) {
		t.Errorf("log: %s", e.logBuf.String())
	}
}

func TestRetryAfterHonouredOnSameServer(t *testing.T) {
	var n atomic.Int64
	var first time.Time
	var gap time.Duration
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			return
		}
		gap = time.Since(first)
		io.WriteString(w, "ok")
	}))
	e := newEnv(t, poolConfig("retry: {timeout: 3s}", b.URL))
	wantStatus(t, e.do("GET", "/", ""), 200)
	if gap < 900*time.Millisecond {
		t.Errorf("retried after %v, want at least the upstream's Retry-After of 1s", gap)
	}

	// A Retry-After past the total deadline is not waited for: the 503 goes
	// to the client at once, with its Retry-After.
	n.Store(0)
	e2 := newEnv(t, poolConfig("retry: {timeout: 500ms}", b.URL))
	start := time.Now()
	r := e2.do("GET", "/", "")
	wantStatus(t, r, 503)
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("waited %v for a Retry-After beyond the deadline", d)
	}
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("upstream's Retry-After not passed through: %v", r.header)
	}
}

func TestClientGoneIsNotAnUpstreamFailure(t *testing.T) {
	slow := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	good := testutil.Backend(t, nil)
	e := newEnv(t, poolConfig("balance: round_robin", slow.URL, good.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL, nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("request did not time out")
	}
	time.Sleep(100 * time.Millisecond)
	lines := e.accessLines()
	if len(lines) != 1 || lines[0]["status"] != 499.0 || lines[0]["cause"] != "client_closed" {
		t.Fatalf("access log = %v", lines)
	}
	if e.events.ejected(slow.URL) != 0 || good.Requests.Load() != 0 {
		t.Errorf("client's departure counted against the upstream (ejected %d) or retried (%d)", e.events.ejected(slow.URL), good.Requests.Load())
	}
}

func TestRetryBudgetBoundsAStorm(t *testing.T) {
	fail := func() http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	}
	a, b := testutil.Backend(t, fail()), testutil.Backend(t, fail())
	e := newEnv(t, poolConfig("retry: {tries: 3, budget: 20, budget_min: 0, backoff: 1ms}\npassive: {fail_on: []}", a.URL, b.URL))
	const n = 100
	for i := 0; i < n; i++ {
		wantStatus(t, e.do("GET", "/", ""), 503)
	}
	got := a.Requests.Load() + b.Requests.Load()
	// Without a budget: 300 upstream requests. With 20%: 100 + 20.
	if got > n+n/5+1 {
		t.Errorf("%d requests reached the pool for %d client requests: retries exceeded the 20%% budget", got, n)
	}
	if got < n+n/5-1 {
		t.Errorf("only %d upstream requests: the budget allowed fewer retries than 20%%", got)
	}
	if !strings.Contains(e.logBuf.String(), `"retry_skipped":"budget"`) {
		t.Error("budget exhaustion not logged as retry_skipped=budget")
	}
}

func TestSendTimeout(t *testing.T) {
	// An upstream that reads the request head and then stops reading, as a
	// wedged process does: the request body fills the socket buffers and
	// the gateway's writes stall. (A test-local fake: testutil.Hang drains
	// bodies.)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				<-done
			}()
		}
	}()
	e := newEnv(t, poolConfig("timeouts: {send: 300ms, read: 10s}\nretry: {tries: 1}", "http://"+ln.Addr().String()))
	body := strings.NewReader(strings.Repeat("x", 64<<20))
	start := time.Now()
	req, _ := http.NewRequest("PUT", e.URL, body)
	resp, err := http.DefaultClient.Do(req)
	d := time.Since(start)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 504 {
			t.Errorf("status %d, want 504", resp.StatusCode)
		}
	}
	if d > 5*time.Second {
		t.Errorf("took %v: the send timeout did not cut the stalled write", d)
	}
	time.Sleep(50 * time.Millisecond)
	if !strings.Contains(e.logBuf.String(), `"cause":"connection_write_timeout"`) {
		t.Errorf("log lacks connection_write_timeout: %s", e.logBuf.String())
	}
}
