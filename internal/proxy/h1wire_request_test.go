package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/holdfast/holdfast/internal/testutil"
)

// The request writer is compared with (*http.Request).Write, which the
// upstream client used before it. For every request both write, the bytes
// must be the same (the one exception is below); what the writer refuses,
// Request.Write must refuse too, or the request must hold a byte or a name
// that checkOutgoing refuses, or a framing field spelt in another case.

// Ways a generated request carries its body.
const (
	bodyNil      = iota // no body
	bodyNoBody          // http.NoBody
	bodyBytes           // in memory, Content-Length set
	bodyBytesNop        // in memory behind io.NopCloser, Content-Length set
	bodyOwn             // holdfast's own bytesBody
	bodyStream          // a reader of unknown length: chunked
	bodyShort           // Content-Length larger than the body
	bodyLong            // Content-Length smaller than the body
	bodyKinds
)

// reqSpec describes a request, so that each writer gets its own copy.
type reqSpec struct {
	method   string
	url      url.URL
	host     string
	header   [][2]string // key, value; a key with value "\x00nil" is set with no values
	noUA     bool        // no User-Agent key at all
	close    bool
	te       []string
	body     int
	content  string
	trailer  [][2]string
	readByte bool // the body reader returns one byte per read
}

func (s *reqSpec) build() *http.Request {
	u := s.url
	r := &http.Request{Method: s.method, URL: &u, Host: s.host, Header: http.Header{}, Close: s.close, TransferEncoding: s.te}
	if !s.noUA {
		r.Header["User-Agent"] = nil
	}
	for _, kv := range s.header {
		if kv[1] == "\x00nil" {
			r.Header[kv[0]] = nil
			continue
		}
		r.Header[kv[0]] = append(r.Header[kv[0]], kv[1])
	}
	if s.trailer != nil {
		r.Trailer = http.Header{}
		for _, kv := range s.trailer {
			r.Trailer[kv[0]] = append(r.Trailer[kv[0]], kv[1])
		}
	}
	var rd io.Reader = strings.NewReader(s.content)
	if s.readByte {
		rd = &oneByteReader{rd}
	}
	n := int64(len(s.content))
	switch s.body {
	case bodyNoBody:
		r.Body = http.NoBody
	case bodyBytes:
		r.Body, r.ContentLength = io.NopCloser(rd), n
	case bodyBytesNop:
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader([]byte(s.content))), n
	case bodyOwn:
		b := &bytesBody{}
		b.Reset([]byte(s.content))
		r.Body, r.ContentLength = b, n
	case bodyStream:
		r.Body, r.ContentLength = io.NopCloser(&oneByteReader{strings.NewReader(s.content)}), -1
		if len(s.content) > 0 && !s.readByte {
			r.Body = io.NopCloser(struct{ io.Reader }{strings.NewReader(s.content)})
		}
	case bodyShort:
		r.Body, r.ContentLength = io.NopCloser(rd), n+3
	case bodyLong:
		r.Body, r.ContentLength = io.NopCloser(rd), n/2
	}
	return r
}

// oneByteReader reads one byte at a time, as a trickling client would
// send a streamed body.
type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// writeOwn writes req with holdfast's writer, as roundTrip does.
func writeOwn(req *http.Request) ([]byte, error) {
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 16<<10)
	var h reqHead
	if err := h.prepare(req); err != nil {
		if bw.Buffered() > 0 || out.Len() > 0 {
			panic("bytes written for a refused request")
		}
		return nil, err
	}
	err := h.write(bw, req)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return out.Bytes(), err
}

// refusedByDesign reports whether holdfast's writer may refuse req where
// Request.Write writes it: what checkOutgoing refuses, framing fields
// spelt in another case, and a URL host that is not a valid Host when the
// request has no Host of its own (Request.Write sends an empty Host then,
// or the name in punycode).
func refusedByDesign(req *http.Request) bool {
	if checkOutgoing(req) != nil {
		return true
	}
	if req.Host == "" && !httpguts.ValidHostHeader(req.URL.Host) {
		return true
	}
	for k := range req.Header {
		for _, f := range []string{"Host", "Content-Length", "Transfer-Encoding"} {
			if k != f && strings.EqualFold(k, f) {
				return true
			}
		}
	}
	return false
}

