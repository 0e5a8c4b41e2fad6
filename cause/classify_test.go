package cause_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/testutil"
)

// Timeouts short enough that each test ends well under two seconds.
const (
	dialTimeout     = time.Second            // where a dial is not meant to time out
	shortDial       = 300 * time.Millisecond // where it is
	responseTimeout = 200 * time.Millisecond
	attemptTimeout  = 1500 * time.Millisecond // the backstop for every attempt
)

// attempt is what a proxy knows about one try that ended: the error, how far
// it got, and whether any request byte was written.
type attempt struct {
	err     error
	phase   cause.Phase
	written bool
	status  int // the response status, when there was a response
}

// tracker follows an attempt's phase through httptrace hooks, which may run
// on other goroutines (the dial outlives a canceled request); the phase only
// moves forward.
type tracker struct {
	phase   atomic.Uint32
	written atomic.Bool
	// onReach, if set, is called once for each phase the attempt reaches.
	onReach func(cause.Phase)
}

func (tr *tracker) reach(p cause.Phase) {
	for {
		old := tr.phase.Load()
		if uint32(p) <= old {
			return
		}
		if tr.phase.CompareAndSwap(old, uint32(p)) {
			if tr.onReach != nil {
				for q := cause.Phase(old) + 1; q <= p; q++ {
					tr.onReach(q)
				}
			}
			return
		}
	}
}

func (tr *tracker) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { tr.reach(cause.PhaseResolve) },
		ConnectStart:      func(string, string) { tr.reach(cause.PhaseConnect) },
		TLSHandshakeStart: func() { tr.reach(cause.PhaseTLS) },
		GotConn:           func(httptrace.GotConnInfo) { tr.reach(cause.PhaseWrite) },
		WroteHeaders:      func() { tr.written.Store(true) },
		WroteRequest:      func(httptrace.WroteRequestInfo) { tr.reach(cause.PhaseWait) },
		// GotFirstResponseByte does not move the phase: until the header is
		// complete, the proxy still waits for a response it can send on.
	}
}

// expiry ends an attempt's context a little after the attempt reaches a
// phase: Err is context.DeadlineExceeded (a timeout in that phase) or
// context.Canceled (the client leaving in that phase). Starting the clock at
// the phase, not at the request, keeps the test exact on a slow machine.
type expiry struct {
	in    cause.Phase
	after time.Duration
	err   error
}

func deadlineIn(p cause.Phase, d time.Duration) *expiry {
	return &expiry{in: p, after: d, err: context.DeadlineExceeded}
}

func cancelIn(p cause.Phase) *expiry {
	return &expiry{in: p, after: 50 * time.Millisecond, err: context.Canceled}
}

// expiringCtx is a context that ends when its parent does or when expire
// is called, whichever is first. It hides its parent's values, so that
// context.Cause falls back to its Err rather than the parent's cause.
type expiringCtx struct {
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	err  error
}

func newExpiringCtx(parent context.Context) (*expiringCtx, func()) {
	c := &expiringCtx{done: make(chan struct{})}
	stop := context.AfterFunc(parent, func() { c.expire(parent.Err()) })
	return c, func() { stop(); c.expire(context.Canceled) }
}

func (c *expiringCtx) expire(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
	})
}

func (c *expiringCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *expiringCtx) Done() <-chan struct{}       { return c.done }
func (c *expiringCtx) Value(any) any               { return nil }
func (c *expiringCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// try sends one POST with a small body through rt, the way a proxy does, and
// reads the whole response. POST, because it is the method whose retry
// safety hangs on the classification. If exp is set, the attempt's context
// ends as it says.
func try(ctx context.Context, rt http.RoundTripper, url string, exp *expiry) attempt {
	var tr tracker
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	if exp != nil {
		ectx, stop := newExpiringCtx(ctx)
		defer stop()
		tr.onReach = func(p cause.Phase) {
			if p == exp.in {
				time.AfterFunc(exp.after, func() { ectx.expire(exp.err) })
			}
		}
		ctx = ectx
	}
	ctx = httptrace.WithClientTrace(ctx, tr.trace())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("hello"))
	if err != nil {
		return attempt{err: err}
	}
	resp, err := rt.RoundTrip(req)
	if err == nil {
		tr.reach(cause.PhaseRead)
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil {
			tr.reach(cause.PhaseDone)
		}
	}
	a := attempt{err: err, phase: cause.Phase(tr.phase.Load()), written: tr.written.Load()}
	if resp != nil {
		a.status = resp.StatusCode
	}
	return a
}

