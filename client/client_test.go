package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
)

func TestRetriesBadGatewayThenSucceeds(t *testing.T) {
	srv, count := counting(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		io.WriteString(w, "ok")
	})
	var rec recorder
	c, _ := testClient(t, newFakeClock(), WithOnAttempt(rec.hook))

	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("Get = %d %q, want 200 \"ok\"", resp.StatusCode, body)
	}
	if n := count.Load(); n != 3 {
		t.Errorf("server saw %d requests, want 3", n)
	}
	infos := rec.all()
	if len(infos) != 3 {
		t.Fatalf("OnAttempt called %d times, want 3", len(infos))
	}
	for i, info := range infos[:2] {
		if !info.Retry || info.Status != 502 || info.Cause != cause.UpstreamStatus || info.N != i+1 || info.Max != 4 {
			t.Errorf("attempt %d: %+v, want a retried 502", i+1, info)
		}
		if info.Wait > DefaultBaseDelay<<i {
			t.Errorf("attempt %d: wait %v over the backoff ceiling %v", i+1, info.Wait, DefaultBaseDelay<<i)
		}
	}
	if s := infos[0].String(); !regexp.MustCompile(`^retrying in \d+ms \(502 Bad Gateway, attempt 1/4\)$`).MatchString(s) {
		t.Errorf("String() = %q", s)
	}
	if last := infos[2]; last.Retry || last.Stop != "" || last.Cause != cause.None || last.String() != "done (200 OK, attempt 3/4)" {
		t.Errorf("last attempt: %+v %q", last, last.String())
	}
}

func TestBackoffFullJitter(t *testing.T) {
	tr := &Transport{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	c := &call{t: tr}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000} // ms: ceilings
	for i, w := range want {
		ceil := w * time.Millisecond
		tr.randN = func(n int64) int64 { return n - 1 }
		if got := c.backoff(i + 1); got != ceil {
			t.Errorf("backoff(%d) at the top of the range = %v, want %v", i+1, got, ceil)
		}
		tr.randN = func(int64) int64 { return 0 }
		if got := c.backoff(i + 1); got != 0 {
			t.Errorf("backoff(%d) at the bottom of the range = %v, want 0", i+1, got)
		}
	}
	tr.randN = nil
	for range 1000 {
		if got := c.backoff(3); got < 0 || got > 400*time.Millisecond {
			t.Fatalf("backoff(3) = %v, want within [0, 400ms]", got)
		}
	}
}

// A Retry-After past MaxRetryAfter is not cut short: the response goes to
// the caller at once, who can wait as asked.
func TestRetryAfterBeyondCapReturnsResponse(t *testing.T) {
	clk := newFakeClock()
	srv, count := counting(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	var stops []StopReason
	c, _ := testClient(t, clk, WithMaxRetryAfter(time.Minute), WithOnAttempt(func(a AttemptInfo) { stops = append(stops, a.Stop) }))
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || count.Load() != 1 || resp.Header.Get("Retry-After") != "3600" {
		t.Errorf("got %d after %d requests (Retry-After %q), want the 503 after 1", resp.StatusCode, count.Load(), resp.Header.Get("Retry-After"))
	}
	if len(clk.Waits()) != 0 || len(stops) != 1 || stops[0] != StopRetryAfter {
		t.Errorf("waits %v, stops %v; want none and [%s]", clk.Waits(), stops, StopRetryAfter)
	}
}

func TestRetryAfterIsMinimumWait(t *testing.T) {
	tests := []struct {
		name   string
		header func(now time.Time) string
		opts   []Option
		want   time.Duration
	}{
		{"seconds", func(time.Time) string { return "3" }, nil, 3 * time.Second},
		{"http-date", func(now time.Time) string { return now.Add(7 * time.Second).UTC().Format(http.TimeFormat) }, nil, 7 * time.Second},
		{"beyond MaxDelay", func(time.Time) string { return "20" }, nil, 20 * time.Second},
		{"date in the past", func(now time.Time) string { return now.Add(-time.Hour).UTC().Format(http.TimeFormat) }, []Option{WithBackoff(time.Millisecond, time.Millisecond)}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			srv, count := counting(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", tt.header(clk.Now()))
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return
				}
				io.WriteString(w, "ok")
			})
			c, _ := testClient(t, clk, tt.opts...)
			resp, err := c.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || count.Load() != 2 {
				t.Errorf("Get = %d after %d requests, want 200 after 2", resp.StatusCode, count.Load())
			}
			waits := clk.Waits()
			if tt.want < 0 && len(waits) == 1 && waits[0] <= time.Millisecond {
				return // the backoff alone
			}
			if len(waits) != 1 || waits[0] != tt.want {
				t.Errorf("waits = %v, want [%v]", waits, tt.want)
			}
		})
	}
}

