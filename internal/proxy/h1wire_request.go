package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/net/http/httpguts"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/h1"
)

// Writing requests to upstreams.
//
// holdfast's own HTTP/1.1 client writes the request head itself, straight
// into the connection's buffered writer, where (*http.Request).Write would
// format it with fmt, build a transfer writer and sort the header through
// a pooled sorter: four allocations and a good deal of CPU per request.
// The bytes are the ones Request.Write produces for the same request (the
// request line, Host, User-Agent, the framing fields, then the header in
// key order; h1wire_request_test.go compares them), with two differences
// by design. Where Request.Write quietly repairs or drops what it cannot
// write (a CR or LF in a value turned into a space, an invalid field name
// skipped, an invalid Host left empty), this writer refuses the request
// and writes nothing: a byte that could end a line early is how one
// request is split into two (request splitting), so the second line of
// defence after admitRequest must not guess. And a body of unknown length
// always goes chunked, where Request.Write first reads a byte of a GET's
// (or HEAD's, DELETE's...) to send no body at all if it is empty; see
// prepare for why that never arises here.

// reqHead is what prepare learnt of a request while checking it: the parts
// of its head, each computed once and written by write. It lives on the
// caller's stack, which is why the header keys are counted in keyBuf
// rather than sliced from it: a slice of itself stored in it would send it
// to the heap.
type reqHead struct {
	target  string // the request target, less any query
	query   string // the query, without its '?'
	hasQ    bool   // a '?' follows the target (a query, or URL.ForceQuery)
	prefix  string // "scheme:" before an opaque target that starts with "//"
	host    string
	ua      string   // the User-Agent to write; "" for none
	close   bool     // write "Connection: close"
	length  int64    // the body's length; -1 when unknown (chunked)
	sendCL  bool     // write Content-Length
	chunked bool     // write Transfer-Encoding: chunked and frame the body so
	noBody  bool     // no body bytes are written at all
	nkeys   int      // the keys of the header fields to write, in keyBuf...
	more    []string // ...or here, when keyBuf is too small; sorted
	tkeys   []string // the trailer fields announced in a Trailer field, sorted
	keyBuf  [32]string
}

// keys returns the keys of the header fields to write, in order.
func (h *reqHead) keys() []string {
	if h.more != nil {
		return h.more
	}
	return h.keyBuf[:h.nkeys]
}

// defaultUserAgent is what Request.Write sends when the header has no
// User-Agent key at all. The proxy always sets the key (with no value when
// the client sent none, so that none is sent); the default is kept so that
// this writer and Request.Write agree for any request.
const defaultUserAgent = "Go-http-client/1.1"

// unwritable returns the error of a request this writer refuses, in the
// form checkOutgoing gives it.
func unwritable(what string) error {
	return &cause.Error{Cause: cause.HTTPRequestError, Err: fmt.Errorf("%w: %s", errUnwritable, what)}
}

