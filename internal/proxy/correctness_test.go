package proxy

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

func TestHopByHopAndForwarding(t *testing.T) {
	var got http.Header
	var gotHost string
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, gotHost = r.Header.Clone(), r.Host
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "hop")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-End", "kept")
	}))
	for _, tc := range []struct {
		name    string
		trusted string
		wantXFF string
	}{
		{"untrusted client", "", "127.0.0.1"},
		{"trusted client", "trusted_proxies: [127.0.0.1/32]\n", "203.0.113.9, 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.trusted+poolConfig("", b.URL))
			r := e.do("GET", "/", "",
				"Connection", "X-Drop",
				"X-Drop", "1",
				"Proxy-Authorization", "secret",
				"X-Forwarded-For", "203.0.113.9",
				"X-Forwarded-Host", "forged.example",
				"Forwarded", "for=203.0.113.9",
				"Host", "api.example.com")
			wantStatus(t, r, 200)
			for _, h := range []string{"X-Drop", "Proxy-Authorization", "Connection"} {
				if got.Get(h) != "" {
					t.Errorf("hop-by-hop %s forwarded: %q", h, got.Get(h))
				}
			}
			if got.Get("X-Forwarded-For") != tc.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", got.Get("X-Forwarded-For"), tc.wantXFF)
			}
			if gotHost != "api.example.com" {
				t.Errorf("Host = %q, want the client's", gotHost)
			}
			if tc.trusted == "" && (got.Get("X-Forwarded-Host") != "api.example.com" || strings.Contains(got.Get("Forwarded"), "203.0.113.9")) {
				t.Errorf("untrusted forwarding headers kept: XFH %q Forwarded %q", got.Get("X-Forwarded-Host"), got.Get("Forwarded"))
			}
			if !strings.Contains(got.Get("Forwarded"), "for=127.0.0.1;host=api.example.com;proto=http") {
				t.Errorf("Forwarded = %q", got.Get("Forwarded"))
			}
			if got.Get("Via") != "1.1 holdfast" || got.Get("X-Forwarded-Proto") != "http" || got.Get("X-Request-Id") == "" {
				t.Errorf("Via %q, X-Forwarded-Proto %q, X-Request-Id %q", got.Get("Via"), got.Get("X-Forwarded-Proto"), got.Get("X-Request-Id"))
			}
			if r.header.Get("X-Secret") != "" || r.header.Get("Keep-Alive") != "" || r.header.Get("X-End") != "kept" {
				t.Errorf("response headers: %v", r.header)
			}
		})
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		// Echo lines back, upper-cased, until the client closes.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(conn, strings.ToUpper(line))
		}
	}))
	e := newEnv(t, poolConfig("retry: {timeout: 200ms}", b.URL))
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("status %d, Upgrade %q", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	// Longer than retry.timeout: an upgraded connection is never cut by it.
	for i, msg := range []string{"hello\n", "after a pause\n"} {
		if i == 1 {
			time.Sleep(300 * time.Millisecond)
		}
		io.WriteString(conn, msg)
		line, err := br.ReadString('\n')
		if err != nil || line != strings.ToUpper(msg) {
			t.Fatalf("echo = %q, %v", line, err)
		}
	}
}

func TestSSEFlushedPromptly(t *testing.T) {
	release := make(chan struct{})
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "data: second\n\n")
	}))
	e := newEnv(t, poolConfig("", b.URL))
	resp, err := http.Get(e.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: first\n" {
			t.Errorf("first line %q", line)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("first event not delivered while the stream is open: not flushed")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: second") {
		t.Errorf("rest = %q", rest)
	}
}

func TestExpectContinue(t *testing.T) {
	var sawExpect string
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawExpect = r.Header.Get("Expect")
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d bytes", len(body))
	}))
	e := newEnv(t, poolConfig("", b.URL))
	req, _ := http.NewRequest("PUT", e.URL+"/upload", strings.NewReader(strings.Repeat("x", 5000)))
	req.Header.Set("Expect", "100-continue")
	c := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "got 5000 bytes" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if sawExpect != "100-continue" {
		t.Errorf("upstream saw Expect %q, want 100-continue passed through", sawExpect)
	}
}

func TestTrailersPassedThrough(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc123")
	}))
	e := newEnv(t, poolConfig("", b.URL))
	resp, err := http.Get(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("trailer X-Checksum = %q, want abc123", got)
	}
}

func TestBodyLimitAndReplay(t *testing.T) {
	good := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d", len(b))
	}))
	reset := testutil.ResetAfterRequest(t)

	t.Run("over max_body_bytes is 413 and never sent", func(t *testing.T) {
		e := newEnv(t, "client: {max_body_bytes: 1KiB}\n"+poolConfig("", good.URL))
		before := good.Requests.Load()
		r := e.do("POST", "/", strings.Repeat("x", 2048))
		wantStatus(t, r, 413)
		if r.proxyCause() != "http_request_error" || good.Requests.Load() != before {
			t.Errorf("cause %q, backend reached %d times", r.proxyCause(), good.Requests.Load()-before)
		}
	})
	t.Run("buffered body is replayed on retry", func(t *testing.T) {
		e := newEnv(t, poolConfig("balance: round_robin\npassive: {fail_on: []}\nretry: {body_buffer: 1KiB}", "http://"+reset.Addr, good.URL))
		r := e.do("PUT", "/", strings.Repeat("y", 1000))
		wantStatus(t, r, 200)
		if r.body != "1000" {
			t.Errorf("backend got %s bytes, want 1000", r.body)
		}
	})
	t.Run("body over body_buffer streams and is not replayed", func(t *testing.T) {
		e := newEnv(t, poolConfig("balance: round_robin\npassive: {fail_on: []}\nretry: {body_buffer: 1KiB}", "http://"+reset.Addr, good.URL))
		before := good.Requests.Load()
		r := e.do("PUT", "/", strings.Repeat("z", 64<<10))
		wantStatus(t, r, 502)
		if good.Requests.Load() != before {
			t.Error("a streamed body was sent twice")
		}
		if !strings.Contains(e.logBuf.String(), `"retry_skipped":"body_too_large"`) {
			t.Errorf("log lacks retry_skipped=body_too_large: %s", e.logBuf.String())
		}
		// The same body to a healthy server streams through intact.
		e2 := newEnv(t, poolConfig("retry: {body_buffer: 1KiB}", good.URL))
		r = e2.do("PUT", "/", strings.Repeat("z", 64<<10))
		wantStatus(t, r, 200)
		if r.body != fmt.Sprint(64<<10) {
			t.Errorf("backend got %s bytes", r.body)
		}
	})
}

func TestStripPrefixAndLongestPrefix(t *testing.T) {
	var paths []string
	api := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, "api:"+r.URL.RequestURI())
	}))
	web := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, "web:"+r.URL.RequestURI())
	}))
	e := newEnv(t, fmt.Sprintf(`routes:
  - match: {path_prefix: /}
    upstream: web
  - match: {path_prefix: /api}
    upstream: api
    strip_prefix: true
upstreams:
  web:
    servers: [{url: %q}]
  api:
    servers: [{url: %q}]
`, web.URL, api.URL))
	for _, p := range []string{"/api/users?x=1", "/api", "/apix", "/"} {
		wantStatus(t, e.do("GET", p, ""), 200)
	}
	want := []string{"api:/users?x=1", "api:/", "web:/apix", "web:/"}
	if fmt.Sprint(paths) != fmt.Sprint(want) {
		t.Errorf("paths = %v, want %v", paths, want)
	}
}