// probed reports whether Request.Write reads a byte of req's body before
// deciding on its framing, which changes where its chunks begin; and if it
// does, whether the body was empty, which Request.Write then sends as no
// body at all and holdfast's writer as an empty chunked one. holdfast
// never sends a body of unknown length that is empty (see prepare).
func probed(s *reqSpec) (probe, empty bool) {
	switch s.method {
	case "GET", "HEAD", "DELETE", "OPTIONS", "PROPFIND", "SEARCH":
		r := s.build()
		unknown := r.Body != nil && r.Body != http.NoBody && r.ContentLength <= 0
		return unknown && len(s.te) == 0, s.content == ""
	}
	return false, false
}

// parsedRequest is what a server makes of written bytes.
type parsedRequest struct {
	Method, RequestURI, Host, Proto string
	Header, Trailer                 http.Header
	ContentLength                   int64
	TransferEncoding                []string
	Close                           bool
	Body                            string
	Err                             string
}

func parseWritten(b []byte) parsedRequest {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		return parsedRequest{Err: err.Error()}
	}
	body, err := io.ReadAll(r.Body)
	p := parsedRequest{r.Method, r.RequestURI, r.Host, r.Proto, r.Header, r.Trailer, r.ContentLength, r.TransferEncoding, r.Close, string(body), ""}
	if err != nil {
		p.Err = err.Error()
	}
	return p
}

// compareRequest writes s both ways and returns what went wrong, or "".
func compareRequest(s *reqSpec) string {
	probe, empty := probed(s)
	if probe && empty {
		return ""
	}
	stdReq, ownReq := s.build(), s.build()
	var std bytes.Buffer
	serr := stdReq.Write(&std)
	own, oerr := writeOwn(ownReq)
	switch {
	case serr != nil && oerr != nil:
		return ""
	case oerr != nil:
		if refusedByDesign(s.build()) {
			return ""
		}
		return fmt.Sprintf("refused what Request.Write writes: %v\nRequest.Write: %q", oerr, std.Bytes())
	case serr != nil:
		return fmt.Sprintf("wrote what Request.Write refuses (%v): %q", serr, own)
	}
	if refusedByDesign(s.build()) {
		return fmt.Sprintf("wrote a request checkOutgoing refuses: %q", own)
	}
	if !probe && !bytes.Equal(own, std.Bytes()) {
		return fmt.Sprintf("wrote\n%q\nRequest.Write wrote\n%q", own, std.Bytes())
	}
	if p, q := parseWritten(own), parseWritten(std.Bytes()); !reflect.DeepEqual(p, q) {
		return fmt.Sprintf("parsed as %+v\nRequest.Write's as %+v", p, q)
	}
	return ""
}

var (
	corpusMethodsW = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND", "M-SEARCH", "CONNECT", "get", "GET /admin", "G\x00T", ""}
	corpusPaths    = []struct{ path, raw string }{
		{"/", ""}, {"", ""}, {"/a/b", ""}, {"/a b", ""}, {"/a%2Fb", "/a%2Fb"}, {"/a/b", "/a%2fb"}, {"/ü", ""},
		{"/x?y", ""}, {"/a\r\nX: 1", ""}, {"*", ""}, {"/a;b=c", ""}, {"//double", ""}, {"/%zz", "/%zz"},
	}
	corpusQueries = []string{"", "a=1", "a=1&b=2", "a b", "a=%20", "x\r\ny", "?"}
	corpusHosts   = []string{"", "example.com", "example.com:8080", "[::1]:80", "[fe80::1%25eth0]:80", "ex ample.com", "a\r\nX: 1", "bücher.de", "x/y"}
	corpusHeaders = [][2]string{
		{"Accept", "*/*"}, {"X-Forwarded-For", "192.0.2.1"}, {"X-Multi", "a"}, {"X-Multi", "b"},
		{"X-Spaces", "  padded  "}, {"X-Tab", "\tv\t"}, {"X-Empty", ""}, {"X-Nil", "\x00nil"},
		{"User-Agent", "curl/8.0"}, {"User-Agent", " spaced "}, {"User-Agent", ""}, {"User-Agent", "\x00nil"},
		{"Connection", "close"}, {"Connection", "keep-alive"}, {"Content-Length", "99"}, {"Transfer-Encoding", "chunked"},
		{"Host", "other.example"}, {"Trailer", "X-T"}, {"content-length", "5"}, {"transfer-encoding", "chunked"},
		{"HOST", "evil"}, {"x-lower", "v"}, {"X-Obs", "caf\xe9"}, {"X-LF", "a\nb"}, {"X-CR", "a\rb"},
		{"X-NUL", "a\x00b"}, {"X-DEL", "a\x7fb"}, {"X Bad", "v"}, {"X-Bad:", "v"}, {"", "v"}, {"X-Ü", "v"},
	}
	corpusTE       = [][]string{nil, nil, nil, {"chunked"}, {"identity"}, {"gzip"}, {"chunked", "gzip"}}
	corpusContents = []string{"", "x", "hello", strings.Repeat("0123456789", 4000)}
	corpusTrailers = [][][2]string{nil, nil, {{"X-T", "1"}}, {{"x-t", "1"}, {"X-U", "2"}}, {{"Content-Length", "1"}}, {{"X-T", "a\nb"}}, {{"X T", "1"}}}
)

