package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	mime "net/textproto" // the package name is taken by headers.go's textproto
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// Reading upstream responses.
//
// holdfast's own HTTP/1.1 client reads each response head itself rather
// than with net/http's ReadResponse, which costs about ten allocations per
// response (a string per field value, the transfer reader, the body
// wrappers) and accepts more than a proxy should. Here the head is copied
// once into the connection's scratch buffer, checked, its field names put
// in canonical form in place, and turned into one string: the status and
// every key and value are slices of it (so no table of common names is
// needed to spare an allocation per key), the values' slices share one
// backing array, and the response, its body reader and that array are one
// allocation. A typical response costs five or six allocations, four of
// them the header map's own; ReadResponse took about twenty for the same.
// The price is that a kept header value holds on to the whole head, which
// is at most maxResponseHeader and usually well under 1KiB.
//
// The parser is strict where RFC 9112 lets a recipient be lenient, because
// a proxy that reads a response differently from the next hop is how
// responses get smuggled and caches poisoned. It accepts a subset of what
// ReadResponse accepts, and for what both accept it gives the same
// response, field for field, and consumes the same bytes (the differential
// test and fuzz test in h1wire_response_test.go check both). It refuses:
//
//   - a line that ends in a bare LF, or holds a CR anywhere but before its
//     LF (RFC 9112 section 2.2 allows a recipient to take a bare LF as a
//     line end; net/http does, holdfast does not);
//   - obs-fold, a field line that starts with a space or tab, which net/http
//     joins to the line before (RFC 9112 section 5.2 lets a proxy refuse it);
//   - whitespace between a field name and its colon, or inside the name
//     (section 5.1: a proxy must not forward it; net/http keeps it in the
//     key);
//   - a status line with more than one space after the version, a status
//     code that is not three digits from 100 to 999, or a reason phrase with
//     a control character (net/http takes "+99", "000" and a CR or NUL in
//     the reason; a status below 100 would then panic in net/http's server);
//   - a version other than HTTP/1.x (net/http takes HTTP/0.9 and HTTP/2.0
//     in an HTTP/1 status line);
//   - Transfer-Encoding in an HTTP/1.0 response: section 6.1 says the
//     framing is then faulty; net/http ignores the field and trusts
//     Content-Length;
//   - a head over maxResponseHeader (net/http has no limit of its own;
//     holdfast bounds it on the connection too).
//
// The framing decisions are net/http's: only "chunked" as the single
// transfer coding, Transfer-Encoding overriding and removing
// Content-Length, repeated Content-Length fields accepted only when equal,
// no body for HEAD, 1xx, 204 and 304, and a body delimited by the end of the
// connection otherwise.

// wireClass tells the bytes of a head apart: tchar of RFC 9110 section
// 5.6.2 for field names, and field-vchar, space and tab (obs-text included,
// as net/http and RFC 9110 section 5.5 allow) for values and the reason
// phrase.
var wireClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if c == '\t' || c == ' ' || c >= 0x21 && c != 0x7f {
			t[c] |= classValue
		}
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= classToken
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= classToken
		t[c-'a'+'A'] |= classToken
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] |= classToken
	}
	return t
}()

const (
	classToken = 1 << iota // may be in a field name
	classValue             // may be in a field value or a reason phrase
)

// respFields is how many field values an h1Response holds without another
// allocation: enough for most responses, and few enough that the whole
// stays within 512 bytes, the largest size class the allocator serves
// without a header of its own (TestH1ResponseSize).
const respFields = 14

// h1Response is a response read from an upstream, its body reader, and the
// backing array of its header values, allocated as one.
type h1Response struct {
	resp http.Response
	body h1Body
	te   [1]string
	vals [respFields]string
}

// Errors of the response parser. Messages that begin "malformed HTTP "
// are classified as http_protocol_error, like net/http's own (cause
// package); so are mime.ProtocolError (net/textproto) values.
var (
	errBareLF       = mime.ProtocolError("response head line ends with a bare LF")
	errObsFold      = mime.ProtocolError("folded header line (obs-fold) in a response")
	errNoColon      = mime.ProtocolError("malformed MIME header line: no colon")
	errFieldName    = mime.ProtocolError("malformed MIME header line: field name is not a token (a space before the colon?)")
	errFieldValue   = mime.ProtocolError("malformed MIME header line: control character in a field value")
	errTE10         = errors.New("malformed HTTP response: HTTP/1.0 response with Transfer-Encoding")
	errTrailerEOF   = errors.New("http: unexpected EOF reading trailer")
	errTrailerLarge = errors.New("http: suspiciously long trailer after chunked body")
)

