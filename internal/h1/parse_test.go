package h1

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestParseHead guards the request-head parser against accepting a head
// that another HTTP/1 parser could delimit or frame differently (request
// smuggling), and against refusing ordinary heads. Each refusal is checked
// by its status and reason, so a head refused for the wrong reason fails.
func TestParseHead(t *testing.T) {
	const rl = "GET / HTTP/1.1\r\n"
	const host = "Host: x\r\n"
	type want struct {
		err           *parseError
		method        string
		target        string
		proto         string
		host          string
		contentLength int64
		chunked       bool
		header        http.Header // nil: not checked
	}
	ok := func(cl int64, chunked bool) want {
		return want{method: "GET", target: "/", proto: "HTTP/1.1", host: "x", contentLength: cl, chunked: chunked}
	}
	refused := func(e *parseError) want { return want{err: e} }
	for _, tc := range []struct {
		name, head string
		want       want
	}{
		// Ordinary heads.
		{"minimal", rl + host + "\r\n", ok(-1, false)},
		{"fields", rl + host + "accept: a\r\nX-Multi: 1\r\nx-multi: 2\r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
			want{method: "GET", target: "/", proto: "HTTP/1.1", host: "x", contentLength: -1, header: http.Header{
				"Accept": {"a"}, "X-Multi": {"1", "2"}, "X-Empty": {""}, "X-Tab": {"v"}, "X-Obs": {"caf\xc3\xa9"},
			}}},
		{"value OWS trimmed", rl + host + "X:  a b \t\r\n\r\n",
			want{method: "GET", target: "/", proto: "HTTP/1.1", host: "x", contentLength: -1, header: http.Header{"X": {"a b"}}}},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n",
			want{method: "GET", target: "/", proto: "HTTP/1.0", contentLength: -1}},
		{"HTTP/1.2 served as 1.1", "GET / HTTP/1.2\r\n" + host + "\r\n", ok(-1, false)},
		{"HTTP/1.9 served as 1.1", "GET / HTTP/1.9\r\n" + host + "\r\n", ok(-1, false)},
		{"extension method", "M-SEARCH * HTTP/1.1\r\n" + host + "\r\n",
			want{method: "M-SEARCH", target: "*", proto: "HTTP/1.1", host: "x", contentLength: -1}},
		{"absolute form", "GET http://h/p?q HTTP/1.1\r\n" + host + "\r\n",
			want{method: "GET", target: "http://h/p?q", proto: "HTTP/1.1", host: "x", contentLength: -1}},
		{"obs-text in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + host + "\r\n",
			want{method: "GET", target: "/caf\xc3\xa9", proto: "HTTP/1.1", host: "x", contentLength: -1}},
		{"empty Host", rl + "Host:\r\n\r\n",
			want{method: "GET", target: "/", proto: "HTTP/1.1", contentLength: -1}},

		// Content-Length.
		{"CL", rl + host + "Content-Length: 5\r\n\r\n", ok(5, false)},
		{"CL zero", rl + host + "Content-Length: 0\r\n\r\n", ok(0, false)},
		{"CL leading zeros", rl + host + "Content-Length: 005\r\n\r\n", ok(5, false)},
		{"CL 18 digits", rl + host + "Content-Length: 999999999999999999\r\n\r\n", ok(999999999999999999, false)},
		{"CL OWS", rl + host + "Content-Length: \t5 \r\n\r\n", ok(5, false)},
		{"CL duplicate identical", rl + host + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
			want{method: "GET", target: "/", proto: "HTTP/1.1", host: "x", contentLength: 5, header: http.Header{"Content-Length": {"5"}}}},
		{"CL disagreeing", rl + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", refused(errManyCL)},
		{"CL disagreeing spelling", rl + host + "Content-Length: 5\r\nContent-Length: 05\r\n\r\n", refused(errManyCL)},
		{"CL duplicate invalid", rl + host + "Content-Length: x\r\nContent-Length: x\r\n\r\n", refused(errBadCL)},
		{"CL plus", rl + host + "Content-Length: +5\r\n\r\n", refused(errBadCL)},
		{"CL minus one", rl + host + "Content-Length: -1\r\n\r\n", refused(errBadCL)},
		{"CL two numbers", rl + host + "Content-Length: 5 5\r\n\r\n", refused(errBadCL)},
		{"CL list", rl + host + "Content-Length: 5, 5\r\n\r\n", refused(errBadCL)},
		{"CL empty", rl + host + "Content-Length:\r\n\r\n", refused(errBadCL)},
		{"CL hex", rl + host + "Content-Length: 0x5\r\n\r\n", refused(errBadCL)},
		{"CL underscore", rl + host + "Content-Length: 1_0\r\n\r\n", refused(errBadCL)},
		{"CL 19 digits", rl + host + "Content-Length: 1000000000000000000\r\n\r\n", refused(errBadCL)},
		{"CL int64 overflow", rl + host + "Content-Length: 9223372036854775808\r\n\r\n", refused(errBadCL)},
		{"CL very large", rl + host + "Content-Length: 99999999999999999999999999\r\n\r\n", refused(errBadCL)},
		{"CL full-width digit", rl + host + "Content-Length: \xef\xbc\x95\r\n\r\n", refused(errBadCL)},

		// Transfer-Encoding.
		{"TE chunked", rl + host + "Transfer-Encoding: chunked\r\n\r\n", ok(-1, true)},
		{"TE CHUNKED", rl + host + "Transfer-Encoding: CHUNKED\r\n\r\n", ok(-1, true)},
		{"TE OWS", rl + host + "Transfer-Encoding:  chunked \t\r\n\r\n", ok(-1, true)},
		{"TE lower-case name", rl + host + "transfer-encoding: chunked\r\n\r\n", ok(-1, true)},
		{"TE not in header", rl + host + "Transfer-Encoding: chunked\r\n\r\n",
			want{method: "GET", target: "/", proto: "HTTP/1.1", host: "x", contentLength: -1, chunked: true, header: http.Header{}}},
		{"TE gzip, chunked", rl + host + "Transfer-Encoding: gzip, chunked\r\n\r\n", refused(errUnknownTE)},
		{"TE chunked, chunked", rl + host + "Transfer-Encoding: chunked, chunked\r\n\r\n", refused(errUnknownTE)},
		{"TE two fields", rl + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", refused(errUnknownTE)},
		{"TE identity", rl + host + "Transfer-Encoding: identity\r\n\r\n", refused(errUnknownTE)},
		{"TE empty", rl + host + "Transfer-Encoding:\r\n\r\n", refused(errUnknownTE)},
		{"TE chunkedx", rl + host + "Transfer-Encoding: chunkedx\r\n\r\n", refused(errUnknownTE)},
		{"TE quoted", rl + host + "Transfer-Encoding: \"chunked\"\r\n\r\n", refused(errUnknownTE)},
		{"TE Kelvin sign", rl + host + "Transfer-Encoding: chun\xe2\x84\xaaed\r\n\r\n", refused(errUnknownTE)}, // U+212A folds to k
		{"TE long s", rl + host + "Transfer-Encoding: chunked\xc5\xbf\r\n\r\n", refused(errUnknownTE)},
		{"TE and CL", rl + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", refused(errBothLengths)},
		{"CL after TE", rl + host + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", refused(errBothLengths)},
		{"TE and CL zero", rl + host + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", refused(errBothLengths)},
		{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", refused(errTE10)},
		{"TE identity on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: identity\r\n\r\n", refused(errTE10)},

		// Host.
		{"no Host on HTTP/1.1", rl + "\r\n", refused(errNoHost)},
		{"no Host on CONNECT", "CONNECT h:443 HTTP/1.1\r\n\r\n", refused(errNoHost)},
		{"two Hosts", rl + host + host + "\r\n", refused(errManyHosts)},
		{"two Hosts on HTTP/1.0", "GET / HTTP/1.0\r\n" + host + "Host: y\r\n\r\n", refused(errManyHosts)},
		{"Host with space", rl + "Host: a b\r\n\r\n", refused(errBadHost)},
		{"Host with slash", rl + "Host: a/b\r\n\r\n", refused(errBadHost)},
		{"Host with obs-text", rl + "Host: \xc3\xa9\r\n\r\n", refused(errBadHost)},

		// Request line.
		{"HTTP/2.0", "GET / HTTP/2.0\r\n" + host + "\r\n", refused(errUnsupportedV)},
		{"HTTP/0.9", "GET / HTTP/0.9\r\n" + host + "\r\n", refused(errUnsupportedV)},
		{"PRI preface", "PRI * HTTP/2.0\r\n\r\n", refused(errUnsupportedV)},
		{"HTTP/1.10", "GET / HTTP/1.10\r\n" + host + "\r\n", refused(errVersion)},
		{"lower-case version", "GET / http/1.1\r\n" + host + "\r\n", refused(errVersion)},
		{"no version", "GET /\r\n" + host + "\r\n", refused(errRequestLine)},
		{"HTTP/0.9 line", "GET\r\n" + host + "\r\n", refused(errRequestLine)},
		{"method not a token", "G(T / HTTP/1.1\r\n" + host + "\r\n", refused(errMethod)},
		{"method with NUL", "G\x00T / HTTP/1.1\r\n" + host + "\r\n", refused(errMethod)},
		{"method with tab", "GET\t/ HTTP/1.1\r\n" + host + "\r\n", refused(errRequestLine)},
		{"leading space", " GET / HTTP/1.1\r\n" + host + "\r\n", refused(errMethod)},
		{"two spaces", "GET  / HTTP/1.1\r\n" + host + "\r\n", refused(errTarget)},
		{"space in target", "GET /a b HTTP/1.1\r\n" + host + "\r\n", refused(errVersion)},
		{"trailing space", "GET / HTTP/1.1 \r\n" + host + "\r\n", refused(errVersion)},
		{"tab in target", "GET /a\tb HTTP/1.1\r\n" + host + "\r\n", refused(errTarget)},
		{"control char in target", "GET /a\x01b HTTP/1.1\r\n" + host + "\r\n", refused(errTarget)},
		{"NUL in target", "GET /a\x00b HTTP/1.1\r\n" + host + "\r\n", refused(errTarget)},
		{"DEL in target", "GET /a\x7fb HTTP/1.1\r\n" + host + "\r\n", refused(errTarget)},

		// Line endings and field syntax.
		{"bare LF after request line", "GET / HTTP/1.1\n" + host + "\r\n", refused(errBareLF)},
		{"bare LF after field", rl + "Host: x\n\r\n", refused(errBareLF)},
		{"bare LF ends head", rl + host + "\n", refused(errBareLF)},
		{"bare CR in request line", "GET /\r HTTP/1.1\r\n" + host + "\r\n", refused(errBareCR)},
		{"bare CR in value", rl + host + "X: a\rb\r\n\r\n", refused(errBareCR)},
		{"CR CR LF", rl + host + "X: a\r\r\n\r\n", refused(errBareCR)},
		{"CR CR LF empty line", rl + host + "\r\r\n", refused(errBareCR)},
		{"obs-fold space", rl + host + "X: a\r\n b\r\n\r\n", refused(errObsFold)},
		{"obs-fold tab", rl + host + "X: a\r\n\tb\r\n\r\n", refused(errObsFold)},
		{"folded first field", rl + " X: a\r\n" + host + "\r\n", refused(errObsFold)},
		{"folded TE", rl + host + "Transfer-Encoding:\r\n chunked\r\n\r\n", refused(errObsFold)},
		{"space before colon", rl + host + "Transfer-Encoding : chunked\r\n\r\n", refused(errSpaceColon)},
		{"tab before colon", rl + host + "Content-Length\t: 5\r\n\r\n", refused(errSpaceColon)},
		{"empty field name", rl + host + ": x\r\n\r\n", refused(errFieldName)},
		{"colon only", rl + host + ":\r\n\r\n", refused(errFieldName)},
		{"space in name", rl + host + "X Y: z\r\n\r\n", refused(errFieldName)},
		{"obs-text in name", rl + host + "X\xc3\xa9: z\r\n\r\n", refused(errFieldName)},
		{"no colon", rl + host + "X\r\n\r\n", refused(errNoColon)},
		{"NUL in value", rl + host + "X: a\x00b\r\n\r\n", refused(errFieldValue)},
		{"control char in value", rl + host + "X: a\x01b\r\n\r\n", refused(errFieldValue)},
		{"vertical tab in value", rl + host + "X: a\x0bb\r\n\r\n", refused(errFieldValue)},
		{"form feed in CL", rl + host + "Content-Length: 5\x0c\r\n\r\n", refused(errFieldValue)},
		{"DEL in value", rl + host + "X: a\x7f\r\n\r\n", refused(errFieldValue)},
		{"control char in Host", rl + "Host: x\x01\r\n\r\n", refused(errFieldValue)},

		// Expect.
		{"Expect 100-continue", rl + host + "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\n", ok(1, false)},
		{"Expect other", rl + host + "Expect: 200-ok\r\n\r\n", refused(errExpect)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseHead(tc.head)
			if tc.want.err != nil {
				if err != tc.want.err {
					t.Fatalf("error %v, want %d %q", err, tc.want.err.status, tc.want.err.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused (%d %s), want accepted", err.status, err.reason)
			}
			w := tc.want
			if h.method != w.method || h.target != w.target || h.proto != w.proto || h.host != w.host ||
				h.contentLength != w.contentLength || h.chunked != w.chunked {
				t.Fatalf("got method %q target %q proto %q host %q contentLength %d chunked %v\nwant method %q target %q proto %q host %q contentLength %d chunked %v",
					h.method, h.target, h.proto, h.host, h.contentLength, h.chunked,
					w.method, w.target, w.proto, w.host, w.contentLength, w.chunked)
			}
			if w.header != nil && !reflect.DeepEqual(h.header, w.header) {
				t.Fatalf("header %q, want %q", h.header, w.header)
			}
			if _, ok := h.header["Host"]; ok {
				t.Fatalf("Host left in the header map: %q", h.header)
			}
		})
	}
}

// TestParseHeadStatuses guards the status each refusal answers with.
func TestParseHeadStatuses(t *testing.T) {
	for _, tc := range []struct {
		err    *parseError
		status int
	}{
		{errUnknownTE, 501}, {errUnsupportedV, 505}, {errExpect, 417}, {errHeadTooLarge, 431},
		{errURITooLong, 414}, {errBothLengths, 400}, {errTE10, 400}, {errBareLF, 400}, {errBadHost, 400},
	} {
		if tc.err.status != tc.status {
			t.Errorf("%q: status %d, want %d", tc.err.reason, tc.err.status, tc.status)
		}
	}
}

// TestParseHeadConnection guards the reading of the Connection field: its
// options are a comma-separated list over all its fields, in any case.
func TestParseHeadConnection(t *testing.T) {
	for _, tc := range []struct {
		fields           string
		close, keepAlive bool
	}{
		{"", false, false},
		{"Connection: close\r\n", true, false},
		{"Connection: Keep-Alive\r\n", false, true},
		{"Connection: foo, CLOSE\r\n", true, false},
		{"Connection: keep-alive\r\nConnection: close\r\n", true, true},
		{"Connection: upgrade,keep-alive\r\n", false, true},
		{"Connection: closed\r\n", false, false},
		{"Connection: foo close\r\n", false, false},
		// Unicode case folding would read U+212A as k and U+017F as s.
		{"Connection: clo\xc5\xbfe\r\n", false, false},
		{"Connection: \xe2\x84\xaaeep-alive\r\n", false, false},
	} {
		h, err := parseHead("GET / HTTP/1.0\r\n" + tc.fields + "\r\n")
		if err != nil {
			t.Fatalf("%q: %v", tc.fields, err)
		}
		if h.closeConn != tc.close || h.keepAlive != tc.keepAlive {
			t.Errorf("%q: close %v keep-alive %v, want %v %v", tc.fields, h.closeConn, h.keepAlive, tc.close, tc.keepAlive)
		}
	}
}

// TestParseHeadLineOK guards what Server.Reject is given: a head whose
// request line parsed is marked so, one whose request line did not is not.
func TestParseHeadLineOK(t *testing.T) {
	for head, want := range map[string]bool{
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n": true,
		"GET / HTTP/1.1\r\n\r\n":                        true,
		"GET / HTTP/2.0\r\nHost: x\r\n\r\n":             false,
		"G(T / HTTP/1.1\r\nHost: x\r\n\r\n":             false,
		"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n":         false,
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00\r\n\r\n": true,
	} {
		h, err := parseHead(head)
		if err == nil {
			t.Fatalf("%q accepted", head)
		}
		if got := h != nil && h.lineOK; got != want {
			t.Errorf("%q: lineOK %v, want %v", head, got, want)
		}
	}
}

// TestReadHead guards how a connection's bytes are cut into heads: empty
// lines (CRLF) before a request line are skipped, a bare LF anywhere is
// refused before parsing, the head ends at the first empty line whatever
// the reads' sizes, and its size is bounded.
func TestReadHead(t *testing.T) {
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		name, in   string
		head, rest string
		err        error
	}{
		{"plain", req + "next", req, "next", nil},
		{"leading CRLF", "\r\n" + req, req, "", nil},
		{"many leading CRLF", strings.Repeat("\r\n", 50) + req, req, "", nil},
		{"leading bare LF", "\n" + req, "", "", errBareLF},
		{"leading LF CRLF", "\n\r\n" + req, "", "", errBareLF},
		{"leading CR CR LF", "\r\r\n" + req, "\r\r\n" + req, "", nil}, // refused by parseHead as a bare CR
		{"bare LF in head", "GET / HTTP/1.1\r\nHost: x\n\r\n", "", "", errBareLF},
		{"LF LF end", "GET / HTTP/1.1\r\nHost: x\r\n\n", "", "", errBareLF},
		{"body kept", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n", "ab", nil},
	} {
		for _, step := range []int{0, 1, 3} {
			head, rest, err := readHeadFrom(tc.in, step, nil)
			if err != tc.err || head != tc.head || err == nil && rest != tc.rest {
				t.Errorf("%s, reads of %d: head %q rest %q err %v; want %q %q %v", tc.name, step, head, rest, err, tc.head, tc.rest, tc.err)
			}
		}
	}
	if _, err := parseHead("\r\r\n" + req); err != errBareCR {
		t.Errorf("CR CR LF before a request line: %v, want a bare CR refusal", err)
	}

	srv := &Server{MaxHeaderBytes: 100} // a limit of 100+4096 bytes
	long := "GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\n\r\n"
	if _, _, err := readHeadFrom(long, 0, srv); err != errURITooLong {
		t.Errorf("long request line: %v, want 414", err)
	}
	big := "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n"
	if _, _, err := readHeadFrom(big, 0, srv); err != errHeadTooLarge {
		t.Errorf("long header section: %v, want 431", err)
	}
	within := "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 4000) + "\r\n\r\n"
	if head, _, err := readHeadFrom(within, 7, srv); err != nil || head != within {
		t.Errorf("head within the limit: %v", err)
	}
}

// TestParseChunkSize guards the chunk-size line parser: hex digits that
// fit an int64, then only well-formed extensions; anything another parser
// could read as a different size is refused.
func TestParseChunkSize(t *testing.T) {
	for _, tc := range []struct {
		line string
		size int64
		ok   bool
	}{
		{"0", 0, true},
		{"5", 5, true},
		{"a", 10, true},
		{"A", 10, true},
		{"fF", 255, true},
		{"0005", 5, true},
		{"fffffffffffffff", 1<<60 - 1, true}, // 15 digits
		{"5;ext", 5, true},
		{"5;ext=val", 5, true},
		{"5;ext=\"quoted; string\"", 5, true},
		{"5;a=1;b", 5, true},
		{"5;", 5, true},
		{"5 ;ext", 5, true},  // BWS before ";" (RFC 9112 section 7.1.1)
		{"5\t;ext", 5, true}, // BWS before ";"
		{"5; ext ", 5, true},
		{"5;caf\xc3\xa9", 5, true},
		{"", 0, false},
		{";ext", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"5\t", 0, false},
		{"5 5", 0, false},
		{"0x5", 0, false},
		{"+5", 0, false},
		{"-5", 0, false},
		{"5g", 0, false},
		{"g", 0, false},
		{"0000000000000005", 0, false}, // 16 digits
		{"ffffffffffffffff", 0, false},
		{"10000000000000000", 0, false},
		{"5;\x00", 0, false},
		{"5;a\x01", 0, false},
		{"5;a\x7f", 0, false},
		{"5\x00", 0, false},
		{"5,6", 0, false},
	} {
		size, ok := parseChunkSize(tc.line)
		if ok != tc.ok || ok && size != tc.size {
			t.Errorf("parseChunkSize(%q) = %d, %v; want %d, %v", tc.line, size, ok, tc.size, tc.ok)
		}
	}
}

// TestRequestURL guards the parsing of request targets into URLs, as
// net/http does it: origin-form, absolute-form, "*" and CONNECT's
// authority-form; a malformed target is refused.
func TestRequestURL(t *testing.T) {
	for _, tc := range []struct {
		method, target, host, path string
		ok                         bool
	}{
		{"GET", "/a?b", "", "/a", true},
		{"GET", "http://h:1/a", "h:1", "/a", true},
		{"OPTIONS", "*", "", "*", true},
		{"CONNECT", "h:443", "h:443", "", true},
		{"CONNECT", "/rpc", "", "/rpc", true},
		{"GET", "a", "", "", false},
		{"GET", "/%zz", "", "", false},
		{"GET", "http://[::1/", "", "", false},
	} {
		u, err := requestURL(tc.method, tc.target)
		if (err == nil) != tc.ok {
			t.Errorf("%s %q: error %v, want ok %v", tc.method, tc.target, err, tc.ok)
			continue
		}
		if err == nil && (u.Host != tc.host || u.Path != tc.path) {
			t.Errorf("%s %q: host %q path %q, want %q %q", tc.method, tc.target, u.Host, u.Path, tc.host, tc.path)
		}
	}
}
