package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// hang holds the request on c unanswered for up to 5s, and sends on ended
// what ended the wait: io.EOF when the client closed the connection.
func hang(c *net.TCPConn, ended chan<- error) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	ended <- err
	return false
}

// A GET whose first attempt hangs is answered by its hedge, on a new
// connection, in well under the hang; the hung attempt is canceled and
// its connection closed; the winner's body is read after RoundTrip
// returned.
func TestHedgeBeatsHungAttempt(t *testing.T) {
	hungEnded := make(chan error, 1)
	f := newFaultServer(t, func(n int64, c *net.TCPConn) bool {
		if n == 1 {
			return hang(c, hungEnded)
		}
		return writeOK(c)
	})
	var rec recorder
	c, _ := testClient(t, nil, WithHedging(50*time.Millisecond, 2), WithTimeout(10*time.Second), WithOnAttempt(rec.hook))
	start := time.Now()
	resp, err := c.Get(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("Get = %d %q, %v; want 200 ok", resp.StatusCode, body, err)
	}
	if el > 2*time.Second {
		t.Errorf("Get took %v, want well under the 5s hang", el)
	}
	if got := f.requests.Load(); got != 2 {
		t.Errorf("server saw %d requests, want 2", got)
	}
	select {
	case err := <-hungEnded:
		if err != io.EOF {
			t.Errorf("the hung request ended with %v, want the client closing its connection (EOF)", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("the hung attempt's connection is still open: the loser was not canceled")
	}
	infos := rec.all()
	if len(infos) != 2 {
		t.Fatalf("OnAttempt saw %d attempts, want 2: %v", len(infos), infos)
	}
	if i := infos[0]; i.N != 1 || i.Hedge || i.Stop != StopSuperseded || i.Cause != cause.ClientClosed {
		t.Errorf("first report = %+v, want attempt 1, not a hedge, superseded", i)
	}
	if i := infos[1]; i.N != 2 || !i.Hedge || i.Status != 200 || i.Cause != cause.None || i.Retry {
		t.Errorf("second report = %+v, want attempt 2, a hedge, 200", i)
	}
}

// Only requests safe to send twice, whose body can be replayed, are
// hedged.
func TestHedgeOnlyWhatIsSafe(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		key      bool
		streamed bool // a body over BodyBufferLimit
		upgrade  bool // asks for a WebSocket
		requests int64
	}{
		{"POST without key", http.MethodPost, false, false, false, 1},
		{"POST with key", http.MethodPost, true, false, false, 2},
		{"PATCH with key", http.MethodPatch, true, false, false, 2},
		{"PUT", http.MethodPut, false, false, false, 2},
		{"PUT streamed", http.MethodPut, false, true, false, 1},
		{"GET upgrade", http.MethodGet, false, false, true, 1},
		{"GET", http.MethodGet, false, false, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hungEnded := make(chan error, 1)
			f := newFaultServer(t, func(n int64, c *net.TCPConn) bool {
				if n == 1 {
					return hang(c, hungEnded)
				}
				return writeOK(c)
			})
			opts := []Option{WithHedging(50*time.Millisecond, 2), WithTimeout(500 * time.Millisecond)}
			var body io.Reader = strings.NewReader("payload")
			if tc.streamed {
				opts = append(opts, WithBodyBufferLimit(-1))
				body = opaque{body}
			}
			c, _ := testClient(t, nil, opts...)
			req, _ := http.NewRequest(tc.method, f.URL, body)
			if tc.key {
				req.Header.Set("Idempotency-Key", "k1")
			}
			if tc.upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
			}
			resp, err := c.Do(req)
			if tc.requests == 2 {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d, want 200 from the hedge", resp.StatusCode)
				}
			} else {
				var ce *Error
				if !errors.As(err, &ce) || ce.Stop != StopDeadline || ce.Attempts != 1 {
					t.Errorf("Do = %v, want one attempt that timed out", err)
				}
			}
			if got := f.requests.Load(); got != tc.requests {
				t.Errorf("server saw %d requests, want %d", got, tc.requests)
			}
		})
	}
}

