package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"encoding/binary"
)

// With Transport.Timeout, a deadline that fires leaves *Error reachable
// with errors.As (http.Client.Timeout would hide it: see Transport.Timeout).
func TestClientTimeoutKeepsError(t *testing.T) {
	f := newFaultServer(t, func(n int64, c *net.TCPConn) bool { return true }) // hang
	c := New(WithMaxAttempts(3), WithTimeout(300*time.Millisecond))
	defer c.CloseIdleConnections()
	_, err := c.Get(f.URL)
	if err == nil {
		t.Fatal("no error")
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Errorf("errors.As(*client.Error) = false for %T: %v", errors.Unwrap(err), err)
	}
}

// A discarded 502 whose body stalls must not hold up the retry.
func TestStalledErrorBodyDoesNotBlockRetry(t *testing.T) {
	var n atomic.Int64
	f := newFaultServer(t, func(_ int64, c *net.TCPConn) bool {
		if n.Add(1) == 1 {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 100\r\n\r\npartial...")
			return true // then hang: body never completes
		}
		return writeOK(c)
	})
	c, _ := testClient(t, nil, WithBackoff(time.Millisecond, time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.URL, nil)
	start := time.Now()
	resp, err := c.Do(req)
	el := time.Since(start)
	if err != nil {
		t.Fatalf("after %v: %v (attempts to server: %d)", el, err, n.Load())
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || el > time.Second {
		t.Errorf("got %d after %v, want 200 at once", resp.StatusCode, el)
	}
}

// A Retry-After larger than int64 is very long, not absent.
func TestRetryAfterOverflowSaturates(t *testing.T) {
	d, ok := retryAfter(&http.Response{Header: http.Header{"Retry-After": {"99999999999999999999"}}}, time.Now())
	if !ok || d < time.Hour {
		t.Errorf("retryAfter(huge) = %v, %v; want saturated, true", d, ok)
	}
}

// A Base RoundTripper that does not fire httptrace hooks (HTTP/3, a
// custom or recording transport) leaves Phase none and Written false, so a
// connection reset after the server got a POST is classified
// connection_terminated/unsent and the POST is sent again.
type deliverThenEOF struct{ n atomic.Int64 }

func (d *deliverThenEOF) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	if d.n.Add(1) == 1 {
		return nil, io.ErrUnexpectedEOF // the server got it, then the conn died
	}
	return &http.Response{StatusCode: 201, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

func TestUntracedBaseDoesNotRetryPOST(t *testing.T) {
	base := &deliverThenEOF{}
	c, _ := testClient(t, newFakeClock(), WithBase(base))
	resp, err := c.Post("http://example.invalid/pay", "text/plain", strings.NewReader("x"))
	if err == nil {
		resp.Body.Close()
	}
	if base.n.Load() != 1 {
		t.Errorf("POST without Idempotency-Key delivered %d times", base.n.Load())
	}
}

// net/http's HTTP/2 transport retries a request whose stream the peer
// reset with PROTOCOL_ERROR, whatever its method, when GetBody is set; the
// Transport sets GetBody on every attempt (even when the caller's request
// had none), so a POST the server already received is delivered twice.
func TestH2StreamResetDoesNotResendPOST(t *testing.T) {
	h2case(t, "holdfast-nogetbody")
}

func h2case(t *testing.T, mode string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var delivered atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				preface := make([]byte, 24)
				if _, err := io.ReadFull(br, preface); err != nil {
					return
				}
				write := func(typ, flags byte, stream uint32, p []byte) {
					h := make([]byte, 9)
					h[0], h[1], h[2] = byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
					h[3], h[4] = typ, flags
					binary.BigEndian.PutUint32(h[5:], stream)
					c.Write(append(h, p...))
				}
				write(4, 0, 0, nil) // SETTINGS
				for {
					h := make([]byte, 9)
					if _, err := io.ReadFull(br, h); err != nil {
						return
					}
					n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
					typ, flags := h[3], h[4]
					stream := binary.BigEndian.Uint32(h[5:]) & 0x7fffffff
					if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
						return
					}
					switch {
					case typ == 4 && flags&1 == 0:
						write(4, 1, 0, nil) // SETTINGS ACK
					case (typ == 0 || typ == 1) && flags&1 != 0:
						delivered.Add(1)                        // the whole request arrived
						write(3, 0, stream, []byte{0, 0, 0, 1}) // RST_STREAM PROTOCOL_ERROR
					}
				}
			}()
		}
	}()
	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	defer h2.CloseIdleConnections()
	var c *http.Client
	var body io.Reader = io.NopCloser(bytes.NewReader([]byte("charge=1")))
	switch mode {
	case "holdfast-nogetbody":
		c, _ = testClient(t, newFakeClock(), WithBase(h2), WithMaxAttempts(1))
	case "plain-getbody":
		c = &http.Client{Transport: h2}
		body = bytes.NewReader([]byte("charge=1"))
	case "plain-nogetbody":
		c = &http.Client{Transport: h2}
	}
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/pay", body)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := c.Do(req.WithContext(ctx))
	if err == nil {
		resp.Body.Close()
	}
	t.Logf("err=%v", err)
	if d := delivered.Load(); d != 1 {
		t.Errorf("POST without Idempotency-Key, MaxAttempts 1, delivered %d times", d)
	}
}

