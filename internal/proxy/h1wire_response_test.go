package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/holdfast/holdfast/cause"
)

// The response parser is compared with net/http's ReadResponse, which the
// upstream client used before it: on every input both must refuse, or both
// accept and agree on the response and on the bytes taken from the
// connection. The parser may refuse what ReadResponse accepts only for the
// leniencies below, each a reason the parser's doc comment gives.
//
// The known leniencies of ReadResponse that holdfast refuses:
const (
	lenBareLF     = "a line ends in a bare LF (RFC 9112 section 2.2 allows, does not require, accepting it)"
	lenCR         = "a CR inside a line (net/http keeps it in the reason phrase)"
	lenObsFold    = "obs-fold (RFC 9112 section 5.2 lets a proxy refuse it)"
	lenNameSpace  = "whitespace in or after a field name (RFC 9112 section 5.1)"
	lenSpaces     = "more than one space between version and status code"
	lenStatus     = "a status code below 100 or with a sign (net/http's server panics writing it)"
	lenReason     = "a control character in the reason phrase"
	lenVersion    = "a version other than HTTP/1.x"
	lenTE10       = "Transfer-Encoding in an HTTP/1.0 response (RFC 9112 section 6.1: faulty framing)"
	lenHeadSize   = "a head over maxResponseHeader"
	lenTrailerSyn = "a trailer section with one of the leniencies above"
)

// wireResult is what one parser made of one input.
type wireResult struct {
	resp     *http.Response
	err      error  // from the head
	body     []byte // all of the body
	bodyErr  error
	consumed int         // bytes taken from the input once the body was read
	headLen  int         // bytes taken by the head alone
	trailer  http.Header // after the body
	declared http.Header // before it: the fields the Trailer field announced
}

// parseStd reads raw as the upstream client did before: one head with
// http.ReadResponse, then its body to the end.
func parseStd(raw []byte, method string) wireResult {
	sr := bytes.NewReader(raw)
	br := bufio.NewReaderSize(sr, 16<<10)
	var r wireResult
	r.resp, r.err = http.ReadResponse(br, &http.Request{Method: method})
	r.headLen = len(raw) - sr.Len() - br.Buffered()
	if r.err != nil {
		return r
	}
	r.declared = r.resp.Trailer.Clone()
	r.body, r.bodyErr = io.ReadAll(r.resp.Body)
	r.consumed = len(raw) - sr.Len() - br.Buffered()
	r.trailer = r.resp.Trailer
	return r
}

// parseOwn reads raw with holdfast's parser, the same way.
func parseOwn(raw []byte, method string) wireResult {
	sr := bytes.NewReader(raw)
	br := bufio.NewReaderSize(sr, 16<<10)
	var r wireResult
	var scratch []byte
	budget := maxResponseHeader
	hr, err := readResponseHead(br, &http.Request{Method: method}, &scratch, &budget)
	r.err = err
	r.headLen = len(raw) - sr.Len() - br.Buffered()
	if err != nil {
		return r
	}
	r.resp = &hr.resp
	r.declared = r.resp.Trailer.Clone()
	r.body, r.bodyErr = io.ReadAll(r.resp.Body)
	r.consumed = len(raw) - sr.Len() - br.Buffered()
	r.trailer = r.resp.Trailer
	return r
}

// stdLeniency names the leniency of ReadResponse that head, as ReadResponse
// took it, relies on, or returns "". It looks at the bytes and at what
// ReadResponse made of them, never at holdfast's parser.
func stdLeniency(head []byte, std *http.Response) string {
	if len(head) > maxResponseHeader {
		return lenHeadSize
	}
	lines := bytes.SplitAfter(head, []byte("\n"))
	for i, line := range lines {
		if len(line) == 0 {
			continue
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			return lenBareLF
		}
		if bytes.IndexByte(line[:len(line)-2], '\r') >= 0 {
			return lenCR
		}
		if i > 0 && (line[0] == ' ' || line[0] == '\t') {
			return lenObsFold
		}
		if i > 0 {
			if name, _, ok := bytes.Cut(line, []byte(":")); ok && bytes.ContainsAny(name, " \t") {
				return lenNameSpace
			}
		}
	}
	status := bytes.TrimSuffix(lines[0], []byte("\r\n"))
	_, rest, _ := bytes.Cut(status, []byte(" "))
	if bytes.HasPrefix(rest, []byte(" ")) {
		return lenSpaces
	}
	if std.ProtoMajor != 1 {
		return lenVersion
	}
	if std.StatusCode < 100 || rest[0] == '+' {
		return lenStatus
	}
	for _, c := range []byte(std.Status) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return lenReason
		}
	}
	if std.ProtoMinor == 0 {
		for _, line := range lines[1:] {
			if name, _, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(strings.TrimSpace(string(name)), "Transfer-Encoding") {
				return lenTE10
			}
		}
	}
	return ""
}

