package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

func TestFramingScannerFollowsPipelinedRequests(t *testing.T) {
	trick := "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nxxxxxxx"
	stream := "" +
		// 1: a Content-Length body that looks like headers.
		fmt.Sprintf("POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(trick)) + trick +
		// 2: chunked, with an extension and a trailer.
		"POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n" +
		// a stray CRLF, then 3: no body.
		"\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n" +
		// 4: both: ambiguous.
		"POST /4 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
	for _, chunk := range []int{1, 3, 7, len(stream)} {
		t.Run(fmt.Sprint("reads of ", chunk), func(t *testing.T) {
			fc := &framingConn{maxHead: 1 << 16}
			for i := 0; i < len(stream); i += chunk {
				fc.scan([]byte(stream[i:min(i+chunk, len(stream))]))
			}
			var got []string
			for _, h := range fc.heads {
				got = append(got, fmt.Sprintf("%d %d", h.start, h.why))
			}
			// The stray CRLF after the POST is skipped, as net/http does.
			want := []string{"0 0", fmt.Sprint(strings.Index(stream, "POST /2"), " 0"),
				fmt.Sprint(strings.Index(stream, "GET /3"), " 0"), fmt.Sprint(strings.Index(stream, "POST /4"), " ", uint8(framingBothLengths))}
			if fmt.Sprint(got) != fmt.Sprint(want) || !fc.lost || fc.lostAt != 4 {
				t.Errorf("heads (offset, verdict) = %v, lost %v after %d; want %v, lost after 4", got, fc.lost, fc.lostAt, want)
			}
		})
	}
}

func TestPipelinedRequestsThroughGateway(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.URL.Path, body)
	}))
	_, addr := start(t, oneRoute("127.0.0.1:0", "", b.URL))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nde"+
		"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	br := bufio.NewReader(c)
	var got []string
	for i := 0; i < 3; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, fmt.Sprintf("%d %s", resp.StatusCode, strings.SplitN(string(body), "\n", 2)[0]))
	}
	if got[0] != "200 /a abc" || got[1] != "200 /b de" || !strings.HasPrefix(got[2], "400 ") {
		t.Errorf("responses = %q", got)
	}
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Error("connection still open after an ambiguous request")
	}
}

// TestSmugglingShapesRefused sends ambiguous framings, alone and behind
// requests that once threw the scanner out of step; each must be answered
// 400 with the connection closed, and never reach the upstream.
func TestSmugglingShapesRefused(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "reached "+r.URL.Path)
	}))
	_, addr := start(t, oneRoute("127.0.0.1:0", "", b.URL))
	both := "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	cases := []struct {
		name, payload string
		want          []int // statuses, the last one 400, then the connection closes
	}{
		{"both lengths", both, []int{400}},
		{"both lengths after OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + both, []int{200, 400}},
		{"Transfer-Encoding on HTTP/1.0", "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + both, []int{400}},
		{"folded Transfer-Encoding", "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", []int{400}},
		{"after a bad chunk size", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + both, []int{400}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Requests.Load()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(c, tc.payload)
			br := bufio.NewReader(c)
			for i, want := range tc.want {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("response %d: %v", i+1, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Fatalf("response %d: status %d, want %d", i+1, resp.StatusCode, want)
				}
			}
			if _, err := http.ReadResponse(br, nil); err == nil {
				t.Error("connection still open after the refusal")
			}
			if n := b.Requests.Load() - before; n != 0 {
				t.Errorf("%d requests reached the upstream", n)
			}
		})
	}
}

// verdicts scans stream in reads of size bytes, then asks the scanner about
// each request as net/http's server would hand them over (every one, OPTIONS
// * included), until the first refusal.
func verdicts(stream string, size int, reqs ...string) []framingVerdict {
	fc := &framingConn{maxHead: 1 << 16}
	for i := 0; i < len(stream); i += size {
		fc.scan([]byte(stream[i:min(i+size, len(stream))]))
	}
	var out []framingVerdict
	for _, req := range reqs {
		method, target, _ := strings.Cut(req, " ")
		v, _ := fc.nextAmbiguous(&http.Request{Method: method, RequestURI: target})
		out = append(out, v)
		if v != framingOK {
			break
		}
	}
	return out
}