func TestRetryAfterPastDeadlineReturnsAtOnce(t *testing.T) {
	srv, count := counting(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	var rec recorder
	c, _ := testClient(t, nil, WithOnAttempt(rec.hook)) // the real clock: no sleep may happen
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)

	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("returned after %v, want at once", elapsed)
	}
	if resp.StatusCode != 503 || err != nil || string(body) != "busy\n" {
		t.Errorf("Do = %d %q (read error %v), want the 503 with its body", resp.StatusCode, body, err)
	}
	if count.Load() != 1 {
		t.Errorf("server saw %d requests, want 1", count.Load())
	}
	if infos := rec.all(); len(infos) != 1 || infos[0].Stop != StopDeadline {
		t.Errorf("attempts = %+v, want one stopped by the deadline", infos)
	}
}

func TestResetBeforeResponse(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		header    string // Idempotency-Key, if any
		opts      []Option
		wantCount int64
		wantOK    bool
	}{
		{"GET retried", "GET", "", nil, 2, true},
		{"POST not retried", "POST", "", nil, 1, false},
		{"POST with Idempotency-Key retried", "POST", "k-123", nil, 2, true},
		{"POST with automatic key retried", "POST", "", []Option{WithIdempotencyKeys()}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var keys []string
			srv := newFaultServer(t, func(n int64, c *net.TCPConn) bool {
				if n == 1 {
					return reset(c) // read the request, then crash
				}
				return writeOK(c)
			})
			// The fault server does not expose headers; a wrapping base
			// transport records the key each attempt carried.
			ht := http.DefaultTransport.(*http.Transport).Clone()
			t.Cleanup(ht.CloseIdleConnections)
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				mu.Lock()
				keys = append(keys, r.Header.Get("Idempotency-Key"))
				mu.Unlock()
				return ht.RoundTrip(r)
			})
			c, _ := testClient(t, newFakeClock(), append(tt.opts, WithBase(base))...)
			req, _ := http.NewRequest(tt.method, srv.URL+"/orders", strings.NewReader("payload"))
			if tt.header != "" {
				req.Header.Set("Idempotency-Key", tt.header)
			}
			resp, err := c.Do(req)
			if got := srv.requests.Load(); got != tt.wantCount {
				t.Errorf("server saw %d requests, want %d", got, tt.wantCount)
			}
			if tt.wantOK {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				if tt.method == "POST" && (len(keys) != 2 || keys[0] == "" || keys[0] != keys[1]) {
					t.Errorf("Idempotency-Key per attempt = %q, want one key on both", keys)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Do error = %v, want a *client.Error", err)
			}
			if ce.Cause != cause.ConnectionTerminated || ce.Stop != StopNotIdempotent || ce.Attempts != 1 || !ce.History[0].Written {
				t.Errorf("error = %+v, want connection_terminated after 1 written attempt, not_idempotent", ce)
			}
		})
	}
}