// trailerLeniency is stdLeniency for what follows the head of a chunked
// response: a trailer net/http read leniently.
func trailerLeniency(rest []byte, std wireResult) string {
	for k := range std.trailer {
		if strings.ContainsAny(k, " \t") {
			return lenTrailerSyn
		}
	}
	for i, c := range rest {
		if c == '\n' && (i == 0 || rest[i-1] != '\r') {
			return lenTrailerSyn
		}
		if c == '\n' && i+1 < len(rest) && (rest[i+1] == ' ' || rest[i+1] == '\t') {
			return lenTrailerSyn
		}
		if c == '\r' && i+1 < len(rest) && rest[i+1] != '\n' {
			return lenTrailerSyn
		}
	}
	return ""
}

// compareResponse parses raw both ways and returns what went wrong, or "".
// leniency is set when holdfast refused an input net/http took for one of
// the known reasons.
func compareResponse(raw []byte, method string) (problem, leniency string) {
	std, own := parseStd(raw, method), parseOwn(raw, method)
	switch {
	case std.err != nil && own.err != nil:
		return "", ""
	case std.err != nil:
		return fmt.Sprintf("accepted what net/http refuses (%v)", std.err), ""
	case own.err != nil:
		if l := stdLeniency(raw[:std.headLen], std.resp); l != "" {
			return "", l
		}
		if errors.Is(own.err, errHeaderTooLarge) && std.headLen > maxResponseHeader-1024 {
			return "", lenHeadSize
		}
		return fmt.Sprintf("refused what net/http accepts: %v", own.err), ""
	}
	if l := stdLeniency(raw[:std.headLen], std.resp); l != "" {
		return fmt.Sprintf("accepted a head with %s", l), ""
	}
	s, o := std.resp, own.resp
	if own.headLen != std.headLen {
		return fmt.Sprintf("head took %d bytes, net/http %d", own.headLen, std.headLen), ""
	}
	for _, f := range []struct {
		name     string
		std, own any
	}{
		{"Status", s.Status, o.Status},
		{"StatusCode", s.StatusCode, o.StatusCode},
		{"Proto", s.Proto, o.Proto},
		{"ProtoMajor", s.ProtoMajor, o.ProtoMajor},
		{"ProtoMinor", s.ProtoMinor, o.ProtoMinor},
		{"Header", s.Header, o.Header},
		{"ContentLength", s.ContentLength, o.ContentLength},
		{"TransferEncoding", s.TransferEncoding, o.TransferEncoding},
		{"Close", s.Close, o.Close},
		{"Trailer (announced)", std.declared, own.declared},
	} {
		if !reflect.DeepEqual(f.std, f.own) {
			return fmt.Sprintf("%s = %#v, net/http %#v", f.name, f.own, f.std), ""
		}
	}
	if o.Request == nil || o.Request.Method != method {
		return "Request not set", ""
	}
	switch {
	case std.bodyErr != nil && own.bodyErr != nil:
		return "", ""
	case std.bodyErr != nil:
		return fmt.Sprintf("read a body net/http fails on (%v)", std.bodyErr), ""
	case own.bodyErr != nil:
		if l := trailerLeniency(raw[std.headLen:], std); l != "" && len(s.TransferEncoding) > 0 {
			return "", l
		}
		return fmt.Sprintf("body failed: %v", own.bodyErr), ""
	}
	if !bytes.Equal(std.body, own.body) {
		return fmt.Sprintf("body %q, net/http %q", own.body, std.body), ""
	}
	if !reflect.DeepEqual(std.trailer, own.trailer) {
		return fmt.Sprintf("trailer %#v, net/http %#v", own.trailer, std.trailer), ""
	}
	if std.consumed != own.consumed {
		return fmt.Sprintf("took %d bytes in all, net/http %d", own.consumed, std.consumed), ""
	}
	return "", ""
}

