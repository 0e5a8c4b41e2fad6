package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Expect: 100-continue goes through net/http's Transport, which holdfast
// never lets pool connections (so that every pooled connection is checked
// for being in step at reuse). Learned idle limits and a server's keep-alive
// hints must not turn into failures counted against healthy servers.
func TestRetiredConnectionIsNotAServerFailure(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Keep-Alive", "timeout=1")
		io.WriteString(w, "ok")
	})
	a := httptest.NewServer(h)
	defer a.Close()
	b := httptest.NewServer(h)
	defer b.Close()
	e := newEnv(t, poolConfig("balance: round_robin", a.URL, b.URL))
	post := func() result {
		req, _ := http.NewRequest("POST", e.URL+"/", strings.NewReader("payload"))
		req.Header.Set("Expect", "100-continue")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return result{err: err}
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return result{status: resp.StatusCode, header: resp.Header, body: string(body)}
	}
	for i := 0; i < 2; i++ {
		wantStatus(t, post(), 200)
	}
	time.Sleep(900 * time.Millisecond) // past the learned limit (750ms), within the server's real timeout
	for i := 0; i < 2; i++ {
		r := post()
		t.Logf("status %d %s", r.status, r.proxyCause())
	}
	for _, l := range e.accessLines() {
		t.Logf("%v %v", l["detail"], l["ledger"])
	}
	if n := e.events.ejected(a.URL) + e.events.ejected(b.URL); n > 0 {
		t.Errorf("%d healthy servers ejected because holdfast retired its own stale pooled connection", n)
	}
}
