package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// closeOnCleanup closes stop when the test ends. Called after the test's
// servers are started, it runs before they are closed (cleanups run last
// first), so that a handler waiting for the test's signal returns even
// when the test fails.
func closeOnCleanup(t *testing.T, stop chan struct{}) {
	t.Cleanup(func() { close(stop) })
}

// waitFor waits for c or for stop, and reports whether c came.
func waitFor(c <-chan struct{}, stop <-chan struct{}) bool {
	select {
	case <-c:
		return true
	case <-stop:
		return false
	}
}

// echoHandler answers with the method, the target and the body it read.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "body error: %v", err)
		return
	}
	fmt.Fprintf(w, "%s %s %s", r.Method, r.RequestURI, body)
})

// TestKeepAliveReuse guards against a server that closes a connection
// after each request, or serves later requests on it wrongly.
func TestKeepAliveReuse(t *testing.T) {
	var remotes recorder
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remotes.add(r.RemoteAddr)
		io.WriteString(w, r.URL.Path)
	}))
	c := dial(t, addr)
	for i := range 3 {
		path := "/r" + strconv.Itoa(i)
		c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := c.response("GET")
		if resp.StatusCode != 200 || body != path || resp.Close {
			t.Fatalf("request %d: status %d, body %q, close %v", i, resp.StatusCode, body, resp.Close)
		}
	}
	got := remotes.list()
	if len(got) != 3 || got[0] != got[1] || got[1] != got[2] || got[0] != c.LocalAddr().String() {
		t.Fatalf("remote addresses %q, want three times %s", got, c.LocalAddr())
	}
}

// TestPipelinedInOrder guards against pipelined requests answered out of
// order, merged, or with their bodies framed wrongly.
func TestPipelinedInOrder(t *testing.T) {
	_, addr := startServer(t, echoHandler)
	c := dial(t, addr)
	c.write("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" +
		"\r\n" + // an empty line before a request line is skipped
		"PUT /4 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" +
		"GET /5 HTTP/1.1\r\nHost: x\r\n\r\n")
	want := []string{"GET /1 ", "POST /2 hello", "POST /3 abcde", "PUT /4 ", "GET /5 "}
	for i, w := range want {
		resp, body := c.response("GET")
		if resp.StatusCode != 200 || body != w {
			t.Fatalf("response %d: %d %q, want 200 %q", i+1, resp.StatusCode, body, w)
		}
	}
	c.expectNothing(50 * time.Millisecond)
}

// TestHEAD guards against body bytes after the head of a HEAD response,
// which the client would read as the next response, and against losing
// the Content-Length the handler set.
func TestHEAD(t *testing.T) {
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cl" {
			w.Header().Set("Content-Length", "11")
		}
		n, err := io.WriteString(w, "hello world")
		if r.Method == "HEAD" && (n != 11 || err != nil) {
			t.Errorf("HEAD: Write returned %d, %v; want 11, nil", n, err)
		}
	}))
	c := dial(t, addr)
	c.write("HEAD /cl HTTP/1.1\r\nHost: x\r\n\r\nHEAD /nocl HTTP/1.1\r\nHost: x\r\n\r\nGET /cl HTTP/1.1\r\nHost: x\r\n\r\n")
	lines := c.head()
	if lines[0] != "HTTP/1.1 200 OK" || !hasLine(lines, "Content-Length: 11") {
		t.Fatalf("HEAD with a Content-Length: head %q, want 200 with Content-Length: 11", lines)
	}
	lines = c.head()
	if lines[0] != "HTTP/1.1 200 OK" {
		t.Fatalf("second HEAD: head %q", lines)
	}
	if _, ok := fieldOf(lines, "Transfer-Encoding"); ok {
		t.Fatalf("HEAD response announces a chunked body: %q", lines)
	}
	resp, body := c.response("GET")
	if resp.StatusCode != 200 || body != "hello world" {
		t.Fatalf("GET after two HEADs: %d %q (body bytes were sent after a HEAD head)", resp.StatusCode, body)
	}
}

