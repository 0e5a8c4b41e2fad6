package gateway

import (
	"bytes"
	"context"
	"hash/maphash"
	"net"
	"net/http"
	"sync"
)

// Request smuggling defence. Go's HTTP/1 server accepts a request carrying
// both Content-Length and Transfer-Encoding: it drops the Content-Length and
// reads the chunked body, which RFC 9112 section 6.3 permits, but a front
// proxy that believed the Content-Length then disagrees with holdfast about
// where the next request starts. holdfast refuses such requests instead: a
// framingConn scans the bytes net/http reads from a plain HTTP/1 connection,
// follows request heads and bodies by their framing, and notes which requests
// are ambiguous (both lengths, a Transfer-Encoding on HTTP/1.0, a folded
// header line); the gateway answers those 400 and closes the connection.
//
// What the scanner guarantees. The scanner models net/http's server read
// loop, not RFC 9112: where a request starts (after a POST, net/http skips up
// to four CR or LF bytes first), how a head is split into lines (LF, with an
// optional CR before it), which Content-Length and Transfer-Encoding fields
// net/http honours, and how it reads a chunked body (CRLF-only chunk lines,
// at most 16 hex digits, its overhead limit, trailers). For every input, each
// request net/http hands to the gateway either starts at the byte offset and
// carries the request line of the scanner's head with the same index, or is
// refused: once the scanner meets bytes it cannot follow the way net/http
// would (a line net/http rejects, an unsupported Transfer-Encoding, a head
// too long, ...) it stops ("lost"), and every later request on the
// connection is refused. It gets lost only where net/http stops reading the
// connection too, so being lost refuses nothing net/http would serve. The
// scanner also fingerprints each request line (method and request-target,
// with a keyed hash), and the gateway compares the fingerprint with the
// request it is given: a mismatch means the two are out of step, and that
// request and all later ones are refused.
//
// The guarantee rests on two things outside this file: every request net/http
// reads reaches Gateway.ServeHTTP (its built-in OPTIONS * answer is disabled;
// skipping one request once let a smuggled one through), and net/http stops
// reading a connection after a request body it could not read (it does unless
// a handler enables full duplex, which holdfast does not).
//
// How it is tested. FuzzFramingMatchesNetHTTP (framing_fuzz_test.go) feeds
// arbitrary pipelined byte streams, in arbitrary read sizes, to the scanner
// and to a model of the server loop built on http.ReadRequest itself, and
// checks the guarantee above, and that every request net/http would read with
// both Content-Length and Transfer-Encoding (or another refused shape) is
// refused. Its seed corpus of smuggling shapes, in testdata, runs with go
// test, as will any input the fuzzer finds failing. framing_test.go sends the
// known bypasses through a real gateway.
//
// TLS listeners are not scanned: net/http must see the *tls.Conn itself to
// negotiate HTTP/2 and fill Request.TLS, so nothing can sit above TLS.

type framingListener struct {
	net.Listener
	maxHead int
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, maxHead: l.maxHead}, nil
}

type framingKey struct{}

// framingOf returns the scanner of the connection that carried r, if any.
func framingOf(ctx context.Context) *framingConn {
	fc, _ := ctx.Value(framingKey{}).(*framingConn)
	return fc
}

// framingVerdict is the scanner's answer for one request: framingOK, or why
// the gateway must refuse it.
type framingVerdict uint8

const (
	framingOK framingVerdict = iota
	framingBothLengths
	framingTE10
	framingFolded
	framingLost
	framingOutOfStep
)

func (v framingVerdict) String() string {
	switch v {
	case framingOK:
		return "ok"
	case framingBothLengths:
		return "request has both Content-Length and Transfer-Encoding (request smuggling shape)"
	case framingTE10:
		return "HTTP/1.0 request has a Transfer-Encoding (request smuggling shape)"
	case framingFolded:
		return "request has a folded header line (request smuggling shape)"
	case framingLost:
		return "request framing on this connection could not be followed (request smuggling defence)"
	default:
		return "request does not start where the framing scanner expected (request smuggling defence)"
	}
}

