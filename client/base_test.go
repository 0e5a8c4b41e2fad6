package client

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/limits"
)

// bigHeader answers 200 with an X-Big header of n bytes.
func bigHeader(n int) func(int64, *net.TCPConn) bool {
	return func(_ int64, c *net.TCPConn) bool {
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: " + strings.Repeat("a", n) + "\r\n\r\nok"))
		return true
	}
}

func TestResponseHeaderLimit(t *testing.T) {
	cases := []struct {
		name   string
		header int
		opts   []Option
		want   cause.Cause // None: a 200
	}{
		{"under the default", 60 << 10, nil, cause.None},
		{"over the default", 100 << 10, nil, cause.HTTPResponseHeaderSectionSize},
		{"under a raised limit", 100 << 10, []Option{WithMaxResponseHeaderBytes(200 << 10)}, cause.None},
		{"over a lowered limit", 8 << 10, []Option{WithMaxResponseHeaderBytes(4 << 10)}, cause.HTTPResponseHeaderSectionSize},
		{"a caller's base keeps its own limit", 100 << 10, []Option{WithBase(&http.Transport{})}, cause.None},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFaultServer(t, bigHeader(tc.header))
			c, _ := testClient(t, newFakeClock(), append([]Option{WithMaxAttempts(2)}, tc.opts...)...)
			resp, err := c.Get(srv.URL)
			if tc.want == cause.None {
				if err != nil {
					t.Fatalf("Get: %v, want 200", err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d, want 200", resp.StatusCode)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Get = %v, want an *Error", err)
			}
			if e.Cause != tc.want || e.Attempts != 2 || srv.requests.Load() != 2 {
				t.Errorf("cause %v after %d attempts (%d requests), want %v after 2", e.Cause, e.Attempts, srv.requests.Load(), tc.want)
			}
		})
	}
}

// TestDefaultBaseLimits checks that the default base transport takes every
// upstream limit from package limits, where the gateway and the probe take
// theirs.
func TestDefaultBaseLimits(t *testing.T) {
	b := (&Transport{}).defaultBase()
	defer b.CloseIdleConnections()
	if b.MaxResponseHeaderBytes != limits.MaxResponseHeaderBytes || b.TLSHandshakeTimeout != limits.ConnectTimeout ||
		b.ResponseHeaderTimeout != limits.ResponseHeaderTimeout || b.IdleConnTimeout != limits.IdleConnTimeout ||
		b.ExpectContinueTimeout != limits.ExpectContinueTimeout {
		t.Errorf("default base: header %d, TLS %v, response header %v, idle %v, expect %v; want package limits",
			b.MaxResponseHeaderBytes, b.TLSHandshakeTimeout, b.ResponseHeaderTimeout, b.IdleConnTimeout, b.ExpectContinueTimeout)
	}
	if b.Proxy == nil || !b.ForceAttemptHTTP2 {
		t.Errorf("default base lost http.DefaultTransport's proxy (%v) or HTTP/2 (%v)", b.Proxy != nil, b.ForceAttemptHTTP2)
	}
	if got := (&Transport{MaxResponseHeaderBytes: 1 << 20}).defaultBase().MaxResponseHeaderBytes; got != 1<<20 {
		t.Errorf("MaxResponseHeaderBytes 1 MiB: base limit %d", got)
	}
}
