package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// seenReq is a request as h1's handler saw it, its body read to the end.
type seenReq struct {
	method, target, host, url string
	major, minor              int
	header                    http.Header
	contentLength             int64
	te                        []string
	body                      []byte
	bodyErr                   error
	trailer                   http.Header
}

// diffHarness is an h1 server on loopback whose handler records, per
// client connection, every request it is handed.
type diffHarness struct {
	addr  string
	conns sync.Map // client address → *connSeen
}

type connSeen struct {
	mu   sync.Mutex
	reqs []seenReq
}

func newDiffHarness(tb testing.TB) *diffHarness {
	h := &diffHarness{}
	_, h.addr = startServer(tb, http.HandlerFunc(h.serve))
	return h
}

func (h *diffHarness) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if v, ok := h.conns.Load(r.RemoteAddr); ok {
		cs := v.(*connSeen)
		cs.mu.Lock()
		cs.reqs = append(cs.reqs, seenReq{
			method: r.Method, target: r.RequestURI, host: r.Host, url: r.URL.String(),
			major: r.ProtoMajor, minor: r.ProtoMinor,
			header: r.Header.Clone(), contentLength: r.ContentLength, te: r.TransferEncoding,
			body: body, bodyErr: err, trailer: r.Trailer.Clone(),
		})
		cs.mu.Unlock()
	}
	io.WriteString(w, "ok")
}

// exchange sends stream to the server in writes whose sizes cycle through
// sizes (1 to 256 bytes each; one write if sizes is empty), closes its
// side for writing, and reads the answer until the server closes. It
// returns the requests the handler saw, the answer, and whether the answer
// ended cleanly (not cut by a reset).
func (h *diffHarness) exchange(stream, sizes []byte) ([]seenReq, []byte, bool, error) {
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		return nil, nil, false, err
	}
	defer nc.Close()
	cs := &connSeen{}
	key := nc.LocalAddr().String()
	h.conns.Store(key, cs)
	defer h.conns.Delete(key)
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i, j := 0, 0; i < len(stream); j++ {
			n := len(stream) - i
			if len(sizes) > 0 {
				n = min(n, int(sizes[j%len(sizes)])+1)
			}
			if _, err := nc.Write(stream[i : i+n]); err != nil {
				return // the server closed: it reads no further
			}
			i += n
		}
		nc.(*net.TCPConn).CloseWrite()
	}()
	answer, rerr := io.ReadAll(nc)
	<-wrote
	cs.mu.Lock()
	reqs := cs.reqs
	cs.mu.Unlock()
	if isTimeoutErr(rerr) {
		return reqs, answer, false, fmt.Errorf("h1 did not close the connection within 5s of the stream's end")
	}
	return reqs, answer, rerr == nil, nil
}

// diffRequest compares the head of a request h1 handed over with the one
// net/http would have, and returns their difference, or "".
func diffRequest(s *seenReq, r *modelReq) string {
	var d []string
	cmp := func(what string, h1, net any) {
		if fmt.Sprint(h1) != fmt.Sprint(net) {
			d = append(d, fmt.Sprintf("%s: h1 %q, net/http %q", what, fmt.Sprint(h1), fmt.Sprint(net)))
		}
	}
	cmp("method", s.method, r.method)
	cmp("target", s.target, r.target)
	cmp("host", s.host, r.host)
	cmp("URL", s.url, r.url)
	// h1 serves HTTP/1.2 and up as HTTP/1.1; net/http keeps the minor.
	cmp("version", fmt.Sprint(s.major, ".", min(s.minor, 1)), fmt.Sprint(r.major, ".", min(r.minor, 1)))
	cmp("chunked", len(s.te) > 0, r.chunked)
	cmp("ContentLength", s.contentLength, r.contentLength)
	if h := comparableHeader(s.header, r.raw, r.chunked); !equalHeader(h, r.header) {
		d = append(d, fmt.Sprintf("header: h1 %q, net/http %q", h, r.header))
	}
	return strings.Join(d, "; ")
}

