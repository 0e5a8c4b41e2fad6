package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

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
		{"bare CR before OPTIONS * after a POST", bypassCROptions, []int{200, 400}, 1},
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

// The two bypasses a security test found: an OPTIONS * that net/http
// answered itself, and a bare CR before OPTIONS * after a POST.
var (
	bypassOptionsStar = "OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
		smuggleBoth
	bypassCROptions = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" +
		"\rOPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + smuggleBoth
	// smuggleBoth carries a request in a body that a front proxy believing
	// its Content-Length would pass through as data.
	smuggleBoth = func() string {
		inner := "0\r\n\r\nGET /inner HTTP/1.1\r\nHost: x\r\nX-Test-Id: smuggle\r\n\r\n"
		return fmt.Sprintf("POST /smuggle HTTP/1.1\r\nHost: x\r\nX-Test-Id: smuggle\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(inner)) + inner
	}()
)