// TestFramingScannerCountsOptionsStar: the scanner once skipped OPTIONS *
// heads, which net/http answered itself; one carrying both lengths then left
// the next request with both unflagged.
func TestFramingScannerCountsOptionsStar(t *testing.T) {
	for _, size := range []int{1, 5, len(bypassOptionsStar)} {
		got := verdicts(bypassOptionsStar, size, "OPTIONS *", "POST /smuggle", "GET /inner")
		if fmt.Sprint(got) != fmt.Sprint([]framingVerdict{framingBothLengths}) {
			t.Errorf("reads of %d: verdicts %v, want the OPTIONS * refused for both lengths", size, got)
		}
	}
}

// TestFramingScannerSkipsCRAfterPost: after a POST net/http discards up to
// four CR or LF bytes before the next request line; the scanner once did not,
// and a bare CR before OPTIONS * put it one request out of step.
func TestFramingScannerSkipsCRAfterPost(t *testing.T) {
	for _, size := range []int{1, 3, len(bypassCROptions)} {
		fc := &framingConn{maxHead: 1 << 16}
		for i := 0; i < len(bypassCROptions); i += size {
			fc.scan([]byte(bypassCROptions[i:min(i+size, len(bypassCROptions))]))
		}
		if len(fc.heads) != 3 || fc.heads[1].start != int64(strings.Index(bypassCROptions, "OPTIONS")) {
			t.Errorf("reads of %d: heads %+v, want the second one to start after the CR", size, fc.heads)
		}
		got := verdicts(bypassCROptions, size, "POST /a", "OPTIONS *", "POST /smuggle", "GET /inner")
		want := []framingVerdict{framingOK, framingOK, framingBothLengths}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("reads of %d: verdicts %v, want %v", size, got, want)
		}
	}
	// Only after a POST, and at most four bytes: net/http refuses the rest,
	// and so the scanner stops following the connection.
	post := "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
	next := "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		stream, first string
		want          []framingVerdict
	}{
		{post + "\r\n\n\r" + next, "POST /a", []framingVerdict{framingOK, framingOK}},
		{post + "\r\n\r\n\r" + next, "POST /a", []framingVerdict{framingOK, framingLost}},
		{"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\r" + next, "GET /a", []framingVerdict{framingOK, framingLost}},
	} {
		if got := verdicts(tc.stream, 1, tc.first, "GET /b"); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q: verdicts %v, want %v", tc.stream, got, tc.want)
		}
	}
}

// TestFramingScannerOutOfStep: a request that is not the one the scanner saw
// at its index is refused, and so is every later one; the gateway is told to
// log it once.
func TestFramingScannerOutOfStep(t *testing.T) {
	fc := &framingConn{maxHead: 1 << 16}
	fc.scan([]byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n"))
	for i, tc := range []struct {
		target string
		want   framingVerdict
		warn   bool
	}{
		{"/a", framingOK, false},
		{"/x", framingOutOfStep, true},
		{"/c", framingLost, false},
		{"/d", framingLost, false},
	} {
		v, warn := fc.nextAmbiguous(&http.Request{Method: "GET", RequestURI: tc.target})
		if v != tc.want || warn != tc.warn {
			t.Errorf("request %d: verdict %q, warn %v; want %q, %v", i+1, v, warn, tc.want, tc.warn)
		}
	}
	// A request the scanner has not seen the end of is out of step too.
	fc = &framingConn{maxHead: 1 << 16}
	fc.scan([]byte("GET /a HTTP/1.1\r\nHost: x\r\n"))
	if v, warn := fc.nextAmbiguous(&http.Request{Method: "GET", RequestURI: "/a"}); v != framingOutOfStep || !warn {
		t.Errorf("unfinished head: verdict %q, warn %v", v, warn)
	}
}

// TestFramingScannerAllocs: the scanner and the check cost no allocation
// per request once the connection's buffers have grown.
func TestFramingScannerAllocs(t *testing.T) {
	stream := []byte("GET /a?q=1 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\r\n" +
		"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nhello\r\n0\r\nT: 1\r\n\r\n")
	reqs := []*http.Request{
		{Method: "GET", RequestURI: "/a?q=1"}, {Method: "POST", RequestURI: "/b"}, {Method: "PUT", RequestURI: "/c"},
	}
	fc := &framingConn{maxHead: 1 << 16}
	round := func() {
		for i := 0; i < len(stream); i += 7 {
			fc.scan(stream[i:min(i+7, len(stream))])
		}
		for _, r := range reqs {
			if v, _ := fc.nextAmbiguous(r); v != framingOK {
				t.Fatalf("%s %s: %q", r.Method, r.RequestURI, v)
			}
		}
	}
	round()
	if n := testing.AllocsPerRun(100, round); n != 0 {
		t.Errorf("%v allocations per round of three requests", n)
	}
}

// exchangeRaw writes payload on a new connection to addr and reads the
// responses: their statuses, and whether the connection was closed after them.
func exchangeRaw(t *testing.T, addr, payload string, n int) (statuses []int, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, payload); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v (statuses so far %v)", i+1, err, statuses)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	_, err = br.ReadByte()
	return statuses, err == io.EOF
}