// requestCorpus returns generated request specs: each piece once on a
// plain request, then random combinations (a fixed seed).
func requestCorpus() []*reqSpec {
	plain := func() *reqSpec {
		return &reqSpec{method: "GET", url: url.URL{Scheme: "http", Host: "backend:8080", Path: "/p"}, host: "example.com"}
	}
	var out []*reqSpec
	for _, m := range corpusMethodsW {
		s := plain()
		s.method = m
		out = append(out, s)
	}
	for _, p := range corpusPaths {
		for _, q := range corpusQueries {
			s := plain()
			s.url.Path, s.url.RawPath, s.url.RawQuery = p.path, p.raw, q
			out = append(out, s)
		}
	}
	for _, h := range corpusHosts {
		s := plain()
		s.host = h
		out = append(out, s)
		s = plain()
		s.host, s.url.Host = "", h
		out = append(out, s)
	}
	for _, kv := range corpusHeaders {
		s := plain()
		s.header = [][2]string{kv}
		out = append(out, s)
	}
	for _, u := range []url.URL{
		{Scheme: "http", Opaque: "/opaque/path"}, {Scheme: "http", Opaque: "//host/path", RawQuery: "q=1"},
		{Scheme: "http", Path: "/f", ForceQuery: true}, {Scheme: "http", Host: "h"},
	} {
		s := plain()
		s.url = u
		out = append(out, s)
	}
	for body := range bodyKinds {
		for _, c := range corpusContents {
			for _, m := range []string{"POST", "GET", "PUT"} {
				for _, te := range corpusTE {
					for _, tr := range corpusTrailers[:4] {
						s := plain()
						s.method, s.body, s.content, s.te, s.trailer = m, body, c, te, tr
						out = append(out, s)
					}
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(n int) int { return rng.IntN(n) }
	for range 3000 {
		s := plain()
		s.method = corpusMethodsW[pick(len(corpusMethodsW))]
		if pick(3) > 0 {
			s.method = corpusMethodsW[pick(9)]
		}
		p := corpusPaths[pick(len(corpusPaths))]
		s.url.Path, s.url.RawPath = p.path, p.raw
		s.url.RawQuery = corpusQueries[pick(len(corpusQueries))]
		if pick(4) == 0 {
			s.host = corpusHosts[pick(len(corpusHosts))]
		}
		for range pick(6) {
			s.header = append(s.header, corpusHeaders[pick(len(corpusHeaders))])
		}
		if pick(2) == 0 {
			s.header = s.header[:min(len(s.header), 2)] // mostly valid fields
			for i := range s.header {
				s.header[i] = corpusHeaders[pick(12)]
			}
		}
		s.noUA = pick(4) == 0
		s.close = pick(4) == 0
		s.te = corpusTE[pick(len(corpusTE))]
		s.body = pick(bodyKinds)
		s.content = corpusContents[pick(len(corpusContents))]
		s.trailer = corpusTrailers[pick(len(corpusTrailers))]
		s.readByte = pick(8) == 0
		out = append(out, s)
	}
	return out
}

func TestRequestWriterDifferential(t *testing.T) {
	corpus := requestCorpus()
	written, refused := 0, 0
	for i, s := range corpus {
		if problem := compareRequest(s); problem != "" {
			t.Errorf("request %d %+v:\n%s", i, *s, problem)
			continue
		}
		if _, err := writeOwn(s.build()); err == nil {
			written++
		} else {
			refused++
		}
	}
	t.Logf("%d requests: %d written, %d refused", len(corpus), written, refused)
	if written < len(corpus)/3 {
		t.Errorf("only %d of %d requests written", written, len(corpus))
	}
}

// TestRequestWriterRefusesSplitting: nothing that could end a line early
// is written, and a refused request leaves the buffer empty.
func TestRequestWriterRefusesSplitting(t *testing.T) {
	for _, mod := range []func(*http.Request){
		func(r *http.Request) { r.Header["X"] = []string{"a\r\nX-Injected: 1"} },
		func(r *http.Request) { r.Header["X"] = []string{"a\nb"} },
		func(r *http.Request) { r.Header["X"] = []string{"a\x00b"} },
		func(r *http.Request) { r.Header["X\r\nY"] = []string{"1"} },
		func(r *http.Request) { r.Header["User-Agent"] = []string{"a\r\nX: 1"} },
		func(r *http.Request) { r.Header["content-length"] = []string{"0"} },
		func(r *http.Request) { r.Host = "a\r\nX: 1" },
		func(r *http.Request) { r.URL.RawQuery = "a HTTP/1.1\r\nX: y" },
		func(r *http.Request) { r.Method = "GET /x HTTP/1.1\r\n" },
		func(r *http.Request) { r.Trailer = http.Header{"X-T": {"1\r\n2"}} },
	} {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: "h", Header: http.Header{}}
		mod(r)
		if b, err := writeOwn(r); err == nil {
			t.Errorf("wrote %q", b)
		}
	}
	// A trailer whose value arrives unfit with the end of the body: the
	// body is written, the trailer is not.
	r := &http.Request{Method: "POST", URL: &url.URL{Path: "/"}, Host: "h", Header: http.Header{}, ContentLength: -1}
	r.Trailer = http.Header{"X-T": nil}
	r.Body = io.NopCloser(&fillOnEOF{r: strings.NewReader("abc"), f: func() { r.Trailer["X-T"] = []string{"1\r\nX-Injected: 1"} }})
	b, err := writeOwn(r)
	if err == nil || bytes.Contains(b, []byte("Injected")) {
		t.Errorf("err %v, wrote %q", err, b)
	}
}

// fillOnEOF calls f when r is read to its end, as net/http's server fills
// a request's Trailer when its body ends.
type fillOnEOF struct {
	r io.Reader
	f func()
}

func (e *fillOnEOF) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && e.f != nil {
		e.f()
		e.f = nil
	}
	return n, err
}

// TestRequestWriterTrailers: trailers filled in while the body streams are
// sent after it, as Request.Write sends them.
func TestRequestWriterTrailers(t *testing.T) {
	build := func() *http.Request {
		r := &http.Request{Method: "POST", URL: &url.URL{Path: "/up"}, Host: "h", Header: http.Header{"User-Agent": nil}, ContentLength: -1}
		r.Trailer = http.Header{"X-Sum": nil, "X-Other": nil}
		r.Body = io.NopCloser(&fillOnEOF{r: strings.NewReader("hello"), f: func() { r.Trailer["X-Sum"] = []string{"42"} }})
		return r
	}
	own, err := writeOwn(build())
	if err != nil {
		t.Fatal(err)
	}
	var std bytes.Buffer
	if err := build().Write(&std); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(own, std.Bytes()) {
		t.Errorf("wrote\n%q\nRequest.Write wrote\n%q", own, std.Bytes())
	}
	p := parseWritten(own)
	if p.Body != "hello" || p.Trailer.Get("X-Sum") != "42" {
		t.Errorf("upstream read %+v", p)
	}
}

func TestRequestWriterAllocs(t *testing.T) {
	req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: "b", Path: "/a/b", RawQuery: "q=1"}, Host: "example.com", Header: http.Header{
		"User-Agent": nil, "Accept": {"*/*"}, "X-Forwarded-For": {"192.0.2.1"}, "X-Request-Id": {"abc"}, "Via": {"1.1 holdfast"},
	}}
	bw := bufio.NewWriterSize(io.Discard, 16<<10)
	n := testing.AllocsPerRun(100, func() {
		var h reqHead
		if err := h.prepare(req); err != nil {
			t.Fatal(err)
		}
		if err := h.write(bw, req); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
	})
	if n != 0 {
		t.Errorf("%v allocations per request head, want 0", n)
	}
}

