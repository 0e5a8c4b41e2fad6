package h1

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestPipelinedHeadAfterEmptyLinesHasTimeout: a pipelined head that starts
// with empty lines (which are skipped, RFC 9112 section 2.2) and then
// arrives slowly, or never, is bounded by ReadHeaderTimeout like any other:
// the client cannot hold the connection open, and Shutdown finishes.
func TestPipelinedHeadAfterEmptyLinesHasTimeout(t *testing.T) {
	srv, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}), func(s *Server) {
		s.ReadHeaderTimeout = 300 * time.Millisecond
		s.IdleTimeout = 300 * time.Millisecond
	})
	c := dial(t, addr)
	// One request, then CRLF CRLF and the start of a second head.
	c.write("GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + "\r\n\r\nGET /b HTTP/1.1\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}

	// Shutdown must not wait past ReadHeaderTimeout for this head.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := srv.Shutdown(ctx)
	if err != nil {
		t.Errorf("Shutdown: %v after %v: a half-sent pipelined head after CRLF CRLF is read with no deadline (ReadHeaderTimeout 300ms)", err, time.Since(start).Round(time.Millisecond))
	}
	c.expectClosed(time.Second)
}
