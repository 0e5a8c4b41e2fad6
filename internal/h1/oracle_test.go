package h1

// A model of net/http's HTTP/1 server, built on http.ReadRequest, for the
// differential tests: what net/http would hand to a handler, request by
// request, for a stream of bytes from a client. It uses nothing of the
// package under test.

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// oracleToken reports whether s is a token (RFC 9110 section 5.6.2), as
// httpguts.ValidHeaderFieldName checks a field name.
func oracleToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHostHeader is httpguts.ValidHostHeader.
func validHostHeader(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			strings.IndexByte("!$%&()*+,-.:;=[']_~", c) >= 0) {
			return false
		}
	}
	return true
}

// validFieldValue is httpguts.ValidHeaderFieldValue: no control character
// but HTAB.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// netHasToken is net/http's hasToken (header.go): token in v, delimited by
// a space, a comma or a tab, in any ASCII case.
func netHasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	boundary := func(b byte) bool { return b == ' ' || b == ',' || b == '\t' }
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if sp > 0 && !boundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !boundary(v[end]) {
			continue
		}
		if oracleEqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

// listHasToken is httpguts.HeaderValuesContainsToken, which is also what
// RFC 9110 section 5.6.1 makes of a list: comma-separated elements, with
// optional whitespace around them, in any ASCII case, over all fields.
func listHasToken(values []string, token string) bool {
	for _, v := range values {
		for _, el := range strings.Split(v, ",") {
			if oracleEqualFold(strings.Trim(el, " \t"), token) {
				return true
			}
		}
	}
	return false
}

func oracleEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// netReader reads a stream from an offset through a bufio.Reader of
// net/http's size, and knows how far it has consumed.
type netReader struct {
	stream []byte
	src    *bytes.Reader
	br     *bufio.Reader
}

func newNetReader(stream []byte, off, size int) *netReader {
	src := bytes.NewReader(stream[off:])
	return &netReader{stream: stream, src: src, br: bufio.NewReaderSize(src, size)}
}

// pos is the stream offset of the next byte not consumed.
func (n *netReader) pos() int { return len(n.stream) - n.src.Len() - n.br.Buffered() }

// netHead is one request head as net/http's server reads it.
type netHead struct {
	req         *http.Request
	raw         textproto.MIMEHeader // the header section as read, Host and framing fields included
	isH2Upgrade bool
	refusal     string // why conn.readRequest or conn.serve refuses it; "" if they do not
}

// readNetHead reads a request head with http.ReadRequest, then applies the
// checks net/http's server makes before calling a handler
// (conn.readRequest and conn.serve, Go 1.26).
func readNetHead(nr *netReader) (*netHead, error) {
	start := nr.pos()
	req, err := http.ReadRequest(nr.br)
	if err != nil {
		return nil, err
	}
	// http.ReadRequest drops Host, and the framing fields of a chunked
	// request: read the header section again, as the server sees it.
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(nr.stream[start:nr.pos()])))
	if _, err := tp.ReadLine(); err != nil {
		panic("re-reading a head net/http read: " + err.Error())
	}
	raw, err := tp.ReadMIMEHeader()
	if err != nil {
		panic("re-reading a head net/http read: " + err.Error())
	}
	h := &netHead{req: req, raw: raw}
	hosts, haveHost := raw["Host"]
	h.isH2Upgrade = req.Method == "PRI" && len(req.Header) == 0 && !haveHost && req.URL.Path == "*" && req.Proto == "HTTP/2.0"
	switch {
	case req.ProtoMajor != 1 && !(req.ProtoMajor == 2 && req.ProtoMinor == 0 && req.Method == "PRI" && req.RequestURI == "*"):
		h.refusal = "505: unsupported protocol version"
	case req.ProtoAtLeast(1, 1) && len(hosts) == 0 && !h.isH2Upgrade && req.Method != "CONNECT":
		h.refusal = "400: missing Host"
	case len(hosts) == 1 && !validHostHeader(hosts[0]):
		h.refusal = "400: malformed Host"
	}
	if h.refusal != "" {
		return h, nil
	}
	for k, vv := range req.Header {
		if !oracleToken(k) {
			h.refusal = "400: invalid header name"
		}
		for _, v := range vv {
			if !validFieldValue(v) {
				h.refusal = "400: invalid header value"
			}
		}
	}
	for _, v := range hosts {
		if !validFieldValue(v) {
			h.refusal = "400: invalid header value"
		}
	}
	if h.refusal != "" {
		return h, nil
	}
	if e := req.Header.Get("Expect"); e != "" && !netHasToken(e, "100-continue") {
		h.refusal = "417: expectation failed"
	}
	return h, nil
}