func TestAutomaticKeyFormat(t *testing.T) {
	k := newKey()
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(k) {
		t.Errorf("newKey() = %q, want a version 4 UUID", k)
	}
	if newKey() == k {
		t.Error("newKey() returned the same key twice")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestFallbackAfterRefused(t *testing.T) {
	var gotHost, gotURI, gotBody string
	fb, count := counting(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotHost, gotURI, gotBody = r.Host, r.URL.RequestURI(), string(b)
		io.WriteString(w, "ok")
	})
	var rec recorder
	c, _ := testClient(t, newFakeClock(), WithFallbacks(fb.URL), WithOnAttempt(rec.hook))
	primary := "http://" + deadAddr(t)

	resp, err := c.Post(primary+"/orders?id=7", "text/plain", strings.NewReader("order 7"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || count.Load() != 1 {
		t.Errorf("Post = %d with the fallback seeing %d requests, want 200 delivered once", resp.StatusCode, count.Load())
	}
	if fbHost := strings.TrimPrefix(fb.URL, "http://"); gotHost != fbHost || gotURI != "/orders?id=7" || gotBody != "order 7" {
		t.Errorf("fallback saw Host %q URI %q body %q, want %q /orders?id=7 \"order 7\"", gotHost, gotURI, gotBody, fbHost)
	}
	infos := rec.all()
	if len(infos) != 2 || infos[0].Cause != cause.ConnectionRefused || infos[0].Next != fb.URL+"/orders?id=7" || infos[0].Wait != 0 {
		t.Errorf("attempts = %+v, want refused, then an immediate move to the fallback", infos)
	}
}

func TestFallbackWhenCircuitOpen(t *testing.T) {
	primary, pCount := counting(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	fb, fCount := counting(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	c, _ := testClient(t, newFakeClock(), WithMaxAttempts(1), WithFallbacks(fb.URL),
		WithBreaker(BreakerConfig{MinAttempts: 2}), WithBudget(BudgetConfig{Disabled: true}))
	for range 2 {
		resp, err := c.Get(primary.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := c.Get(primary.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || pCount.Load() != 2 || fCount.Load() != 1 {
		t.Errorf("Get = %d; primary saw %d, fallback %d; want 200 from the fallback, primary untouched",
			resp.StatusCode, pCount.Load(), fCount.Load())
	}
}

func TestResetMidBodyIsAReadError(t *testing.T) {
	srv := newFaultServer(t, func(_ int64, c *net.TCPConn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
		time.Sleep(50 * time.Millisecond) // let the head and the ten bytes arrive first
		return reset(c)
	})
	c, _ := testClient(t, newFakeClock())
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("Get: %v, want the 200 whose body fails", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	var ce *cause.Error
	if !errors.As(err, &ce) || ce.Cause != cause.HTTPResponseIncomplete {
		t.Fatalf("reading the body: %q, %v; want an http_response_incomplete error", body, err)
	}
	if string(body) != "0123456789" || srv.requests.Load() != 1 {
		t.Errorf("body %q after %d requests, want the 10 bytes sent, once", body, srv.requests.Load())
	}
}

func TestRefusedExhaustsAttempts(t *testing.T) {
	clk := newFakeClock()
	c, _ := testClient(t, clk)
	url := "http://" + deadAddr(t) + "/x"
	_, err := c.Get(url)

	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("Get error = %v, want a *client.Error", err)
	}
	if ce.Attempts != 4 || len(ce.History) != 4 || ce.Cause != cause.ConnectionRefused || ce.Stop != StopAttempts {
		t.Errorf("error = %+v, want 4 refused attempts", ce)
	}
	var total time.Duration
	for _, w := range clk.Waits() {
		total += w
	}
	if ce.TotalWait != total || len(clk.Waits()) != 3 {
		t.Errorf("TotalWait = %v after waits %v", ce.TotalWait, clk.Waits())
	}
	for i, a := range ce.History {
		if a.N != i+1 || a.Cause != cause.ConnectionRefused || a.URL != url || a.Status != 0 || a.Err == nil {
			t.Errorf("History[%d] = %+v", i, a)
		}
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || cause.Of(err) != cause.ConnectionRefused {
		t.Errorf("errors.Is(ECONNREFUSED) = false or cause.Of = %v", cause.Of(err))
	}
	want := regexp.MustCompile(`^GET http://127\.0\.0\.1:\d+/x: 4 attempts, last: connection_refused \(the upstream refused the connection\); waited \d+(\.\d+)?m?s$`)
	if !want.MatchString(ce.Error()) {
		t.Errorf("Error() = %q", ce.Error())
	}
}

func TestHangReturnsByTheDeadline(t *testing.T) {
	srv := newFaultServer(t, func(int64, *net.TCPConn) bool { return true }) // read, never answer
	c, _ := testClient(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)

	start := time.Now()
	_, err := c.Do(req)
	elapsed := time.Since(start)
	var ce *Error
	if !errors.As(err, &ce) || ce.Cause != cause.HTTPResponseTimeout || ce.Attempts != 1 || ce.Stop != StopDeadline {
		t.Fatalf("Do error = %v, want one http_response_timeout attempt", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !ce.Timeout() {
		t.Errorf("errors.Is(DeadlineExceeded) = false or Timeout() = false for %v", err)
	}
	if elapsed < 250*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("returned after %v, want at the 300ms deadline", elapsed)
	}
}

func TestSlowServerWithinDeadline(t *testing.T) {
	srv, count := counting(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "slow")
	})
	c, _ := testClient(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "slow" || count.Load() != 1 {
		t.Errorf("Do = %q after %d requests, want \"slow\" after 1", body, count.Load())
	}
}

func TestCanceledDuringBackoff(t *testing.T) {
	srv, _ := counting(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad", http.StatusBadGateway)
	})
	ctx, cancel := context.WithCancel(context.Background())
	c, _ := testClient(t, nil, WithBackoff(time.Hour, time.Hour), WithOnAttempt(func(i AttemptInfo) {
		if i.Retry {
			cancel() // the caller gives up while the transport waits
		}
	}))
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	_, err := c.Do(req)
	var ce *Error
	if !errors.As(err, &ce) || ce.Cause != cause.ClientClosed || ce.Stop != StopCanceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("Do error = %v, want client_closed", err)
	}
}

// opaque hides a reader's type, so that http.NewRequest sets no GetBody
// and the transport must buffer the body itself.
type opaque struct{ io.Reader }

func TestBodyReplayedOnEveryAttempt(t *testing.T) {
	payload := bytes.Repeat([]byte("holdfast "), 1000)
	tests := []struct {
		name string
		body func() io.Reader
	}{
		{"GetBody", func() io.Reader { return bytes.NewReader(payload) }},
		{"buffered", func() io.Reader { return opaque{bytes.NewReader(payload)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var bodies [][]byte
			srv, _ := counting(t, func(n int64, w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				bodies = append(bodies, b)
				mu.Unlock()
				if n <= 2 {
					http.Error(w, "bad", http.StatusBadGateway)
				}
			})
			c, _ := testClient(t, newFakeClock())
			req, _ := http.NewRequest("PUT", srv.URL, tt.body())
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if len(bodies) != 3 {
				t.Fatalf("server saw %d requests, want 3", len(bodies))
			}
			for i, b := range bodies {
				if !bytes.Equal(b, payload) {
					t.Errorf("attempt %d body: %d bytes, want the %d sent", i+1, len(b), len(payload))
				}
			}
		})
	}
}

func TestLargeBodySentOnce(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 4096)
	var got atomic.Int64
	srv, count := counting(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(int64(len(b)))
		http.Error(w, "bad", http.StatusBadGateway)
	})
	var rec recorder
	c, _ := testClient(t, newFakeClock(), WithBodyBufferLimit(1024), WithOnAttempt(rec.hook))
	req, _ := http.NewRequest("PUT", srv.URL, opaque{bytes.NewReader(payload)})
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 || count.Load() != 1 || got.Load() != 4096 {
		t.Errorf("Do = %d; server saw %d requests, %d body bytes; want the 502 after one whole body", resp.StatusCode, count.Load(), got.Load())
	}
	if infos := rec.all(); len(infos) != 1 || infos[0].Stop != StopBodyTooLarge {
		t.Errorf("attempts = %+v, want one stopped as body_too_large", infos)
	}
}

func TestDiscardedBodiesDoNotLeakConnections(t *testing.T) {
	var conns, count atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if count.Add(1)%3 != 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write(bytes.Repeat([]byte("e"), 10<<10)) // an error page worth draining
			return
		}
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, _ := testClient(t, newFakeClock(), WithBudget(BudgetConfig{Disabled: true}), WithBreaker(BreakerConfig{Disabled: true}))
	for i := range 30 {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d, want 200", i, resp.StatusCode)
		}
	}
	if count.Load() != 90 || conns.Load() != 1 {
		t.Errorf("%d requests over %d connections, want 90 over 1", count.Load(), conns.Load())
	}
}

func TestBreakerOpensFailsFastAndCloses(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	srv, count := counting(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	clk := newFakeClock()
	c, tr := testClient(t, clk, WithMaxAttempts(1), WithBudget(BudgetConfig{Disabled: true}),
		WithBreaker(BreakerConfig{MinAttempts: 4, CoolDown: 5 * time.Second, HalfOpenProbes: 1}))
	get := func() (*http.Response, error) {
		resp, err := c.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	for range 4 {
		if resp, err := get(); err != nil || resp.StatusCode != 503 {
			t.Fatalf("Get = %v, %v; want the 503", resp, err)
		}
	}

	// Open: fail fast without contacting the server.
	_, err := get()
	var ce *Error
	if !errors.As(err, &ce) || ce.Cause != cause.DestinationUnavailable || !errors.Is(err, ErrCircuitOpen) ||
		cause.Of(err) != cause.DestinationUnavailable || ce.Stop != StopCircuitOpen {
		t.Fatalf("Get with the circuit open = %v, want destination_unavailable", err)
	}
	if count.Load() != 4 {
		t.Errorf("server saw %d requests, want 4 (none while open)", count.Load())
	}

	// Half-open after the cool-down: a failing probe opens it again.
	clk.Advance(5 * time.Second)
	if resp, err := get(); err != nil || resp.StatusCode != 503 || count.Load() != 5 {
		t.Fatalf("probe = %v, %v after %d requests; want one 503 probe", resp, err, count.Load())
	}
	if _, err := get(); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after a failed probe: %v, want the circuit open again", err)
	}

	// A successful probe closes it.
	clk.Advance(5 * time.Second)
	down.Store(false)
	for i := range 3 {
		if resp, err := get(); err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d after recovery = %v, %v; want 200", i, resp, err)
		}
	}
	if count.Load() != 8 {
		t.Errorf("server saw %d requests, want 8", count.Load())
	}
	if h := tr.host(mustParse(t, srv.URL), tr.clock()); h.breaker.state != BreakerClosed {
		t.Errorf("breaker state = %v, want closed", h.breaker.state)
	}
}

func TestBudgetStopsRetryStorm(t *testing.T) {
	srv, count := counting(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	var stopped atomic.Int64
	c, _ := testClient(t, newFakeClock(), WithBreaker(BreakerConfig{Disabled: true}), WithOnAttempt(func(i AttemptInfo) {
		if i.Stop == StopBudget {
			stopped.Add(1)
		}
	}))
	const requests = 20
	for range requests {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("Get = %d, want the 503", resp.StatusCode)
		}
	}
	// 10 tokens: the first request spends 4 on its attempts; the second's
	// failure leaves 5, no longer more than half, so it and every later
	// request get one attempt each.
	if got, want := count.Load(), int64(4+requests-1); got != want {
		t.Errorf("server saw %d requests, want %d (%d without a budget)", got, want, 4*requests)
	}
	if stopped.Load() != requests-1 {
		t.Errorf("%d requests stopped by the budget, want %d", stopped.Load(), requests-1)
	}
}

func TestBudgetRefillsOnSuccess(t *testing.T) {
	h := newHost(&Transport{}, "")
	for range 5 {
		h.budget.record(failure)
	}
	if h.budget.allow() {
		t.Fatal("allow() = true with 5 of 10 tokens, want false")
	}
	for range 10 {
		h.budget.record(success)
	}
	if !h.budget.allow() {
		t.Error("allow() = false after 10 successes, want true")
	}
}

func TestZeroTransportWorks(t *testing.T) {
	srv, _ := counting(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		io.WriteString(w, "ok")
	})
	tr := &Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("Get = %d, want 200 after one retry", resp.StatusCode)
	}
}

func TestBadFallbackIsAnError(t *testing.T) {
	c, _ := testClient(t, nil, WithFallbacks("http://backup/api"))
	if _, err := c.Get("http://127.0.0.1:1/"); err == nil || !strings.Contains(err.Error(), `fallback "http://backup/api"`) {
		t.Errorf("Get with a fallback that has a path: %v, want an error naming it", err)
	}
}

func TestKeptResponseWhenLastAttemptFails(t *testing.T) {
	// The first attempt gets a 503, the second a reset: the caller gets
	// the 503, body and all, rather than a bare error.
	srv := newFaultServer(t, func(n int64, c *net.TCPConn) bool {
		if n == 1 {
			// Connection: close, so that the next attempt dials afresh and
			// net/http's own retry of reused connections stays out of it.
			io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy")
			return false
		}
		return reset(c)
	})
	c, _ := testClient(t, newFakeClock(), WithMaxAttempts(2))
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || string(body) != "busy" || srv.requests.Load() != 2 {
		t.Errorf("Get = %d %q after %d requests, want the kept 503 \"busy\" after 2", resp.StatusCode, body, srv.requests.Load())
	}
}

func TestTooManyRequests(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		opts      []Option
		wantCount int64
		wantCode  int
	}{
		{"not retried by default", "GET", nil, 1, 429},
		{"retried when asked", "GET", []Option{WithRetry429()}, 2, 200},
		{"POST reached the server: not retried", "POST", []Option{WithRetry429()}, 1, 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, count := counting(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", "2")
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return
				}
				io.WriteString(w, "ok")
			})
			clk := newFakeClock()
			c, _ := testClient(t, clk, tt.opts...)
			req, _ := http.NewRequest(tt.method, srv.URL, strings.NewReader("x"))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || count.Load() != tt.wantCount {
				t.Errorf("Do = %d after %d requests, want %d after %d", resp.StatusCode, count.Load(), tt.wantCode, tt.wantCount)
			}
			if tt.wantCount == 2 {
				if waits := clk.Waits(); len(waits) != 1 || waits[0] != 2*time.Second {
					t.Errorf("waits = %v, want the 2s Retry-After", waits)
				}
			}
		})
	}
}