// TestNoBodyStatuses guards against a body, or a framing field announcing
// one, on 204 and 304 responses.
func TestNoBodyStatuses(t *testing.T) {
	var writeErrs recorder
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
		_, err := io.WriteString(w, "must not be sent")
		writeErrs.add(fmt.Sprint(err))
	}))
	c := dial(t, addr)
	c.write("GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /200 HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, code := range []string{"204", "304"} {
		lines := c.head()
		if !strings.HasPrefix(lines[0], "HTTP/1.1 "+code+" ") {
			t.Fatalf("status line %q, want %s", lines[0], code)
		}
		for _, f := range []string{"Content-Length", "Transfer-Encoding"} {
			if v, ok := fieldOf(lines, f); ok {
				t.Errorf("%s response has %s: %s", code, f, v)
			}
		}
	}
	resp, body := c.response("GET")
	if resp.StatusCode != 200 || body != "must not be sent" {
		t.Fatalf("response after 204 and 304: %d %q", resp.StatusCode, body)
	}
	want := []string{http.ErrBodyNotAllowed.Error(), http.ErrBodyNotAllowed.Error(), "<nil>"}
	if got := writeErrs.list(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Write errors %q, want %q", got, want)
	}
}

// TestAutoFraming guards the choice of framing for a handler that sets no
// Content-Length: a short body gets one, a long one is chunked for
// HTTP/1.1 and delimited by the connection's close for HTTP/1.0.
func TestAutoFraming(t *testing.T) {
	long := strings.Repeat("0123456789", 300)
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			io.WriteString(w, long[:1500])
			io.WriteString(w, long[1500:])
			return
		}
		io.WriteString(w, "short")
	}))

	t.Run("HTTP/1.1", func(t *testing.T) {
		c := dial(t, addr)
		c.write("GET /short HTTP/1.1\r\nHost: x\r\n\r\nGET /long HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := c.response("GET")
		if resp.ContentLength != 5 || len(resp.TransferEncoding) != 0 || body != "short" {
			t.Fatalf("short body: Content-Length %d, Transfer-Encoding %q, body %q", resp.ContentLength, resp.TransferEncoding, body)
		}
		resp, body = c.response("GET")
		if resp.ContentLength != -1 || strings.Join(resp.TransferEncoding, ",") != "chunked" || body != long || resp.Close {
			t.Fatalf("long body: Content-Length %d, Transfer-Encoding %q, %d bytes, close %v",
				resp.ContentLength, resp.TransferEncoding, len(body), resp.Close)
		}
	})
	t.Run("HTTP/1.0 short", func(t *testing.T) {
		c := dial(t, addr)
		c.write("GET /short HTTP/1.0\r\n\r\n")
		lines := c.head()
		if !hasLine(lines, "Content-Length: 5") || !hasLine(lines, "Connection: close") {
			t.Fatalf("head %q, want Content-Length: 5 and Connection: close", lines)
		}
		body, err := io.ReadAll(c.br)
		if err != nil || string(body) != "short" {
			t.Fatalf("body %q, %v", body, err)
		}
	})
	t.Run("HTTP/1.0 long", func(t *testing.T) {
		c := dial(t, addr)
		c.write("GET /long HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		lines := c.head()
		if _, ok := fieldOf(lines, "Content-Length"); ok {
			t.Fatalf("head %q has a Content-Length", lines)
		}
		if _, ok := fieldOf(lines, "Transfer-Encoding"); ok {
			t.Fatalf("head %q is chunked for an HTTP/1.0 client", lines)
		}
		if !hasLine(lines, "Connection: close") {
			t.Fatalf("head %q, want Connection: close", lines)
		}
		body, err := io.ReadAll(c.br)
		if err != nil || string(body) != long {
			t.Fatalf("close-delimited body: %d bytes, %v; want %d bytes", len(body), err, len(long))
		}
	})
}

// TestHTTP10KeepAlive guards the keep-alive of HTTP/1.0 clients: kept when
// asked for (and announced), closed otherwise.
func TestHTTP10KeepAlive(t *testing.T) {
	var seen recorder
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.URL.Path)
		io.WriteString(w, "ok")
	}))
	c := dial(t, addr)
	c.write("GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	lines := c.head()
	if !hasLine(lines, "Connection: keep-alive") || !hasLine(lines, "Content-Length: 2") {
		t.Fatalf("head %q, want Connection: keep-alive and Content-Length: 2", lines)
	}
	if b, _ := io.ReadAll(io.LimitReader(c.br, 2)); string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	c.write("GET /2 HTTP/1.0\r\n\r\nGET /3 HTTP/1.0\r\n\r\n")
	resp, body := c.response("GET")
	if body != "ok" || !resp.Close {
		t.Fatalf("second request: body %q, close %v; want ok and a close", body, resp.Close)
	}
	c.expectClosed(2 * time.Second)
	if got := strings.Join(seen.list(), " "); got != "/1 /2" {
		t.Fatalf("served %q, want /1 /2", got)
	}
}

