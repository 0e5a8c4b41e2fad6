package client

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock stands in for time so that backoff, Retry-After and breaker
// cool-downs can be asserted without the suite sleeping: Sleep records the
// wait and moves the clock on at once. It starts at the real time, truncated
// to the second so that HTTP-dates (second precision) convert exactly, and
// so that real context deadlines still compare sensibly with it.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	return nil
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// testClient returns a client whose Transport runs on clk (the real clock
// if nil) and is configured by opts, and the Transport itself.
func testClient(t *testing.T, clk *fakeClock, opts ...Option) (*http.Client, *Transport) {
	t.Helper()
	tr := &Transport{}
	if clk != nil {
		tr.now, tr.sleep = clk.Now, clk.Sleep
	}
	for _, o := range opts {
		o(tr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, tr
}

// recorder collects what OnAttempt reports.
type recorder struct {
	mu    sync.Mutex
	infos []AttemptInfo
}

func (r *recorder) hook(i AttemptInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.infos = append(r.infos, i)
}

func (r *recorder) all() []AttemptInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]AttemptInfo(nil), r.infos...)
}

// counting starts an HTTP server on loopback that counts requests and
// serves the n-th (from 1) with h.
func counting(t *testing.T, h func(n int64, w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(count.Add(1), w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &count
}

// deadAddr returns a loopback address where nothing listens (bound, then
// released), so that a dial is refused: an upstream that is down.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// faultServer is a raw TCP server on loopback: net/http's server cannot
// reset a connection, hang, or cut a body short on cue, which these tests
// need. It reads each request (body included) and lets handle answer the
// n-th (from 1) on c as it likes; handle returns whether to keep serving
// the connection. Connections are closed at cleanup, which also releases a
// handler that hangs by returning true without answering.
type faultServer struct {
	URL      string
	requests atomic.Int64
}

func newFaultServer(t *testing.T, handle func(n int64, c *net.TCPConn) bool) *faultServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &faultServer{URL: "http://" + ln.Addr().String()}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		done  bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if done {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if !handle(f.requests.Add(1), c.(*net.TCPConn)) {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		done = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return f
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// reset aborts c with an RST, as a crashed process does.
func reset(c *net.TCPConn) bool {
	c.SetLinger(0)
	c.Close()
	return false
}

func writeOK(c *net.TCPConn) bool {
	io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	return true
}