// failingReader fails part way, as a body streamed from a broken source.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		r.n--
		return copy(p, "data"), nil
	}
	return 0, errors.New("disk on fire")
}

func TestUnreadableBodyIsNotSent(t *testing.T) {
	srv, count := counting(t, func(int64, http.ResponseWriter, *http.Request) {})
	c, _ := testClient(t, nil)
	req, _ := http.NewRequest("PUT", srv.URL, &failingReader{n: 2})
	_, err := c.Do(req)
	var ce *Error
	if !errors.As(err, &ce) || ce.Attempts != 0 || ce.Cause != cause.HTTPRequestError || count.Load() != 0 {
		t.Fatalf("Do = %v after %d requests, want http_request_error, nothing sent", err, count.Load())
	}
	if !strings.Contains(ce.Error(), "not sent: http_request_error") || !strings.Contains(ce.Error(), "disk on fire") {
		t.Errorf("Error() = %q", ce.Error())
	}
}

func TestLargeBodyFailsOverWhenNeverSent(t *testing.T) {
	payload := bytes.Repeat([]byte("y"), 8192)
	var got atomic.Int64
	fb, count := counting(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(int64(len(b)))
	})
	c, _ := testClient(t, newFakeClock(), WithBodyBufferLimit(1024), WithFallbacks(fb.URL))
	req, _ := http.NewRequest("POST", "http://"+deadAddr(t)+"/upload", opaque{bytes.NewReader(payload)})
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || count.Load() != 1 || got.Load() != 8192 {
		t.Errorf("Do = %d; fallback saw %d requests, %d body bytes; want the whole streamed body delivered once",
			resp.StatusCode, count.Load(), got.Load())
	}
}

// Concurrent requests share the per-host budget and breaker; run with -race.
func TestConcurrentRequests(t *testing.T) {
	srv, _ := counting(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
		if n%4 == 0 { // a quarter fail: under the breaker's ratio
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	var attempts atomic.Int64
	c, _ := testClient(t, newFakeClock(), WithOnAttempt(func(AttemptInfo) { attempts.Add(1) }))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 10 {
				resp, err := c.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if attempts.Load() < 160 {
		t.Errorf("%d attempts for 160 requests", attempts.Load())
	}
}