const (
	// readAhead is net/http's bufio.Reader size: it may have buffered that
	// much of a head before its header limit starts counting, so heads up to
	// maxHead plus this are followed.
	readAhead = 4096
	// chunkLineMax bounds a chunk-size line with its LF, and a trailer
	// section: net/http's chunked reader needs the line within its buffer,
	// and the trailer's blank line within its first 4096 bytes.
	chunkLineMax = 4096
	// maxPending bounds heads scanned but not yet handed over. net/http
	// reads at most readAhead bytes ahead, far fewer heads than this; only
	// bytes read after a hijack (an upgrade's tunnel) could come near it.
	maxPending = 1024
)

const (
	stLine      = iota // the request line (the zero value: a new connection)
	stLeading          // after a POST: up to 4 CR or LF bytes before the request line
	stHeader           // header field lines
	stBody             // a Content-Length body
	stChunkSize        // a chunk-size line
	stChunkData        // chunk data
	stChunkCR          // the CR after chunk data
	stChunkLF          // the LF after chunk data
	stTrailer          // trailer lines
	stOff              // lost the framing: nothing more is scanned
)

// fingerprintSeed keys request-line fingerprints per process, so that a
// client cannot craft two request lines with the same fingerprint.
var fingerprintSeed = maphash.MakeSeed()

// requestFingerprint is the fingerprint of a request line with this method
// and request-target, as the scanner records it.
func requestFingerprint(method, target string) uint64 {
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	h.WriteString(method)
	h.WriteByte(' ')
	h.WriteString(target)
	return h.Sum64()
}

// headRec is what the scanner keeps of one request head.
type headRec struct {
	start int64          // stream offset of the request line's first byte
	fp    uint64         // fingerprint of "method SP request-target"
	why   framingVerdict // framingOK, or why the request must be refused
}