// modelReq is a request net/http's server would hand to its handler (or,
// where beyond says so, one that h1 hands over by RFC 9112 where net/http
// would not), with its framing.
type modelReq struct {
	leadStart int // where the bytes before it begin (after the previous request)
	start     int // where its request line begins
	headEnd   int
	bodyEnd   int

	method, target, host, url string
	major, minor              int
	raw                       textproto.MIMEHeader
	header                    http.Header // comparable form, see comparableHeader
	contentLength             int64
	chunked                   bool
	both                      bool // both Content-Length and Transfer-Encoding
	body                      []byte
	trailer                   http.Header // comparable form
	bodyErr                   error       // net/http's handler saw the request but not its body's end

	// bodyLeniency: net/http refuses the chunked body, which RFC 9112
	// allows; the model read it as RFC 9112 does, and h1 may do either.
	bodyLeniency string

	netKeep bool // net/http serves the connection on after it
	rfcKeep bool // RFC 9112 (and h1) serve the connection on after it

	// beyond: net/http would not hand this request over, h1 does by RFC
	// 9112; the first such reason on the connection.
	beyond string
}

type model struct {
	reqs    []modelReq
	stopAt  int
	stopWhy string
}

var crlf = []byte("\r\n")

// netHTTPModel runs the model of net/http's server over a stream, with a
// handler that reads every body to its end. Where net/http is stricter
// than RFC 9112 and h1 follows the RFC, the model reads on as h1 should,
// marking the requests past that point as beyond net/http.
func netHTTPModel(stream []byte) model {
	var m model
	off := 0
	lastMethod := ""
	beyond := ""
	stop := func(at int, why string) model {
		m.stopAt, m.stopWhy = at, why
		return m
	}
	for {
		lead := off
		if lastMethod == "POST" {
			// net/http's tolerance for old clients: after a POST, up to
			// 4 CR or LF bytes are skipped.
			for n := 0; n < 4 && off < len(stream) && (stream[off] == '\r' || stream[off] == '\n'); n++ {
				off++
			}
		}
		if bytes.HasPrefix(stream[off:], crlf) {
			// RFC 9112 section 2.2: a server SHOULD ignore at least one
			// empty line (CRLF) before a request line. h1 skips them all;
			// net/http reads one as a malformed request line.
			for bytes.HasPrefix(stream[off:], crlf) {
				off += 2
			}
			if beyond == "" && off < len(stream) {
				beyond = "an empty line (CRLF) before the request line, which net/http answers with 400"
			}
		}
		if off >= len(stream) {
			return stop(lead, "end of the stream")
		}
		nr := newNetReader(stream, off, 4096)
		nh, err := readNetHead(nr)
		if err != nil {
			return stop(lead, "net/http refuses the head: "+err.Error())
		}
		if nh.refusal != "" {
			return stop(lead, "net/http refuses the head: "+nh.refusal)
		}
		req := nh.req
		lastMethod = req.Method
		r := modelReq{
			leadStart: lead, start: off, headEnd: nr.pos(),
			method: req.Method, target: req.RequestURI, host: req.Host, url: req.URL.String(),
			major: req.ProtoMajor, minor: req.ProtoMinor,
			raw:           nh.raw,
			contentLength: req.ContentLength,
			chunked:       len(req.TransferEncoding) > 0,
			both:          len(nh.raw["Content-Length"]) > 0 && len(nh.raw["Transfer-Encoding"]) > 0,
			beyond:        beyond,
		}
		r.header = comparableHeader(req.Header, nh.raw, r.chunked)
		body, berr := io.ReadAll(req.Body)
		r.bodyEnd = nr.pos()
		if berr != nil && r.chunked {
			if fb, ok := chunkedFallback(stream[r.headEnd:]); ok {
				body, berr = fb.body, nil
				req.Trailer = fb.trailer
				r.bodyEnd = r.headEnd + fb.n
				r.bodyLeniency = fb.reason
			}
		}
		if berr != nil {
			r.bodyErr = berr
			m.reqs = append(m.reqs, r)
			return stop(r.headEnd, "net/http fails reading the body: "+berr.Error())
		}
		r.body = body
		r.trailer = comparableTrailer(req.Trailer)
		r.netKeep = netKeeps(nh, len(body))
		r.rfcKeep = rfcKeeps(nh.raw["Connection"], r.major, r.minor)
		m.reqs = append(m.reqs, r)
		switch {
		case r.bodyLeniency != "":
			if !r.rfcKeep {
				return stop(r.bodyEnd, "the connection closes")
			}
			if beyond == "" {
				beyond = "after a chunked body net/http refuses: " + r.bodyLeniency
			}
		case r.netKeep:
		case r.rfcKeep:
			if beyond == "" {
				beyond = "net/http closes the connection after a request whose Connection field it reads otherwise " +
					"(the first field only, tokens also separated by spaces), or an OPTIONS * with a body over 4 KiB"
			}
		default:
			return stop(r.bodyEnd, "the connection closes")
		}
		off = r.bodyEnd
	}
}

