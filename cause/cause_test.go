package cause_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/cause"
)

func TestNames(t *testing.T) {
	t.Parallel()
	seen := map[string]cause.Cause{}
	for _, c := range cause.All() {
		name := c.String()
		if name == "" || name == "unknown" {
			t.Errorf("Cause(%d).String() = %q, want a name", c, name)
		}
		if name != strings.ToLower(name) || strings.ContainsAny(name, " -") {
			t.Errorf("Cause(%d).String() = %q, want lower_snake_case (RFC 9209 style)", c, name)
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("causes %d and %d share the name %q", prev, c, name)
		}
		seen[name] = c
		if got, ok := cause.Parse(name); !ok || got != c {
			t.Errorf("Parse(%q) = %v, %v; want %v, true", name, got, ok, c)
		}
	}
	if len(seen) != len(cause.All()) {
		t.Errorf("%d distinct names for %d causes", len(seen), len(cause.All()))
	}
	for _, bad := range []string{"", "unknown", "nope", "DNS_ERROR"} {
		if got, ok := cause.Parse(bad); ok || got != cause.None {
			t.Errorf("Parse(%q) = %v, %v; want None, false", bad, got, ok)
		}
	}
	if got := cause.None.String(); got != "" {
		t.Errorf("None.String() = %q, want \"\"", got)
	}
	for _, c := range cause.All() {
		if c == cause.None {
			t.Errorf("All() holds None")
		}
	}
}

// TestTable pins every cause's status, safety and timeout flag; the rows
// marked "contract" are the table of docs/causes.md that other tools rely on.
func TestTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c       cause.Cause
		name    string
		status  int
		safety  cause.Safety
		timeout bool
	}{
		{cause.DNSError, "dns_error", 502, cause.NeverSent, false},                                                   // contract
		{cause.DNSTimeout, "dns_timeout", 504, cause.NeverSent, true},                                                // contract
		{cause.DestinationNotFound, "destination_not_found", 404, cause.NoRetry, false},                              //
		{cause.DestinationUnavailable, "destination_unavailable", 503, cause.NotTried, false},                        // contract
		{cause.ConnectionRefused, "connection_refused", 502, cause.NeverSent, false},                                 // contract
		{cause.ConnectionTimeout, "connection_timeout", 504, cause.NeverSent, true},                                  // contract
		{cause.ConnectionTerminated, "connection_terminated", 502, cause.SafeIfUnsent, false},                        // contract
		{cause.ConnectionReadTimeout, "connection_read_timeout", cause.StatusAbort, cause.IdempotentOnly, true},      // contract
		{cause.ConnectionWriteTimeout, "connection_write_timeout", 504, cause.IdempotentOnly, true},                  //
		{cause.ConnectionLimitReached, "connection_limit_reached", 503, cause.NotTried, false},                       // contract
		{cause.TLSProtocolError, "tls_protocol_error", 502, cause.NeverSent, false},                                  // contract
		{cause.TLSCertificateError, "tls_certificate_error", 502, cause.NeverSent, false},                            // contract
		{cause.TLSAlertReceived, "tls_alert_received", 502, cause.NeverSent, false},                                  // contract
		{cause.HTTPRequestError, "http_request_error", 400, cause.NoRetry, false},                                    // contract
		{cause.HTTPRequestDenied, "http_request_denied", 429, cause.NotTried, false},                                 // contract
		{cause.HTTPResponseIncomplete, "http_response_incomplete", cause.StatusAbort, cause.IdempotentOnly, false},   // contract
		{cause.HTTPResponseHeaderSectionSize, "http_response_header_section_size", 502, cause.IdempotentOnly, false}, // contract
		{cause.HTTPResponseTimeout, "http_response_timeout", 504, cause.IdempotentOnly, true},                        // contract
		{cause.HTTPProtocolError, "http_protocol_error", 502, cause.IdempotentOnly, false},                           // contract
		{cause.HTTPUpgradeFailed, "http_upgrade_failed", 502, cause.IdempotentOnly, false},                           //
		{cause.ProxyInternalError, "proxy_internal_error", 500, cause.NoRetry, false},                                //
		{cause.UpstreamStatus, "upstream_status", 502, cause.IdempotentOnly, false},                                  // contract
		{cause.ClientClosed, "client_closed", 499, cause.NoRetry, false},                                             // contract
		{cause.ClientTimeout, "client_timeout", 408, cause.NoRetry, false},
	}
	if len(tests) != len(cause.All()) {
		t.Errorf("table has %d rows, cause.All() %d causes: add the new cause here", len(tests), len(cause.All()))
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.name {
			t.Errorf("Cause(%d).String() = %q, want %q", tt.c, got, tt.name)
		}
		if got := tt.c.Status(); got != tt.status {
			t.Errorf("%v.Status() = %d, want %d", tt.c, got, tt.status)
		}
		if got := tt.c.Safety(); got != tt.safety {
			t.Errorf("%v.Safety() = %v, want %v", tt.c, got, tt.safety)
		}
		if got := tt.c.IsTimeout(); got != tt.timeout {
			t.Errorf("%v.IsTimeout() = %v, want %v", tt.c, got, tt.timeout)
		}
	}
	if got := cause.StatusClientClosed; got != 499 {
		t.Errorf("StatusClientClosed = %d, want 499", got)
	}
}

