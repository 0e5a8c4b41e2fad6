package client

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// BenchmarkClientOverhead measures what a Transport adds to a request that
// does not fail: the same GET to the same loopback server, through a plain
// http.Transport and through a Transport around an identical one. The
// difference between the two is the client's cost per request; the
// numbers are in the package documentation.
func BenchmarkClientOverhead(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	run := func(b *testing.B, rt http.RoundTripper) {
		c := &http.Client{Transport: rt}
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("http.Transport", func(b *testing.B) {
		base := &http.Transport{}
		defer base.CloseIdleConnections()
		run(b, base)
	})
	b.Run("client.Transport", func(b *testing.B) {
		base := &http.Transport{}
		defer base.CloseIdleConnections()
		run(b, &Transport{Base: base})
	})
}

// staticRoundTripper answers every request at once with a 200 and an empty
// body, from memory: the base of BenchmarkClientOverheadAlone, which
// leaves nothing to measure but the Transport itself. It calls the
// request's trace hooks as net/http's Transport does for a request sent on
// a kept-alive connection.
type staticRoundTripper struct{}

func (staticRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if tr := httptrace.ContextClientTrace(req.Context()); tr != nil {
		tr.GotConn(httptrace.GotConnInfo{Reused: true, WasIdle: true})
		tr.WroteHeaders()
		tr.WroteRequest(httptrace.WroteRequestInfo{})
		tr.GotFirstResponseByte()
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// BenchmarkClientOverheadAlone is BenchmarkClientOverhead without the
// network: the base answers from memory, so the time and allocations per
// request are the Transport's own, free of loopback's noise. The base is
// not an *http.Transport, so the Transport builds each attempt's trace
// hooks (a base it does not know may call them late): this is the cost
// over a custom base.
func BenchmarkClientOverheadAlone(b *testing.B) {
	req, err := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("base", func(b *testing.B) {
		rt := staticRoundTripper{}
		b.ReportAllocs()
		for b.Loop() {
			resp, _ := rt.RoundTrip(req)
			resp.Body.Close()
		}
	})
	for _, reuse := range []bool{false, true} {
		name := "client.Transport"
		if reuse {
			// As over an *http.Transport, where the trace hooks are
			// reused: the Transport's own cost on that path.
			name += "/reused-trackers"
		}
		b.Run(name, func(b *testing.B) {
			rt := &Transport{Base: staticRoundTripper{}}
			rt.init()
			rt.reuseTrackers = reuse
			b.ReportAllocs()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}

// pipeTransport is an http.Transport whose connections are in-memory pipes
// to a responder that answers every request with a 200 and "ok": net/http's
// whole client path without the kernel's, so that what a Transport adds
// stands out of less noise than over loopback.
func pipeTransport(b *testing.B) *http.Transport {
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait)
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, s := net.Pipe()
		wg.Go(func() {
			defer s.Close()
			br := bufio.NewReader(s)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				if _, err := io.WriteString(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
					return
				}
			}
		})
		return c, nil
	}}
}

// BenchmarkClientOverheadPipe is BenchmarkClientOverhead over in-memory
// pipes: the same GET through a plain http.Transport and through a
// Transport around an identical one. With an *http.Transport for base, the
// Transport reuses its attempts' trace hooks (cause.AcquireTracker).
func BenchmarkClientOverheadPipe(b *testing.B) {
	run := func(b *testing.B, rt http.RoundTripper) {
		c := &http.Client{Transport: rt}
		req, err := http.NewRequest(http.MethodGet, "http://example.test/", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("http.Transport", func(b *testing.B) {
		base := pipeTransport(b)
		defer base.CloseIdleConnections()
		run(b, base)
	})
	b.Run("client.Transport", func(b *testing.B) {
		base := pipeTransport(b)
		defer base.CloseIdleConnections()
		run(b, &Transport{Base: base})
	})
}

// TestAttemptLeavesRequestAlone checks what the shallow copy of each
// attempt must keep: the caller's request, header and URL are not changed
// by an added Idempotency-Key or by a move to a fallback.
func TestAttemptLeavesRequestAlone(t *testing.T) {
	primary := "http://" + deadAddr(t)
	var keys []string
	fallback, _ := counting(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
	})
	c, _ := testClient(t, newFakeClock(), WithIdempotencyKeys(), WithFallbacks(fallback.URL))
	req, err := http.NewRequest(http.MethodPost, primary+"/x", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Caller", "1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(keys) != 1 || keys[0] == "" {
		t.Errorf("fallback saw Idempotency-Keys %q, want one", keys)
	}
	if len(req.Header) != 1 || req.Header.Get("Idempotency-Key") != "" || req.URL.String() != primary+"/x" {
		t.Errorf("caller's request changed: header %v, URL %s", req.Header, req.URL)
	}
}

// TestReusedTrackerLeavesResponseAlone: the attempt's tracker goes back to
// a pool once the response is closed, but what the caller keeps of the
// response is untouched by the requests that reuse it. resp.Request's
// context still carries the caller's values and, once the tracker is
// released, no trace hooks, and a POST whose first attempt is refused after a run of
// successful GETs (each freeing a tracker for it) is retried, as one that
// never left: no hook of another attempt marked it written.
func TestReusedTrackerLeavesResponseAlone(t *testing.T) {
	type key struct{}
	srv, n := counting(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	c, _ := testClient(t, nil, WithFallbacks(srv.URL))
	ctx := context.WithValue(t.Context(), key{}, "caller's")
	var kept []*http.Response
	for range 20 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		kept = append(kept, resp)
	}
	for i, resp := range kept {
		rctx := resp.Request.Context()
		if v := rctx.Value(key{}); v != "caller's" {
			t.Errorf("response %d: its request's context has %v, want the caller's value", i, v)
		}
		// The first attempt dialed: its tracker is never reused, and keeps
		// its hooks. Every later one ran on the kept-alive connection.
		if i > 0 && httptrace.ContextClientTrace(rctx) != nil {
			t.Errorf("response %d: its request's context still carries trace hooks after its tracker was released", i)
		}
	}
	before := n.Load()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+deadAddr(t)+"/", strings.NewReader("once"))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST refused by the primary and not failed over: %v", err)
	}
	resp.Body.Close()
	if got := n.Load() - before; got != 1 {
		t.Errorf("fallback saw %d POSTs, want 1", got)
	}
}

// lateHooks is a base that is not an *http.Transport and calls a request's
// WroteHeaders hook late, at the start of the next request, as a
// RoundTripper that writes in the background could. It refuses the first
// POST before writing anything, as a refused dial does, and answers every
// other request with a 200.
type lateHooks struct {
	mu      sync.Mutex
	last    *httptrace.ClientTrace
	refused bool
}

func (l *lateHooks) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	if l.last != nil && l.last.WroteHeaders != nil {
		l.last.WroteHeaders() // the previous request's hook, late
	}
	l.last = httptrace.ContextClientTrace(req.Context())
	refuse := req.Method == http.MethodPost && !l.refused
	l.refused = l.refused || refuse
	l.mu.Unlock()
	if refuse {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	if tr := l.last; tr != nil {
		tr.GotConn(httptrace.GotConnInfo{Reused: true, WasIdle: true})
		tr.WroteHeaders()
		tr.WroteRequest(httptrace.WroteRequestInfo{})
		tr.GotFirstResponseByte()
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// TestUnknownBaseGetsItsOwnTrackers: over a base that is not an
// *http.Transport, whose hooks may come late, no tracker is reused. A late
// WroteHeaders from a finished GET must not mark the next request, a POST
// refused before a byte left, as written: it is retried.
func TestUnknownBaseGetsItsOwnTrackers(t *testing.T) {
	c, _ := testClient(t, newFakeClock(), WithBase(&lateHooks{}))
	for range 3 {
		resp, err := c.Get("http://example.test/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := c.Post("http://example.test/", "text/plain", strings.NewReader("once"))
	if err != nil {
		t.Fatalf("a POST refused before it was written was not retried: %v", err)
	}
	resp.Body.Close()
}
