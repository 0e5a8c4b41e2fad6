package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/testutil"
)

// lineBackend is a raw upstream that records every request line exactly as
// it arrived, and answers each request with a fixed response. A Go server
// would refuse a broken request line; this one shows what holdfast sent.
type lineBackend struct {
	addr     string
	mu       sync.Mutex
	lines    []string
	response string
}

func startLineBackend(t *testing.T, response string) *lineBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &lineBackend{addr: ln.Addr().String(), response: response}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					b.mu.Lock()
					b.lines = append(b.lines, strings.TrimRight(line, "\r\n"))
					b.mu.Unlock()
					for { // the rest of the head; no request here has a body
						l, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if l == "\r\n" || l == "\n" {
							break
						}
					}
					if _, err := io.WriteString(c, b.response); err != nil {
						return
					}
				}
			}()
		}
	}()
	return b
}

func (b *lineBackend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.lines)
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

// h2Request sends one request over HTTP/2 with the pseudo-header fields
// given as they are (a Go client would refuse to send a broken :method),
// and returns the response status, or 0 with the reason if the stream was
// reset or the connection went away.
func h2Request(t *testing.T, addr string, fields ...string) (int, string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatal("server did not negotiate h2")
	}
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true})
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return 0, err.Error()
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			hf, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hf {
				if h.Name == ":status" {
					var n int
					fmt.Sscan(h.Value, &n)
					return n, ""
				}
			}
		case *http2.RSTStreamFrame:
			return 0, "stream reset: " + f.ErrCode.String()
		case *http2.GoAwayFrame:
			return 0, "goaway: " + f.ErrCode.String()
		}
	}
}

// TestHTTP2RequestLineInjection: over HTTP/2 the method and path are fields
// of their own; holdfast writes them into an HTTP/1.1 request line, so one
// holding a space or control character would rewrite that line. Each is
// refused, and nothing reaches the upstream.
func TestHTTP2RequestLineInjection(t *testing.T) {
	b := startLineBackend(t, okResponse)
	cfg := poolConfig("", "http://"+b.addr)
	e := newEnv(t, cfg)
	srv := httptest.NewUnstartedServer(e.h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	status, why := h2Request(t, addr, ":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/public")
	if status != 200 {
		t.Fatalf("a plain HTTP/2 GET got %d %s", status, why)
	}
	for _, tc := range []struct{ name, method, path string }{
		{"method with a request line", "GET /admin HTTP/1.1", "/public"},
		{"method with CRLF", "GET\r\nX-Injected: 1\r\n", "/public"},
		{"path with a space", "GET", "/public HTTP/1.1\r\nX-Injected: 1"},
		{"path with a tab", "GET", "/a\tb"},
		{"query with a space", "GET", "/public?a=1 HTTP/1.1"},
		{"path with DEL", "GET", "/a\x7fb"},
		{"method with a slash", "GET/", "/public"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(b.seen())
			status, why := h2Request(t, addr, ":method", tc.method, ":scheme", "https", ":authority", "example.com", ":path", tc.path)
			switch {
			case status == 0 && strings.HasPrefix(why, "stream reset"):
				t.Logf("refused by the HTTP/2 server itself: %s", why)
			case status != 400:
				t.Errorf("status %d %s, want 400 (or the stream refused)", status, why)
			}
			if got := b.seen()[before:]; len(got) != 0 {
				t.Errorf("reached the upstream as %q", got)
			}
		})
	}
	if lines := b.seen(); len(lines) != 1 || lines[0] != "GET /public HTTP/1.1" {
		t.Errorf("upstream saw %q, want only the plain GET", lines)
	}
}

// TestUpstreamClientRefusesUnwritableRequests is the second line of
// defence: whatever reaches the upstream client, it writes no request line
// or header that a byte could break, and dials nothing for one.
func TestUpstreamClientRefusesUnwritableRequests(t *testing.T) {
	b := startLineBackend(t, okResponse)
	e := newEnv(t, poolConfig("", "http://"+b.addr))
	pool := e.h.list[0]
	for _, tc := range []struct {
		name string
		mod  func(*http.Request)
	}{
		{"method with a space", func(r *http.Request) { r.Method = "GET /admin" }},
		{"method with NUL", func(r *http.Request) { r.Method = "GET\x00" }},
		{"query with a space", func(r *http.Request) { r.URL.RawQuery = "a=1 HTTP/1.1\r\nX: y" }},
		{"header value with LF", func(r *http.Request) { r.Header.Set("X-A", "1\nX-Injected: 1") }},
		{"header value with CR", func(r *http.Request) { r.Header["X-A"] = []string{"1\rX"} }},
		{"header value with NUL", func(r *http.Request) { r.Header["X-A"] = []string{"1\x00"} }},
		{"header name with a colon", func(r *http.Request) { r.Header["X-A: b"] = []string{"1"} }},
		{"Host with CRLF", func(r *http.Request) { r.Host = "a\r\nX-Injected: 1" }},
		{"trailer value with LF", func(r *http.Request) { r.Trailer = http.Header{"X-T": {"1\n2"}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: b.addr, Path: "/"}, Header: http.Header{}, Host: "example.com", ProtoMajor: 1, ProtoMinor: 1}
			tc.mod(req)
			resp, err := pool.h1[0].roundTrip(t.Context(), req, &attemptTrace{})
			if resp != nil {
				resp.Body.Close()
			}
			if c := cause.Of(err); c != cause.HTTPRequestError {
				t.Errorf("roundTrip error %v (cause %v), want http_request_error", err, c)
			}
		})
	}
	if lines := b.seen(); len(lines) != 0 {
		t.Errorf("upstream saw %q", lines)
	}
}