// clientRT sends requests with an http.Client, whose errors differ from
// the Transport's: wrapped in *url.Error, and ErrSchemeMismatch.
type clientRT struct{ c *http.Client }

func (c clientRT) RoundTrip(req *http.Request) (*http.Response, error) { return c.c.Do(req) }

func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:            (&net.Dialer{Timeout: dialTimeout}).DialContext,
		TLSHandshakeTimeout:    time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableKeepAlives:      true,
	}
}

// target is an upstream a case points at.
type target struct {
	url string
	// seen counts requests that reached the upstream; nil when nothing
	// could have (no server, or no connection).
	seen func() int64
	// transport adjusts the attempt's transport; expire ends its context.
	transport func(*http.Transport)
	expire    *expiry
	// orPhase, if set, is another phase the attempt may end in, where Go's
	// goroutines race.
	orPhase cause.Phase
}

func faultTarget(scheme string, f *testutil.Fault) target {
	return target{url: scheme + "://" + f.Addr + "/", seen: f.Requests.Load}
}

func tlsTarget(b *testutil.TLSBackend, maxVersion uint16) target {
	return target{url: b.URL + "/", seen: b.Requests.Load, transport: func(tr *http.Transport) {
		tr.TLSClientConfig = b.ClientConfig()
		tr.TLSClientConfig.MaxVersion = maxVersion
	}}
}

// dnsTarget points at name on a fake DNS server, dialling with timeout
// (which covers the lookup).
func dnsTarget(t *testing.T, name string, timeout time.Duration) target {
	dns := testutil.NewDNS(t, map[string][]string{"up.test": {"127.0.0.1"}})
	dns.Silence("silent.test")
	return target{url: "http://" + name + "/", transport: func(tr *http.Transport) {
		tr.DialContext = (&net.Dialer{Timeout: timeout, Resolver: dns.Resolver()}).DialContext
	}}
}

// stallBody sends a header and a little of the body, then stalls until the
// client goes away. It reads the request body first: only then does the
// server watch the connection and cancel r.Context when the client leaves.
var stallBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Length", "100")
	io.WriteString(w, "partial")
	w.(http.Flusher).Flush()
	select {
	case <-r.Context().Done():
	case <-time.After(2 * time.Second):
	}
})

// bigHeader answers with a 100 KiB header, over HTTP/1.1 or HTTP/2.
var bigHeader = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Big", strings.Repeat("a", 100<<10))
})

