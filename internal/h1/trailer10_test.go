package h1

import (
	"net/http"
	"testing"
)

// TestTrailerNotPromotedForHTTP10AndHEAD: where no trailer can be sent (an
// HTTP/1.0 client, a HEAD request), a trailer the handler sets after
// WriteHeader is dropped, never sent as a field of the head: the head is
// the header as WriteHeader found it.
func TestTrailerNotPromotedForHTTP10AndHEAD(t *testing.T) {
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		w.Write([]byte("short body"))
		w.Header().Set("X-Checksum", "from-the-trailer")
	}))
	for _, req := range []string{
		"GET / HTTP/1.0\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c := dial(t, addr)
		c.write(req)
		lines := c.head()
		t.Logf("%q: %q", req, lines)
		if hasLine(lines[1:], "X-Checksum: from-the-trailer") {
			t.Errorf("%q: the trailer set after WriteHeader is in the head: %q", req, lines)
		}
		c.Close()
	}
}