// Pieces of generated responses: valid ones and hostile ones.
var (
	corpusStatus = []string{
		"HTTP/1.1 200 OK", "HTTP/1.0 200 OK", "HTTP/1.1 204 No Content", "HTTP/1.1 304 Not Modified",
		"HTTP/1.1 100 Continue", "HTTP/1.1 101 Switching Protocols", "HTTP/1.1 103 Early Hints",
		"HTTP/1.1 200", "HTTP/1.1 200 ", "HTTP/1.1 404 Not  Found ", "HTTP/1.1 999 Whatever", "HTTP/1.1 600 X",
		"HTTP/1.2 200 OK", "HTTP/1.9 500 Internal Server Error", "HTTP/1.1 200 caf\xe9", "HTTP/1.1 200 a\tb",
		"HTTP/1.1  200 OK", "HTTP/1.1 +99 OK", "HTTP/1.1 099 Low", "HTTP/1.1 000 Zero", "HTTP/1.1 20 OK",
		"HTTP/1.1 2000 OK", "HTTP/2.0 200 OK", "HTTP/0.9 200 OK", "HTTP/3.0 200 OK", "http/1.1 200 OK",
		"HTTP/1.1 200 O\x00K", "HTTP/1.1 200 O\rK", "HTTP/1.1 200\tOK", "HTTP/1.1 -20 OK", "HTTP/1.1 2a0 OK",
		"HTTP/1.1", "HTTP/1.10 200 OK", "HTTP/11 200 OK", "HTTP/1.1 200 OK\x7f", "HTTP/1.1 200 \x01",
		"", " HTTP/1.1 200 OK", "SSH-2.0-OpenSSH_9.6", "\x15\x03\x01\x00\x02\x02\x46", "HTTP/1.1 1OO Continue",
		"HTTP/1.1 +20 OK", "HTTP/1.1 200 OK ", "HTTP/1.1\t200 OK", "HTTP/1.x 200 OK", "HTTP/ 1.1 200 OK",
	}
	// Framing and connection fields, alone or together.
	corpusFraming = [][]string{
		nil,
		{"Content-Length: 5"},
		{"Content-Length: 0"},
		{"Content-Length: 5", "Content-Length: 5"},
		{"Content-Length: 5", "Content-Length: 6"},
		{"Content-Length: 5", "content-length: 5"},
		{"Content-Length: 5, 5"},
		{"Content-Length: +5"},
		{"Content-Length: -1"},
		{"Content-Length: 0x5"},
		{"Content-Length: "},
		{"Content-Length:"},
		{"Content-Length: 99999999999999999999"},
		{"Content-Length: 9223372036854775807"},
		{"Content-Length:  5 "},
		{"Content-Length:\t5\t"},
		{"Content-Length: 05"},
		{"Content-Length: 5 5"},
		{"Content-Length: 1_0"},
		{"Content-Length : 5"},
		{"Content-Length\t: 5"},
		{"Transfer-Encoding: chunked"},
		{"Transfer-Encoding: Chunked"},
		{"Transfer-Encoding: CHUNKED"},
		{"Transfer-Encoding:  chunked"},
		{"Transfer-Encoding: chunked "},
		{"Transfer-Encoding: chunked, gzip"},
		{"Transfer-Encoding: gzip, chunked"},
		{"Transfer-Encoding: gzip"},
		{"Transfer-Encoding: identity"},
		{"Transfer-Encoding: chunked, chunked"},
		{"Transfer-Encoding: chunked", "Transfer-Encoding: chunked"},
		{"Transfer-Encoding: gzip", "Transfer-Encoding: chunked"},
		{"Transfer-Encoding: "},
		{"Transfer-Encoding: chunk"},
		{"Transfer-Encoding: \"chunked\""},
		{"Transfer-Encoding: chunked;q=1"},
		{"transfer-encoding: chunked"},
		{"Transfer-Encoding : chunked"},
		{"Transfer_Encoding: chunked"},
		{"Transfer-Encoding: chunked", "Content-Length: 5"},
		{"Content-Length: 5", "Transfer-Encoding: chunked"},
		{"Transfer-Encoding: chunked", "Content-Length: x"},
		{"Transfer-Encoding: chunked", "Content-Length: 5", "Content-Length: 6"},
		{"Transfer-Encoding: chunked", "Trailer: X-Sum"},
		{"Transfer-Encoding: chunked", "Trailer: X-Sum, x-other ,, "},
		{"Transfer-Encoding: chunked", "Trailer: Content-Length"},
		{"Transfer-Encoding: chunked", "Trailer: Transfer-Encoding"},
		{"Transfer-Encoding: chunked", "Trailer: "},
		{"Trailer: X-Sum", "Content-Length: 5"},
		{"Connection: close"},
		{"Connection: Close", "Content-Length: 5"},
		{"Connection: keep-alive"},
		{"Connection: Keep-Alive", "Content-Length: 5"},
		{"Connection: keep-alive, close", "Content-Length: 5"},
		{"Connection: upgrade, close", "Content-Length: 5"},
		{"Connection: closed", "Content-Length: 5"},
		{"Connection: keep-alive", "Connection: close", "Content-Length: 5"},
		{"Connection: x-hop", "X-Hop: 1", "Content-Length: 5"},
		{"Pragma: no-cache", "Content-Length: 5"},
		{"Pragma: no-cache", "Cache-Control: max-age=1", "Content-Length: 5"},
		{"Pragma: No-Cache", "Content-Length: 5"},
		{"Keep-Alive: timeout=5", "Content-Length: 5"},
	}
	// Other fields, one of which goes into each response.
	corpusFields = []string{
		"",
		"Date: Mon, 01 Dec 2025 10:00:00 GMT",
		"Server: nginx",
		"content-type: text/plain",
		"CONTENT-TYPE: text/plain",
		"x-lower-case-name: v",
		"X-Empty:",
		"X-Empty: ",
		"X-Spaces:    v   w   ",
		"X-Tabs:\tv\t",
		"X-Obs-Text: caf\xe9 \xff",
		"X-Quote: \"a, b\"",
		"Set-Cookie: a=1\r\nSet-Cookie: b=2",
		"X-Dup: 1\r\nx-dup: 2\r\nX-DUP: 3",
		"X_Underscore: v",
		"1-digit-first: v",
		"X-!#$%&'*+-.^_`|~: tchar",
		"Via: 1.0 origin",
		"X-Colon: a:b::c",
		"X-Nul: a\x00b",
		"X-CR: a\rb",
		"X-Bare-CR: a\r",
		"X-DEL: a\x7fb",
		"X-Ctl: a\x01b",
		"X-Esc: \x1b[0m",
		" X-Leading-Space: v",
		"\tX-Leading-Tab: v",
		"X-Fold: a\r\n b",
		"X-Fold: a\r\n\tb",
		"X-Fold: a\r\n \r\nX-Next: c",
		"X Space: v",
		"X-Space : v",
		"X-Tab\t: v",
		"X-Bad@: v",
		"X-Bad(: v",
		"X-\xe9: v",
		": novalue",
		":",
		"NoColon",
		manyFields(20),
		manyFields(40),
		"X-Long: " + strings.Repeat("a", 5000),
		"X-Longer-Than-The-Buffer: " + strings.Repeat("b", 20000),
		"X-Over-The-Limit: " + strings.Repeat("c", 70000),
	}
	corpusEOL = []string{"\r\n", "\r\n", "\r\n", "\n", "\r\r\n"}
	// Bodies, with what may follow them on the connection.
	corpusBodies = []string{
		"",
		"hello",
		"hell",
		"hello world",
		"hello" + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
		"5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n",
		"5\r\nhello\r\n0\r\nx-sum: 42\r\nX-Other: 1\r\n\r\n",
		"5\r\nhello\r\n0\r\nX-Sum: 42\n\r\n",
		"5\r\nhello\r\n0\r\nX-Sum: 42\r\n folded\r\n\r\n",
		"5\r\nhello\r\n0\r\nX Sum: 42\r\n\r\n",
		"5\r\nhello\r\n0\r\nX-Sum: 4\x002\r\n\r\n",
		"5\r\nhello\r\n0\r\nX-Sum: 42\r\n",
		"5\r\nhello\r\n0\r\n",
		"5\r\nhello\r\n0\r\nX-Big: " + strings.Repeat("t", 17000) + "\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"5\r\nhello\n0\r\n\r\n",
		"5\r\nhelloXX0\r\n\r\n",
		"g\r\nhello\r\n0\r\n\r\n",
		"5\r\nhel",
		"ffffffffffffffffff\r\nx\r\n",
		"0\r\n\r\n",
	}
	corpusMethods = []string{"GET", "GET", "HEAD", "POST"}
)