func TestUnknownCause(t *testing.T) {
	t.Parallel()
	c := cause.Cause(250)
	if c.String() != "unknown" || c.Status() != http.StatusBadGateway || c.Safety() != cause.NoRetry || c.RetryableFor(true, false) {
		t.Errorf("Cause(250): name %q, status %d, safety %v, retryable %v; want unknown, 502, no_retry, false",
			c.String(), c.Status(), c.Safety(), c.RetryableFor(true, false))
	}
	if got := c.Explain("x"); !strings.Contains(got, "x") {
		t.Errorf("Cause(250).Explain(%q) = %q, want the address in it", "x", got)
	}
}

func TestSafetyString(t *testing.T) {
	t.Parallel()
	want := map[cause.Safety]string{
		cause.NeverSent: "never_sent", cause.SafeIfUnsent: "safe_if_unsent", cause.IdempotentOnly: "idempotent_only",
		cause.NotTried: "not_tried", cause.NoRetry: "no_retry", cause.Safety(0): "unknown", cause.Safety(99): "unknown",
	}
	for s, w := range want {
		if got := s.String(); got != w {
			t.Errorf("Safety(%d).String() = %q, want %q", s, got, w)
		}
	}
}

func TestRetryableFor(t *testing.T) {
	t.Parallel()
	// idempotent/written: false/false, false/true, true/false, true/true
	tests := []struct {
		c    cause.Cause
		want [4]bool
	}{
		// Never sent: any method, unless bytes were in fact written (a TLS
		// alert can follow a request the upstream read): then the
		// evidence wins, and only idempotent requests are retried.
		{cause.DNSError, [4]bool{true, false, true, true}},
		{cause.DNSTimeout, [4]bool{true, false, true, true}},
		{cause.ConnectionRefused, [4]bool{true, false, true, true}},
		{cause.ConnectionTimeout, [4]bool{true, false, true, true}},
		{cause.TLSCertificateError, [4]bool{true, false, true, true}},
		{cause.TLSProtocolError, [4]bool{true, false, true, true}},
		{cause.TLSAlertReceived, [4]bool{true, false, true, true}},
		// The keep-alive race: retried only if nothing was written, or if
		// the request may be repeated.
		{cause.ConnectionTerminated, [4]bool{true, false, true, true}},
		{cause.HTTPResponseTimeout, [4]bool{false, false, true, true}},
		{cause.ConnectionReadTimeout, [4]bool{false, false, true, true}},
		{cause.ConnectionWriteTimeout, [4]bool{false, false, true, true}},
		{cause.HTTPResponseIncomplete, [4]bool{false, false, true, true}},
		{cause.HTTPProtocolError, [4]bool{false, false, true, true}},
		{cause.HTTPResponseHeaderSectionSize, [4]bool{false, false, true, true}},
		{cause.UpstreamStatus, [4]bool{false, false, true, true}},
		{cause.DestinationUnavailable, [4]bool{true, true, true, true}},
		{cause.ConnectionLimitReached, [4]bool{true, true, true, true}},
		{cause.HTTPRequestDenied, [4]bool{true, true, true, true}},
		{cause.HTTPRequestError, [4]bool{false, false, false, false}},
		{cause.ClientClosed, [4]bool{false, false, false, false}},
		{cause.ClientTimeout, [4]bool{false, false, false, false}},
		{cause.ProxyInternalError, [4]bool{false, false, false, false}},
		{cause.DestinationNotFound, [4]bool{false, false, false, false}},
		{cause.None, [4]bool{false, false, false, false}},
	}
	for _, tt := range tests {
		i := 0
		for _, idem := range []bool{false, true} {
			for _, written := range []bool{false, true} {
				if got := tt.c.RetryableFor(idem, written); got != tt.want[i] {
					t.Errorf("%v.RetryableFor(idempotent=%v, written=%v) = %v, want %v", tt.c, idem, written, got, tt.want[i])
				}
				i++
			}
		}
	}

	// The rule: a POST after connection_terminated is retried only
	// when no byte was written; after dns_error (which writes nothing),
	// always; after a TLS alert that struck once the request was written,
	// never.
	post := cause.IdempotentMethod(http.MethodPost)
	if cause.ConnectionTerminated.RetryableFor(post, true) {
		t.Errorf("POST after connection_terminated with a byte written: retryable, want not")
	}
	if !cause.ConnectionTerminated.RetryableFor(post, false) {
		t.Errorf("POST after connection_terminated with nothing written: not retryable, want retryable")
	}
	if !cause.DNSError.RetryableFor(post, false) {
		t.Errorf("POST after dns_error: not retryable, want retryable")
	}
	if cause.TLSAlertReceived.RetryableFor(post, true) {
		t.Errorf("POST after a TLS alert with the request written: retryable, want not")
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	for _, c := range append(cause.All(), cause.None) {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatalf("%v.MarshalText() error: %v", c, err)
		}
		var back cause.Cause = cause.ProxyInternalError
		if err := back.UnmarshalText(b); err != nil || back != c {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, back, err, c)
		}
	}
	var c cause.Cause
	if err := c.UnmarshalText([]byte("not_a_cause")); err == nil {
		t.Errorf("UnmarshalText(not_a_cause) = nil error, want one")
	}

	// In JSON (the access log) a cause is its name, and so is a phase.
	b, err := json.Marshal(struct {
		Cause cause.Cause `json:"cause"`
		Phase cause.Phase `json:"phase"`
	}{cause.ConnectionRefused, cause.PhaseConnect})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"cause":"connection_refused","phase":"connect"}`; got != want {
		t.Errorf("json.Marshal = %s, want %s", got, want)
	}
	var back struct{ Cause cause.Cause }
	if err := json.Unmarshal([]byte(`{"Cause":"dns_timeout"}`), &back); err != nil || back.Cause != cause.DNSTimeout {
		t.Errorf("json.Unmarshal dns_timeout = %v, %v; want dns_timeout", back.Cause, err)
	}
}

func TestPhaseString(t *testing.T) {
	t.Parallel()
	want := []string{"none", "resolve", "connect", "tls", "write", "wait", "read", "done"}
	for i, w := range want {
		if got := cause.Phase(i).String(); got != w {
			t.Errorf("Phase(%d).String() = %q, want %q", i, got, w)
		}
	}
	if got := cause.Phase(99).String(); got != "unknown" {
		t.Errorf("Phase(99).String() = %q, want unknown", got)
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	const addr = "10.0.0.7:8080"
	for _, c := range cause.All() {
		explain, summary := c.Explain(addr), c.Summary()
		if !strings.Contains(explain, addr) {
			t.Errorf("%v.Explain(%q) = %q, want the address in it", c, addr, explain)
		}
		if strings.Contains(explain, "%!") {
			t.Errorf("%v.Explain(%q) = %q: bad format", c, addr, explain)
		}
		if summary == "" || strings.Contains(summary, addr) || strings.Contains(summary, "%") {
			t.Errorf("%v.Summary() = %q, want a line without an address", c, summary)
		}
		if got := c.Explain(""); got != summary {
			t.Errorf("%v.Explain(\"\") = %q, want the summary %q", c, got, summary)
		}
	}
	if got, want := cause.ConnectionRefused.Explain(addr), "the upstream refused the connection: nothing listens on 10.0.0.7:8080"; got != want {
		t.Errorf("ConnectionRefused.Explain = %q, want %q (the example in docs/causes.md)", got, want)
	}
}

func TestIdempotent(t *testing.T) {
	t.Parallel()
	for _, m := range []string{"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"} {
		if !cause.IdempotentMethod(m) {
			t.Errorf("IdempotentMethod(%q) = false, want true", m)
		}
	}
	for _, m := range []string{"POST", "PATCH", "CONNECT", "get", "", "PROPFIND"} {
		if cause.IdempotentMethod(m) {
			t.Errorf("IdempotentMethod(%q) = true, want false", m)
		}
	}
	tests := []struct {
		method, header, value string
		want                  bool
	}{
		{"GET", "", "", true},
		{"POST", "", "", false},
		{"PATCH", "", "", false},
		{"POST", "Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324", true},
		{"PATCH", "Idempotency-Key", "k", true},
		{"POST", "X-Idempotency-Key", "k", true},
		{"POST", "Idempotency-Key", "", false},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, "http://example.test/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.header != "" {
			req.Header.Set(tt.header, tt.value)
		}
		if got := cause.Idempotent(req); got != tt.want {
			t.Errorf("Idempotent(%s with %s: %q) = %v, want %v", tt.method, tt.header, tt.value, got, tt.want)
		}
	}
}
