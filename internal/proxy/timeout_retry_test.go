package proxy

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestTimedOutRequestNotSentBackToSameServer: a request that timed out
// waiting for a response is not sent to that server again by default (a
// timeout says the server is struggling); another server is still tried;
// retry.same_server_on_timeout restores the old behaviour.
func TestTimedOutRequestNotSentBackToSameServer(t *testing.T) {
	t.Run("one server", func(t *testing.T) {
		hang := testutil.Hang(t)
		e := newEnv(t, poolConfig("timeouts: {read: 200ms}", "http://"+hang.Addr))
		start := time.Now()
		r := e.do("GET", "/", "")
		took := time.Since(start)
		wantStatus(t, r, 504)
		if n := hang.Requests.Load(); n != 1 {
			t.Errorf("the hung server got the request %d times, want 1", n)
		}
		if took > 2*time.Second {
			t.Errorf("took %v, want about one read timeout", took)
		}
		if l := e.accessLines()[0]; l["cause"] != "http_response_timeout" || l["retry_skipped"] != "timeout_same_server" {
			t.Errorf("log cause %v, retry_skipped %v", l["cause"], l["retry_skipped"])
		}
	})
	t.Run("another server is tried", func(t *testing.T) {
		hang := testutil.Hang(t)
		good := testutil.Backend(t, nil)
		e := newEnv(t, poolConfig("timeouts: {read: 200ms}\nbalance: round_robin\npassive: {fail_on: []}", "http://"+hang.Addr, good.URL))
		for i := 0; i < 2; i++ { // one of the two starts at the hung server
			wantStatus(t, e.do("GET", "/", ""), 200)
		}
		if n := hang.Requests.Load(); n != 1 {
			t.Errorf("the hung server got %d requests, want 1", n)
		}
	})
	t.Run("same_server_on_timeout", func(t *testing.T) {
		hang := testutil.Hang(t)
		e := newEnv(t, poolConfig("timeouts: {read: 200ms}\nretry: {same_server_on_timeout: true}", "http://"+hang.Addr))
		wantStatus(t, e.do("GET", "/", ""), 504)
		if n := hang.Requests.Load(); n != 3 {
			t.Errorf("the hung server got the request %d times, want 3 (tries)", n)
		}
	})
}

// TestRetryTimeoutSparesStreamedUploads: retry.timeout bounds the retries;
// a body too large to replay is never retried, so an upload that takes
// longer than retry.timeout is not cut by it (the send and read timeouts
// still bound each wait).
func TestRetryTimeoutSparesStreamedUploads(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}))
	e := newEnv(t, poolConfig("retry: {timeout: 300ms, body_buffer: 1KiB}", b.URL))
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 8; i++ {
			pw.Write(make([]byte, 512))
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", e.URL+"/", pr)
	req.ContentLength = 4096
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "4096" {
		t.Errorf("a 4KiB upload over 800ms with retry.timeout 300ms: %d %q", resp.StatusCode, body)
	}
}