// TestResponseHeadersPassThrough: the client gets the upstream's header as
// it was sent, less the hop-by-hop fields, plus only what holdfast documents
// that it adds (Via, X-Request-Id, and Date when absent). No Content-Type is
// sniffed for a body that has none.
func TestResponseHeadersPassThrough(t *testing.T) {
	const body = "<html><script>alert(1)</script></html>"
	resp := "HTTP/1.1 200 OK\r\n" +
		"X-Content-Type-Options: nosniff\r\n" +
		"Set-Cookie: a=1\r\n" +
		"Set-Cookie: b=2\r\n" +
		"X-Custom: Mixed Case Value\r\n" +
		"Via: 1.0 origin-cache\r\n" +
		"Cache-Control: no-store\r\n" +
		"Connection: keep-alive, X-Hop\r\n" +
		"X-Hop: dropped\r\n" +
		"Keep-Alive: timeout=30\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	b := startLineBackend(t, resp)
	e := newEnv(t, poolConfig("", "http://"+b.addr))
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			client := http.DefaultClient
			url := e.URL
			if proto == "HTTP/2.0" {
				srv := httptest.NewUnstartedServer(e.h)
				srv.EnableHTTP2 = true
				srv.StartTLS()
				t.Cleanup(srv.Close)
				client, url = srv.Client(), srv.URL
			}
			r, err := client.Get(url + "/")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.Proto != proto || string(got) != body {
				t.Fatalf("%s %q", r.Proto, got)
			}
			want := http.Header{
				"X-Content-Type-Options": {"nosniff"},
				"Set-Cookie":             {"a=1", "b=2"},
				"X-Custom":               {"Mixed Case Value"},
				"Via":                    {"1.0 origin-cache, 1.1 holdfast"},
				"Cache-Control":          {"no-store"},
				"Content-Length":         {fmt.Sprint(len(body))},
			}
			have := r.Header.Clone()
			if have.Get("X-Request-Id") == "" || have.Get("Date") == "" {
				t.Errorf("X-Request-Id %q, Date %q: want both added", have.Get("X-Request-Id"), have.Get("Date"))
			}
			delete(have, "X-Request-Id")
			delete(have, "Date")
			if fmt.Sprint(have) != fmt.Sprint(want) {
				t.Errorf("response header\n got %v\nwant %v", have, want)
			}
		})
	}
}

// TestXRealIPTrustedOnlyFromTrustedProxies: X-Real-IP, which backends
// commonly take as the client's address, is set by holdfast unless a
// trusted proxy sent it.
func TestXRealIPTrustedOnlyFromTrustedProxies(t *testing.T) {
	var got string
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("X-Real-Ip")
	}))
	for _, tc := range []struct{ name, trusted, sent, want string }{
		{"untrusted, forged", "", "203.0.113.9", "127.0.0.1"},
		{"untrusted, absent", "", "", "127.0.0.1"},
		{"trusted, sent", "trusted_proxies: [127.0.0.1/32]\n", "203.0.113.9", "203.0.113.9"},
		{"trusted, absent", "trusted_proxies: [127.0.0.1/32]\n", "", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.trusted+poolConfig("", b.URL))
			var hdr []string
			if tc.sent != "" {
				hdr = []string{"X-Real-IP", tc.sent}
			}
			wantStatus(t, e.do("GET", "/", "", hdr...), 200)
			if got != tc.want {
				t.Errorf("X-Real-IP at the upstream = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestHeaderFieldCountLimit: more than client.max_header_count fields get
// 431 without reaching the upstream; exactly the limit passes.
func TestHeaderFieldCountLimit(t *testing.T) {
	b := testutil.Backend(t, nil)
	e := newEnv(t, "client: {max_header_count: 20}\n"+poolConfig("", b.URL))
	send := func(n int) int {
		req, _ := http.NewRequest("GET", e.URL+"/", nil)
		// Go's client adds User-Agent and Accept-Encoding.
		for i := 0; i < n-2; i++ {
			req.Header.Add("X-Field", fmt.Sprint(i))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := send(20); s != 200 {
		t.Errorf("20 fields: %d, want 200", s)
	}
	before := b.Requests.Load()
	if s := send(21); s != 431 {
		t.Errorf("21 fields: %d, want 431", s)
	}
	if b.Requests.Load() != before {
		t.Error("the refused request reached the upstream")
	}
	// The default is 100, as Apache's LimitRequestFields.
	d := newEnv(t, poolConfig("", b.URL))
	if d.h.maxHeaderCount != 100 {
		t.Errorf("default max_header_count = %d, want 100", d.h.maxHeaderCount)
	}
}

// TestForwardingLookalikesDropped: CGI-style backends read X_Real_IP as
// X-Real-IP; a client must not set through one spelling what holdfast
// controls in the other.
func TestForwardingLookalikesDropped(t *testing.T) {
	var got http.Header
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
	}))
	e := newEnv(t, poolConfig("", b.URL))
	req, _ := http.NewRequest("GET", e.URL+"/", nil)
	req.Header["X_Real_IP"] = []string{"203.0.113.9"}
	req.Header["X_Forwarded_For"] = []string{"203.0.113.9"}
	req.Header["X_Custom"] = []string{"kept"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, v := range got {
		for _, s := range v {
			if strings.Contains(s, "203.0.113.9") {
				t.Errorf("%s: %q reached the upstream", k, s)
			}
		}
	}
	if got.Get("X_Custom") == "" && got.Get("X-Custom") == "" {
		t.Errorf("an unrelated header with underscores was dropped: %v", got)
	}
}