// compareWithModel checks what h1's handler saw against the model of
// net/http, and returns the first violation, or "". The property: every
// request h1 hands over is, in order, one net/http would hand over (or
// one RFC 9112 has h1 read where net/http is stricter, see netHTTPModel),
// with the same head, body and trailers; h1 never hands over a request
// with both Content-Length and Transfer-Encoding; and where h1 stops
// before net/http, it is for one of the strictnesses of headStrictness
// and chunkedStrictness, found in the bytes of the request it refused.
func compareWithModel(stream []byte, seen []seenReq, m model) string {
	for i := range seen {
		s := &seen[i]
		if i >= len(m.reqs) {
			return fmt.Sprintf("h1 handed over request %d (%s %q), which net/http does not read: it stops at offset %d (%s)",
				i+1, s.method, s.target, m.stopAt, m.stopWhy)
		}
		r := &m.reqs[i]
		if d := diffRequest(s, r); d != "" {
			return fmt.Sprintf("request %d (offset %d) differs: %s", i+1, r.start, d)
		}
		if r.both {
			return fmt.Sprintf("request %d (%s %q) has both Content-Length and Transfer-Encoding, and was handed over", i+1, s.method, s.target)
		}
		last := i == len(seen)-1
		switch {
		case s.bodyErr == nil && r.bodyErr != nil:
			return fmt.Sprintf("request %d (%s %q): h1 read its body (%q), net/http fails: %v", i+1, s.method, s.target, s.body, r.bodyErr)
		case s.bodyErr != nil && r.bodyErr == nil:
			why := r.bodyLeniency
			if why == "" && r.chunked {
				why = chunkedStrictness(stream[r.headEnd:r.bodyEnd])
			}
			if why == "" {
				return fmt.Sprintf("request %d (%s %q): h1 fails reading its body (%v), net/http reads %q, for no known strictness",
					i+1, s.method, s.target, s.bodyErr, r.body)
			}
			if !last {
				return fmt.Sprintf("request %d: h1 handed over another request after a body it failed to read", i+1)
			}
		case s.bodyErr != nil && r.bodyErr != nil:
			if !last {
				return fmt.Sprintf("request %d: h1 handed over another request after a body it failed to read", i+1)
			}
		default:
			if !bytes.Equal(s.body, r.body) {
				return fmt.Sprintf("request %d (%s %q): body %q, net/http reads %q", i+1, s.method, s.target, s.body, r.body)
			}
			if t := comparableTrailer(s.trailer); !equalHeader(t, r.trailer) {
				return fmt.Sprintf("request %d (%s %q): trailers %q, net/http reads %q", i+1, s.method, s.target, t, r.trailer)
			}
		}
	}
	n := len(seen)
	if n < len(m.reqs) && (n == 0 || seen[n-1].bodyErr == nil) {
		if n > 0 && !m.reqs[n-1].rfcKeep {
			return "" // h1 closes where RFC 9112 does, net/http reads on (netKeeps)
		}
		r := &m.reqs[n]
		why := headStrictness(stream[r.leadStart:r.start], stream[r.start:r.headEnd], r.raw, r.method, r.major, r.minor)
		if why == "" {
			return fmt.Sprintf("h1 stopped before request %d (%s %q at offset %d), which net/http serves, for no known strictness",
				n+1, r.method, r.target, r.start)
		}
	}
	return ""
}

// checkAnswer checks the bytes h1 answered with: for each request handed
// over, in order, its response (after any 100 Continue, never to an
// HTTP/1.0 client), then at most one refusal (4xx or 5xx), then nothing.
// complete: the answer was not cut by a reset, so it must parse to its
// end.
func checkAnswer(seen []seenReq, answer []byte, complete bool) string {
	br := bufio.NewReader(bytes.NewReader(answer))
	for i := range seen {
		s := &seen[i]
		method := "GET"
		if s.method == "HEAD" {
			method = "HEAD"
		}
		for {
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				if !complete {
					return ""
				}
				return fmt.Sprintf("response %d: %v", i+1, err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				if !complete {
					return ""
				}
				return fmt.Sprintf("response %d body: %v", i+1, err)
			}
			if resp.StatusCode == http.StatusContinue {
				if s.major == 1 && s.minor == 0 {
					return fmt.Sprintf("response %d: 100 Continue sent to an HTTP/1.0 request", i+1)
				}
				continue
			}
			if resp.StatusCode != 200 || method == "GET" && string(body) != "ok" {
				return fmt.Sprintf("response %d: %d %q, want the handler's 200 ok", i+1, resp.StatusCode, body)
			}
			break
		}
	}
	if _, err := br.Peek(1); err != nil {
		return ""
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if !complete {
			return ""
		}
		return fmt.Sprintf("after the responses to the requests handed over: %v", err)
	}
	io.ReadAll(resp.Body)
	if resp.StatusCode < 400 {
		return fmt.Sprintf("after the responses to the requests handed over: a %d response", resp.StatusCode)
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		return fmt.Sprintf("bytes after the refusal: %q", rest)
	}
	return ""
}