// TestClassifyRealFailures makes each failure happen for real, on loopback,
// through Go's own Transport and Client, and checks that Classify names it
// from what a proxy knows: the error and the phase reached.
func TestClassifyRealFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target func(t *testing.T) target
		want   cause.Cause
		phase  cause.Phase
	}{
		{"refused", func(t *testing.T) target {
			return target{url: "http://" + testutil.DeadAddr(t) + "/"}
		}, cause.ConnectionRefused, cause.PhaseConnect},
		{"connect never completes", func(t *testing.T) target {
			return target{url: "http://" + testutil.NoAccept(t) + "/", transport: func(tr *http.Transport) {
				tr.DialContext = (&net.Dialer{Timeout: shortDial}).DialContext
			}}
		}, cause.ConnectionTimeout, cause.PhaseConnect},
		{"no response header (ResponseHeaderTimeout)", func(t *testing.T) target {
			tg := faultTarget("http", testutil.Hang(t))
			tg.transport = func(tr *http.Transport) { tr.ResponseHeaderTimeout = responseTimeout }
			return tg
		}, cause.HTTPResponseTimeout, cause.PhaseWait},
		{"no response header (context deadline)", func(t *testing.T) target {
			tg := faultTarget("http", testutil.Hang(t))
			tg.expire = deadlineIn(cause.PhaseWait, responseTimeout)
			return tg
		}, cause.HTTPResponseTimeout, cause.PhaseWait},
		{"reset after request", func(t *testing.T) target {
			return faultTarget("http", testutil.ResetAfterRequest(t))
		}, cause.ConnectionTerminated, cause.PhaseWait},
		{"closed after request", func(t *testing.T) target {
			return faultTarget("http", testutil.CloseAfterRequest(t))
		}, cause.ConnectionTerminated, cause.PhaseWait},
		{"garbage answer", func(t *testing.T) target {
			return faultTarget("http", testutil.Garbage(t))
		}, cause.HTTPProtocolError, cause.PhaseWait},
		{"100 KiB header over HTTP/1.1", func(t *testing.T) target {
			return faultTarget("http", testutil.BigHeader(t, 100<<10))
		}, cause.HTTPResponseHeaderSectionSize, cause.PhaseWait},
		// Go's HTTP/2 client reports an oversized header block as a
		// COMPRESSION_ERROR (or PROTOCOL_ERROR) connection error, the same
		// as a corrupt one: the size is lost, the status and safety agree.
		{"100 KiB header over HTTP/2", func(t *testing.T) target {
			tg := tlsTarget(testutil.NewTLSBackend(t, testutil.TLSValid, bigHeader), 0)
			tls := tg.transport
			tg.transport = func(tr *http.Transport) { tls(tr); tr.ForceAttemptHTTP2 = true }
			return tg
		}, cause.HTTPProtocolError, cause.PhaseWait},
		{"reset mid-body", func(t *testing.T) target {
			return faultTarget("http", testutil.ResetMidBody(t))
		}, cause.HTTPResponseIncomplete, cause.PhaseRead},
		{"body shorter than Content-Length", func(t *testing.T) target {
			return faultTarget("http", testutil.Raw(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello"))
		}, cause.HTTPResponseIncomplete, cause.PhaseRead},
		{"body stalls", func(t *testing.T) target {
			b := testutil.Backend(t, stallBody)
			return target{url: b.URL + "/", seen: b.Requests.Load, expire: deadlineIn(cause.PhaseRead, responseTimeout)}
		}, cause.ConnectionReadTimeout, cause.PhaseRead},
		{"expired certificate", func(t *testing.T) target {
			return tlsTarget(testutil.NewTLSBackend(t, testutil.TLSExpired, nil), 0)
		}, cause.TLSCertificateError, cause.PhaseTLS},
		{"certificate for another name", func(t *testing.T) target {
			return tlsTarget(testutil.NewTLSBackend(t, testutil.TLSWrongName, nil), 0)
		}, cause.TLSCertificateError, cause.PhaseTLS},
		{"certificate from an unknown authority", func(t *testing.T) target {
			return tlsTarget(testutil.NewTLSBackend(t, testutil.TLSUnknownAuthority, nil), 0)
		}, cause.TLSCertificateError, cause.PhaseTLS},
		{"client certificate required (TLS 1.2)", func(t *testing.T) target {
			return tlsTarget(testutil.TLSRequireClientCert(t), tls.VersionTLS12)
		}, cause.TLSAlertReceived, cause.PhaseTLS},
		// TLS 1.3 clients finish the handshake before the server checks
		// their certificate, so its alert arrives after the request went.
		// Whether the Transport has reported the request written by then
		// is a race between its read and write loops.
		{"client certificate required (TLS 1.3)", func(t *testing.T) target {
			tg := tlsTarget(testutil.TLSRequireClientCert(t), tls.VersionTLS13)
			tg.orPhase = cause.PhaseWrite
			return tg
		}, cause.TLSAlertReceived, cause.PhaseWait},
		{"TLS to a plain HTTP port", func(t *testing.T) target {
			b := testutil.Backend(t, nil)
			return target{url: "https://" + b.Addr + "/", seen: b.Requests.Load}
		}, cause.TLSProtocolError, cause.PhaseTLS},
		{"TLS to a port that answers garbage", func(t *testing.T) target {
			return faultTarget("https", testutil.Garbage(t))
		}, cause.TLSProtocolError, cause.PhaseTLS},
		{"TLS to a port that closes", func(t *testing.T) target {
			return faultTarget("https", testutil.CloseAfterRequest(t))
		}, cause.TLSProtocolError, cause.PhaseTLS},
		{"TLS handshake never completes", func(t *testing.T) target {
			tg := faultTarget("https", testutil.Hang(t))
			tg.transport = func(tr *http.Transport) { tr.TLSHandshakeTimeout = responseTimeout }
			return tg
		}, cause.ConnectionTimeout, cause.PhaseTLS},
		// A TLS server that answers plain HTTP with an alert record. Go's
		// and nginx's servers answer 400 instead (TestPlainHTTPToTLSPort).
		// The fixture parses the plain request before it answers, which a
		// TLS server cannot: its count proves nothing here.
		{"plain HTTP to a TLS port that sends an alert", func(t *testing.T) target {
			return target{url: "http://" + testutil.Raw(t, "\x15\x03\x03\x00\x02\x02\x46").Addr + "/"}
		}, cause.TLSProtocolError, cause.PhaseWait},
		{"name does not exist (NXDOMAIN)", func(t *testing.T) target {
			return dnsTarget(t, "nx.test", dialTimeout)
		}, cause.DNSError, cause.PhaseResolve},
		{"resolver silent", func(t *testing.T) target {
			return dnsTarget(t, "silent.test", shortDial)
		}, cause.DNSTimeout, cause.PhaseResolve},
		{"client went away while waiting", func(t *testing.T) target {
			tg := faultTarget("http", testutil.Hang(t))
			tg.expire = cancelIn(cause.PhaseWait)
			return tg
		}, cause.ClientClosed, cause.PhaseWait},
		{"client went away while resolving", func(t *testing.T) target {
			tg := dnsTarget(t, "silent.test", dialTimeout)
			tg.expire = cancelIn(cause.PhaseResolve)
			return tg
		}, cause.ClientClosed, cause.PhaseResolve},
		{"client went away while connecting", func(t *testing.T) target {
			return target{url: "http://" + testutil.NoAccept(t) + "/", expire: cancelIn(cause.PhaseConnect)}
		}, cause.ClientClosed, cause.PhaseConnect},
	}
	for _, tt := range tests {
		for _, via := range []string{"transport", "client"} {
			t.Run(tt.name+"/"+via, func(t *testing.T) {
				t.Parallel()
				tg := tt.target(t)
				tr := newTransport()
				if tg.transport != nil {
					tg.transport(tr)
				}
				t.Cleanup(tr.CloseIdleConnections)
				var rt http.RoundTripper = tr
				if via == "client" {
					rt = clientRT{&http.Client{Transport: tr}}
				}
				a := try(t.Context(), rt, tg.url, tg.expire)
				if a.err == nil {
					t.Fatalf("POST %s succeeded with status %d, want an error", tg.url, a.status)
				}
				if got := cause.Classify(a.err, a.phase); got != tt.want {
					t.Errorf("Classify(%q, %v) = %v, want %v", a.err, a.phase, got, tt.want)
				}
				if a.phase != tt.phase && (tg.orPhase == cause.PhaseNone || a.phase != tg.orPhase) {
					t.Errorf("phase reached = %v, want %v (err %q)", a.phase, tt.phase, a.err)
				}
				wrapped := fmt.Errorf("proxy: attempt 1: %w", a.err)
				if got := cause.Classify(wrapped, a.phase); got != tt.want {
					t.Errorf("Classify(wrapped %q, %v) = %v, want %v", wrapped, a.phase, got, tt.want)
				}

				// The promise that makes retries safe: when the cause says
				// this POST may be sent again, the upstream never saw it.
				if tg.seen == nil {
					return
				}
				seen := tg.seen()
				if tt.want.RetryableFor(cause.IdempotentMethod(http.MethodPost), a.written) && seen != 0 {
					t.Errorf("%v says a POST (written=%v) may be retried, but the upstream saw %d requests", tt.want, a.written, seen)
				}
				if tt.want.Safety() == cause.NeverSent && seen != 0 {
					t.Errorf("%v is never_sent, but the upstream saw %d requests", tt.want, seen)
				}
			})
		}
	}
}

// TestClassifyMalformedResponses sends one request to servers whose answers
// are broken in one precise way each.
func TestClassifyMalformedResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		response string
		want     cause.Cause
		phase    cause.Phase
	}{
		{"bad status code", "HTTP/1.1 abc OK\r\n\r\n", cause.HTTPProtocolError, cause.PhaseWait},
		{"bad version", "HTTP/x 200 OK\r\n\r\n", cause.HTTPProtocolError, cause.PhaseWait},
		{"header line without colon", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", cause.HTTPProtocolError, cause.PhaseWait},
		{"two Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", cause.HTTPProtocolError, cause.PhaseWait},
		{"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", cause.HTTPProtocolError, cause.PhaseWait},
		{"unknown transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: foo\r\n\r\n", cause.HTTPProtocolError, cause.PhaseWait},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", cause.HTTPProtocolError, cause.PhaseRead},
		{"chunked body cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", cause.HTTPResponseIncomplete, cause.PhaseRead},
		{"header cut short", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", cause.ConnectionTerminated, cause.PhaseWait},
		{"nothing at all", "", cause.ConnectionTerminated, cause.PhaseWait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := testutil.Raw(t, tt.response)
			tr := newTransport()
			a := try(t.Context(), tr, "http://"+f.Addr+"/", nil)
			if a.err == nil {
				t.Fatalf("response %q: got status %d, want an error", tt.response, a.status)
			}
			if got := cause.Classify(a.err, a.phase); got != tt.want || a.phase != tt.phase {
				t.Errorf("Classify(%q, %v) = %v, want %v in phase %v", a.err, a.phase, got, tt.want, tt.phase)
			}
			if f.Requests.Load() != 1 {
				t.Errorf("upstream saw %d requests, want 1", f.Requests.Load())
			}
		})
	}
}