func BenchmarkRequestHead(b *testing.B) {
	hdr := http.Header{
		"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64)"}, "Accept": {"text/html,application/xhtml+xml"},
		"Accept-Language": {"en-GB,en;q=0.9"}, "Accept-Encoding": {"gzip, br"}, "Cookie": {"session=abcdef0123456789"},
		"X-Forwarded-For": {"192.0.2.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"example.com"},
		"X-Real-Ip": {"192.0.2.1"}, "Forwarded": {"for=192.0.2.1;host=example.com;proto=https"},
		"Via": {"2 holdfast"}, "X-Request-Id": {"0123456789abcdef"},
	}
	req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: "b", Path: "/a/b", RawQuery: "q=1"}, Host: "example.com", Header: hdr}
	bw := bufio.NewWriterSize(io.Discard, 16<<10)
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := checkOutgoing(req); err != nil {
				b.Fatal(err)
			}
			req.Write(bw)
			bw.Flush()
		}
	})
	b.Run("holdfast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var h reqHead
			if err := h.prepare(req); err != nil {
				b.Fatal(err)
			}
			h.write(bw, req)
			bw.Flush()
		}
	})
}

// FuzzRequestWrite compares the writer with Request.Write on requests
// built from arbitrary parts.
func FuzzRequestWrite(f *testing.F) {
	f.Add("GET", "/p", "a=1", "example.com", "Accept", "*/*", "X-A", "1", []byte(""), uint8(0))
	f.Add("POST", "/up", "", "h:80", "Content-Length", "3", "User-Agent", " ua ", []byte("hello"), uint8(2))
	f.Add("PUT", "/a b", "x\r\ny", "a\r\nb", "X\r\nY", "a\nb", "content-length", "5", []byte("body"), uint8(5))
	f.Add("POST", "/", "", "", "Trailer", "X-T", "Connection", "close", []byte("abc"), uint8(0x85))
	f.Fuzz(func(t *testing.T, method, path, query, host, k1, v1, k2, v2 string, body []byte, mode uint8) {
		s := &reqSpec{
			method: method, url: url.URL{Scheme: "http", Host: "backend", Path: path, RawQuery: query}, host: host,
			header: [][2]string{{k1, v1}, {k2, v2}}, body: int(mode % bodyKinds), content: string(body),
			close: mode&0x10 != 0, noUA: mode&0x20 != 0, readByte: mode&0x40 != 0,
		}
		if mode&0x80 != 0 {
			s.te = []string{"chunked"}
			s.trailer = [][2]string{{k2, v2}}
		}
		if problem := compareRequest(s); problem != "" {
			t.Error(problem)
		}
	})
}

