package h1

import (
	"golang.org/x/net/http/httpguts"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// A parseError refuses a request before it reaches the handler: the status
// to answer with and why. Every parse error closes the connection, since
// after one the start of the next request is unknown.
type parseError struct {
	status int
	reason string
}

func (e *parseError) Error() string { return e.reason }

func badRequest(reason string) *parseError {
	return &parseError{status: http.StatusBadRequest, reason: reason}
}

// Errors that need no detail are allocated once.
var (
	errBareLF       = badRequest("line ends in a bare LF, not CRLF")
	errBareCR       = badRequest("bare CR in the request head")
	errObsFold      = badRequest("folded header line (obs-fold)")
	errSpaceColon   = badRequest("whitespace between a field name and its colon")
	errFieldName    = badRequest("header field name is not a token")
	errFieldValue   = badRequest("header field value holds a control character (NUL, CR, LF or another)")
	errNoColon      = badRequest("header line without a colon")
	errRequestLine  = badRequest("malformed request line")
	errMethod       = badRequest("method is not a token")
	errTarget       = badRequest("request target holds a space, a control character or nothing")
	errVersion      = badRequest("malformed HTTP version")
	errNoHost       = badRequest("HTTP/1.1 request without a Host header")
	errManyHosts    = badRequest("more than one Host header")
	errBadHost      = badRequest("Host is not a valid host")
	errBadCL        = badRequest("invalid Content-Length")
	errManyCL       = badRequest("Content-Length fields that disagree")
	errBothLengths  = badRequest("request has both Content-Length and Transfer-Encoding (request smuggling shape)")
	errTE10         = badRequest("HTTP/1.0 request has a Transfer-Encoding (request smuggling shape)")
	errUnsupportedV = &parseError{status: http.StatusHTTPVersionNotSupported, reason: "HTTP version not supported"}
	errUnknownTE    = &parseError{status: http.StatusNotImplemented, reason: "Transfer-Encoding other than chunked"}
	errTrailerName  = badRequest("Trailer names a field that cannot be a trailer (Content-Length, Transfer-Encoding, Trailer)")
	errExpect       = &parseError{status: http.StatusExpectationFailed, reason: "Expect other than 100-continue"}
	errHeadTooLarge = &parseError{status: http.StatusRequestHeaderFieldsTooLarge, reason: "request header section over the limit"}
	errURITooLong   = &parseError{status: http.StatusRequestURITooLong, reason: "request line over the limit"}
)

// tchar is the set of token characters of RFC 9110 section 5.6.2.
var tchar = func() (t [256]bool) {
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

// isToken reports whether s is a non-empty token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// fieldValueOK reports whether v may be a field value: visible characters,
// obs-text, spaces and tabs (RFC 9110 section 5.5); no other control
// character, and so no NUL, CR or LF.
func fieldValueOK(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// head is one parsed request head, before it becomes an *http.Request.
type head struct {
	method, target, proto string
	major, minor          int
	header                http.Header
	host                  string // the Host field's value
	hosts                 int    // how many Host fields
	contentLength         int64  // -1: none
	chunked               bool
	closeConn             bool // the client asked for the connection to close
	keepAlive             bool // an HTTP/1.0 client asked to keep it open
	expect100             bool
	trailerDeclared       bool
	lineOK                bool // the request line parsed
	trailerBad            bool // Trailer announces a framing field
}

// parseHead parses a request head: the request line and the header section,
// each line ending in CRLF, up to and including the empty line. s is the
// head's text; every string in the result is a part of it, so a request
// costs one string for its whole head.
//
// It follows RFC 9112 strictly where leniency has let requests be smuggled
// past proxies: a bare LF or CR, a folded line, whitespace before a colon,
// a control character in a value, both Content-Length and
// Transfer-Encoding, a Transfer-Encoding on HTTP/1.0 and Content-Length
// fields that disagree are all refused. The caller closes the connection
// after any error.
func parseHead(s string) (*head, *parseError) {
	h := new(head)
	return h, h.parse(s, nil)
}

// parse is parseHead into h, which it resets first. The header's values
// go into spare when it has room for all of them, and into storage of
// their own otherwise.
func (h *head) parse(s string, spare []string) *parseError {
	*h = head{contentLength: -1}
	line, rest, err := cutLine(s)
	if err != nil {
		return err
	}
	if err := h.parseRequestLine(line); err != nil {
		return err
	}
	n := strings.Count(rest, "\n") - 1
	if n < 0 {
		n = 0
	}
	h.header = make(http.Header, n)
	vals := spare
	if n > len(spare) {
		vals = make([]string, n)
	}
	used := 0
	var cls []string
	var te string
	tes := 0
	for {
		line, rest, err = cutLine(rest)
		if err != nil {
			return err
		}
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errObsFold
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return errNoColon
		}
		name := line[:colon]
		if colon > 0 && (name[colon-1] == ' ' || name[colon-1] == '\t') {
			return errSpaceColon
		}
		if !isToken(name) {
			return errFieldName
		}
		value := trimOWS(line[colon+1:])
		if !fieldValueOK(value) {
			return errFieldValue
		}
		key := canonicalKey(name)
		switch key {
		case "Host":
			h.hosts++
			h.host = value
			continue
		case "Content-Length":
			cls = append(cls, value)
		case "Transfer-Encoding":
			te = value
			tes++
			continue
		case "Connection":
			h.connectionTokens(value)
		case "Expect":
			if !asciiEqualFold(value, "100-continue") {
				return errExpect
			}
			// An HTTP/1.0 client does not know 100 Continue: RFC 9110
			// section 10.1.1 has the expectation ignored.
			h.expect100 = h.minor >= 1
		case "Trailer":
			if !trailerNamesOK(value) {
				h.trailerBad = true
			}
			h.trailerDeclared = true
		}
		if old, ok := h.header[key]; ok {
			h.header[key] = append(old, value)
			continue
		}
		if used < len(vals) {
			vals[used] = value
			h.header[key] = vals[used : used+1 : used+1]
			used++
		} else {
			h.header[key] = []string{value}
		}
	}
	if tes > 0 {
		if h.major == 1 && h.minor == 0 {
			return errTE10
		}
		if len(cls) > 0 {
			return errBothLengths
		}
		// Only "chunked", alone and once, is understood: a list such as
		// "gzip, chunked" or a second field could be read differently by
		// another server on the path.
		if tes > 1 || !asciiEqualFold(te, "chunked") {
			return errUnknownTE
		}
		h.chunked = true
		if h.trailerBad {
			// Trailers come only with chunked coding, and never frame.
			return errTrailerName
		}
	}
	if len(cls) > 0 {
		n, ok := parseContentLength(cls[0])
		if !ok {
			return errBadCL
		}
		for _, v := range cls[1:] {
			if v != cls[0] {
				return errManyCL
			}
		}
		if len(cls) > 1 {
			h.header["Content-Length"] = h.header["Content-Length"][:1]
		}
		h.contentLength = n
	}
	if h.hosts > 1 {
		return errManyHosts
	}
	if h.hosts == 1 && !httpguts.ValidHostHeader(h.host) {
		return errBadHost
	}
	if h.hosts == 0 && h.minor >= 1 {
		return errNoHost
	}
	return nil
}

// cutLine splits s at its first CRLF. A bare LF, or a CR not followed by
// LF, is an error; so is the end of s without a CRLF.
func cutLine(s string) (line, rest string, err *parseError) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return "", "", errRequestLine
	}
	if i == 0 || s[i-1] != '\r' {
		return "", "", errBareLF
	}
	line = s[:i-1]
	if strings.IndexByte(line, '\r') >= 0 {
		return "", "", errBareCR
	}
	return line, s[i+1:], nil
}