// manyFields returns n field lines, more than an h1Response holds values
// for, with repeats both before and after that point.
func manyFields(n int) string {
	var lines []string
	for i := range n {
		switch {
		case i%7 == 3:
			lines = append(lines, "Set-Cookie: c"+fmt.Sprint(i)+"=1")
		case i%5 == 4:
			lines = append(lines, "x-repeat: "+fmt.Sprint(i))
		default:
			lines = append(lines, fmt.Sprintf("X-Field-%d: v%d", i, i))
		}
	}
	return strings.Join(lines, "\r\n")
}

// buildResponse joins pieces into a response.
func buildResponse(status, eol string, fields []string, body string) []byte {
	var b bytes.Buffer
	b.WriteString(status)
	b.WriteString(eol)
	for _, f := range fields {
		if f == "" {
			continue
		}
		b.WriteString(strings.ReplaceAll(f, "\r\n", eol))
		b.WriteString(eol)
	}
	b.WriteString(eol)
	b.WriteString(body)
	return b.Bytes()
}

// responseCorpus returns the generated inputs: every piece once against a
// plain response, then random combinations (a fixed seed: the same corpus
// on every run).
func responseCorpus() []struct {
	raw    []byte
	method string
} {
	type in = struct {
		raw    []byte
		method string
	}
	var out []in
	base := func() (string, string, []string, string) {
		return "HTTP/1.1 200 OK", "\r\n", []string{"Content-Length: 5"}, "hello"
	}
	for _, st := range corpusStatus {
		_, eol, f, b := base()
		out = append(out, in{buildResponse(st, eol, f, b), "GET"})
	}
	for _, fr := range corpusFraming {
		for _, b := range corpusBodies {
			for _, m := range []string{"GET", "HEAD"} {
				out = append(out, in{buildResponse("HTTP/1.1 200 OK", "\r\n", fr, b), m})
			}
		}
	}
	for _, f := range corpusFields {
		st, eol, fr, b := base()
		out = append(out, in{buildResponse(st, eol, append([]string{f}, fr...), b), "GET"})
		out = append(out, in{buildResponse(st, eol, append(append([]string(nil), fr...), f), b), "GET"})
	}
	for _, eol := range corpusEOL {
		st, _, fr, b := base()
		out = append(out, in{buildResponse(st, eol, fr, b), "GET"})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(n int) int { return rng.IntN(n) }
	for range 4000 {
		st := corpusStatus[pick(len(corpusStatus))]
		if pick(3) > 0 {
			st = corpusStatus[pick(16)] // mostly valid ones, to reach the framing
		}
		eol := corpusEOL[pick(len(corpusEOL))]
		if pick(4) > 0 {
			eol = "\r\n"
		}
		var fields []string
		fields = append(fields, corpusFraming[pick(len(corpusFraming))]...)
		for range pick(3) {
			f := corpusFields[pick(len(corpusFields))]
			if len(f) > 4000 && pick(4) > 0 {
				continue // keep the big ones rare
			}
			fields = append(fields, f)
		}
		rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
		body := corpusBodies[pick(len(corpusBodies))]
		raw := buildResponse(st, eol, fields, body)
		if pick(8) == 0 {
			// An informational response before it.
			raw = append(buildResponse("HTTP/1.1 103 Early Hints", "\r\n", []string{"Link: </a.css>; rel=preload"}, ""), raw...)
		}
		if pick(10) == 0 && len(raw) > 1 {
			raw = raw[:pick(len(raw))] // cut short
		}
		out = append(out, in{raw, corpusMethods[pick(len(corpusMethods))]})
	}
	return out
}

// TestResponseHeadDifferential compares the parser with ReadResponse on
// the generated corpus.
func TestResponseHeadDifferential(t *testing.T) {
	corpus := responseCorpus()
	accepted, lenient := 0, map[string]int{}
	for i, c := range corpus {
		problem, l := compareResponse(c.raw, c.method)
		if problem != "" {
			t.Errorf("input %d (%s) %q:\n%s", i, c.method, clip(c.raw), problem)
			continue
		}
		if l != "" {
			lenient[l]++
		}
		if own := parseOwn(c.raw, c.method); own.err == nil {
			accepted++
		}
	}
	t.Logf("%d inputs: %d accepted by both; refused where net/http is lenient: %v", len(corpus), accepted, lenient)
	if accepted < len(corpus)/4 {
		t.Errorf("only %d of %d inputs accepted: the corpus hardly reaches the framing", accepted, len(corpus))
	}
	for _, want := range []string{lenBareLF, lenCR, lenObsFold, lenNameSpace, lenSpaces, lenStatus, lenReason, lenVersion, lenTE10, lenHeadSize, lenTrailerSyn} {
		if lenient[want] == 0 {
			t.Errorf("no input exercised the leniency %q", want)
		}
	}
}

// TestReadResponseSkipsInformational: 1xx responses other than 101 are
// read and dropped, as before; the heads share one size budget.
func TestReadResponseSkipsInformational(t *testing.T) {
	raw := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokNEXT"
	br := bufio.NewReader(strings.NewReader(raw))
	var scratch []byte
	r, err := readResponse(br, &http.Request{Method: "GET"}, &scratch)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r.resp.Body)
	if err != nil || string(b) != "ok" || r.resp.StatusCode != 200 {
		t.Fatalf("status %d body %q err %v", r.resp.StatusCode, b, err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "NEXT" {
		t.Errorf("left %q on the connection, want NEXT", rest)
	}

	r, err = readResponse(bufio.NewReader(strings.NewReader("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")), nil, &scratch)
	if err != nil || r.resp.StatusCode != 101 {
		t.Fatalf("101: %v", err)
	}

	many := strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: "+strings.Repeat("l", 1000)+"\r\n\r\n", 70) + "HTTP/1.1 200 OK\r\n\r\n"
	if _, err := readResponse(bufio.NewReader(strings.NewReader(many)), nil, &scratch); !errors.Is(err, errHeaderTooLarge) {
		t.Errorf("70KiB of 103 heads: err %v, want errHeaderTooLarge", err)
	}
}

// TestResponseHeadErrorsClassify: the parser's errors keep the causes
// net/http's gave (and its texts, where it had one for the same fault), so
// that access logs, passive health and retries see no change; the faults
// only holdfast refuses are protocol errors too.
func TestResponseHeadErrorsClassify(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string
		c    cause.Cause
	}{
		{"", "unexpected EOF", cause.ConnectionTerminated},
		{"HTTP/1.1 200 OK\r\nA: b\r\n", "unexpected EOF", cause.ConnectionTerminated},
		{"\x15\x03\x01\x00\x02\x02\x46", `malformed HTTP response "\x15\x03`, cause.TLSProtocolError},
		{"SSH-2.0-OpenSSH_9.6\r\nnot http at all\r\n\r\n", "malformed HTTP ", cause.HTTPProtocolError},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "http: message cannot contain multiple Content-Length headers", cause.HTTPProtocolError},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported transfer encoding", cause.HTTPProtocolError},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "too many transfer encodings", cause.HTTPProtocolError},
		{"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "bad Content-Length", cause.HTTPProtocolError},
		{"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "invalid empty Content-Length", cause.HTTPProtocolError},
		{"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "response head line ends with a bare LF", cause.HTTPProtocolError},
		{"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "folded header line", cause.HTTPProtocolError},
		{"HTTP/1.1 200 OK\r\nA : b\r\n\r\n", "malformed MIME header line", cause.HTTPProtocolError},
		{"HTTP/1.1 200 OK\r\nA: \x00\r\n\r\n", "malformed MIME header line", cause.HTTPProtocolError},
		{"HTTP/1.1 099 Low\r\n\r\n", "malformed HTTP status code", cause.HTTPProtocolError},
		{"HTTP/2.0 200 OK\r\n\r\n", "malformed HTTP version", cause.HTTPProtocolError},
		{"HTTP/1.1 200 O\x01K\r\n\r\n", "malformed HTTP reason phrase", cause.HTTPProtocolError},
		{"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "malformed HTTP response", cause.HTTPProtocolError},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n", "bad trailer key", cause.HTTPProtocolError},
	} {
		var scratch []byte
		budget := maxResponseHeader
		_, err := readResponseHead(bufio.NewReader(strings.NewReader(tc.raw)), nil, &scratch, &budget)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want one starting %q", tc.raw, err, tc.want)
		}
		if c := cause.Classify(err, cause.PhaseWait); c != tc.c {
			t.Errorf("%q: cause %v, want %v", tc.raw, c, tc.c)
		}
	}
}

// TestResponseHeadAllocs counts the allocations of a typical response
// head: the response with its body reader and values, the string, and
// the header map, which takes four once it has more than eight keys
// (two up to eight). net/http's ReadResponse takes 13 for the same head.
func TestResponseHeadAllocs(t *testing.T) {
	raw := []byte(typicalResponse)
	sr := bytes.NewReader(raw)
	br := bufio.NewReaderSize(sr, 16<<10)
	scratch := make([]byte, 0, 1024)
	req := &http.Request{Method: "GET"}
	n := testing.AllocsPerRun(100, func() {
		sr.Reset(raw)
		br.Reset(sr)
		budget := maxResponseHeader
		r, err := readResponseHead(br, req, &scratch, &budget)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.resp.Body)
	})
	if n > 6 {
		t.Errorf("%v allocations per response head, want at most 6", n)
	}
}

// TestH1ResponseSize: the response, its body reader and its values stay
// in the allocator's 512-byte class, where no malloc header is needed.
func TestH1ResponseSize(t *testing.T) {
	if n := unsafe.Sizeof(h1Response{}); n > 512 {
		t.Errorf("h1Response is %d bytes: make respFields smaller", n)
	}
}

// typicalResponse is a response head as nginx in front of an application
// sends it.
const typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Server: nginx/1.27.0\r\n" +
	"Date: Mon, 01 Dec 2025 10:00:00 GMT\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Length: 5\r\n" +
	"Connection: keep-alive\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"Cache-Control: private, max-age=0\r\n" +
	"ETag: \"5f3a-1c\"\r\n" +
	"x-request-id: 6f1c2a9e\r\n" +
	"Set-Cookie: session=abc; Path=/; HttpOnly\r\n" +
	"\r\nhello"

func BenchmarkResponseHead(b *testing.B) {
	raw := []byte(typicalResponse)
	req := &http.Request{Method: "GET"}
	b.Run("net/http", func(b *testing.B) {
		sr := bytes.NewReader(raw)
		br := bufio.NewReaderSize(sr, 16<<10)
		b.ReportAllocs()
		for b.Loop() {
			sr.Reset(raw)
			br.Reset(sr)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
		}
	})
	b.Run("holdfast", func(b *testing.B) {
		sr := bytes.NewReader(raw)
		br := bufio.NewReaderSize(sr, 16<<10)
		var scratch []byte
		b.ReportAllocs()
		for b.Loop() {
			sr.Reset(raw)
			br.Reset(sr)
			budget := maxResponseHeader
			r, err := readResponseHead(br, req, &scratch, &budget)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, r.resp.Body)
		}
	})
}

// FuzzResponseHead compares the parser with ReadResponse on any input.
func FuzzResponseHead(f *testing.F) {
	for _, c := range responseCorpus()[:600] {
		if len(c.raw) < 4096 {
			f.Add(c.raw, c.method == "HEAD")
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		if problem, _ := compareResponse(raw, method); problem != "" {
			t.Errorf("%s %q:\n%s", method, clip(raw), problem)
		}
	})
}

// clip shortens an input for a test message.
func clip(b []byte) []byte {
	if len(b) > 400 {
		return append(append([]byte(nil), b[:400]...), "..."...)
	}
	return b
}