// badString is an error about bytes the upstream sent, in net/http's form:
// what, then the bytes quoted.
type badString struct{ what, val string }

func (e *badString) Error() string { return e.what + " " + strconv.Quote(e.val) }

// readResponse reads the final response to req from br, skipping
// informational ones (a 101 is final: the connection changes protocol).
// scratch is the connection's buffer for the head, kept between responses.
// The heads read, informational ones included, may be maxResponseHeader
// bytes in all.
func readResponse(br *bufio.Reader, req *http.Request, scratch *[]byte) (*h1Response, error) {
	budget := maxResponseHeader
	for {
		r, err := readResponseHead(br, req, scratch, &budget)
		if err != nil {
			return nil, err
		}
		if r.resp.StatusCode >= 200 || r.resp.StatusCode == http.StatusSwitchingProtocols {
			return r, nil
		}
	}
}

// readResponseHead reads one response head from br and settles how its
// body is delimited. budget is what may still be read of heads; it is
// reduced by what this one took.
func readResponseHead(br *bufio.Reader, req *http.Request, scratch *[]byte, budget *int) (*h1Response, error) {
	buf := (*scratch)[:0]
	defer func() {
		// Keep the buffer for the next response, unless a large head
		// grew it: an idle connection should not hold on to 64KiB.
		if cap(buf) <= 8<<10 {
			*scratch = buf[:0]
		}
	}()

	// The status line.
	buf, err := appendLine(br, buf, budget)
	if err != nil {
		if err == io.EOF {
			if len(buf) > 0 {
				// The connection ended within the first line: say what
				// was wrong with it if anything, as net/http does (a TLS
				// record sent to a plain HTTP client is recognised so).
				if _, _, err := parseStatusLine(buf); err != nil {
					return nil, err
				}
			}
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(buf) < 2 || buf[len(buf)-2] != '\r' {
		if _, _, err := parseStatusLine(bytes.TrimSuffix(buf, []byte("\n"))); err != nil {
			return nil, err
		}
		return nil, errBareLF
	}
	statusEnd := len(buf)
	minor, code, err := parseStatusLine(buf[:statusEnd-2])
	if err != nil {
		return nil, err
	}

	// The field lines, checked, and their names put in canonical form, in
	// place.
	nfields := 0
	for {
		start := len(buf)
		buf, err = appendLine(br, buf, budget)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line := buf[start:]
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return nil, errBareLF
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			break
		}
		if err := checkField(line); err != nil {
			return nil, err
		}
		nfields++
	}

	r := new(h1Response)
	s := string(buf) // the one copy every string of the response is cut from
	resp := &r.resp
	switch minor {
	case 0:
		resp.Proto = "HTTP/1.0"
	case 1:
		resp.Proto = "HTTP/1.1"
	default:
		resp.Proto = s[:len("HTTP/1.x")]
	}
	resp.ProtoMajor, resp.ProtoMinor = 1, minor
	resp.StatusCode = code
	resp.Status = s[len("HTTP/1.x ") : statusEnd-2]
	resp.Request = req
	var seen fieldSet
	resp.Header, seen = fieldsOf(s[statusEnd:len(s)-2], nfields, r.vals[:])

	if err := r.frame(br, req, seen); err != nil {
		return nil, err
	}
	return r, nil
}

// appendLine appends the next line from br, its LF included, to buf. A
// line longer than br's buffer comes in pieces. It fails with
// errHeaderTooLarge once the line would take more than budget bytes, and
// with io.EOF when the input ends before an LF (buf then holds what came).
func appendLine(br *bufio.Reader, buf []byte, budget *int) ([]byte, error) {
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > *budget {
			return buf, errHeaderTooLarge
		}
		*budget -= len(frag)
		buf = append(buf, frag...)
		if err != bufio.ErrBufferFull {
			return buf, err
		}
	}
}