// TestClientConnectionClose guards against serving a request pipelined
// after one that asked for the connection to close.
func TestClientConnectionClose(t *testing.T) {
	var seen recorder
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.URL.Path)
		io.WriteString(w, "ok")
	}))
	c := dial(t, addr)
	c.write("GET /1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
	lines := c.head()
	if !hasLine(lines, "Connection: close") {
		t.Fatalf("head %q, want Connection: close", lines)
	}
	if b, _ := io.ReadAll(io.LimitReader(c.br, 2)); string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	c.expectClosed(2 * time.Second)
	if got := strings.Join(seen.list(), " "); got != "/1" {
		t.Fatalf("served %q, want only /1", got)
	}
}

// TestChunkedRequestTrailers guards the decoding of a chunked request body
// with extensions and the delivery of its trailer fields in r.Trailer.
func TestChunkedRequestTrailers(t *testing.T) {
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before := fmt.Sprint(r.Trailer.Get("X-Checksum") == "", r.ContentLength, r.TransferEncoding)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("body: %v", err)
		}
		fmt.Fprintf(w, "%s|%s|%s|%s|%d", before, body, r.Trailer.Get("X-Checksum"), r.Trailer.Get("X-Other"), len(r.Trailer))
	}))
	c := dial(t, addr)
	c.write("POST /c HTTP/1.1\r\nHost: x\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n6;ext=1\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nx-other: 1\r\n\r\n" +
		"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
	_, body := c.response("POST")
	if want := "true -1 [chunked]|hello world0123456789|abc|1|2"; body != want {
		t.Fatalf("handler saw %q, want %q", body, want)
	}
	if resp, _ := c.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("request after the trailers: %d", resp.StatusCode)
	}
}

// TestBadChunkClosesConnection guards against reading on after a request
// body whose chunked framing is broken: what follows is not a request.
func TestBadChunkClosesConnection(t *testing.T) {
	for name, chunks := range map[string]string{
		"space after size":      "5 \r\nhello\r\n0\r\n\r\n",
		"no CRLF after data":    "5\r\nhelloX\r\n0\r\n\r\n",
		"bare LF":               "5\nhello\r\n0\r\n\r\n",
		"16 hex digits":         "0000000000000005\r\nhello\r\n0\r\n\r\n",
		"trailer without colon": "0\r\nX\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			var seen recorder
			_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				seen.add(r.URL.Path + " " + strconv.FormatBool(err != nil))
				w.WriteHeader(http.StatusBadRequest)
			}))
			c := dial(t, addr)
			c.write("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks +
				"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, _ := c.response("POST"); resp.StatusCode != 400 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			c.expectClosed(2 * time.Second)
			if got := strings.Join(seen.list(), ","); got != "/p true" {
				t.Fatalf("handler saw %q, want only /p with a body error", got)
			}
		})
	}
}