// prepare checks that req can be written as an HTTP/1.1 request without a
// byte that could break its line or header section, and settles its head:
// target, Host, framing, and the header keys in the order they are
// written. It refuses everything checkOutgoing refuses, and also header
// keys that spell Host, Content-Length or Transfer-Encoding in another
// case: Request.Write writes such a key as it is, next to the field it
// computes itself, which would give the upstream two lengths or two hosts.
func (h *reqHead) prepare(req *http.Request) error {
	if !validMethod(req.Method) {
		return unwritable("method " + strconv.Quote(req.Method))
	}
	u := req.URL
	if u == nil {
		return unwritable("no URL")
	}
	h.host = req.Host
	if h.host == "" {
		h.host = u.Host
	}
	if !httpguts.ValidHostHeader(h.host) {
		return unwritable("Host " + strconv.Quote(h.host))
	}
	h.host = removeZone(h.host)
	// url.URL.RequestURI's parts, checked and kept without joining them.
	switch {
	case req.Method == "CONNECT" && u.Path == "":
		// The authority form, as Request.Write sends it.
		h.target = u.Opaque
		if h.target == "" {
			h.target = h.host
		}
	case u.Opaque != "":
		h.target = u.Opaque
		if strings.HasPrefix(u.Opaque, "//") {
			h.prefix = u.Scheme + ":"
		}
		h.query, h.hasQ = u.RawQuery, u.ForceQuery || u.RawQuery != ""
	default:
		h.target = u.EscapedPath()
		if h.target == "" {
			h.target = "/"
		}
		h.query, h.hasQ = u.RawQuery, u.ForceQuery || u.RawQuery != ""
	}
	if !lineSafe(h.prefix) || !lineSafe(h.target) || !lineSafe(h.query) || h.target == "" {
		return unwritable("target " + strconv.Quote(h.prefix+h.target+"?"+h.query))
	}

	h.nkeys, h.more = 0, nil
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return unwritable("header name " + strconv.Quote(k))
		}
		for _, v := range vv {
			if !validFieldValue(v) {
				return unwritable("value of header " + k)
			}
		}
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // written from the request's fields, or not at all
		}
		if otherCase(k) {
			return unwritable("header name " + strconv.Quote(k) + " spells a framing field in another case")
		}
		switch {
		case len(vv) == 0:
		case h.more != nil:
			h.more = append(h.more, k)
		case h.nkeys < len(h.keyBuf):
			h.keyBuf[h.nkeys] = k
			h.nkeys++
		default:
			h.more = append(append(make([]string, 0, 2*len(h.keyBuf)), h.keyBuf[:]...), k)
		}
	}
	sortStrings(h.keys())

	h.ua = defaultUserAgent
	if vv, ok := req.Header["User-Agent"]; ok {
		h.ua = ""
		if len(vv) > 0 {
			h.ua = trimOWS(vv[0])
		}
	}
	h.close = req.Close && !hasToken(first(req.Header["Connection"]), "close")

	// Framing, as net/http's transfer writer settles it.
	if req.ContentLength != 0 && req.Body == nil {
		return unwritable(fmt.Sprintf("ContentLength=%d with nil Body", req.ContentLength))
	}
	h.length = outgoingLength(req)
	te := req.TransferEncoding
	if h.length < 0 && len(te) == 0 && req.Method != "CONNECT" {
		// Chunked, as Request.Write chooses for a body of unknown length.
		// For a GET, HEAD, DELETE, OPTIONS, PROPFIND or SEARCH it first
		// reads a byte of the body, on a goroutine, to send no body at
		// all if it is empty. holdfast streams with an unknown length
		// only a body it has already read more than body_buffer of, never
		// an empty one, so chunked is what that probe would choose.
		te = chunkedTE
	}
	if req.Body == nil {
		te = nil
	}
	h.chunked = len(te) > 0 && te[0] == "chunked"
	switch {
	case h.chunked:
		h.length = -1
	case req.Body == nil:
		h.length = 0
	}
	h.sendCL = shouldSendContentLength(req.Method, h.length, te, h.chunked)
	h.noBody = req.Body == nil

	h.tkeys = nil
	for k, vv := range req.Trailer {
		if !httpguts.ValidHeaderFieldName(k) {
			return unwritable("header name " + strconv.Quote(k))
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return unwritable("value of header " + k)
			}
		}
		if !h.chunked {
			continue // trailers go only with a chunked body
		}
		k = http.CanonicalHeaderKey(k)
		switch k {
		case "Transfer-Encoding", "Trailer", "Content-Length":
			return unwritable("trailer " + strconv.Quote(k))
		}
		h.tkeys = append(h.tkeys, k)
	}
	sortStrings(h.tkeys)
	return nil
}

var chunkedTE = []string{"chunked"}