// TestRequestTrailersReachUpstream: a streamed chunked body and the
// trailers the client sent after it reach the upstream through
// holdfast's own client.
func TestRequestTrailersReachUpstream(t *testing.T) {
	type seen struct {
		body, sum string
		te        []string
	}
	got := make(chan seen, 1)
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{string(b), r.Trailer.Get("X-Sum"), r.TransferEncoding}
	}))
	e := newEnv(t, poolConfig("retry: {body_buffer: 1KiB}", be.URL))
	payload := strings.Repeat("p", 5000) // over body_buffer: streamed
	req, err := http.NewRequest("POST", e.URL+"/up", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Sum": nil}
	req.Body = io.NopCloser(&fillOnEOF{r: strings.NewReader(payload), f: func() { req.Trailer.Set("X-Sum", "42") }})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	s := <-got
	if s.body != payload || s.sum != "42" || len(s.te) != 1 || s.te[0] != "chunked" {
		t.Errorf("upstream got %d bytes (want %d), trailer X-Sum %q, Transfer-Encoding %q", len(s.body), len(payload), s.sum, s.te)
	}
}

// TestValidFieldValue: the word-at-a-time check answers as
// httpguts.ValidHeaderFieldValue for every byte value at every position
// of values of every length up to three words, among bytes that pass and
// bytes just beside the limits.
func TestValidFieldValue(t *testing.T) {
	for _, fill := range []byte{'a', ' ', '\t', 0x20, 0x7e, 0x80, 0xff} {
		for n := 0; n <= 24; n++ {
			for pos := 0; pos < max(n, 1); pos++ {
				for c := 0; c < 256; c++ {
					b := bytes.Repeat([]byte{fill}, n)
					if n > 0 {
						b[pos] = byte(c)
					}
					v := string(b)
					if got, want := validFieldValue(v), httpguts.ValidHeaderFieldValue(v); got != want {
						t.Fatalf("validFieldValue(%q) = %v, httpguts says %v", v, got, want)
					}
				}
			}
		}
	}
}

// FuzzValidFieldValue: the word-at-a-time check and httpguts agree on
// any value.
func FuzzValidFieldValue(f *testing.F) {
	for _, s := range []string{"", "text/html; q=0.9", "a\tb", "a\x7fb", "0123456789abcdef\x1f", "\x80\xff\x00", "12345678\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := validFieldValue(v), httpguts.ValidHeaderFieldValue(v); got != want {
			t.Fatalf("validFieldValue(%q) = %v, httpguts says %v", v, got, want)
		}
	})
}