// parseRequestLine reads "method SP request-target SP HTTP-version": single
// spaces, a token method, a target without spaces or control characters,
// and HTTP/1.0 or HTTP/1.1 (another 1.x is served as 1.1; 2 and up are
// refused with 505).
func (h *head) parseRequestLine(line string) *parseError {
	sp1 := strings.IndexByte(line, ' ')
	if sp1 < 0 {
		return errRequestLine
	}
	sp2 := strings.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return errRequestLine
	}
	sp2 += sp1 + 1
	h.method, h.target, h.proto = line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	if !isToken(h.method) {
		return errMethod
	}
	if h.target == "" {
		return errTarget
	}
	for i := 0; i < len(h.target); i++ {
		if c := h.target[i]; c <= ' ' || c == 0x7f {
			return errTarget
		}
	}
	p := h.proto
	if len(p) != 8 || p[:5] != "HTTP/" || p[6] != '.' || !isDigit(p[5]) || !isDigit(p[7]) {
		return errVersion
	}
	h.major, h.minor = int(p[5]-'0'), int(p[7]-'0')
	if h.major != 1 {
		return errUnsupportedV
	}
	if h.minor > 1 {
		h.proto, h.minor = "HTTP/1.1", 1
	}
	if h.minor == 0 {
		h.proto = "HTTP/1.0"
	} else {
		h.proto = "HTTP/1.1"
	}
	h.lineOK = true
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// connectionTokens notes close and keep-alive in a Connection value.
func (h *head) connectionTokens(v string) {
	for v != "" {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		tok = trimOWS(tok)
		switch {
		case asciiEqualFold(tok, "close"):
			h.closeConn = true
		case asciiEqualFold(tok, "keep-alive"):
			h.keepAlive = true
		}
	}
}

// trailerNamesOK reports whether a Trailer field announces only fields that
// may be trailers: never the ones that frame the message.
func trailerNamesOK(v string) bool {
	for v != "" {
		var name string
		name, v, _ = strings.Cut(v, ",")
		name = trimOWS(name)
		if asciiEqualFold(name, "Content-Length") || asciiEqualFold(name, "Transfer-Encoding") || asciiEqualFold(name, "Trailer") {
			return false
		}
	}
	return true
}

// asciiEqualFold is strings.EqualFold for ASCII only: protocol elements
// are ASCII, and Unicode folding would read "chun\u212Aed" (with a Kelvin
// sign) as "chunked", as no other server on the path would.
func asciiEqualFold(a, b string) bool {
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

// parseContentLength reads 1*DIGIT, without sign or spaces, refusing what
// would overflow an int64.
func parseContentLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		// 18 digits always fit; longer values are refused rather than
		// checked for overflow.
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// trimOWS removes the spaces and tabs around a field value.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// canonicalKey returns the canonical form of a token field name: name
// itself when it already is (no allocation), else a new string.
func canonicalKey(name string) string {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return textproto.CanonicalMIMEHeaderKey(name)
		}
		upper = c == '-'
	}
	return name
}

// requestURL parses the request target as net/http does: origin-form,
// absolute-form, "*", and the authority-form of CONNECT.
func requestURL(method, target string) (*url.URL, error) {
	if method == http.MethodConnect && !strings.HasPrefix(target, "/") {
		u, err := url.ParseRequestURI("http://" + target)
		if err != nil {
			return nil, err
		}
		u.Scheme = ""
		return u, nil
	}
	return url.ParseRequestURI(target)
}
