package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// countConns starts a backend that counts the connections it accepts.
func countConns(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestH1ReusesConnections(t *testing.T) {
	srv, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 1000))
	}))
	e := newEnv(t, poolConfig("", srv.URL))
	for i := 0; i < 50; i++ {
		r := e.do("GET", "/", "")
		wantStatus(t, r, 200)
		if len(r.body) != 1000 {
			t.Fatalf("body %d bytes", len(r.body))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 sequential requests used %d upstream connections, want 1", n)
	}
}

func TestH1ConnectionCloseIsNotPooled(t *testing.T) {
	srv, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}))
	e := newEnv(t, poolConfig("", srv.URL))
	for i := 0; i < 5; i++ {
		r := e.do("GET", "/", "")
		wantStatus(t, r, 200)
		if r.body != "bye" {
			t.Fatalf("body %q", r.body)
		}
	}
	if n := conns.Load(); n != 5 {
		t.Errorf("%d connections for 5 requests answered Connection: close, want 5", n)
	}
}

func TestH1ResponseShapes(t *testing.T) {
	cases := []struct {
		name, raw, method, wantBody string
		wantStatus                  int
	}{
		{"close-delimited HTTP/1.0 body", "HTTP/1.0 200 OK\r\n\r\nuntil close", "GET", "until close", 200},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "GET", "hello world", 200},
		{"HEAD with a Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nConnection: close\r\n\r\n", "HEAD", "", 200},
		{"204", "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", "GET", "", 204},
		{"304", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nConnection: close\r\n\r\n", "GET", "", 304},
		{"103 then 200", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", "GET", "ok", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := testutil.Raw(t, tc.raw)
			e := newEnv(t, poolConfig("", "http://"+f.Addr))
			r := e.do(tc.method, "/", "")
			wantStatus(t, r, tc.wantStatus)
			if r.body != tc.wantBody {
				t.Errorf("body = %q, want %q", r.body, tc.wantBody)
			}
		})
	}
}

func TestH1ChunkedTrailersReachClient(t *testing.T) {
	f := testutil.Raw(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\nX-Sum: 42\r\n\r\n")
	e := newEnv(t, poolConfig("", "http://"+f.Addr))
	resp, err := http.Get(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("body %q trailer %q", b, resp.Trailer.Get("X-Sum"))
	}
}

func TestH1IdleConnectionsAreSwept(t *testing.T) {
	// A raw backend that reports when the gateway closes its connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	closed := make(chan time.Time, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// Wait for the gateway to close the idle connection.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); err != nil {
			closed <- time.Now()
		}
	}()
	e := newEnv(t, poolConfig("timeouts: {idle: 200ms}", "http://"+ln.Addr().String()))
	start := time.Now()
	wantStatus(t, e.do("GET", "/", ""), 200)
	select {
	case at := <-closed:
		if d := at.Sub(start); d < 150*time.Millisecond || d > 2*time.Second {
			t.Errorf("idle connection closed after %v, want about the 200ms idle timeout", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("idle upstream connection never closed")
	}
}

func TestH1ConcurrentRequestsShareThePool(t *testing.T) {
	srv, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		fmt.Fprint(w, r.URL.Query().Get("i"))
	}))
	e := newEnv(t, poolConfig("", srv.URL))
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 20; i++ {
				r := e.do("GET", fmt.Sprintf("/?i=%d-%d", g, i), "")
				if r.err != nil || r.body != fmt.Sprintf("%d-%d", g, i) {
					done <- fmt.Errorf("got %q %v", r.body, r.err)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n > 8 {
		t.Errorf("%d upstream connections for 8 concurrent clients, want at most 8", n)
	}
}

// TestH1RequestLargerThanWriteBuffer: a request whose head and body are
// each larger than the write buffer lent for it (16 KiB) reaches the
// backend whole, byte for byte, on one kept-alive connection, between small
// requests that must stay in step.
func TestH1RequestLargerThanWriteBuffer(t *testing.T) {
	var got []string
	srv, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Header.Get("X-Big-1")+r.Header.Get("X-Big-2")+"|"+string(b))
		fmt.Fprintf(w, "%d", len(b))
	}))
	e := newEnv(t, poolConfig("", srv.URL))
	big1, big2 := strings.Repeat("a", 9000), strings.Repeat("b", 9000)
	body := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB
	for i := range 3 {
		r := e.do("GET", "/", "")
		wantStatus(t, r, 200)
		r = e.do("POST", "/", body, "X-Big-1", big1, "X-Big-2", big2)
		wantStatus(t, r, 200)
		if r.body != fmt.Sprint(len(body)) {
			t.Fatalf("round %d: backend read %s bytes, want %d", i, r.body, len(body))
		}
	}
	for i, g := range got {
		want := "|"
		if i%2 == 1 {
			want = big1 + big2 + "|" + body
		}
		if g != want {
			t.Fatalf("request %d reached the backend as %d bytes, want %d", i, len(g), len(want))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d upstream connections, want 1", n)
	}
}

