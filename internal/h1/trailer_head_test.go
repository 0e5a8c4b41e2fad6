package h1

import (
	"net/http"
	"testing"
)

// TestTrailerSetAfterWriteHeaderStaysATrailer: a response that announces
// trailers has its head taken at WriteHeader, as net/http does, so that a
// trailer set after a short body (the way handlers set trailers) is sent
// as a trailer only, never promoted to a header field of the head; nor is
// anything else set after WriteHeader.
func TestTrailerSetAfterWriteHeaderStaysATrailer(t *testing.T) {
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		w.Write([]byte("short body"))
		w.Header().Set("X-Checksum", "from-the-trailer")
		w.Header().Set("X-After", "set after WriteHeader")
	}))
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	lines := c.head()
	for _, l := range lines {
		if hasLine([]string{l}, "X-Checksum: from-the-trailer") || hasLine([]string{l}, "X-After: set after WriteHeader") {
			t.Errorf("head holds %q, set after WriteHeader; head: %q", l, lines)
		}
	}
}
