package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// modelRequest is a request net/http's server would hand to its handler.
type modelRequest struct {
	start          int64 // stream offset of its request line
	method, target string
	both           bool // its head has both Content-Length and Transfer-Encoding
	// refuse: holdfast refuses its framing, a smuggling shape (both
	// lengths, Transfer-Encoding on HTTP/1.0, a folded field line).
	refuse bool
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// netHTTPRequests models the read loop of net/http's HTTP/1 server (conn.serve
// and conn.readRequest) over a client's byte stream, with http.ReadRequest
// doing the parsing, and returns the requests it would hand to a handler that
// reads every body to its end.
func netHTTPRequests(stream []byte) []modelRequest {
	src := &countingReader{r: bytes.NewReader(stream)}
	br := bufio.NewReaderSize(src, 4096) // the server's buffer size
	offset := func() int64 { return src.n - int64(br.Buffered()) }
	var out []modelRequest
	lastMethod := ""
	for {
		if lastMethod == "POST" {
			peek, _ := br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			br.Discard(n)
		}
		start := offset()
		req, err := http.ReadRequest(br)
		if err != nil {
			return out
		}
		// The raw head, as textproto reads it: http.ReadRequest drops
		// Host, and Content-Length when the body is chunked.
		raw := textproto.NewReader(bufio.NewReader(bytes.NewReader(stream[start:offset()])))
		if _, err := raw.ReadLine(); err != nil {
			panic("head re-read: " + err.Error())
		}
		rawHeader, err := raw.ReadMIMEHeader()
		if err != nil {
			panic("head re-read: " + err.Error())
		}
		// http1ServerSupportsRequest
		if req.ProtoMajor != 1 && !(req.ProtoMajor == 2 && req.ProtoMinor == 0 && req.Method == "PRI" && req.RequestURI == "*") {
			return out
		}
		lastMethod = req.Method
		hosts, haveHost := rawHeader["Host"]
		isH2Upgrade := req.Method == "PRI" && len(req.Header) == 0 && !haveHost && req.URL.Path == "*" && req.Proto == "HTTP/2.0"
		if req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && !isH2Upgrade && req.Method != "CONNECT" {
			return out
		}
		if len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
			return out
		}
		header := req.Header.Clone()
		if haveHost {
			header["Host"] = hosts
		}
		for k, vv := range header {
			if !httpguts.ValidHeaderFieldName(k) {
				return out
			}
			for _, v := range vv {
				if !httpguts.ValidHeaderFieldValue(v) {
					return out
				}
			}
		}
		if e := req.Header.Get("Expect"); e != "" && !hasToken(e, "100-continue") {
			return out // 417, and the connection is closed
		}
		both := len(rawHeader["Content-Length"]) > 0 && len(rawHeader["Transfer-Encoding"]) > 0
		te10 := len(rawHeader["Transfer-Encoding"]) > 0 && req.ProtoMajor == 1 && req.ProtoMinor == 0
		folded := bytes.Contains(stream[start:offset()], []byte("\n ")) || bytes.Contains(stream[start:offset()], []byte("\n\t"))
		out = append(out, modelRequest{
			start:  start,
			method: req.Method,
			target: req.RequestURI,
			both:   both,
			refuse: both || te10 || folded,
		})
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return out
		}
		// response.shouldReuseConnection: the connection ends after an
		// h2c upgrade, a first Connection field with "close", or HTTP/1.0
		// without keep-alive.
		conn := req.Header.Get("Connection")
		if isH2Upgrade || hasToken(conn, "close") ||
			(req.ProtoMajor == 1 && req.ProtoMinor == 0 && !hasToken(conn, "keep-alive")) {
			return out
		}
	}
}

// hasToken is net/http's (header.go): token t in the comma or space
// separated list v, ignoring ASCII case.
func hasToken(v, t string) bool {
	if len(t) > len(v) || t == "" {
		return false
	}
	if v == t {
		return true
	}
	boundary := func(b byte) bool { return b == ' ' || b == ',' || b == '\t' }
	for sp := 0; sp <= len(v)-len(t); sp++ {
		if b := v[sp]; b != t[0] && b|0x20 != t[0] {
			continue
		}
		if sp > 0 && !boundary(v[sp-1]) {
			continue
		}
		if end := sp + len(t); end != len(v) && !boundary(v[end]) {
			continue
		}
		if equalFoldASCII([]byte(v[sp:sp+len(t)]), t) {
			return true
		}
	}
	return false
}

// feed scans stream in reads whose sizes cycle through sizes (1 to 256
// bytes each), or in one read if sizes is empty.
func feed(fc *framingConn, stream, sizes []byte) {
	for i, j := 0, 0; i < len(stream); j++ {
		n := len(stream) - i
		if len(sizes) > 0 {
			n = min(n, int(sizes[j%len(sizes)])+1)
		}
		fc.scan(stream[i : i+n])
		i += n
	}
}