type framingConn struct {
	net.Conn
	maxHead int

	mu sync.Mutex

	// Scanner state.
	state      uint8
	pos        int64  // bytes scanned
	line       []byte // a line split across reads
	used       int    // bytes of the current head, chunk-size line or trailer
	post       bool   // the last request line was a POST
	skipped    int    // CR and LF bytes skipped after a POST
	start      int64  // offset of the current request line
	fp         uint64
	http10     bool
	fieldLines int
	fold       bool
	clN, teN   int
	clVal      []byte
	clConflict bool
	teChunked  bool
	remaining  uint64 // of a Content-Length body or a chunk
	excess     int64  // chunk overhead, counted as net/http counts it

	// Results, consumed by nextAmbiguous.
	heads  []headRec // heads[next:] are not handed over yet
	next   int
	nHeads int  // heads completed
	served int  // requests handed to the gateway
	lost   bool // requests after the lostAt-th are refused
	lostAt int
	warned bool // an out-of-step request was logged
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.scan(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

// nextAmbiguous counts one request handed to the gateway and tells whether it
// must be refused: its framing is ambiguous, the scanner lost track of the
// framing before it, or it is not the request the scanner saw at that index
// (method and request-target differ). warn is true for the first
// out-of-step request of the connection.
func (c *framingConn) nextAmbiguous(r *http.Request) (v framingVerdict, warn bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.served++
	if c.lost && c.served > c.lostAt {
		return framingLost, false
	}
	if c.next == len(c.heads) {
		// net/http finished a head that the scanner has not.
		return c.outOfStep()
	}
	h := c.heads[c.next]
	c.next++
	if c.next == len(c.heads) {
		c.heads, c.next = c.heads[:0], 0
	}
	if h.why != framingOK {
		return h.why, false
	}
	if h.fp != requestFingerprint(r.Method, r.RequestURI) {
		return c.outOfStep()
	}
	return framingOK, false
}

func (c *framingConn) outOfStep() (framingVerdict, bool) {
	c.stop(c.served - 1)
	warn := !c.warned
	c.warned = true
	return framingOutOfStep, warn
}

// stop stops following the connection: requests after the n-th are refused.
func (c *framingConn) stop(n int) {
	if !c.lost || n < c.lostAt {
		c.lostAt = n
	}
	c.lost = true
	c.state = stOff
	c.line, c.clVal = nil, nil
}

// lose stops following the connection after the heads completed so far.
func (c *framingConn) lose() { c.stop(c.nHeads) }

func (c *framingConn) scan(b []byte) {
	for len(b) > 0 && c.state != stOff {
		switch c.state {
		case stLeading:
			// net/http's conn.readRequest: after a POST, Peek(4) and
			// discard its leading CR and LF bytes (numLeadingCRorLF).
			if c.skipped < 4 && (b[0] == '\r' || b[0] == '\n') {
				c.skipped++
				c.pos++
				b = b[1:]
				continue
			}
			c.beginLine()
		case stBody, stChunkData:
			k := uint64(len(b))
			if k > c.remaining {
				k = c.remaining
			}
			b = b[k:]
			c.pos += int64(k)
			c.remaining -= k
			if c.remaining == 0 {
				if c.state == stBody {
					c.nextRequest()
				} else {
					c.state = stChunkCR
				}
			}
		case stChunkCR, stChunkLF:
			// net/http reads exactly two bytes after chunk data.
			want := byte('\r')
			if c.state == stChunkLF {
				want = '\n'
			}
			if b[0] != want {
				c.lose()
				return
			}
			b = b[1:]
			c.pos++
			if c.state == stChunkCR {
				c.state = stChunkLF
			} else {
				c.state, c.used = stChunkSize, 0
			}
		default:
			i := bytes.IndexByte(b, '\n')
			n := i
			if i < 0 {
				n = len(b)
			}
			if c.used+len(c.line)+n+1 > c.limit() {
				c.lose() // net/http refuses it too (431, or a line too long)
				return
			}
			if i < 0 {
				c.line = append(c.line, b...)
				c.pos += int64(len(b))
				return
			}
			line := b[:i]
			if len(c.line) > 0 {
				c.line = append(c.line, line...)
				line = c.line
			}
			c.used += len(line) + 1
			c.pos += int64(i + 1)
			b = b[i+1:]
			c.onLine(line)
			if c.line != nil {
				c.line = c.line[:0]
			}
		}
	}
}

// limit is how many bytes the current line-based section may take.
func (c *framingConn) limit() int {
	if c.state == stChunkSize || c.state == stTrailer {
		return chunkLineMax
	}
	return c.maxHead + readAhead
}

// nextRequest expects the next request line.
func (c *framingConn) nextRequest() {
	if c.post {
		c.state, c.skipped = stLeading, 0
		return
	}
	c.beginLine()
}

func (c *framingConn) beginLine() {
	c.state, c.start, c.used = stLine, c.pos, 0
}

// onLine takes one line, without its LF.
func (c *framingConn) onLine(line []byte) {
	if c.state == stChunkSize {
		c.chunkSize(line)
		return
	}
	// textproto (bufio.Reader.ReadLine) drops one CR before the LF.
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	switch c.state {
	case stLine:
		c.requestLine(line)
	case stHeader:
		c.fieldLine(line)
	case stTrailer:
		// A trailer net/http accepts ends at its first blank line; one it
		// refuses closes the connection, so nothing else matters here.
		if len(line) == 0 {
			c.nextRequest()
		}
	}
}

// requestLine follows net/http's readRequest, parseRequestLine and
// http1ServerSupportsRequest; a line net/http refuses loses the framing.
func (c *framingConn) requestLine(line []byte) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		c.lose()
		return
	}
	method := line[:sp1]
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 || !isToken(method) {
		c.lose()
		return
	}
	target := line[sp1+1 : sp1+1+sp2]
	proto := line[sp1+1+sp2+1:]
	switch {
	case len(proto) == 8 && string(proto[:7]) == "HTTP/1." && proto[7] >= '0' && proto[7] <= '9':
		c.http10 = proto[7] == '0'
	case string(proto) == "HTTP/2.0" && string(method) == "PRI" && string(target) == "*":
		c.http10 = false // served like HTTP/1.1
	default:
		c.lose() // 400 or 505
		return
	}
	c.fp = maphash.Bytes(fingerprintSeed, line[:sp1+1+sp2])
	c.post = string(method) == "POST"
	c.state = stHeader
	c.fieldLines, c.fold, c.clN, c.teN, c.clConflict, c.teChunked = 0, false, 0, 0, false, false
}

