package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestUnreadBodyIsBounded: a request holdfast answers without reading its
// body (no route, OPTIONS *) announces a body that never comes. net/http
// discards what is left of a body before it answers, with no deadline of
// its own: without client.body_timeout on that wait, the connection (and a
// client.max_connections slot) would be held for good.
func TestUnreadBodyIsBounded(t *testing.T) {
	a := testutil.Backend(t, nil)
	yaml := fmt.Sprintf("listen:\n  - addr: \"127.0.0.1:0\"\nclient: {max_connections: 3, body_timeout: 300ms, idle_timeout: 500ms, read_header_timeout: 500ms}\nroutes:\n  - match: {path_prefix: /api}\n    upstream: p\nupstreams:\n  p:\n    servers:\n      - {url: %q}\n", a.URL)
	_, addr, _ := startLogged(t, yaml, nil)
	for _, tc := range []struct{ req string }{
		{"POST /nothere HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"},
		{"OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"},
		{"POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, tc.req)
		start := time.Now()
		c.SetReadDeadline(start.Add(4 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: no answer after %v: %v", tc.req[:14], time.Since(start).Round(time.Millisecond), err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if took := time.Since(start); took > 1300*time.Millisecond {
			t.Errorf("%q: answered %d after %v, want within body_timeout and a second", tc.req[:14], resp.StatusCode, took)
		}
		if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
			t.Errorf("%q: after the answer (%s): %q, %v; want the connection closed", tc.req[:14], resp.Header.Get("Connection"), rest, err)
		}
	}
	// The slots came back: a client is served.
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + "/api/ok")
	if err != nil {
		t.Fatalf("a client after them: %v", err)
	}
	resp.Body.Close()
}

// TestKeptResponseOverHTTP2BoundedBySendTimeout: an upstream error response
// kept for the client (retries ran out with no later response) is written
// under client.send_timeout too. An HTTP/2 client that never opens its
// flow-control window would otherwise hold the handler for good.
func TestKeptResponseOverHTTP2BoundedBySendTimeout(t *testing.T) {
	var n atomic.Int64
	a := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 {
			w.WriteHeader(503)
			w.Write(bytes.Repeat([]byte("e"), 60<<10))
			return
		}
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close() // no response at all: the 503 is what the client gets
		}
	}))
	listen, pool := tlsListen(t)
	yaml := fmt.Sprintf("listen:\n%sclient: {send_timeout: 300ms}\nroutes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    retry: {tries: 2, backoff: 1ms, backoff_max: 1ms}\n    servers:\n      - {url: %q, max_fails: 100}\n", listen, a.URL)
	_, addr, access := startLogged(t, yaml, nil)

	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "x"}, {":path", "/kept"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	start := time.Now()
	go func() { // answer settings; never open the window
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
				fr.WriteSettingsAck()
			}
		}
	}()
	if m := access.waitLine("path", "/kept", 2*time.Second); m == nil {
		t.Errorf("%v after the request (send_timeout 300ms) the kept response still holds the handler", time.Since(start).Round(time.Millisecond))
	}
}