// TestPlainHTTPToTLSPort records what happens when a proxy speaks plain HTTP
// to a TLS port: Go's server (like nginx) answers 400 rather than failing the
// connection, so there is no error to classify; the proxy sees a 400 from
// the upstream. (A server that sends a TLS alert instead is the case "plain
// HTTP to a TLS port that sends an alert" in TestClassifyRealFailures.)
func TestPlainHTTPToTLSPort(t *testing.T) {
	t.Parallel()
	b := testutil.NewTLSBackend(t, testutil.TLSValid, nil)
	a := try(t.Context(), newTransport(), "http://"+b.Addr+"/", nil)
	if a.err != nil || a.status != http.StatusBadRequest {
		t.Fatalf("plain HTTP to a TLS port: err %v, status %d; want status 400 and no error", a.err, a.status)
	}
	if n := b.Requests.Load(); n != 0 {
		t.Errorf("handler saw %d requests, want 0", n)
	}
}

// TestTLSDetail checks that the three certificate failures, one cause, stay
// apart in the underlying error so that a log can say which.
func TestTLSDetail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind testutil.TLSKind
		want string
		is   func(error) bool
	}{
		{testutil.TLSExpired, "expired", func(err error) bool {
			var e x509.CertificateInvalidError
			return errors.As(err, &e) && e.Reason == x509.Expired
		}},
		{testutil.TLSWrongName, "wrong_name", func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e)
		}},
		{testutil.TLSUnknownAuthority, "unknown_authority", func(err error) bool {
			var e x509.UnknownAuthorityError
			return errors.As(err, &e)
		}},
		{testutil.TLSValid, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			t.Parallel()
			b := testutil.NewTLSBackend(t, tt.kind, nil)
			tr := newTransport()
			tr.TLSClientConfig = b.ClientConfig()
			a := try(t.Context(), tr, b.URL+"/", nil)
			if got := cause.TLSDetail(a.err); got != tt.want {
				t.Errorf("TLSDetail(%q) = %q, want %q", a.err, got, tt.want)
			}
			if tt.is == nil {
				if a.err != nil || a.status != http.StatusOK {
					t.Errorf("valid certificate: err %v, status %d; want 200", a.err, a.status)
				}
				return
			}
			if !tt.is(a.err) {
				t.Errorf("error %q (%T) does not hold the x509 error for %v", a.err, a.err, tt.kind)
			}
		})
	}
	if got := cause.TLSDetail(nil); got != "" {
		t.Errorf("TLSDetail(nil) = %q, want \"\"", got)
	}
	if got := cause.TLSDetail(io.EOF); got != "" {
		t.Errorf("TLSDetail(io.EOF) = %q, want \"\"", got)
	}
}

