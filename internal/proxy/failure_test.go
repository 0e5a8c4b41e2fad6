package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

func TestRefusedIsRetriedAndEjected(t *testing.T) {
	good := testutil.Backend(t, nil)
	dead := "http://" + testutil.DeadAddr(t)
	e := newEnv(t, poolConfig("", dead, good.URL))
	for i := 0; i < 10; i++ {
		for _, m := range []string{"GET", "POST"} {
			r := e.do(m, "/", "x")
			wantStatus(t, r, 200)
		}
	}
	if got := good.Requests.Load(); got != 20 {
		t.Errorf("good backend got %d requests, want 20", got)
	}
	// Refused once, ejected for fail_timeout (10s): no more attempts.
	if got := e.events.attemptsTo(dead); got != 1 {
		t.Errorf("attempts to the dead server = %d, want 1 (ejected after the first refusal)", got)
	}
	if got := e.events.ejected(dead); got != 1 {
		t.Errorf("ejections of the dead server = %d, want 1", got)
	}
}

func TestHangTimesOutAndRetriesGET(t *testing.T) {
	hang := testutil.Hang(t)
	good := testutil.Backend(t, nil)
	e := newEnv(t, poolConfig("timeouts: {read: 200ms}\nbalance: round_robin", "http://"+hang.Addr, good.URL))

	start := time.Now()
	r := e.do("GET", "/", "")
	wantStatus(t, r, 200)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("GET took %v", d)
	}
	if hang.Requests.Load() != 1 || good.Requests.Load() != 1 {
		t.Errorf("hang got %d, good got %d requests; want 1 and 1", hang.Requests.Load(), good.Requests.Load())
	}
}

func TestHangAloneGives504WithinDeadline(t *testing.T) {
	hang := testutil.Hang(t)
	e := newEnv(t, poolConfig("timeouts: {read: 5s}\nretry: {timeout: 300ms}", "http://"+hang.Addr))
	start := time.Now()
	r := e.do("GET", "/", "")
	d := time.Since(start)
	wantStatus(t, r, 504)
	if got := r.proxyCause(); got != "http_response_timeout" {
		t.Errorf("cause = %q, want http_response_timeout", got)
	}
	if d < 250*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("504 after %v, want about the 300ms total deadline", d)
	}
}

func TestResetBeforeResponse(t *testing.T) {
	reset := testutil.ResetAfterRequest(t)
	good := testutil.Backend(t, nil)
	// round_robin starts with the first server: the reset one.
	cfg := func() string {
		return poolConfig("balance: round_robin\npassive: {fail_on: []}", "http://"+reset.Addr, good.URL)
	}

	t.Run("GET is retried", func(t *testing.T) {
		e := newEnv(t, cfg())
		before := reset.Requests.Load()
		wantStatus(t, e.do("GET", "/", ""), 200)
		if reset.Requests.Load()-before != 1 {
			t.Errorf("reset server saw %d requests, want 1", reset.Requests.Load()-before)
		}
	})
	t.Run("POST is not retried", func(t *testing.T) {
		e := newEnv(t, cfg())
		before, goodBefore := reset.Requests.Load(), good.Requests.Load()
		r := e.do("POST", "/", "payload")
		wantStatus(t, r, 502)
		if got := r.proxyCause(); got != "connection_terminated" {
			t.Errorf("cause = %q, want connection_terminated", got)
		}
		if reset.Requests.Load()-before != 1 || good.Requests.Load() != goodBefore {
			t.Errorf("reset saw %d, good saw %d: a POST that may have been processed was sent again",
				reset.Requests.Load()-before, good.Requests.Load()-goodBefore)
		}
	})
	t.Run("POST with Idempotency-Key is retried", func(t *testing.T) {
		e := newEnv(t, cfg())
		goodBefore := good.Requests.Load()
		wantStatus(t, e.do("POST", "/", "payload", "Idempotency-Key", "k1"), 200)
		if good.Requests.Load()-goodBefore != 1 {
			t.Errorf("good saw %d requests, want 1", good.Requests.Load()-goodBefore)
		}
	})
	t.Run("POST on a route with non_idempotent is retried", func(t *testing.T) {
		e := newEnv(t, poolConfig("balance: round_robin\npassive: {fail_on: []}\nretry: {non_idempotent: true}", "http://"+reset.Addr, good.URL))
		wantStatus(t, e.do("POST", "/", "payload"), 200)
	})
}

