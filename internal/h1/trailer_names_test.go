package h1

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestFramingTrailersDropped: a trailer named like a field that frames,
// routes or authorises the message (Content-Length, Transfer-Encoding,
// Host, ...) is never written, whether announced in the Trailer field or
// set with http.TrailerPrefix; ordinary trailers are.
func TestFramingTrailersDropped(t *testing.T) {
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum, Content-Length")
		w.WriteHeader(200)
		w.Write([]byte(strings.Repeat("b", 3000)))
		w.Header().Set("X-Sum", "abc")
		w.Header().Set("Content-Length", "5")
		w.Header().Set(http.TrailerPrefix+"Transfer-Encoding", "chunked")
		w.Header().Set(http.TrailerPrefix+"Host", "evil.example")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}))
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ := c.response("GET")
	io.Copy(io.Discard, resp.Body)
	if resp.Trailer.Get("X-Sum") != "abc" || resp.Trailer.Get("X-Late") != "late" {
		t.Errorf("ordinary trailers missing: %v", resp.Trailer)
	}
	for _, k := range []string{"Content-Length", "Transfer-Encoding", "Host"} {
		if v, ok := resp.Trailer[k]; ok && len(v) > 0 {
			t.Errorf("trailer %s: %q written", k, v)
		}
	}
}