// TestExpectContinue guards 100-continue: the interim answer is sent only
// once the handler reads the body, never when it answers without reading
// (the client may then never send the body, so the connection closes).
func TestExpectContinue(t *testing.T) {
	readNow := make(chan struct{})
	stop := make(chan struct{})
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if !waitFor(readNow, stop) {
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
	closeOnCleanup(t, stop)

	t.Run("handler reads", func(t *testing.T) {
		c := dial(t, addr)
		c.write("POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		c.expectNothing(100 * time.Millisecond) // the handler has not read yet
		readNow <- struct{}{}
		if lines := c.head(); len(lines) != 1 || lines[0] != "HTTP/1.1 100 Continue" {
			t.Fatalf("interim head %q, want HTTP/1.1 100 Continue", lines)
		}
		c.write("hello")
		resp, body := c.response("POST")
		if resp.StatusCode != 200 || body != "hello" {
			t.Fatalf("final response %d %q", resp.StatusCode, body)
		}
		c.write("GET /refuse HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, _ := c.response("GET"); resp.StatusCode != 403 {
			t.Fatalf("next request on the connection: %d", resp.StatusCode)
		}
	})
	t.Run("handler answers without reading", func(t *testing.T) {
		c := dial(t, addr)
		c.write("POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		lines := c.head()
		if lines[0] != "HTTP/1.1 403 Forbidden" {
			t.Fatalf("first response %q, want the final 403 and no 100 Continue", lines)
		}
		c.expectClosed(2 * time.Second)
	})
	t.Run("close announced when answering without reading", func(t *testing.T) {
		// RFC 9110 section 10.1.1: a server that answers before reading
		// the content SHOULD say whether it closes the connection, or a
		// client reusing it loses its next request.
		c := dial(t, addr)
		c.write("POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		if lines := c.head(); !hasLine(lines, "Connection: close") {
			t.Errorf("head %q closes the connection without Connection: close", lines)
		}
	})
}

// TestExpectContinueIgnoredOnHTTP10 guards RFC 9110 section 10.1.1: a
// server MUST ignore a 100-continue expectation in an HTTP/1.0 request,
// whose client would take an interim 100 for the final response.
func TestExpectContinueIgnoredOnHTTP10(t *testing.T) {
	_, addr := startServer(t, echoHandler)
	c := dial(t, addr)
	c.write("POST /e HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
	lines := c.head()
	if lines[0] != "HTTP/1.1 200 OK" {
		t.Fatalf("first response to an HTTP/1.0 request is %q, want the final 200", lines[0])
	}
}

// TestUnreadBodyDiscarded guards against reading the unread rest of a
// request body as the next request: a small one is skipped and the
// connection kept, a large one closes the connection.
func TestUnreadBodyDiscarded(t *testing.T) {
	var seen recorder
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.Method + " " + r.URL.Path)
		io.WriteString(w, "ok")
	}))
	t.Run("small", func(t *testing.T) {
		c := dial(t, addr)
		inner := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write("POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(inner)) + "\r\n\r\n" + inner +
			"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strconv.FormatInt(int64(len(inner)), 16) + "\r\n" + inner + "\r\n0\r\n\r\n" +
			"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
		for i := range 3 {
			if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" || resp.Close {
				t.Fatalf("response %d: %d %q close %v", i+1, resp.StatusCode, body, resp.Close)
			}
		}
	})
	t.Run("large", func(t *testing.T) {
		c := dial(t, addr)
		const size = 1 << 20
		c.write("POST /large HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n")
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Write(make([]byte, size)) // may fail once the server closes
		}()
		if resp, _ := c.response("POST"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		c.expectClosed(3 * time.Second)
		c.Close()
		<-done
	})
	want := "POST /cl POST /chunked GET /next POST /large"
	if got := strings.Join(seen.list(), " "); got != want {
		t.Fatalf("served %q, want %q", got, want)
	}
}

// TestHijackBufferedBytes guards against losing, or reordering, bytes the
// client sent after the request head when the handler takes the
// connection over: bytes already buffered by the server, and bytes that
// arrive while the handler runs.
func TestHijackBufferedBytes(t *testing.T) {
	proceed := make(chan struct{})
	stop := make(chan struct{})
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" && !waitFor(proceed, stop) {
			return
		}
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer nc.Close()
		buffered := brw.Reader.Buffered()
		got := make([]byte, 5)
		n, _ := io.ReadFull(brw.Reader, got[:buffered])
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := io.ReadFull(nc, got[n:])
		if err != nil {
			t.Errorf("reading the hijacked connection: %v", err)
		}
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\n\r\n%s %d", got[:n+m], buffered)
		brw.Flush()
	}))
	closeOnCleanup(t, stop)

	t.Run("buffered with the head", func(t *testing.T) {
		c := dial(t, addr)
		c.write("GET /now HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nEXTRA")
		if lines := c.head(); lines[0] != "HTTP/1.1 101 Switching Protocols" {
			t.Fatalf("head %q", lines)
		}
		rest, _ := io.ReadAll(c.br)
		if string(rest) != "EXTRA 5" {
			t.Fatalf("handler read %q, want EXTRA, all 5 bytes buffered", rest)
		}
	})
	t.Run("arriving while the handler runs", func(t *testing.T) {
		c := dial(t, addr)
		c.write("GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(50 * time.Millisecond)
		c.write("LATER") // read, if at all, by the server's wait for the next request
		time.Sleep(50 * time.Millisecond)
		proceed <- struct{}{}
		c.head()
		rest, _ := io.ReadAll(c.br)
		if !strings.HasPrefix(string(rest), "LATER ") {
			t.Fatalf("handler read %q, want LATER", rest)
		}
	})
}