// checkFraming checks the scanner against the model of net/http for one
// stream. Every request net/http would hand over is either refused by the
// gateway's check, or starts where the scanner's head of the same index
// starts and has its request line; one with both Content-Length and
// Transfer-Encoding, or another shape holdfast refuses, is refused; and no
// request is refused because the scanner was lost where net/http was not
// (beyond the bound on pending heads, which this test reaches since it hands
// nothing over while scanning).
func checkFraming(t *testing.T, stream, sizes []byte) {
	t.Helper()
	want := netHTTPRequests(stream)
	fc := &framingConn{maxHead: 1 << 20}
	feed(fc, stream, sizes)
	heads := append([]headRec(nil), fc.heads...) // none handed over yet
	for i, m := range want {
		if !fc.lost || i+1 <= fc.lostAt {
			if i >= len(heads) {
				t.Fatalf("net/http hands over request %d (%s %q at offset %d), the scanner saw %d heads\nstream %q",
					i+1, m.method, m.target, m.start, len(heads), stream)
			}
			h := heads[i]
			if h.start != m.start || h.fp != requestFingerprint(m.method, m.target) {
				t.Fatalf("request %d: net/http reads %s %q at offset %d, the scanner's head starts at %d\nstream %q",
					i+1, m.method, m.target, m.start, h.start, stream)
			}
		}
		v, _ := fc.nextAmbiguous(&http.Request{Method: m.method, RequestURI: m.target})
		switch {
		case v == framingOutOfStep:
			t.Fatalf("request %d (%s %q): out of step\nstream %q", i+1, m.method, m.target, stream)
		case m.both && v == framingOK:
			t.Fatalf("request %d (%s %q) has both Content-Length and Transfer-Encoding, not refused\nstream %q",
				i+1, m.method, m.target, stream)
		case m.refuse && v == framingOK:
			t.Fatalf("request %d (%s %q) has a smuggling shape, not refused\nstream %q", i+1, m.method, m.target, stream)
		case v == framingLost && len(heads) < maxPending:
			t.Fatalf("request %d (%s %q) refused: the scanner lost track where net/http did not\nstream %q",
				i+1, m.method, m.target, stream)
		}
		if v != framingOK {
			break // the gateway answers 400 and closes the connection
		}
	}
}

// The two bypasses a security test found: an OPTIONS * that net/http
// answered itself, and a bare CR before OPTIONS * after a POST.
var (
	bypassOptionsStar = "OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
		smuggleBoth
	bypassCROptions = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" +
		"\rOPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + smuggleBoth
	// smuggleBoth carries a request in a body that a front proxy believing
	// its Content-Length would pass through as data.
	smuggleBoth = func() string {
		inner := "0\r\n\r\nGET /inner HTTP/1.1\r\nHost: x\r\nX-Test-Id: smuggle\r\n\r\n"
		return fmt.Sprintf("POST /smuggle HTTP/1.1\r\nHost: x\r\nX-Test-Id: smuggle\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(inner)) + inner
	}()
)

// fragments are pieces of HTTP/1 requests, the tricky ones included, and a
// few whole requests.
var fragments = []string{
	"GET /g HTTP/1.1\r\nHost: x\r\n\r\n", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\n", "POST /p HTTP/1.1\r\n", "OPTIONS * HTTP/1.1\r\n", "PUT /u HTTP/1.1\r\n",
	"HEAD / HTTP/1.1\r\n", "GET / HTTP/1.0\r\n", "POST / HTTP/1.0\r\n", "PRI * HTTP/2.0\r\n",
	"CONNECT h:1 HTTP/1.1\r\n", "GET http://h/ HTTP/1.1\r\n", "post / HTTP/1.1\r\n", "GET / HTTP/1.2\r\n",
	"Host: x\r\n", "Content-Length: 0\r\n", "Content-Length: 5\r\n", "Content-Length: 12\r\n",
	"Content-Length: 05\r\n", "Content-Length: +5\r\n", "Content-Length:  5 \r\n", "Transfer-Encoding: chunked\r\n",
	"transfer-encoding: CHUNKED\r\n", "Transfer-Encoding: identity\r\n", "Transfer-Encoding : chunked\r\n",
	"Transfer-Encoding: chunked, chunked\r\n", " chunked\r\n", "\tx\r\n", "Connection: keep-alive\r\n",
	"Connection: close\r\n", "Expect: 100-continue\r\n", "Expect: x\r\n", "X: y\r\n", "Trailer: T\r\n",
	"\r\n", "\n", "\r", " ", "\t", ":", "\r\r\n", "\x00", "\x0b",
	"hello", "0\r\n\r\n", "5\r\nhello\r\n", "5;e=1\r\n", "0\r\nT: 1\r\n\r\n", "0\r\nT: 1\n\n", "0\r\n\n",
	"a\r\n0123456789\r\n", "5\nhello\n", "5 \r\n", "00000000000000005\r\n", "ffffffffffffffff\r\n",
}

// expand turns each byte of a fuzz input into a fragment, so that the
// fuzzer also explores pipelines of whole request pieces, which mutating
// bytes seldom builds.
func expand(b []byte) []byte {
	var out []byte
	for _, x := range b[:min(len(b), 256)] {
		out = append(out, fragments[int(x)%len(fragments)]...)
	}
	return out
}

func FuzzFramingMatchesNetHTTP(f *testing.F) {
	f.Add([]byte(bypassOptionsStar), []byte{})
	f.Add([]byte(bypassCROptions), []byte{})
	f.Add([]byte(bypassCROptions), []byte{0, 2, 6})
	f.Fuzz(func(t *testing.T, stream, sizes []byte) {
		checkFraming(t, stream, sizes)
		checkFraming(t, expand(stream), sizes)
	})
}