// TestClassifyErrors covers what needs no network: nil, errors that carry
// their cause, and text that must not fool the classifier.
func TestClassifyErrors(t *testing.T) {
	t.Parallel()
	refused := &cause.Error{Cause: cause.ConnectionRefused, Phase: cause.PhaseConnect, Addr: "10.0.0.7:8080", Err: errors.New("boom")}
	tests := []struct {
		name  string
		err   error
		phase cause.Phase
		want  cause.Cause
	}{
		{"nil", nil, cause.PhaseWait, cause.None},
		{"*Error", refused, cause.PhaseNone, cause.ConnectionRefused},
		{"*Error wrapped", fmt.Errorf("attempt: %w", refused), cause.PhaseRead, cause.ConnectionRefused},
		{"*Error over another cause", &cause.Error{Cause: cause.HTTPRequestDenied, Err: io.EOF}, cause.PhaseWait, cause.HTTPRequestDenied},
		{"*Error without a cause", &cause.Error{Err: &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}}, cause.PhaseNone, cause.DNSError},
		{"canceled wins over the phase", fmt.Errorf("x: %w", context.Canceled), cause.PhaseRead, cause.ClientClosed},
		{"deadline while waiting", context.DeadlineExceeded, cause.PhaseWait, cause.HTTPResponseTimeout},
		{"deadline while reading", context.DeadlineExceeded, cause.PhaseRead, cause.ConnectionReadTimeout},
		{"deadline while writing", context.DeadlineExceeded, cause.PhaseWrite, cause.ConnectionWriteTimeout},
		{"deadline while resolving", context.DeadlineExceeded, cause.PhaseResolve, cause.DNSTimeout},
		{"deadline while connecting", context.DeadlineExceeded, cause.PhaseConnect, cause.ConnectionTimeout},
		{"EOF while waiting", io.EOF, cause.PhaseWait, cause.ConnectionTerminated},
		{"EOF while reading", io.ErrUnexpectedEOF, cause.PhaseRead, cause.HTTPResponseIncomplete},
		{"EOF with no phase", io.EOF, cause.PhaseNone, cause.ConnectionTerminated},
		{"scheme mismatch", &url.Error{Op: "Get", URL: "https://x/", Err: http.ErrSchemeMismatch}, cause.PhaseNone, cause.TLSProtocolError},
		// The URL in a *url.Error is the client's text, not Go's: it must
		// not be read as an error message.
		{"URL that looks like an error", &url.Error{Op: "Get", URL: "http://x/malformed HTTP response", Err: io.EOF}, cause.PhaseWait, cause.ConnectionTerminated},
		{"URL that looks like a header error", &url.Error{Op: "Get", URL: "http://x/?q=net/http: server response headers exceeded", Err: io.EOF}, cause.PhaseWait, cause.ConnectionTerminated},
		{"HTTP/2 protocol error", errors.New("stream error: stream ID 3; PROTOCOL_ERROR"), cause.PhaseWait, cause.HTTPProtocolError},
		{"HTTP/2 header list too large", fmt.Errorf("round trip: %w", errors.New("http2: response header list larger than advertised limit")), cause.PhaseWait, cause.HTTPResponseHeaderSectionSize},
		{"joined errors", errors.Join(errors.New("other"), errors.New("malformed HTTP response \"x\"")), cause.PhaseWait, cause.HTTPProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := cause.Classify(tt.err, tt.phase); got != tt.want {
				t.Errorf("Classify(%v, %v) = %v, want %v", tt.err, tt.phase, got, tt.want)
			}
		})
	}
	if got := cause.Of(fmt.Errorf("x: %w", refused)); got != cause.ConnectionRefused {
		t.Errorf("Of(wrapped *Error) = %v, want connection_refused", got)
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *cause.Error
		want string
	}{
		{&cause.Error{Cause: cause.ConnectionRefused, Addr: "10.0.0.7:8080", Err: errors.New("connect: connection refused")},
			"connection_refused (10.0.0.7:8080): connect: connection refused"},
		{&cause.Error{Cause: cause.DestinationUnavailable}, "destination_unavailable"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	inner := errors.New("inner")
	if !errors.Is(&cause.Error{Cause: cause.DNSError, Err: inner}, inner) {
		t.Errorf("errors.Is(*Error, inner) = false, want true")
	}
}
