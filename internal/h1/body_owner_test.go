package h1

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBodyReadAfterHandlerKeepsFraming: a handler may hand the request
// body to a goroutine that outlives it (net/http's Transport writes a body
// on a goroutine of its own, and an upstream may answer, 413 or 401, before
// it has read it all). Once the handler returns, the server takes the body
// back: that goroutine's read fails, no two readers share the socket, and
// no byte of the next request is ever read as body. With the body unread,
// the server closes the connection rather than guess where the next
// request starts.
func TestBodyReadAfterHandlerKeepsFraming(t *testing.T) {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/early" {
			w.Write([]byte("ok " + r.URL.Path))
			return
		}
		// The Transport's writer goroutine: copies the body to the
		// upstream; the upstream answers before it has all of it.
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(io.Discard, r.Body)
		}()
		time.Sleep(100 * time.Millisecond) // the copy now waits in Read
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		r.Body.Close() // as ReverseProxy does when it returns
	}))
	c := dial(t, addr)
	c.write("POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
	resp, _ := c.response("POST")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond)
	c.write("56789" + "GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.Close {
		// The body was taken back unread: the server closes rather than
		// guess where the next request starts, and reads none of it.
		c.expectClosed(3 * time.Second)
		return
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp2, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("the request after the body got no answer: %v (its bytes were read as body)", err)
	}
	body, _ := io.ReadAll(resp2.Body)
	if resp2.StatusCode != 200 || string(body) != "ok /second" {
		t.Fatalf("the request after the body: %d %q, want 200 \"ok /second\" (it was parsed from its middle)", resp2.StatusCode, body)
	}
}

// TestHijackWhileBodyReadLosesNoBytes: a handler (net/http's Transport,
// for an upgrade with a body) still reads the request body when the
// handler hijacks the connection. The hijack takes the body back from that
// reader (its read fails), and the server starts no read of its own on the
// hijacked connection: every byte the client sent after the head is either
// body the reader got before the hijack or the hijacker's, in order, and
// none is taken by the server.
func TestHijackWhileBodyReadLosesNoBytes(t *testing.T) {
	got := make(chan string, 1)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var bodyGot []byte
		bodyDone := make(chan struct{})
		wg.Add(1)
		go func() { // the Transport's writer
			defer wg.Done()
			defer close(bodyDone)
			bodyGot, _ = io.ReadAll(r.Body)
		}()
		time.Sleep(50 * time.Millisecond)
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			got <- "hijack: " + err.Error()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer nc.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
			brw.Flush()
			<-bodyDone
			nc.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(brw).ReadString('\n')
			if err != nil {
				got <- "tunnel read: " + err.Error()
				return
			}
			got <- string(bodyGot) + line
		}()
	}))
	c := dial(t, addr)
	c.write("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x\r\nContent-Length: 5\r\n\r\n")
	lines := c.head()
	if !strings.Contains(lines[0], "101") {
		t.Fatalf("got %q", lines)
	}
	c.write("hello")
	time.Sleep(100 * time.Millisecond)
	c.write("tunnel data\n")
	select {
	case s := <-got:
		if s != "hellotunnel data\n" {
			t.Errorf("body reader and hijacker together got %q, want every byte once, in order: \"hellotunnel data\\n\"", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hijacker read nothing")
	}
}
