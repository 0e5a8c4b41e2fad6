package proxy

import (
	"net/http/httptest"
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
)

func TestAccessLogLedger(t *testing.T) {
	reset := testutil.ResetAfterRequest(t)
	good := testutil.Backend(t, nil)
	e := newEnv(t, poolConfig("balance: round_robin\npassive: {fail_on: []}", "http://"+reset.Addr, good.URL))
	wantStatus(t, e.do("GET", "/a", "", "X-Request-Id", "req-1"), 200) // reset, then good
	wantStatus(t, e.do("GET", "/b", "", "X-Request-Id", "req-2"), 200) // good again (round robin), reused

	lines := e.accessLines()
	if len(lines) != 2 {
		t.Fatalf("%d access log lines, want 2", len(lines))
	}
	first := lines[0]
	for k, want := range map[string]any{"request_id": "req-1", "method": "GET", "path": "/a", "status": 200.0, "attempts": 2.0, "upstream": "p", "route": "*/"} {
		if first[k] != want {
			t.Errorf("%s = %v, want %v", k, first[k], want)
		}
	}
	ledger, _ := first["ledger"].([]any)
	if len(ledger) != 2 {
		t.Fatalf("ledger = %v", first["ledger"])
	}
	try1, try2 := ledger[0].(map[string]any), ledger[1].(map[string]any)
	if try1["server"] != "http://"+reset.Addr || try1["cause"] != "connection_terminated" || try1["phase"] != "wait" || try1["written"] != true || try1["reused"] != false {
		t.Errorf("first try = %v", try1)
	}
	if try2["server"] != good.URL || try2["status"] != 200.0 || try2["phase"] != "read" {
		t.Errorf("second try = %v", try2)
	}
	if _, ok := first["cause"]; ok {
		t.Errorf("a request that succeeded has a cause: %v", first["cause"])
	}
	second := lines[1]["ledger"].([]any)[0].(map[string]any)
	if lines[1]["request_id"] != "req-2" {
		t.Errorf("request_id %v", lines[1]["request_id"])
	}
	if second["server"] == good.URL && (second["reused"] != true || second["idle_ms"] == nil) {
		t.Errorf("second request's try should record a reused connection and its idle time: %v", second)
	}
}

// TestAccessLogFields: what operators grep for is on the line, and the
// bytes holdfast writes itself (its error pages) are counted.
func TestAccessLogFields(t *testing.T) {
	e := newEnv(t, poolConfig("", "http://"+testutil.DeadAddr(t)))
	r := e.do("GET", "/x?a=1&b=two", "", "User-Agent", "probe/1.0", "Referer", "https://example.com/from", "Accept", "application/json")
	wantStatus(t, r, 502)
	l := e.accessLines()[0]
	for k, want := range map[string]any{"path": "/x", "query": "a=1&b=two", "user_agent": "probe/1.0",
		"referer": "https://example.com/from", "proto": "HTTP/1.1", "tls": "", "bytes_out": float64(len(r.body))} {
		if l[k] != want {
			t.Errorf("%s = %v, want %v", k, l[k], want)
		}
	}
	if len(r.body) < 100 {
		t.Errorf("error page of %d bytes", len(r.body))
	}

	srv := httptest.NewUnstartedServer(e.h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	lines := e.accessLines()
	if l := lines[len(lines)-1]; l["tls"] != "TLS 1.3" || l["proto"] != "HTTP/2.0" {
		t.Errorf("over TLS: tls = %v, proto = %v", l["tls"], l["proto"])
	}
}
