package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestAdoptHeader: a handler can hand the server a header map it built,
// which is then the response's header (later changes through Header
// included); once the handler has asked for the header, or written it,
// the server refuses the map and answers with its own. Each request on a
// keep-alive connection starts with no header: nothing adopted for one
// shows up in the next.
func TestAdoptHeader(t *testing.T) {
	type result struct{ adopted, afterHeader, afterWrite bool }
	results := make(chan result, 8)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := w.(HeaderAdopter)
		if !ok {
			t.Error("the response writer is not a HeaderAdopter")
			return
		}
		var res result
		switch r.URL.Path {
		case "/adopt":
			res.adopted = a.AdoptHeader(http.Header{"X-Built": {"elsewhere"}, "Content-Type": {"text/plain"}})
			w.Header().Set("X-Later", "through Header")
		case "/asked":
			w.Header().Set("X-Own", "1")
			res.afterHeader = a.AdoptHeader(http.Header{"X-Built": {"elsewhere"}})
		case "/written":
			w.WriteHeader(http.StatusAccepted)
			res.afterWrite = a.AdoptHeader(http.Header{"X-Built": {"elsewhere"}})
		}
		results <- res
		w.Write([]byte("ok"))
	})
	_, addr := startServer(t, h)
	c := dial(t, addr)

	c.write("GET /adopt HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := c.response("GET")
	if res := <-results; !res.adopted {
		t.Fatal("AdoptHeader refused a map before the header was asked for")
	}
	if body != "ok" || resp.Header.Get("X-Built") != "elsewhere" || resp.Header.Get("X-Later") != "through Header" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("adopted: body %q, header %v", body, resp.Header)
	}

	c.write("GET /asked HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ = c.response("GET")
	if res := <-results; res.afterHeader {
		t.Error("AdoptHeader took a map after Header was called")
	}
	if resp.Header.Get("X-Own") != "1" || resp.Header.Get("X-Built") != "" || resp.Header.Get("X-Later") != "" {
		t.Errorf("after Header: header %v, want X-Own alone of these", resp.Header)
	}

	c.write("GET /written HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ = c.response("GET")
	if res := <-results; res.afterWrite {
		t.Error("AdoptHeader took a map after WriteHeader")
	}
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Built") != "" {
		t.Errorf("after WriteHeader: status %d, header %v", resp.StatusCode, resp.Header)
	}

	// A plain request after them: none of their fields.
	c.write("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ = c.response("GET")
	<-results
	for k := range resp.Header {
		if strings.HasPrefix(k, "X-") {
			t.Errorf("plain request: field %s from an earlier response", k)
		}
	}
}

// TestWriteFieldLine: a header line comes out the same whether it fits the
// buffer's free room (one write) or not (written in parts), and
// writeField still turns a CR, LF or NUL in a value into a space.
func TestWriteFieldLine(t *testing.T) {
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 16)
	WriteFieldLine(bw, "A", "1")                          // fits
	WriteFieldLine(bw, "X-Long", strings.Repeat("v", 40)) // does not
	WriteFieldLine(bw, "B", "2")
	writeField(bw, "X-Split", "a\r\nInjected: 1\x00")
	bw.Flush()
	want := "A: 1\r\nX-Long: " + strings.Repeat("v", 40) + "\r\nB: 2\r\nX-Split: a  Injected: 1 \r\n"
	if out.String() != want {
		t.Errorf("wrote %q, want %q", out.String(), want)
	}
}