// TestFlushStreams guards against holding back what a handler flushed
// until it returns (server-sent events).
func TestFlushStreams(t *testing.T) {
	next := make(chan struct{})
	stop := make(chan struct{})
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		if !waitFor(next, stop) {
			return
		}
		io.WriteString(w, "data: 2\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
		waitFor(next, stop)
	}))
	closeOnCleanup(t, stop)
	c := dial(t, addr)
	c.write("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"data: 1\n\n", "data: 2\n\n"} {
		got := make([]byte, len(want))
		if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q before the handler returns", got, err, want)
		}
		next <- struct{}{}
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != 0 {
		t.Fatalf("end of the stream: %q, %v", rest, err)
	}
}

// TestResponseTrailers guards the sending of response trailers, announced
// with the Trailer header or set with http.TrailerPrefix after the body.
func TestResponseTrailers(t *testing.T) {
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/declared" {
			w.Header().Set("Trailer", "X-Sum")
		}
		body := "short"
		if r.URL.Query().Has("long") {
			body = strings.Repeat("x", 5000)
		}
		io.WriteString(w, body)
		if r.URL.Path == "/declared" {
			w.Header().Set("X-Sum", "abc")
		}
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}))
	for _, target := range []string{"/declared", "/declared?long", "/prefix-only?long", "/prefix-only"} {
		t.Run(target, func(t *testing.T) {
			c := dial(t, addr)
			c.write("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, _ := c.response("GET")
			if strings.HasPrefix(target, "/declared") && resp.Trailer.Get("X-Sum") != "abc" {
				t.Errorf("declared trailer X-Sum = %q, want abc (trailers %v)", resp.Trailer.Get("X-Sum"), resp.Trailer)
			}
			if got := resp.Trailer.Get("X-Late"); got != "late" {
				t.Errorf("trailer X-Late set with http.TrailerPrefix = %q, want late (trailers %v, Content-Length %d)",
					got, resp.Trailer, resp.ContentLength)
			}
			if _, ok := resp.Header["X-Late"]; ok {
				t.Errorf("trailer X-Late sent in the head")
			}
		})
	}
}

// TestResponseSplitting guards against response splitting: a CR, LF or
// NUL in a header value, or an invalid field name, must not start a new
// field or end the head.
func TestResponseSplitting(t *testing.T) {
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-A"] = []string{"a\r\nInjected-A: 1"}
		h["X-B"] = []string{"b\nInjected-B: 1"}
		h["X-C"] = []string{"c\rInjected-C: 1"}
		h["X-D"] = []string{"d\x00e"}
		h["X-E\r\nInjected-E"] = []string{"1"}
		h["Location"] = []string{"/x\r\n\r\n<html>"}
		if r.URL.Path == "/trailers" {
			h.Set("Trailer", "X-T")
			io.WriteString(w, strings.Repeat("x", 3000))
			h["X-T"] = []string{"t\r\nInjected-T: 1"}
			h[http.TrailerPrefix+"X-U\r\nInjected-U"] = []string{"1"}
			return
		}
		io.WriteString(w, "body")
	}))
	check := func(t *testing.T, lines []string) {
		t.Helper()
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimLeft(l, " \t"), "Injected") || strings.HasPrefix(l, "<html>") {
				t.Errorf("injected line %q in %q", l, lines)
			}
		}
	}
	t.Run("head", func(t *testing.T) {
		c := dial(t, addr)
		c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
		lines := c.head()
		check(t, lines)
		if !hasLine(lines, "X-A: a  Injected-A: 1") || !hasLine(lines, "X-D: d e") {
			t.Errorf("head %q: values not neutralised as expected", lines)
		}
		if b, _ := io.ReadAll(io.LimitReader(c.br, 4)); string(b) != "body" {
			t.Fatalf("body %q", b)
		}
		if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "body" {
			t.Fatalf("second response %d %q", resp.StatusCode, body)
		}
	})
	t.Run("trailers", func(t *testing.T) {
		c := dial(t, addr)
		c.write("GET /trailers HTTP/1.1\r\nHost: x\r\n\r\n")
		check(t, c.head())
		// The chunked body, then the trailer section as raw lines.
		for {
			size, err := c.br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
			if err != nil {
				t.Fatalf("chunk size %q", size)
			}
			if n == 0 {
				break
			}
			if _, err := c.br.Discard(int(n) + 2); err != nil {
				t.Fatal(err)
			}
		}
		trailers := append([]string{"(trailers)"}, c.head()...)
		check(t, trailers)
		if !hasLine(trailers, "X-T: t  Injected-T: 1") {
			t.Errorf("trailers %q: X-T not neutralised as expected", trailers)
		}
	})
}

