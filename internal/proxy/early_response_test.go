package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An upstream that refuses a large body without reading it (413, 401, 403):
// Go's server, nginx and most frameworks answer and close.
func TestEarlyUpstreamResponsePassedThrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(413)
		io.WriteString(w, "too big")
	}))
	defer up.Close()
	for _, size := range []int{900 << 10, 4 << 20} {
		e := newEnv(t, poolConfig("", up.URL))
		r := e.do("PUT", "/", strings.Repeat("x", size))
		t.Logf("body %d: status %d cause %q", size, r.status, r.proxyCause())
		for _, l := range e.accessLines() {
			t.Logf("%v", l["ledger"])
		}
		if r.status != 413 {
			t.Errorf("body of %d bytes: client got %d (%s), the upstream answered 413", size, r.status, r.proxyCause())
		}
	}
}