// fieldLine follows textproto's readMIMEHeader and the header checks of
// net/http's conn.readRequest.
func (c *framingConn) fieldLine(line []byte) {
	if len(line) == 0 {
		c.endHead()
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		if c.fieldLines == 0 {
			c.lose() // "malformed MIME header initial line"
			return
		}
		// RFC 9112 5.2: a server may reject obs-fold; holdfast does.
		c.fold = true
		return
	}
	c.fieldLines++
	i := bytes.IndexByte(line, ':')
	if i <= 0 || !isToken(line[:i]) {
		c.lose() // no colon, or a name net/http refuses
		return
	}
	name, val := line[:i], trimOWS(line[i+1:])
	switch {
	case equalFoldASCII(name, "Content-Length"):
		c.clN++
		if c.clN == 1 {
			c.clVal = append(c.clVal[:0], val...)
		} else if !bytes.Equal(val, c.clVal) {
			c.clConflict = true
		}
	case equalFoldASCII(name, "Transfer-Encoding"):
		c.teN++
		if c.teN == 1 {
			c.teChunked = equalFoldASCII(val, "chunked")
		}
	}
}

func (c *framingConn) endHead() {
	if len(c.heads)-c.next >= maxPending {
		c.lose()
		return
	}
	why := framingOK
	switch {
	case c.fold:
		// A folded line may hide either length.
		why = framingFolded
	case c.teN > 0 && c.clN > 0:
		why = framingBothLengths
	case c.teN > 0 && c.http10:
		// net/http ignores it (RFC 9112 6.1); a front proxy may not.
		why = framingTE10
	}
	c.nHeads++
	c.heads = append(c.heads, headRec{start: c.start, fp: c.fp, why: why})
	if why != framingOK {
		// The connection is closed after the 400: stop following it.
		c.lose()
		return
	}
	// net/http's readTransfer: one Transfer-Encoding field, exactly
	// "chunked", or 501; equal Content-Length fields of 1 to 19 digits
	// within int64, or 400.
	switch {
	case c.teN > 0:
		if c.teN > 1 || !c.teChunked {
			c.lose()
			return
		}
		c.state, c.used, c.excess = stChunkSize, 0, 0
	case c.clN > 0:
		n, ok := parseContentLength(c.clVal)
		if c.clConflict || !ok {
			c.lose()
			return
		}
		if n > 0 {
			c.state, c.remaining = stBody, n
			return
		}
		c.nextRequest()
	default:
		c.nextRequest()
	}
}

// chunkSize follows net/http's chunkedReader.beginChunk; line is without
// its LF.
func (c *framingConn) chunkSize(line []byte) {
	n := len(line)
	if n == 0 || line[n-1] != '\r' || bytes.IndexByte(line[:n-1], '\r') >= 0 {
		c.lose() // bare LF, or a CR inside the line
		return
	}
	line = line[:n-1]
	c.excess += int64(len(line)) + 2
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	size, ok := parseChunkSize(line)
	if !ok {
		c.lose()
		return
	}
	// The same arithmetic as net/http, overflow included.
	c.excess -= 16 + (2 * int64(size))
	c.excess = max(c.excess, 0)
	if c.excess > 16*1024 {
		c.lose()
		return
	}
	if size == 0 {
		c.state, c.used = stTrailer, 0
		return
	}
	c.state, c.remaining = stChunkData, size
}

// parseChunkSize is net/http's parseHexUint: 1 to 16 hex digits.
func parseChunkSize(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, d := range b {
		switch {
		case '0' <= d && d <= '9':
			d -= '0'
		case 'a' <= d && d <= 'f':
			d -= 'a' - 10
		case 'A' <= d && d <= 'F':
			d -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	return n, true
}

// parseContentLength is net/http's: strconv.ParseUint(s, 10, 63).
func parseContentLength(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		if n > (1<<63-1)/10 {
			return 0, false
		}
		n = n*10 + uint64(d-'0')
		if n > 1<<63-1 {
			return 0, false
		}
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFoldASCII compares b and s ignoring ASCII case only, as net/http
// does (bytes.EqualFold would also fold the Kelvin sign into k).
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
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

// isToken reports whether b is a non-empty RFC 9110 token, as net/http
// requires of methods and field names.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, x := range b {
		if !tokenByte[x] {
			return false
		}
	}
	return true
}

var tokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