// parseStatusLine parses a status line, less its CRLF:
//
//	status-line = "HTTP/1." DIGIT SP 3DIGIT [ SP reason-phrase ]
//
// A status line that ends right after the code is accepted, as net/http
// and most clients accept it. The errors are net/http's where it has one
// for the same fault.
func parseStatusLine(line []byte) (minor, code int, err error) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return 0, 0, &badString{"malformed HTTP response", string(line)}
	}
	proto, rest := line[:sp], line[sp+1:]
	if len(rest) < 3 || len(rest) > 3 && rest[3] != ' ' ||
		rest[0] < '1' || rest[0] > '9' || rest[1] < '0' || rest[1] > '9' || rest[2] < '0' || rest[2] > '9' {
		c := rest
		if i := bytes.IndexByte(c, ' '); i >= 0 {
			c = c[:i]
		}
		return 0, 0, &badString{"malformed HTTP status code", string(c)}
	}
	if len(proto) != len("HTTP/1.x") || string(proto[:len("HTTP/1.")]) != "HTTP/1." || proto[7] < '0' || proto[7] > '9' {
		return 0, 0, &badString{"malformed HTTP version", string(proto)}
	}
	for _, c := range rest[3:] {
		if wireClass[c]&classValue == 0 {
			return 0, 0, &badString{"malformed HTTP reason phrase", string(rest[3:])}
		}
	}
	code = int(rest[0]-'0')*100 + int(rest[1]-'0')*10 + int(rest[2]-'0')
	return int(proto[7] - '0'), code, nil
}

