package h1

import (
	"net/http"
	"testing"
	"time"
)

// TestWriteDeadlineEndsWithItsResponse: a write deadline a handler sets
// (http.ResponseController.SetWriteDeadline; the proxy's
// client.send_timeout sets one per write) is lifted once its response is
// done, as net/http lifts it, so it cannot cut the next request's answer or
// its 100 Continue.
func TestWriteDeadlineEndsWithItsResponse(t *testing.T) {
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		}
		w.Write([]byte("ok " + r.URL.Path))
	}))
	c := dial(t, addr)
	c.write("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok /first" {
		t.Fatalf("first: %d %q", resp.StatusCode, body)
	}
	time.Sleep(300 * time.Millisecond) // the first request's deadline passes
	c.write("GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("the second request got no answer (%v): the first one's write deadline cut it", err)
	}
	resp.Body.Close()
}