// write writes the request's head and then its body to bw. The head is
// flushed before a body that is not already in memory, as Request.Write
// does, so that an upstream that answers before reading the body (a 401 or
// a 413) can. The caller flushes what is left.
func (h *reqHead) write(bw *bufio.Writer, req *http.Request) (err error) {
	body := req.Body
	closed := false
	defer func() {
		if !closed && body != nil {
			if cerr := body.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()

	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(h.prefix)
	bw.WriteString(h.target)
	if h.hasQ {
		bw.WriteByte('?')
		bw.WriteString(h.query)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(h.host)
	bw.WriteString("\r\n")
	if h.ua != "" {
		bw.WriteString("User-Agent: ")
		bw.WriteString(h.ua)
		bw.WriteString("\r\n")
	}
	if h.close {
		bw.WriteString("Connection: close\r\n")
	}
	if h.sendCL {
		var n [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(n[:0], h.length, 10))
		bw.WriteString("\r\n")
	} else if h.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if len(h.tkeys) > 0 {
		bw.WriteString("Trailer: ")
		for i, k := range h.tkeys {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString(k)
		}
		bw.WriteString("\r\n")
	}
	writeFields(bw, req.Header, h.keys())
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}

	if h.noBody {
		closed = true
		return nil
	}
	src := unwrapBody(body)
	if h.length != 0 && !inMemory(src) {
		if err := bw.Flush(); err != nil {
			return err
		}
	}

	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	var n int64
	switch {
	case h.chunked:
		// One chunk per read of the body (one for all of a body in
		// memory, whose WriteTo writes it at once), as net/http frames it.
		if _, err = io.CopyBuffer(chunkWriter{bw}, src, *bp); err != nil {
			return err
		}
		closed = true
		if err := body.Close(); err != nil {
			return err
		}
		bw.WriteString("0\r\n")
		if err := writeTrailer(bw, req.Trailer); err != nil {
			return err
		}
		_, err = bw.WriteString("\r\n")
		return err
	case h.length == -1:
		// Delimited by the end of the connection: a CONNECT tunnel's
		// bytes go out as they come.
		var dst io.Writer = bw
		if req.Method == "CONNECT" {
			dst = flushWriter{bw}
		}
		n, err = io.CopyBuffer(dst, src, *bp)
	default:
		n, err = io.CopyBuffer(bw, io.LimitReader(src, h.length), *bp)
		if err == nil {
			// A body longer than its declared length: read the rest so
			// that the error below says how long it was, as net/http does.
			var extra int64
			extra, err = io.CopyBuffer(io.Discard, src, *bp)
			n += extra
		}
	}
	if err != nil {
		return err
	}
	closed = true
	if err := body.Close(); err != nil {
		return err
	}
	if h.length != -1 && h.length != n {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", h.length, n)
	}
	return nil
}

// writeFields writes the fields of hdr named in keys, each value on a line
// of its own, with the spaces and tabs around it trimmed as Request.Write
// trims them. The names and values were checked by prepare.
func writeFields(bw *bufio.Writer, hdr http.Header, keys []string) {
	for _, k := range keys {
		for _, v := range hdr[k] {
			h1.WriteFieldLine(bw, k, trimOWS(v)) // checked by prepare
		}
	}
}

// writeTrailer writes the trailer fields that have values, after the last
// chunk. Their values arrive with the end of the client's body, after
// prepare looked at them, so they are checked again here; a trailer that
// fails ends the request unfinished rather than sending the bytes.
func writeTrailer(bw *bufio.Writer, tr http.Header) error {
	if len(tr) == 0 {
		return nil
	}
	var buf [16]string
	keys := buf[:0]
	for k, vv := range tr {
		if len(vv) == 0 {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return unwritable("trailer name " + strconv.Quote(k))
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return unwritable("value of trailer " + k)
			}
		}
		keys = append(keys, k)
	}
	sortStrings(keys)
	writeFields(bw, tr, keys)
	return nil
}

// chunkWriter frames each write as one chunk and flushes it, as net/http
// frames a request body of unknown length: an upstream reading a stream
// gets each piece as it comes rather than when 16KiB have gathered.
type chunkWriter struct{ bw *bufio.Writer }

func (c chunkWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // an empty chunk would end the body
	}
	var n [16]byte
	c.bw.Write(strconv.AppendUint(n[:0], uint64(len(p)), 16))
	c.bw.WriteString("\r\n")
	c.bw.Write(p)
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flushWriter flushes after every write.
type flushWriter struct{ bw *bufio.Writer }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.bw.Write(p)
	if err == nil {
		err = f.bw.Flush()
	}
	return n, err
}