func TestInvalidUpstreamResponses(t *testing.T) {
	cases := []struct {
		name  string
		fault func(testing.TB) *testutil.Fault
		cause string
	}{
		{"garbage", testutil.Garbage, "http_protocol_error"},
		{"100KiB header", func(t testing.TB) *testutil.Fault { return testutil.BigHeader(t, 100<<10) }, "http_response_header_section_size"},
		{"closed before response", testutil.CloseAfterRequest, "connection_terminated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fault(t)
			e := newEnv(t, poolConfig("", "http://"+f.Addr))
			r := e.do("GET", "/", "")
			wantStatus(t, r, 502)
			if got := r.proxyCause(); got != tc.cause {
				t.Errorf("cause = %q, want %q", got, tc.cause)
			}
			if p := r.problem(t); p.Cause != tc.cause || p.Attempts < 1 {
				t.Errorf("problem = %+v", p)
			}
			// A pool of one is retried on the same server, for GET.
			if got := f.Requests.Load(); got < 1 || got > 3 {
				t.Errorf("server saw %d requests, want 1 to 3", got)
			}
		})
	}
}

func TestUpstream502ThenSuccess(t *testing.T) {
	var n atomic.Int64
	flaky := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			w.WriteHeader(502)
			io.WriteString(w, "upstream's own 502 page")
			return
		}
		io.WriteString(w, "finally")
	}))
	e := newEnv(t, poolConfig("retry: {tries: 3, backoff: 1ms}", flaky.URL))
	r := e.do("GET", "/", "")
	wantStatus(t, r, 200)
	if r.body != "finally" || flaky.Requests.Load() != 3 {
		t.Errorf("body %q after %d requests, want finally after 3", r.body, flaky.Requests.Load())
	}
}

func TestLastUpstreamResponsePassedThrough(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", "upstream")
		w.WriteHeader(503)
		io.WriteString(w, "maintenance page")
	}))
	e := newEnv(t, poolConfig("retry: {tries: 2, backoff: 1ms}\npassive: {fail_on: []}", b.URL))
	r := e.do("GET", "/", "")
	wantStatus(t, r, 503)
	if r.body != "maintenance page" || r.header.Get("X-From") != "upstream" {
		t.Errorf("got body %q header %q: the upstream's response must pass through unchanged", r.body, r.header.Get("X-From"))
	}
	if b.Requests.Load() != 2 {
		t.Errorf("backend saw %d requests, want 2 (tries)", b.Requests.Load())
	}
	if !strings.Contains(r.header.Get("Proxy-Status"), "received-status=503") {
		t.Errorf("Proxy-Status = %q", r.header.Get("Proxy-Status"))
	}
}

func TestKeptResponseWhenLaterAttemptFails(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		io.WriteString(w, "busy")
	}))
	dead := "http://" + testutil.DeadAddr(t)
	e := newEnv(t, poolConfig("balance: round_robin\nretry: {tries: 2}\npassive: {fail_on: []}", b.URL, dead))
	r := e.do("GET", "/", "")
	wantStatus(t, r, 503)
	if r.body != "busy" {
		t.Errorf("body = %q, want the upstream's 503 body rather than a gateway page", r.body)
	}
}