// TestContextCanceledOnClientClose guards against a handler waiting on
// after its client went away: the request context must end at once.
func TestContextCanceledOnClientClose(t *testing.T) {
	for _, req := range []string{
		"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"POST /wait HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	} {
		t.Run(strings.Fields(req)[0]+" "+strconv.Itoa(len(req)), func(t *testing.T) {
			started := make(chan struct{})
			result := make(chan time.Duration, 1)
			var closedAt atomic.Int64
			_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.ReadAll(r.Body)
				close(started)
				select {
				case <-r.Context().Done():
					result <- time.Since(time.Unix(0, closedAt.Load()))
				case <-time.After(3 * time.Second):
					result <- -1
				}
			}))
			c := dial(t, addr)
			c.write(req)
			<-started
			closedAt.Store(time.Now().UnixNano())
			c.Close()
			if d := <-result; d < 0 || d > time.Second {
				t.Fatalf("the request context ended %v after the client closed, want within 1s (-1: not in 3s)", d)
			}
		})
	}
}

// TestReadHeaderTimeout guards against a client holding a connection by
// sending its head slowly (slowloris): the bound runs from the head's
// first byte, whatever trickles in.
func TestReadHeaderTimeout(t *testing.T) {
	var calls atomic.Int32
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }),
		func(s *Server) { s.ReadHeaderTimeout = 300 * time.Millisecond })
	c := dial(t, addr)
	start := time.Now()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)) {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	c.expectClosed(3 * time.Second)
	elapsed := time.Since(start)
	close(stop)
	<-done
	if elapsed < 250*time.Millisecond || elapsed > 1500*time.Millisecond {
		t.Fatalf("closed after %v, want about 300ms", elapsed)
	}
	if calls.Load() != 0 {
		t.Fatalf("handler called for a partial head")
	}
}

// TestIdleTimeout guards against idle keep-alive connections held
// forever.
func TestIdleTimeout(t *testing.T) {
	_, addr := startServer(t, echoHandler, func(s *Server) { s.IdleTimeout = 300 * time.Millisecond })
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.response("GET")
	start := time.Now()
	c.expectClosed(3 * time.Second)
	if d := time.Since(start); d < 200*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("idle connection closed after %v, want about 300ms", d)
	}
}

// TestHeadLimits guards the bounds on a request head: 431 for a header
// section over MaxHeaderBytes (plus its slack), 414 for a request line
// over it, and a head within it served.
func TestHeadLimits(t *testing.T) {
	var calls atomic.Int32
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, "ok")
	}), func(s *Server) { s.MaxHeaderBytes = 1024 })
	// The limit is 1024 + 4096 bytes.
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"within", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 4800) + "\r\n\r\n", 200},
		{"header section", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 6000) + "\r\n\r\n", 431},
		{"many fields", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-F: 1\r\n", 800) + "\r\n", 431},
		{"request line", "GET /" + strings.Repeat("a", 6000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			c := dial(t, addr)
			c.write(tc.req)
			resp, _ := c.response("GET")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 200 {
				c.expectClosed(2 * time.Second)
				if calls.Load() != before {
					t.Fatalf("handler called for a refused head")
				}
			}
		})
	}
}