// A probe from an earlier half-open period must not count in the next one.
func TestStaleProbeIgnored(t *testing.T) {
	h := newHost(&Transport{Breaker: BreakerConfig{MinAttempts: 1, HalfOpenProbes: 2, CoolDown: time.Second}}, "")
	b := &h.breaker
	now := time.Now()
	b.record(now, failure, 0) // opens
	now = now.Add(2 * time.Second)
	pa, _ := b.allow(now)      // probe A
	pb, _ := b.allow(now)      // probe B
	b.record(now, failure, pb) // B fails: open again
	now = now.Add(2 * time.Second)
	pc, ok := b.allow(now) // half-open again: probe C
	if !ok {
		t.Fatal("no probe after the second cool-down")
	}
	b.record(now, success, pa) // A, from the earlier period, ends well: must not close the circuit
	if b.state != BreakerHalfOpen {
		t.Errorf("a stale probe changed the state to %v", b.state)
	}
	b.record(now, ignored, pc)
	if b.inFlight != 0 {
		t.Errorf("inFlight = %d, want 0", b.inFlight)
	}
}

// A hung first attempt ends at AttemptTimeout and the GET is retried, well
// within the caller's deadline; a POST without a key is not retried, since
// the server may be working on it.
func TestAttemptTimeout(t *testing.T) {
	for _, tc := range []struct {
		method   string
		attempts int64
		ok       bool
	}{
		{"GET", 2, true},
		{"POST", 1, false},
	} {
		t.Run(tc.method, func(t *testing.T) {
			var n atomic.Int64
			f := newFaultServer(t, func(_ int64, c *net.TCPConn) bool {
				if n.Add(1) == 1 {
					return true // hang
				}
				return writeOK(c)
			})
			c := New(WithAttemptTimeout(200*time.Millisecond), WithBackoff(time.Millisecond, time.Millisecond))
			defer c.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, tc.method, f.URL, strings.NewReader("x"))
			start := time.Now()
			resp, err := c.Do(req)
			el := time.Since(start)
			if tc.ok {
				if err != nil {
					t.Fatalf("after %v: %v", el, err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || el > 2*time.Second {
					t.Errorf("status %d after %v", resp.StatusCode, el)
				}
			} else {
				var ce *Error
				if !errors.As(err, &ce) || ce.Cause.String() != "http_response_timeout" || ce.Stop != StopNotIdempotent {
					t.Fatalf("err = %v, want an *Error with http_response_timeout, not retried", err)
				}
				if el > 2*time.Second {
					t.Errorf("took %v", el)
				}
			}
			if got := n.Load(); got != tc.attempts {
				t.Errorf("server saw %d requests, want %d", got, tc.attempts)
			}
		})
	}
}

// Hosts unused for long are forgotten once many are kept, but never one
// whose circuit is open.
func TestHostStatePruned(t *testing.T) {
	clk := newFakeClock()
	tr := &Transport{}
	tr.now = clk.Now
	tr.init()
	open := tr.host(mustURL(t, "http://open.example"), tr.clock())
	open.breaker.mu.Lock()
	open.breaker.state, open.breaker.openedAt = BreakerHalfOpen, clk.Now()
	open.breaker.mu.Unlock()
	for i := 0; i < maxHosts; i++ {
		tr.host(mustURL(t, fmt.Sprintf("http://h%d.example", i)), tr.clock())
	}
	clk.Advance(hostIdle + time.Minute)
	tr.host(mustURL(t, "http://new.example"), tr.clock()) // over the limit: prunes
	tr.mu.Lock()
	n, kept := len(tr.hosts), tr.hosts[hostID{"http", "open.example"}] != nil
	tr.mu.Unlock()
	if n != 2 || !kept {
		t.Errorf("%d hosts kept (open circuit kept: %v), want 2: the new one and the one whose circuit is not closed", n, kept)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