// netKeeps reports whether net/http's server serves the connection on
// after a request whose body its handler read (of bodyLen bytes) and
// answered with a short body (so with a Content-Length).
func netKeeps(nh *netHead, bodyLen int) bool {
	req := nh.req
	if nh.isH2Upgrade {
		return false
	}
	if req.Method == "OPTIONS" && req.RequestURI == "*" && req.ContentLength != 0 && bodyLen > 4<<10 {
		// Its own OPTIONS * answer reads 4 KiB of body at most, then
		// closes.
		return false
	}
	first := req.Header.Get("Connection")
	if req.ProtoMajor == 1 && req.ProtoMinor == 0 {
		return netHasToken(first, "keep-alive") // response.wants10KeepAlive
	}
	return !req.Close && !netHasToken(first, "close") // response.wantsClose
}

// rfcKeeps reports whether RFC 9112 section 9.3 keeps a connection after
// a request with these Connection fields.
func rfcKeeps(connection []string, major, minor int) bool {
	if listHasToken(connection, "close") {
		return false
	}
	if major == 1 && minor == 0 {
		return listHasToken(connection, "keep-alive")
	}
	return true
}

// comparableHeader returns a request's header fields in the form both
// servers hand over, for comparison. Applied to both sides alike:
//   - both take Host and Transfer-Encoding out of the map (a chunked
//     request has Request.TransferEncoding set instead);
//   - net/http drops the Content-Length of a chunked request, which h1
//     refuses: nothing to do;
//   - net/http adds "Cache-Control: no-cache" when "Pragma: no-cache" came
//     without a Cache-Control (fixPragmaCacheControl); h1 adds nothing: a
//     Cache-Control the client did not send is removed;
//   - net/http moves a chunked request's Trailer field into the keys of
//     Request.Trailer; h1 keeps it in the header: removed when chunked.
func comparableHeader(h http.Header, raw textproto.MIMEHeader, chunked bool) http.Header {
	c := h.Clone()
	if c == nil {
		c = http.Header{}
	}
	if _, ok := raw["Cache-Control"]; !ok {
		delete(c, "Cache-Control")
	}
	if chunked {
		delete(c, "Trailer")
	}
	return c
}

// comparableTrailer returns the trailer fields received: net/http also
// holds, with no value, those the Trailer field declared.
func comparableTrailer(h http.Header) http.Header {
	c := http.Header{}
	for k, vv := range h {
		if len(vv) > 0 {
			c[k] = append([]string(nil), vv...)
		}
	}
	return c
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || len(va) != len(vb) {
			return false
		}
		for i := range va {
			if va[i] != vb[i] {
				return false
			}
		}
	}
	return true
}

// rfcChunked is a chunked body read as RFC 9112 section 7.1 reads it.
type rfcChunked struct {
	body    []byte
	trailer http.Header
	n       int    // bytes of the stream it takes
	reason  string // why net/http refuses it
}