// checkField checks a field line, less its CRLF, and puts its name in
// canonical form in place (the form textproto.CanonicalMIMEHeaderKey
// gives: an upper case letter first and after each hyphen, lower case
// elsewhere).
func checkField(line []byte) error {
	if line[0] == ' ' || line[0] == '\t' {
		return errObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return errNoColon
	}
	if colon == 0 {
		return errFieldName
	}
	upper := true
	for i, c := range line[:colon] {
		if wireClass[c]&classToken == 0 {
			return errFieldName
		}
		if upper && 'a' <= c && c <= 'z' {
			line[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			line[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	for _, c := range line[colon+1:] {
		if wireClass[c]&classValue == 0 {
			return errFieldValue
		}
	}
	return nil
}

// fieldSet notes which of the fields that decide the framing a head has,
// so that frame looks up only those present.
type fieldSet uint8

const (
	hasConnection fieldSet = 1 << iota
	hasTE
	hasCL
	hasTrailer
	hasPragma
)

// framingField returns the fieldSet bit of key k, or 0.
func framingField(k string) fieldSet {
	switch k {
	case "Connection":
		return hasConnection
	case "Transfer-Encoding":
		return hasTE
	case "Content-Length":
		return hasCL
	case "Trailer":
		return hasTrailer
	case "Pragma":
		return hasPragma
	}
	return 0
}

// fieldsOf builds the header from checked field lines, each ending in
// CRLF. Keys and values are slices of block; a key's first value takes
// the next slot of vals (or of a new array once vals is used up), with its
// capacity cut to one so that an append by a later user cannot reach the
// next key's value.
//
// Repeated keys are found by comparing with the keys before, which for
// the dozen fields of a usual head costs less than a map lookup per field
// before each insertion.
func fieldsOf(block string, n int, vals []string) (http.Header, fieldSet) {
	// With room for the fields the proxy adds when the map becomes the
	// client's response header (finishResponseHeader, respond): Via,
	// X-Request-Id and an empty Content-Type, so that it does not grow.
	h := make(http.Header, n+3)
	if n > len(vals) {
		vals = make([]string, n)
	}
	var (
		seen  fieldSet
		keys  [respFields]string // the keys so far, while they fit
		nkeys int
	)
	for i := 0; len(block) > 0; i++ {
		end := 0
		for block[end] != '\r' {
			end++
		}
		line := block[:end]
		block = block[end+2:]
		colon := 0
		for line[colon] != ':' {
			colon++
		}
		k, v := line[:colon], trimOWS(line[colon+1:])
		seen |= framingField(k)
		repeated := false
		if i < len(keys) {
			for _, prev := range keys[:nkeys] {
				if prev == k {
					repeated = true
					break
				}
			}
			if !repeated {
				keys[nkeys] = k
				nkeys++
			}
		} else {
			_, repeated = h[k]
		}
		if repeated {
			h[k] = append(h[k], v)
			continue
		}
		vals[0] = v
		h[k] = vals[:1:1]
		vals = vals[1:]
	}
	return h, seen
}

// Ways a response body is delimited.
const (
	bodyNone    uint8 = iota // no body, or all of it read
	bodyLength               // Content-Length bytes
	bodyChunked              // the chunked coding, then trailers
	bodyClose                // the end of the connection
	bodyFailed               // the body failed: err again
)

// frame settles how the body is delimited, as net/http's readTransfer
// does for a response, and sets up r.body's reader.
func (r *h1Response) frame(br *bufio.Reader, req *http.Request, seen fieldSet) error {
	resp := &r.resp
	hdr := resp.Header
	method := "GET"
	if req != nil {
		method = req.Method
	}

	// Connection: an HTTP/1.0 response is the last on its connection
	// unless it says keep-alive; an HTTP/1.1 one only when it says close,
	// and then the field is dropped, as net/http drops it.
	var conn []string
	if seen&hasConnection != 0 {
		conn = hdr["Connection"]
	}
	resp.Close = httpguts.HeaderValuesContainsToken(conn, "close")
	if resp.ProtoMinor == 0 {
		resp.Close = resp.Close || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	} else if resp.Close {
		delete(hdr, "Connection")
	}

	// Transfer-Encoding: a single field, "chunked" in any case, or the
	// response is refused (RFC 9112 section 6.3 would read a body of
	// another coding to the end of the connection; net/http refuses it,
	// as nginx does).
	chunked := false
	if seen&hasTE != 0 {
		te := hdr["Transfer-Encoding"]
		delete(hdr, "Transfer-Encoding")
		if resp.ProtoMinor == 0 {
			return errTE10
		}
		if len(te) != 1 {
			return errors.New("too many transfer encodings: " + joinQuoted(te))
		}
		if !asciiEqualFold(te[0], "chunked") {
			return &badString{"unsupported transfer encoding:", te[0]}
		}
		chunked = true
	}

	// Content-Length: repeated fields must agree, and are kept as one.
	var cl []string
	if seen&hasCL != 0 {
		cl = hdr["Content-Length"]
	}
	if len(cl) > 1 {
		for _, v := range cl[1:] {
			if v != cl[0] {
				return errors.New("http: message cannot contain multiple Content-Length headers; got " + joinQuoted(cl))
			}
		}
		cl = cl[:1:1]
		hdr["Content-Length"] = cl
	}
	length := int64(-1)
	if len(cl) > 0 {
		if cl[0] == "" {
			return &badString{"invalid empty Content-Length", ""}
		}
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil {
			return &badString{"bad Content-Length", cl[0]}
		}
		length = int64(n)
	}

	code := resp.StatusCode
	noBody := method == "HEAD" || code/100 == 1 || code == 204 || code == 304
	switch {
	case method == "HEAD":
		resp.ContentLength = length // what a GET would have had
	case noBody:
		resp.ContentLength = 0
	case chunked:
		if seen&hasCL != 0 {
			delete(hdr, "Content-Length")
		}
		resp.ContentLength = -1
	default:
		resp.ContentLength = length
	}
	if chunked {
		r.te[0] = "chunked"
		resp.TransferEncoding = r.te[:]
	}

	// Trailer: the fields announced for after a chunked body; without
	// chunked, the field stays in the header and means nothing.
	if chunked && seen&hasTrailer != 0 {
		tr, err := announcedTrailer(hdr["Trailer"])
		delete(hdr, "Trailer")
		if err != nil {
			return err
		}
		resp.Trailer = tr
	}

	if seen&hasPragma != 0 && hdr["Pragma"][0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			// As net/http does, for HTTP/1.0 caches (RFC 9111 section 5.4).
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}

	b := &r.body.wb
	b.br, b.resp = br, resp
	switch {
	case noBody:
		b.kind = bodyNone
	case chunked:
		b.kind = bodyChunked
		b.cr = httputil.NewChunkedReader(br)
	case length > 0:
		b.kind, b.n = bodyLength, length
	case length == 0:
		b.kind = bodyNone
	default:
		// Neither length nor chunked: the body runs to the end of the
		// connection, which is then not reused.
		b.kind = bodyClose
		resp.Close = true
	}
	r.body.resp = resp
	resp.Body = b
	return nil
}

// announcedTrailer returns the trailer fields a Trailer field announces,
// with no values yet, as net/http does; framing fields cannot be trailers.
func announcedTrailer(vv []string) (http.Header, error) {
	var tr http.Header
	for _, v := range vv {
		for len(v) > 0 {
			var k string
			k, v = cutByte(v, ',')
			if k = trimASCIISpace(k); k == "" {
				continue
			}
			k = http.CanonicalHeaderKey(k)
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, &badString{"bad trailer key", k}
			}
			if tr == nil {
				tr = make(http.Header)
			}
			tr[k] = nil
		}
	}
	return tr, nil
}

// wireBody reads a response body as it is delimited, with net/http's
// body's semantics: io.EOF with the last bytes of a body of known length,
// io.ErrUnexpectedEOF when the connection ends before them, and the
// trailers read into the response's Trailer at the end of a chunked body.
// It never reads past the body: the connection's next response starts
// right after it.
type wireBody struct {
	br   *bufio.Reader
	resp *http.Response
	kind uint8
	n    int64     // bodyLength: bytes left
	cr   io.Reader // bodyChunked: the chunk decoder
	err  error     // bodyFailed: the error to give again
}

func (b *wireBody) Read(p []byte) (int, error) {
	switch b.kind {
	case bodyLength:
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err := b.br.Read(p)
		b.n -= int64(n)
		if b.n == 0 {
			b.kind = bodyNone
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	case bodyChunked:
		n, err := b.cr.Read(p)
		if err == io.EOF {
			if terr := b.readTrailer(); terr != nil {
				b.kind, b.err = bodyFailed, terr
				return n, terr
			}
			b.kind = bodyNone
		}
		return n, err
	case bodyClose:
		return b.br.Read(p)
	case bodyFailed:
		return 0, b.err
	}
	return 0, io.EOF
}

// buffered reports whether the next Read is answered without reading the
// socket: the body is over, or its length is known and the buffer holds
// some of it (bufio.Reader.Read then copies from the buffer alone).
func (b *wireBody) buffered() bool {
	switch b.kind {
	case bodyNone, bodyFailed:
		return true
	case bodyLength:
		return b.br.Buffered() > 0
	}
	return false
}

// Close does nothing: what is left of the body stays unread, and the
// connection's owner decides what becomes of it (h1Body closes it).
func (b *wireBody) Close() error { return nil }

// readTrailer reads the trailer section after the last chunk, as strictly
// as a head, and no larger than br's buffer (net/http's own bound).
func (b *wireBody) readTrailer() error {
	buf, err := b.br.Peek(2)
	if len(buf) == 2 && buf[0] == '\r' && buf[1] == '\n' {
		b.br.Discard(2)
		return nil
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	budget := b.br.Size()
	var block []byte
	n := 0
	for {
		start := len(block)
		block, err = appendLine(b.br, block, &budget)
		switch {
		case err == errHeaderTooLarge:
			return errTrailerLarge
		case err == io.EOF:
			return errTrailerEOF
		case err != nil:
			return err
		}
		line := block[start:]
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return errBareLF
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			break
		}
		if err := checkField(line); err != nil {
			return err
		}
		n++
	}
	tr, _ := fieldsOf(string(block[:len(block)-2]), n, nil)
	if b.resp.Trailer == nil {
		b.resp.Trailer = tr
	} else {
		maps.Copy(b.resp.Trailer, tr)
	}
	return nil
}

// asciiEqualFold reports whether s and t, ASCII, are equal ignoring case.
func asciiEqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != lower(t[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

func cutByte(s string, sep byte) (before, after string) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// trimASCIISpace trims what textproto.TrimString trims: spaces, tabs, CR
// and LF.
func trimASCIISpace(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// joinQuoted formats values as net/http's %q of a []string does.
func joinQuoted(vv []string) string {
	b := []byte{'['}
	for i, v := range vv {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendQuote(b, v)
	}
	return string(append(b, ']'))
}