// TestH1WriteBufferLeavesNothingBehind: a write that fails part way (the
// upstream reads a little of a large body and resets the connection) leaves
// bytes in the buffer lent for it; the next request, written through the
// same pooled buffer to another upstream, must carry none of them.
func TestH1WriteBufferLeavesNothingBehind(t *testing.T) {
	resetter := testutil.ResetAfterRequest(t) // reads the head, resets during the body
	var got []string
	good, _ := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
	}))
	bad := newEnv(t, poolConfig("retry: {tries: 1}", "http://"+resetter.Addr))
	e := newEnv(t, poolConfig("", good.URL))
	secret := strings.Repeat("secret-", 200<<10/7)
	for i := range 5 {
		if r := bad.do("POST", "/upload", secret); r.status == 200 {
			t.Fatalf("round %d: the resetting upstream answered 200", i)
		}
		r := e.do("POST", "/next", "mine")
		wantStatus(t, r, 200)
	}
	for i, g := range got {
		if g != "POST /next mine" {
			t.Fatalf("request %d reached the good upstream as %q, want only its own bytes", i, g[:min(len(g), 80)])
		}
	}
	if len(got) != 5 {
		t.Errorf("the good upstream saw %d requests, want 5", len(got))
	}
	if n := resetter.Requests.Load(); n < 5 {
		t.Errorf("the resetting upstream read %d request heads, want 5: the failed writes did not happen", n)
	}
}

// TestH1ReadBuffersLentPerResponse: on plain TCP a connection reads each
// response through a buffer lent for that response alone (h1.go, readers).
// Concurrent responses of every framing and of sizes around the buffer's
// must each reach their own client byte for byte, and every connection
// idle in the pool afterwards must hold no buffer.
func TestH1ReadBuffersLentPerResponse(t *testing.T) {
	srv, _ := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		var size int
		fmt.Sscan(r.URL.Query().Get("size"), &size)
		body := strings.Repeat(id+".", size/(len(id)+1)+1)[:size]
		switch r.URL.Query().Get("frame") {
		case "chunked":
			half := len(body) / 2
			io.WriteString(w, body[:half])
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
			io.WriteString(w, body[half:])
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			io.WriteString(w, body)
		}
	}))
	e := newEnv(t, poolConfig("", srv.URL))
	sizes := []int{0, 1, 100, 4095, 16 << 10, 16<<10 + 1, 40 << 10}
	const workers, rounds = 12, 30
	errs := make(chan error, workers)
	for g := range workers {
		go func() {
			for i := range rounds {
				id := fmt.Sprintf("w%di%d", g, i)
				size := sizes[(g+i)%len(sizes)]
				frame := []string{"length", "chunked"}[i%2]
				r := e.do("GET", fmt.Sprintf("/?id=%s&size=%d&frame=%s", id, size, frame), "")
				want := strings.Repeat(id+".", size/(len(id)+1)+1)[:size]
				if r.err != nil || r.status != 200 || r.body != want {
					errs <- fmt.Errorf("%s (%d B, %s): status %d, %d B, err %v: not its own response", id, size, frame, r.status, len(r.body), r.err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	p := e.h.pools["p"].h1[0]
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		t.Fatal("no connection went back to the pool")
	}
	for i, pc := range p.idle {
		if !pc.lend || pc.br != nil {
			t.Errorf("idle connection %d of %d holds a read buffer (lent: %v)", i, len(p.idle), pc.lend)
		}
	}
}

// TestH1ClientGoneAbortsAttempt: when the client closes its connection
// while the upstream is still thinking, holdfast abandons the attempt at
// once: the upstream connection closes (the backend's request context
// ends) long before the backend would have answered, and the next request
// is served as usual.
func TestH1ClientGoneAbortsAttempt(t *testing.T) {
	aborted := make(chan time.Time, 1)
	srv, _ := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			io.WriteString(w, "ok")
			return
		}
		select {
		case <-r.Context().Done():
			aborted <- time.Now()
		case <-time.After(20 * time.Second):
		}
	}))
	e := newEnv(t, poolConfig("", srv.URL))
	wantStatus(t, e.do("GET", "/", ""), 200)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(200 * time.Millisecond) // the attempt waits on the upstream
	closed := time.Now()
	c.Close()
	select {
	case at := <-aborted:
		if d := at.Sub(closed); d > 5*time.Second {
			t.Fatalf("the upstream connection closed %v after the client left", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream connection stayed open 10s after the client left")
	}
	r := e.do("GET", "/", "")
	wantStatus(t, r, 200)
	if r.body != "ok" {
		t.Fatalf("the next request got %q", r.body)
	}
}

// TestH1EarlyAnswerBeforeTheBodyEnds: an upstream that answers as soon as
// it has a request's head (a 401 before the body, on a kept-alive
// connection) has its answer passed on once the body is sent, not taken
// for silence: the body streams (larger than retry.body_buffer) and its
// last bytes come from the client only after the answer has arrived.
func TestH1EarlyAnswerBeforeTheBodyEnds(t *testing.T) {
	up := testutil.EarlyAnswer(t)
	e := newEnv(t, poolConfig("retry: {body_buffer: 1024}\ntimeouts: {read: 3s}", "http://"+up.Addr))
	wantStatus(t, e.do("GET", "/", ""), 200) // the PUT reuses this connection
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(strings.Repeat("a", 2000)))
		time.Sleep(300 * time.Millisecond)
		pw.Write([]byte(strings.Repeat("b", 100)))
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", e.URL+"/upload", pr)
	req.ContentLength = 2100
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || string(b) != "nope" {
		t.Fatalf("got %d %q, want the upstream's early 401 %q", resp.StatusCode, b, "nope")
	}
	if n := up.Conns.Load(); n != 1 {
		t.Errorf("%d upstream connections, want 1: the PUT must go on the GET's pooled connection", n)
	}
}