// TestShutdown guards graceful shutdown: idle connections close at once,
// a request in flight is answered (with Connection: close) before
// Shutdown returns, and no new connection is served.
func TestShutdown(t *testing.T) {
	inHandler := make(chan struct{})
	release := make(chan struct{})
	stop := make(chan struct{})
	srv, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inHandler)
			waitFor(release, stop)
		}
		io.WriteString(w, "done")
	}))
	closeOnCleanup(t, stop)
	idle := dial(t, addr)
	idle.write("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.response("GET")
	busy := dial(t, addr)
	busy.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-inHandler

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- srv.Shutdown(context.Background()) }()
	idle.expectClosed(2 * time.Second)
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(nc, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
		b, _ := io.ReadAll(nc)
		nc.Close()
		if len(b) > 0 {
			t.Fatalf("a connection made during shutdown was served: %q", b)
		}
	}
	close(release)
	resp, body := busy.response("GET")
	if body != "done" || !resp.Close {
		t.Fatalf("in-flight response %q, close %v; want done with Connection: close", body, resp.Close)
	}
	busy.expectClosed(2 * time.Second)
	select {
	case err := <-shutdownDone:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("Shutdown did not return after the last request")
	}
}

// TestShutdownContext guards against Shutdown waiting past its context for
// a handler that does not return.
func TestShutdownContext(t *testing.T) {
	inHandler := make(chan struct{})
	release := make(chan struct{})
	stop := make(chan struct{})
	srv, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		waitFor(release, stop)
	}))
	closeOnCleanup(t, stop)
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-inHandler
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown returned %v, want the context's error", err)
	}
	close(release)
}

// TestHandlerPanic guards against a panicking handler taking down the
// server or leaving its connection in an unknown state.
func TestHandlerPanic(t *testing.T) {
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			panic("boom")
		case "/abort-after-flush":
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "ok")
	}))
	other := dial(t, addr)
	other.write("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	other.response("GET")

	c := dial(t, addr)
	c.write("GET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 500 || !resp.Close {
		t.Fatalf("panic answered %d, close %v; want 500 and a close", resp.StatusCode, resp.Close)
	}
	c.expectClosed(2 * time.Second)

	c = dial(t, addr)
	c.write("GET /abort-after-flush HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatalf("a response cut by a panic ended cleanly")
	}
	c.expectClosed(2 * time.Second)

	// The server goes on serving, on the connection that was open and on
	// new ones.
	other.write("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := other.response("GET"); body != "ok" {
		t.Fatalf("other connection after the panics: %q", body)
	}
	c = dial(t, addr)
	c.write("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := c.response("GET"); body != "ok" {
		t.Fatalf("new connection after the panics: %q", body)
	}
}

// TestMalformedHeadDoesNotStopServer guards against a request head that
// makes the parser fail in a way that takes the server down: an empty
// field name once indexed before the start of a string.
func TestMalformedHeadDoesNotStopServer(t *testing.T) {
	_, addr := startServer(t, echoHandler)
	for _, head := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n: z\r\n\r\n",
		"GET / HTTP/1.1\r\n:\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\t: z\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n: z\r\n\r\n",
	} {
		c := dial(t, addr)
		c.write(head)
		resp, _ := c.response("GET")
		if resp.StatusCode != 400 {
			t.Errorf("%q: status %d, want 400", head, resp.StatusCode)
		}
	}
	c := dial(t, addr)
	c.write("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d after malformed heads", resp.StatusCode)
	}
}