// TestSmugglingBypassesRefused replays the two bypasses a security test found
// through a real gateway: the request with both lengths, and the one in its
// body, must never reach the upstream.
func TestSmugglingBypassesRefused(t *testing.T) {
	b := testutil.Backend(t, nil)
	_, addr := start(t, oneRoute("127.0.0.1:0", "", b.URL))
	for _, tc := range []struct {
		name, payload string
		want          []int
		upstream      int64 // legitimate requests that reach it
	}{
		{"OPTIONS * with both lengths", bypassOptionsStar, []int{400}, 0},
		{"bare CR before OPTIONS * after a POST", bypassCROptions, []int{200, 200, 400}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Requests.Load()
			got, closed := exchangeRaw(t, addr, tc.payload, len(tc.want))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || !closed {
				t.Errorf("statuses %v, closed %v; want %v and closed", got, closed, tc.want)
			}
			if n := b.Seen("smuggle"); n != 0 {
				t.Errorf("%d smuggled requests reached the upstream", n)
			}
			if n := b.Requests.Load() - before; n != tc.upstream {
				t.Errorf("%d requests reached the upstream, want %d", n, tc.upstream)
			}
		})
	}
}

// TestOptionsStar: holdfast answers OPTIONS * itself (net/http's answer is
// disabled), logs it, and keeps the connection for the next request.
func TestOptionsStar(t *testing.T) {
	b := testutil.Backend(t, nil)
	_, addr, access := startLogged(t, oneRoute("127.0.0.1:0", "", b.URL), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	for i, req := range []string{
		"OPTIONS * HTTP/1.1\r\nHost: x\r\nX-Request-Id: opt-1\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	} {
		io.WriteString(c, req)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("OPTIONS * %d: %v", i+1, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != 0 || len(body) != 0 || resp.Close ||
			resp.Header.Get("Allow") != "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH" {
			t.Errorf("OPTIONS * %d: %d, Content-Length %d, Allow %q, close %v", i+1, resp.StatusCode, resp.ContentLength, resp.Header.Get("Allow"), resp.Close)
		}
	}
	io.WriteString(c, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET after OPTIONS *: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("GET after OPTIONS *: %d %q", resp.StatusCode, body)
	}
	if n := b.Requests.Load(); n != 1 {
		t.Errorf("%d requests reached the upstream, want 1 (the GET)", n)
	}
	var options []string
	for _, line := range strings.Split(strings.TrimSpace(access.String()), "\n") {
		var e struct {
			RequestID string `json:"request_id"`
			Method    string `json:"method"`
			Path      string `json:"path"`
			Status    int    `json:"status"`
		}
		if json.Unmarshal([]byte(line), &e) != nil {
			t.Fatalf("access log line is not JSON: %s", line)
		}
		if e.Method == "OPTIONS" && e.Path == "*" && e.Status == 200 {
			options = append(options, e.RequestID)
		}
	}
	if len(options) != 2 || options[0] != "opt-1" {
		t.Errorf("access log has OPTIONS * lines with request ids %q, want two, the first opt-1:\n%s", options, access.String())
	}
}

// TestOutOfStepLoggedOnce: the gateway refuses a request the scanner did not
// see at its index, and warns once per connection.
func TestOutOfStepLoggedOnce(t *testing.T) {
	var events slowLog
	g, err := New(parse(t, oneRoute("127.0.0.1:0", "", "http://127.0.0.1:1")), Options{
		Logger:    slog.New(slog.NewJSONHandler(&events, nil)),
		AccessLog: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	fc := &framingConn{maxHead: 1 << 16}
	fc.scan([]byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"))
	ctx := context.WithValue(context.Background(), framingKey{}, fc)
	for _, target := range []string{"/x", "/b"} {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest("GET", target, nil).WithContext(ctx))
		if w.Code != 400 || w.Header().Get("Connection") != "close" {
			t.Errorf("GET %s: %d, Connection %q; want 400 and close", target, w.Code, w.Header().Get("Connection"))
		}
	}
	if n := strings.Count(events.String(), "out of step"); n != 1 {
		t.Errorf("%d out-of-step warnings, want 1:\n%s", n, events.String())
	}
}