// check runs one stream through h1 and the model, and fails t on a
// violation of the property of compareWithModel or checkAnswer.
func (h *diffHarness) check(t *testing.T, label string, stream, sizes []byte) {
	t.Helper()
	seen, answer, complete, err := h.exchange(stream, sizes)
	fail := ""
	if err != nil {
		fail = err.Error()
	} else {
		m := netHTTPModel(stream)
		if fail = compareWithModel(stream, seen, m); fail == "" {
			fail = checkAnswer(seen, answer, complete)
		}
	}
	if fail == "" {
		return
	}
	t.Fatalf("%s: %s\nstream %q\nsizes %v", label, fail, stream, sizes)
}

// Pieces of requests, valid and hostile, for generated streams.
var (
	genRequestLines = []string{
		"GET / HTTP/1.1\r\n", "GET /g?q=1 HTTP/1.1\r\n", "POST /p HTTP/1.1\r\n", "PUT /u HTTP/1.1\r\n",
		"HEAD /h HTTP/1.1\r\n", "OPTIONS * HTTP/1.1\r\n", "DELETE /d HTTP/1.1\r\n", "M-SEARCH * HTTP/1.1\r\n",
		"GET / HTTP/1.0\r\n", "POST /p HTTP/1.0\r\n", "GET http://h/a HTTP/1.1\r\n", "CONNECT h:443 HTTP/1.1\r\n",
		"GET / HTTP/1.2\r\n", "PRI * HTTP/2.0\r\n", "GET / HTTP/2.0\r\n", "post /p HTTP/1.1\r\n",
		"GET /a%zz HTTP/1.1\r\n", "GET  / HTTP/1.1\r\n", "GET /\x01 HTTP/1.1\r\n", "GET /\x7f HTTP/1.1\r\n",
		"GET / HTTP/1.1 \r\n", " GET / HTTP/1.1\r\n", "GET / http/1.1\r\n", "G(T / HTTP/1.1\r\n",
		"GET /caf\xc3\xa9 HTTP/1.1\r\n", "GET / HTTP/1.1\n", "GET / HTTP/1.1\r\r\n",
	}
	genHeaderLines = []string{
		"Content-Length: 0\r\n", "Content-Length: 5\r\n", "Content-Length: 12\r\n", "Content-Length: 05\r\n",
		"Content-Length: +5\r\n", "Content-Length:  5 \r\n", "Content-Length: 5, 5\r\n", "Content-Length: -1\r\n",
		"Content-Length: 0000000000000000005\r\n", "Content-Length: 99999999999999999999\r\n", "content-length: 5\r\n",
		"Transfer-Encoding: chunked\r\n", "transfer-encoding: CHUNKED\r\n", "Transfer-Encoding:  chunked \r\n",
		"Transfer-Encoding: identity\r\n", "Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: chunked, chunked\r\n",
		"Transfer-Encoding : chunked\r\n", "Transfer-Encoding:\tchunked\r\n", "Transfer-Encoding: chun\xe2\x84\xaaed\r\n",
		"Transfer-Encoding:\r\n chunked\r\n", "Transfer-Encoding: chunked\n", "Transfer-Encoding: \"chunked\"\r\n",
		"Connection: keep-alive\r\n", "Connection: close\r\n", "Connection: foo close\r\n",
		"Connection: keep-alive, close\r\n", "Connection: Upgrade\r\n", "Connection: x\r\n",
		"Expect: 100-continue\r\n", "Expect: 100-continue, x\r\n", "Expect:\r\n", "Expect: x\r\n",
		"Trailer: T\r\n", "Trailer: X, Y\r\n", "Trailer: Content-Length\r\n", "Pragma: no-cache\r\n", "Cache-Control: max-age=0\r\n",
		"X: y\r\n", "X: y\r\n", "x-lower: 1\r\n", "X: a\r\n b\r\n", "X:\x01\r\n", "X: a\rb\r\n", "X : y\r\n",
		": y\r\n", "X\r\n", "X: caf\xc3\xa9\r\n", "X: y\n", "X: y\r\r\n", "Host: y\r\n", "Host: \r\n", "Host: a b\r\n", "Host: h/p\r\n",
		"Upgrade: websocket\r\n", "X: \x7f\r\n", "X-Tab:\ta\t\r\n",
	}
	genBodies = []string{
		"", "", "", "", "hello", "hello world!", "0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n",
		"5;e=1\r\nhello\r\n0\r\n\r\n", "5;e=\"q;x\"\r\nhello\r\n0\r\n\r\n", "5 ;e\r\nhello\r\n0\r\n\r\n",
		"5 \r\nhello\r\n0\r\n\r\n", "5\t\r\nhello\r\n0\r\n\r\n", "0\r\nT: 1\r\n\r\n", "0\r\nT: 1\n\n", "0\r\n\n",
		"0000000000000005\r\nhello\r\n0\r\n\r\n", "00000000000000005\r\nhello\r\n0\r\n\r\n", "5\nhello\n0\n\n",
		"0\r\nT : 1\r\n\r\n", "0\r\nT: a\r\n b\r\n\r\n", "3\r\nabc\r\n0\r\nX: 1\r\nY: 2\r\n\r\n",
		"5;\x01\r\nhello\r\n0\r\n\r\n", "5\r\nhelloX0\r\n\r\n", "A\r\n0123456789\r\n0\r\n\r\n",
		"0\r\nT: \x01\r\n\r\n", "0\r\nT: a\r\r\n\r\n", "\r\n",
		"10\r\n0123456789abcdef\r\n0\r\n\r\n", "1A;x=y\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
		"00000000000000a\r\n0123456789\r\n0\r\n\r\n", "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n",
	}
	genSeparators = []string{"\r\n", "\n", "\r\n\r\n", "\r\n\r\n\r\n", "\r", "\n\r\n", "\r\r\n"}
	genWhole      = []string{
		"GET /g HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /t HTTP/1.1\r\nHost: x\r\nTrailer: T\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
		"POST /both HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	}
)

func pick(rng *rand.Rand, list []string) string { return list[rng.IntN(len(list))] }

// genRequest builds a request from the pieces: mostly well formed, with a
// hostile piece here and there.
func genRequest(rng *rand.Rand, withBody bool) string {
	var b strings.Builder
	b.WriteString(pick(rng, genRequestLines))
	fields := []string{}
	if rng.IntN(10) < 8 {
		fields = append(fields, "Host: x\r\n")
	}
	for k := rng.IntN(4); k > 0; k-- {
		fields = append(fields, pick(rng, genHeaderLines))
	}
	rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
	for _, f := range fields {
		b.WriteString(f)
	}
	if rng.IntN(12) == 0 {
		b.WriteString(pick(rng, []string{"\n", "\r\r\n", " \r\n", "\r"}))
	} else {
		b.WriteString("\r\n")
	}
	if withBody {
		b.WriteString(pick(rng, genBodies))
	}
	return b.String()
}

// genStream builds a pipeline of one to four requests.
func genStream(rng *rand.Rand) string {
	var b strings.Builder
	for i := rng.IntN(4); i >= 0; i-- {
		if b.Len() > 0 && rng.IntN(6) == 0 {
			b.WriteString(pick(rng, genSeparators))
		}
		if rng.IntN(5) == 0 {
			b.WriteString(pick(rng, genWhole))
		} else {
			b.WriteString(genRequest(rng, true))
		}
	}
	return b.String()
}

// fragments for expand: every piece above.
var fragments = func() []string {
	var all []string
	for _, l := range [][]string{genWhole, genRequestLines, genHeaderLines, genBodies, genSeparators} {
		all = append(all, l...)
	}
	return all
}()

// expand turns each byte of a short fuzz input into a fragment, so that
// the fuzzer also explores pipelines of whole pieces of requests, which
// mutating bytes seldom builds.
func expand(b []byte) []byte {
	var out []byte
	for _, x := range b {
		out = append(out, fragments[int(x)%len(fragments)]...)
	}
	return out
}

// FuzzServerMatchesNetHTTP guards against request smuggling through h1:
// fed a pipelined stream of raw requests, in writes of fuzzed sizes, h1
// must hand its handler only requests that net/http's server would hand
// over at that point of the stream, with the same head, body and
// trailers, and stop earlier only for the strictnesses listed in
// headStrictness and chunkedStrictness.
func FuzzServerMatchesNetHTTP(f *testing.F) {
	rng := rand.New(rand.NewPCG(0x5eed, 1))
	for i := range 300 {
		var sizes []byte
		if i%5 == 4 {
			sizes = []byte{byte(rng.IntN(8)), byte(rng.IntN(40))}
		}
		f.Add([]byte(genStream(rng)), sizes)
	}
	for i := range 20 {
		f.Add([]byte{byte(i), byte(3*i + 1), byte(7*i + 2), byte(11*i + 5)}, []byte{})
	}
	h := newDiffHarness(f)
	f.Fuzz(func(t *testing.T, stream, sizes []byte) {
		if len(stream) > 64<<10 {
			t.Skip("long streams test nothing more")
		}
		h.check(t, "stream", stream, sizes)
		if len(stream) <= 64 {
			h.check(t, "expanded stream", expand(stream), sizes)
		}
	})
}

// TestParseHeadMatchesNetHTTP guards the head parser alone against
// accepting a head net/http's server refuses, or framing one differently:
// for generated heads, parseHead (after the server's head reader) and
// net/http's http.ReadRequest with its server's checks must agree on
// acceptance, except where h1 is stricter for a listed reason, and on
// method, target, version, header fields, Content-Length and chunking
// where both accept.
func TestParseHeadMatchesNetHTTP(t *testing.T) {
	rng := rand.New(rand.NewPCG(0xbeef, 2))
	counts := map[string]int{}
	const n = 20000
	failures := 0
	for range n {
		head := genRequest(rng, false)
		outcome, fail := compareHead([]byte(head))
		counts[outcome]++
		if fail == "" {
			continue
		}
		if failures++; failures <= 20 {
			t.Errorf("%s: %s\nhead %q", outcome, fail, head)
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%6d  %s", counts[k], k)
	}
	if failures > 0 {
		t.Errorf("%d of %d heads break the property", failures, n)
	}
}

// compareHead parses one head with both parsers and returns the outcome's
// class and, if the property is broken, how.
func compareHead(in []byte) (outcome, fail string) {
	// h1: the server's head reader, the parser, then the target's parsing
	// as serveOne does it.
	var h *head
	h1Why := ""
	raw, _, err := readHeadFrom(string(in), 0, nil)
	if err != nil {
		h1Why = err.Error()
	} else if ph, perr := parseHead(raw); perr != nil {
		h1Why = perr.reason
	} else if _, err := requestURL(ph.method, ph.target); err != nil {
		h1Why = "malformed request target"
	} else {
		h = ph
	}
	nr := newNetReader(in, 0, 4096)
	nh, netErr := readNetHead(nr)
	netOK := netErr == nil && nh.refusal == ""
	switch {
	case h == nil && !netOK:
		return "both refuse", ""
	case h == nil:
		if netErr != nil {
			return "h1 refuses alone (" + h1Why + ")", "net/http refuses only with " + netErr.Error()
		}
		why := headStrictness(nil, in[:nr.pos()], nh.raw, nh.req.Method, nh.req.ProtoMajor, nh.req.ProtoMinor)
		if why == "" {
			return "h1 refuses alone (" + h1Why + ")", "no known strictness explains it"
		}
		return "h1 stricter: " + why, ""
	case !netOK:
		netWhy := ""
		if netErr != nil {
			netWhy = netErr.Error()
		} else {
			netWhy = nh.refusal
		}
		if i := strings.IndexAny(netWhy, "\"'"); i > 0 {
			netWhy = netWhy[:i] // without the quoted input
		}
		return "h1 accepts what net/http refuses (" + strings.TrimSpace(netWhy) + ")", "accepted by h1 only"
	}
	// Both accept: the same request, framed the same.
	req := nh.req
	r := &modelReq{
		method: req.Method, target: req.RequestURI, host: req.Host, url: req.URL.String(),
		major: req.ProtoMajor, minor: req.ProtoMinor, raw: nh.raw,
		contentLength: req.ContentLength, chunked: len(req.TransferEncoding) > 0,
	}
	r.header = comparableHeader(req.Header, nh.raw, r.chunked)
	u, _ := requestURL(h.method, h.target)
	s := &seenReq{
		method: h.method, target: h.target, host: h.host, url: u.String(),
		major: h.major, minor: h.minor, header: h.header, contentLength: h.contentLength,
	}
	if u.Host != "" {
		s.host = u.Host
	}
	switch {
	case h.chunked:
		s.te, s.contentLength = []string{"chunked"}, -1
	case h.contentLength < 0:
		s.contentLength = 0
	}
	if d := diffRequest(s, r); d != "" {
		return "both accept", d
	}
	if len(raw) != nr.pos() {
		return "both accept", fmt.Sprintf("the head is %d bytes for h1, %d for net/http", len(raw), nr.pos())
	}
	return "both accept", ""
}