func TestAllDownThenBack(t *testing.T) {
	addr1, addr2 := testutil.FreeAddr(t), testutil.DeadAddr(t) // addr1 comes back
	cfg := fmt.Sprintf(`routes:
  - match: {path_prefix: /}
    upstream: p
upstreams:
  p:
    servers:
      - {url: "http://%s", fail_timeout: 300ms}
      - {url: "http://%s", fail_timeout: 300ms}
    passive: {max_ejected_percent: 50}
`, addr1, addr2)
	e := newEnv(t, cfg)

	r := e.do("GET", "/", "")
	wantStatus(t, r, 502)
	if got := r.proxyCause(); got != "connection_refused" {
		t.Errorf("first request cause = %q, want connection_refused", got)
	}
	// Both are ejected now (refusals are hard failures, not capped).
	r = e.do("GET", "/", "")
	wantStatus(t, r, 503)
	if got := r.proxyCause(); got != "destination_unavailable" {
		t.Errorf("cause = %q, want destination_unavailable", got)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if p := r.problem(t); p.Attempts != 0 {
		t.Errorf("attempts = %d, want 0: all-down must be answered without dialling", p.Attempts)
	}
	if n := e.events.attemptsTo("http://"+addr1) + e.events.attemptsTo("http://"+addr2); n != 2 {
		t.Errorf("attempts = %d, want 2 (one each, then none)", n)
	}

	// One comes back on its port; once its ejection ends it serves.
	back := testutil.BackendAt(t, addr1, nil)
	deadline := time.Now().Add(3 * time.Second)
	for {
		r = e.do("GET", "/", "")
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: last status %d cause %s", r.status, r.proxyCause())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if back.Requests.Load() < 1 {
		t.Error("recovered server got no request")
	}
}

func TestErrorResponsesDoNotLeak(t *testing.T) {
	dead := testutil.DeadAddr(t)
	garbage := testutil.Garbage(t)
	hang := testutil.Hang(t)
	for _, tc := range []struct{ name, url string }{
		{"refused", "http://" + dead},
		{"garbage", "http://" + garbage.Addr},
		{"hang", "http://" + hang.Addr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, poolConfig("timeouts: {read: 100ms}\nretry: {tries: 1}", tc.url))
			for _, accept := range []string{"application/json", "text/html", ""} {
				r := e.do("GET", "/", "", "Accept", accept)
				if r.status < 500 {
					t.Fatalf("status %d", r.status)
				}
				var all strings.Builder
				for k, v := range r.header {
					fmt.Fprintf(&all, "%s: %s\n", k, strings.Join(v, ","))
				}
				all.WriteString(r.body)
				for _, bad := range []string{"127.0.0.1", "dial tcp", "read tcp", "EOF", "connection refused", "i/o timeout", strings.Split(tc.url, ":")[2]} {
					if strings.Contains(all.String(), bad) {
						t.Errorf("Accept %q: client-visible response contains %q:\n%s", accept, bad, all.String())
					}
				}
				if r.header.Get("X-Request-Id") == "" || r.header.Get("Proxy-Status") == "" {
					t.Errorf("missing X-Request-Id or Proxy-Status: %v", r.header)
				}
			}
			// The log has the details.
			if !strings.Contains(e.logBuf.String(), "127.0.0.1") {
				t.Errorf("access log lacks the upstream address: %s", e.logBuf.String())
			}
		})
	}
}

func TestExposeDetails(t *testing.T) {
	dead := testutil.DeadAddr(t)
	e := newEnv(t, "expose_details: true\n"+poolConfig("retry: {tries: 1}", "http://"+dead))
	r := e.do("GET", "/", "")
	wantStatus(t, r, 502)
	if !strings.Contains(r.body, dead) {
		t.Errorf("expose_details on, body lacks the address: %q", r.body)
	}
}

func TestErrorBodyByAccept(t *testing.T) {
	dead := testutil.DeadAddr(t)
	e := newEnv(t, poolConfig("retry: {tries: 1}", "http://"+dead))
	r := e.do("GET", "/", "", "Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(r.body, "<h1>502") {
		t.Errorf("browser got %q: %q", ct, r.body)
	}
	r = e.do("GET", "/", "", "Accept", "application/json")
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("API client got %q", ct)
	}
	p := r.problem(t)
	if p.Status != 502 || p.Cause != "connection_refused" || p.RequestID == "" || p.RequestID != r.header.Get("X-Request-Id") {
		t.Errorf("problem = %+v", p)
	}
	// The client's own request id is kept when sane, replaced when not.
	r = e.do("GET", "/", "", "X-Request-Id", "abc-123")
	if r.header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("X-Request-Id = %q, want abc-123", r.header.Get("X-Request-Id"))
	}
	r = e.do("GET", "/", "", "X-Request-Id", "<script>")
	if r.header.Get("X-Request-Id") == "<script>" {
		t.Error("hostile X-Request-Id echoed")
	}
}

func TestNoRoute404(t *testing.T) {
	good := testutil.Backend(t, nil)
	e := newEnv(t, `routes:
  - match: {host: api.example.com, path_prefix: /v1}
    upstream: p
upstreams:
  p:
    servers:
      - {url: "`+good.URL+`"}
`)
	r := e.do("GET", "/v1", "")
	wantStatus(t, r, 404)
	if r.proxyCause() != "destination_not_found" {
		t.Errorf("cause %q", r.proxyCause())
	}
	if good.Requests.Load() != 0 {
		t.Error("unrouted request reached a backend")
	}
}