// outgoingLength is the body's length as Request.Write sees it: 0 for no
// body, -1 for a body of unknown length.
func outgoingLength(req *http.Request) int64 {
	if req.Body == nil || req.Body == http.NoBody {
		return 0
	}
	if req.ContentLength != 0 {
		return req.ContentLength
	}
	return -1
}

// shouldSendContentLength mirrors net/http's rule for writing a
// Content-Length field: for a body of known length, and for an empty body
// of a method that servers expect one for.
func shouldSendContentLength(method string, length int64, te []string, chunked bool) bool {
	if chunked {
		return false
	}
	if length > 0 {
		return true
	}
	if length < 0 {
		return false
	}
	if method == "POST" || method == "PUT" || method == "PATCH" {
		return true
	}
	if len(te) == 1 && te[0] == "identity" {
		return method != "GET" && method != "HEAD"
	}
	return false
}

// Types io.NopCloser returns, to reach the reader inside as net/http does:
// a body in memory is written without flushing the head first.
var (
	nopCloserType         = reflect.TypeOf(io.NopCloser(nil))
	nopCloserWriterToType = reflect.TypeOf(io.NopCloser(struct {
		io.Reader
		io.WriterTo
	}{}))
)

// unwrapBody returns the reader inside an io.NopCloser, or the body itself.
func unwrapBody(body io.ReadCloser) io.Reader {
	switch reflect.TypeOf(body) {
	case nopCloserType, nopCloserWriterToType:
		return reflect.ValueOf(body).Field(0).Interface().(io.Reader)
	}
	return body
}

// inMemory reports whether r is one of the readers whose content is all in
// memory, for which holding the head back until the body follows costs no
// wait.
func inMemory(r io.Reader) bool {
	switch r.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader, *bytesBody:
		return true
	}
	return false
}

// removeZone removes an IPv6 zone from a Host (RFC 6874: it means nothing
// to the server), as Request.Write does.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

// otherCase reports whether k is Host, Content-Length or Transfer-Encoding
// spelt in a case other than the canonical one.
func otherCase(k string) bool {
	switch len(k) {
	case len("Host"):
		return k != "Host" && strings.EqualFold(k, "Host")
	case len("Content-Length"):
		return k != "Content-Length" && strings.EqualFold(k, "Content-Length")
	case len("Transfer-Encoding"):
		return k != "Transfer-Encoding" && strings.EqualFold(k, "Transfer-Encoding")
	}
	return false
}

// hasToken reports whether token appears in the comma- or space-separated
// list v, ignoring case: net/http's test for "close" in a Connection field
// before it adds its own.
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !isTokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isTokenBoundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

func first(vv []string) string {
	if len(vv) == 0 {
		return ""
	}
	return vv[0]
}

// trimOWS trims spaces and tabs from both ends of s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// sortStrings sorts a header's keys. Headers hold a few dozen keys at
// most, for which an insertion sort in place beats the general sort and
// allocates nothing.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// validFieldValue is httpguts.ValidHeaderFieldValue (no control byte but
// HTAB, no DEL) eight bytes at a time: a word that holds no byte below
// 0x20 and none equal to 0x7f needs no closer look, and one that does is
// checked byte by byte. Every field of every request goes through it.
func validFieldValue(v string) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	b := unsafe.Slice(unsafe.StringData(v), len(v))
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		below := (w - ones*0x20) &^ w & highs // a byte < 0x20 (exact for a bound <= 0x80)
		d := w ^ (ones * 0x7f)
		del := (d - ones) &^ d & highs // a byte == 0x7f
		if below|del != 0 && !validFieldBytes(b[i:i+8]) {
			return false
		}
	}
	return validFieldBytes(b[i:])
}

// validFieldBytes is validFieldValue one byte at a time.
func validFieldBytes(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