// cutCRLFLine returns the line at b[off:] without its CRLF, and the offset
// after it; ok is false unless it ends in CRLF with no other CR or LF.
func cutCRLFLine(b []byte, off int) (line string, next int, ok bool) {
	i := bytes.IndexByte(b[off:], '\n')
	if i < 1 || b[off+i-1] != '\r' {
		return "", 0, false
	}
	line = string(b[off : off+i-1])
	if strings.IndexByte(line, '\r') >= 0 {
		return "", 0, false
	}
	return line, off + i + 1, true
}

func hexDigits(s string) int {
	n := 0
	for n < len(s) && strings.IndexByte("0123456789abcdefABCDEF", s[n]) >= 0 {
		n++
	}
	return n
}

// chunkedFallback reads a chunked body that net/http refused as RFC 9112
// allows it, when net/http's refusal is one of its known limits beyond the
// RFC: whitespace before a chunk extension's ";" (BWS, section 7.1.1),
// lines over its 4 KiB buffer, a trailer section over that buffer, or its
// bound on the bytes of chunk extensions. The body must then read the
// same through net/http once those are taken out.
func chunkedFallback(b []byte) (rfcChunked, bool) {
	var fb rfcChunked
	var norm bytes.Buffer // the body without extensions
	off, extBytes, longLine, bws := 0, 0, false, false
	for {
		line, next, ok := cutCRLFLine(b, off)
		if !ok {
			return fb, false
		}
		longLine = longLine || len(line) >= 4094
		d := hexDigits(line)
		if d == 0 || d > 15 {
			return fb, false
		}
		rest := line[d:]
		if rest != "" {
			ext := strings.TrimLeft(rest, " \t")
			if ext == "" || ext[0] != ';' || !validFieldValue(ext) {
				return fb, false
			}
			bws = bws || len(ext) < len(rest)
			extBytes += len(rest)
		}
		var size int
		for _, c := range line[:d] {
			size = size<<4 | int(strings.IndexByte("0123456789abcdef", byte(c)|0x20))
		}
		norm.WriteString(line[:d] + "\r\n")
		off = next
		if size == 0 {
			break
		}
		if len(b)-off < size+2 || !bytes.Equal(b[off+size:off+size+2], crlf) {
			return fb, false
		}
		fb.body = append(fb.body, b[off:off+size]...)
		norm.Write(b[off : off+size+2])
		off += size + 2
	}
	trailerStart := off
	fb.trailer = http.Header{}
	for {
		line, next, ok := cutCRLFLine(b, off)
		if !ok {
			return fb, false
		}
		norm.WriteString(line + "\r\n")
		off = next
		if line == "" {
			break
		}
		longLine = longLine || len(line) >= 4094
		name, value, ok := strings.Cut(line, ":")
		value = strings.Trim(value, " \t")
		if !ok || !oracleToken(name) || !validFieldValue(value) {
			return fb, false
		}
		fb.trailer.Add(name, value)
	}
	fb.n = off
	switch {
	case bws:
		fb.reason = "whitespace before a chunk extension's \";\" (BWS, RFC 9112 section 7.1.1)"
	case longLine:
		fb.reason = "a chunk or trailer line over net/http's 4 KiB"
	case off-trailerStart > 4000:
		fb.reason = "a trailer section over net/http's 4 KiB buffer"
	case extBytes > 16<<10:
		fb.reason = "chunk extensions over net/http's bound on overhead"
	default:
		return fb, false
	}
	// Without what net/http refuses, net/http must read the same.
	head := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	req, err := http.ReadRequest(bufio.NewReaderSize(io.MultiReader(strings.NewReader(head), &norm), 1<<20))
	if err != nil {
		return fb, false
	}
	body, err := io.ReadAll(req.Body)
	if err != nil || !bytes.Equal(body, fb.body) || !equalHeader(comparableTrailer(req.Trailer), fb.trailer) {
		return fb, false
	}
	return fb, true
}