// With a fallback, the hedge goes there, with the whole body and the key.
func TestHedgeGoesToFallback(t *testing.T) {
	hungEnded := make(chan error, 1)
	primary := newFaultServer(t, func(_ int64, c *net.TCPConn) bool { return hang(c, hungEnded) })
	backup, seen := counting(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "backup got "+string(b)+" with key "+r.Header.Get("Idempotency-Key"))
	})
	var rec recorder
	c, _ := testClient(t, nil, WithHedging(50*time.Millisecond, 2), WithFallbacks(backup.URL), WithOnAttempt(rec.hook))
	req, _ := http.NewRequest(http.MethodPost, primary.URL+"/x?y=1", strings.NewReader("one order"))
	req.Header.Set("Idempotency-Key", "k1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "backup got one order with key k1" || resp.Request.URL.String() != backup.URL+"/x?y=1" {
		t.Errorf("got %q from %v, want the backup's answer", body, resp.Request.URL)
	}
	if primary.requests.Load() != 1 || seen.Load() != 1 {
		t.Errorf("primary saw %d, backup %d requests; want 1 and 1", primary.requests.Load(), seen.Load())
	}
	if infos := rec.all(); len(infos) != 2 || !infos[1].Hedge || infos[1].URL != backup.URL+"/x?y=1" {
		t.Errorf("attempts = %v, want the hedge to the backup last", infos)
	}
}

// A hedge takes a token of the retry budget; with none to spare, a slow
// request is not hedged.
func TestHedgeNeedsBudget(t *testing.T) {
	hungEnded := make(chan error, 1)
	f := newFaultServer(t, func(n int64, c *net.TCPConn) bool {
		switch n {
		case 1:
			return hang(c, hungEnded)
		case 3:
			time.Sleep(300 * time.Millisecond) // slow, but answers
		}
		return writeOK(c)
	})
	var rec recorder
	// One token: the first hedge spends it, and its success gives back
	// only 0.1, not more than half of the bucket.
	c, _ := testClient(t, nil, WithHedging(50*time.Millisecond, 2), WithBudget(BudgetConfig{MaxTokens: 1}), WithOnAttempt(rec.hook))
	for i := range 2 {
		resp, err := c.Get(f.URL)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
	}
	if got := f.requests.Load(); got != 3 {
		t.Errorf("server saw %d requests, want 3: a hedge for the first request, none for the second", got)
	}
	if infos := rec.all(); len(infos) != 3 || infos[2].Hedge || infos[2].N != 1 {
		t.Errorf("attempts = %v, want the second request answered by its only attempt", infos)
	}
}

// A hedge that fails while the first attempt still hangs is reported and
// kept waiting on; the next hedge answers, and the hung one is canceled.
func TestHedgeFailureWhileOthersInFlight(t *testing.T) {
	hungEnded := make(chan error, 1)
	f := newFaultServer(t, func(n int64, c *net.TCPConn) bool {
		switch n {
		case 1:
			return hang(c, hungEnded)
		case 2:
			io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
			return true
		}
		return writeOK(c)
	})
	var rec recorder
	c, _ := testClient(t, nil, WithHedging(50*time.Millisecond, 2), WithMaxAttempts(3), WithOnAttempt(rec.hook))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || f.requests.Load() != 3 {
		t.Errorf("status %d after %d requests, want 200 after 3", resp.StatusCode, f.requests.Load())
	}
	infos := rec.all()
	if len(infos) != 3 {
		t.Fatalf("attempts = %v, want 3", infos)
	}
	if i := infos[0]; i.N != 2 || !i.Hedge || i.Status != 503 || !i.Retry || i.Pending != 1 {
		t.Errorf("first report = %+v, want hedge 2's 503, with one attempt pending", i)
	}
	if i := infos[1]; i.N != 1 || i.Stop != StopSuperseded {
		t.Errorf("second report = %+v, want attempt 1 superseded", i)
	}
	if i := infos[2]; i.N != 3 || !i.Hedge || i.Status != 200 {
		t.Errorf("third report = %+v, want hedge 3's 200", i)
	}
	if s := infos[0].String(); s != "waiting for 1 other attempt(s) in flight (503 Service Unavailable, attempt 2/3, hedge)" {
		t.Errorf("String() = %q", s)
	}
	if s := infos[1].String(); s != "canceled: another attempt answered first (attempt 1/3)" {
		t.Errorf("String() = %q", s)
	}
}

// Many hedged requests at once, some slow: every one gets its answer, and
// the race detector sees the round's goroutines share nothing unguarded.
func TestHedgeConcurrent(t *testing.T) {
	srv, count := counting(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n%3 == 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	c, _ := testClient(t, nil, WithHedging(20*time.Millisecond, 3), WithBudget(BudgetConfig{Disabled: true}))
	const requests = 30
	errs := make(chan error, requests)
	for i := range requests {
		go func() {
			want := strings.Repeat("x", i)
			req, _ := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader(want))
			resp, err := c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && (resp.StatusCode != 200 || string(b) != want) {
				err = errors.New("request " + strconv.Itoa(i) + ": got " + resp.Status + " " + string(b))
			}
			errs <- err
		}()
	}
	for range requests {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := count.Load(); n < requests {
		t.Errorf("server saw %d requests, want at least %d", n, requests)
	}
}