// TestReject guards Server.Reject: it answers a refused head whose request
// line parsed, with the status of the refusal, the handler never sees it,
// and the connection closes so nothing after it is read as a request.
func TestReject(t *testing.T) {
	type rejection struct {
		status         int
		method, target string
	}
	var mu sync.Mutex
	var rejections []rejection
	var handled atomic.Int32
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handled.Add(1) }),
		func(s *Server) {
			s.Reject = func(w http.ResponseWriter, r *http.Request, status int, reason string) {
				mu.Lock()
				rejections = append(rejections, rejection{status, r.Method, r.RequestURI})
				mu.Unlock()
				w.Header().Set("X-Rejected", reason)
				w.WriteHeader(status)
				io.WriteString(w, "rejected")
			}
		})
	inner := "GET /inner HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		name, req string
		status    int
		rejected  bool
	}{
		{"both lengths", "POST /both HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"TE on HTTP/1.0", "POST /te10 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"unknown TE", "POST /gzip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, true},
		{"no Host", "GET /nohost HTTP/1.1\r\n\r\n", 400, true},
		{"Expect", "POST /expect HTTP/1.1\r\nHost: x\r\nExpect: x\r\nContent-Length: 0\r\n\r\n", 417, true},
		{"obs-fold", "GET /fold HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400, true},
		{"bad target", "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
		{"bare LF", "GET /lf HTTP/1.1\nHost: x\r\n\r\n", 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			rejections = nil
			mu.Unlock()
			c := dial(t, addr)
			c.write(tc.req + inner)
			resp, body := c.response("GET")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			c.expectClosed(2 * time.Second)
			mu.Lock()
			got := rejections
			mu.Unlock()
			target := strings.Fields(tc.req)[1]
			if tc.rejected {
				if len(got) != 1 || got[0].status != tc.status || got[0].target != target || body != "rejected" ||
					resp.Header.Get("X-Rejected") == "" {
					t.Fatalf("Reject calls %+v, body %q; want one with status %d for %q", got, body, tc.status, target)
				}
			} else if len(got) != 0 {
				t.Fatalf("Reject called for a head whose request line did not parse: %+v", got)
			}
		})
	}
	if n := handled.Load(); n != 0 {
		t.Fatalf("the handler saw %d refused or smuggled requests", n)
	}
}

// TestBadHostRefused guards against passing on a Host that is not a host
// (Host header injection into links, caches and routing); net/http
// refuses these with 400 too.
func TestBadHostRefused(t *testing.T) {
	var seen recorder
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen.add(r.Host) }))
	for _, host := range []string{"a b", "a/b", "a@b", "a\"b", "<x>", "a\\b", "\x80"} {
		c := dial(t, addr)
		c.write("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
		if resp, _ := c.response("GET"); resp.StatusCode != 400 {
			t.Errorf("Host %q: status %d, want 400", host, resp.StatusCode)
		}
	}
	if got := seen.list(); len(got) > 0 {
		t.Errorf("the handler saw the hosts %q", got)
	}
}

// flakyListener fails its first Accept with the error of a process out of
// file descriptors.
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestServeRetriesTemporaryAcceptErrors guards against a listener that
// stops for good when the process briefly runs out of file descriptors,
// which a client can cause by opening many connections.
func TestServeRetriesTemporaryAcceptErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: echoHandler}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(&flakyListener{Listener: ln}) }()
	defer func() {
		srv.Close()
		ln.Close()
		<-done
		waitNoConns(t, srv)
	}()
	c := dial(t, ln.Addr().String())
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-done:
		done <- err
		t.Fatalf("Serve returned %v on a temporary accept error", err)
	case <-time.After(200 * time.Millisecond):
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("request after a temporary accept error: %v", err)
	}
}

// TestHijackAfterWriteHeader guards the upgrade pattern that sets the
// 101 status with WriteHeader and then takes the connection over: the
// status written must reach the client before the handler's own bytes, as
// net/http flushes it on Hijack.
func TestHijackAfterWriteHeader(t *testing.T) {
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "x-test")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusSwitchingProtocols)
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer nc.Close()
		brw.WriteString("upgraded")
		brw.Flush()
	}))
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n")
	all, _ := io.ReadAll(c.br)
	if !strings.HasPrefix(string(all), "HTTP/1.1 101 Switching Protocols\r\n") || !strings.HasSuffix(string(all), "\r\n\r\nupgraded") {
		t.Fatalf("client read %q, want the 101 head, then upgraded", all)
	}
}

// TestIdleTimeoutEndsWithFirstByte guards against cutting a request that
// began just before the idle bound: IdleTimeout bounds the wait for a
// request's first byte, not the reading of its head (with no
// ReadHeaderTimeout, net/http bounds that by nothing).
func TestIdleTimeoutEndsWithFirstByte(t *testing.T) {
	_, addr := startServer(t, echoHandler, func(s *Server) { s.IdleTimeout = 300 * time.Millisecond })
	c := dial(t, addr)
	c.write("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
	c.response("GET")
	time.Sleep(200 * time.Millisecond)
	c.write("GET /2 HTTP/1.1\r\n")
	time.Sleep(250 * time.Millisecond) // past the idle bound, but the request began before it
	if _, err := io.WriteString(c.Conn, "Host: x\r\n\r\n"); err != nil {
		t.Fatalf("the server closed a connection whose request had begun: %v", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("the server closed a connection whose request had begun: %v", err)
	}
	if body, _ := io.ReadAll(resp.Body); string(body) != "GET /2 " {
		t.Fatalf("second request answered %q", body)
	}
}