// headStrictness returns why h1 may refuse a head that net/http serves:
// the leniencies of net/http that RFC 9112 lets a server refuse, and that
// h1 refuses because they let requests be smuggled past another parser.
// lead is the bytes skipped before the request line. "" means none.
func headStrictness(lead, head []byte, raw textproto.MIMEHeader, method string, major, minor int) string {
	for bytes.HasPrefix(lead, crlf) {
		lead = lead[2:]
	}
	if len(lead) > 0 {
		// net/http skips up to 4 CR or LF bytes in any order after a
		// POST; h1 skips only empty lines.
		return "a CR or LF before the request line that is not an empty line"
	}
	for i, c := range head {
		if c == '\n' && (i == 0 || head[i-1] != '\r') {
			return "a bare LF" // net/http takes it for CRLF
		}
		if c == '\r' && (i+1 == len(head) || head[i+1] != '\n') {
			return "a bare CR" // net/http drops it at a line's end
		}
	}
	lines := strings.Split(string(head), "\r\n")
	for _, l := range lines[1:] {
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			return "a folded line (obs-fold)" // net/http joins it to the one before
		}
		if name, _, ok := strings.Cut(l, ":"); ok && strings.TrimRight(name, " \t") != name {
			return "whitespace before a colon"
		}
		if !validFieldValue(l) {
			return "a control character in a field value"
		}
	}
	cl, te := raw["Content-Length"], raw["Transfer-Encoding"]
	switch {
	case len(cl) > 0 && len(te) > 0:
		return "both Content-Length and Transfer-Encoding" // net/http drops the Content-Length
	case len(te) > 0 && major == 1 && minor == 0:
		return "a Transfer-Encoding on HTTP/1.0" // net/http ignores it
	case len(te) > 1 || len(te) == 1 && strings.Contains(te[0], ","):
		return "a Transfer-Encoding list"
	}
	for _, v := range cl {
		if v != cl[0] {
			return "Content-Length fields that disagree"
		}
		if len(strings.Trim(v, " \t")) > 18 {
			return "a Content-Length of more than 18 digits" // net/http reads 19, leading zeros included
		}
	}
	if ex := raw["Expect"]; len(ex) > 0 && (len(ex) > 1 || !oracleEqualFold(ex[0], "100-continue")) {
		// net/http reads the first Expect field only, as a list with
		// 100-continue in it, and ignores an empty one.
		return "an Expect other than one 100-continue"
	}
	if major != 1 {
		return "an HTTP/2.0 request line (PRI * HTTP/2.0)" // net/http lets a handler take it over
	}
	if len(raw["Host"]) == 0 && method == "CONNECT" && minor >= 1 {
		return "an HTTP/1.1 CONNECT without Host" // net/http exempts CONNECT
	}
	return ""
}

// chunkedStrictness returns why h1 may refuse a chunked body (with its
// trailer section) that net/http reads: b is the body as net/http framed
// it. "" means none.
func chunkedStrictness(b []byte) string {
	off := 0
	for {
		line, next, ok := cutCRLFLine(b, off)
		if !ok {
			return ""
		}
		if len(line) >= 4094 {
			return "a chunk line near net/http's 4 KiB bound"
		}
		d := hexDigits(line)
		rest := line[d:]
		switch {
		case d > 15:
			return "a chunk size of 16 hex digits" // net/http reads 16
		case rest != "" && strings.Trim(rest, " \t") == "":
			return "whitespace after a chunk size" // net/http trims it
		case !validFieldValue(rest):
			return "a control character in a chunk extension"
		}
		size := 0
		for _, c := range line[:d] {
			size = size<<4 | int(strings.IndexByte("0123456789abcdef", byte(c)|0x20))
		}
		off = next
		if size == 0 {
			break
		}
		off += size + 2
		if off > len(b) {
			return ""
		}
	}
	// The trailer section, as textproto reads it.
	for off < len(b) {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return ""
		}
		line := b[off : off+i]
		off += i + 1
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return "a bare LF in the trailer section"
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			return ""
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			return "a bare CR in the trailer section"
		}
		if line[0] == ' ' || line[0] == '\t' {
			return "a folded line or leading whitespace in the trailer section"
		}
		name, value, _ := strings.Cut(string(line), ":")
		if !oracleToken(name) {
			return "a trailer field name that is not a token" // net/http takes "X :" and "X Y:"
		}
		if !validFieldValue(value) {
			return "a control character in a trailer value"
		}
	}
	return ""
}
