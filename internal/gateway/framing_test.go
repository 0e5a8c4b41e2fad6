package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
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
			if fc.heads != 4 || fmt.Sprint(fc.flagged) != "[4]" {
				t.Errorf("heads = %d, flagged = %v; want 4 and [4]", fc.heads, fc.flagged)
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
