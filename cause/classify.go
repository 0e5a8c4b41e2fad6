package cause

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"syscall"
)

// Phase is how far an attempt got before it ended, in the order a request
// travels: resolve, connect, TLS handshake, writing the request, waiting for
// the response header, reading the body.
type Phase uint8

// The phases of one attempt.
const (
	PhaseNone    Phase = iota // nothing started
	PhaseResolve              // looking up the upstream's name
	PhaseConnect              // TCP connect
	PhaseTLS                  // TLS handshake
	PhaseWrite                // writing the request
	PhaseWait                 // request written, waiting for the response header
	PhaseRead                 // response header received, reading the body
	PhaseDone                 // response complete
)

var phaseNames = [...]string{"none", "resolve", "connect", "tls", "write", "wait", "read", "done"}

// String returns the phase's name as it appears in the access log.
func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (p Phase) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Error is a failure with its cause attached. Err is the underlying error,
// which may hold internal addresses and Go error text: log it, never show it
// to a client. Error is what [Classify] looks for first, so wrapping an error
// in an Error fixes its cause.
type Error struct {
	Cause Cause
	Phase Phase  // how far the attempt got; PhaseNone if unknown
	Addr  string // the upstream address or name, when known
	Err   error  // the underlying error; may be nil
}

// Error implements error: the cause, the address and the underlying text.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Cause.String())
	if e.Addr != "" {
		b.WriteString(" (")
		b.WriteString(e.Addr)
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Of returns the cause carried by err: the Cause of the first [*Error] in its
// chain, or the result of [Classify] with PhaseNone.
func Of(err error) Cause {
	return Classify(err, PhaseNone)
}

// Classify names the cause of err, which ended an attempt in phase p.
//
// The phase settles what the error alone cannot: a reset while waiting for the
// header is connection_terminated, the same reset while reading the body is
// http_response_incomplete; a deadline while waiting is http_response_timeout,
// while reading connection_read_timeout. An [*Error] in the chain wins; a
// canceled context ([context.Canceled]) is always client_closed, whatever
// the attempt was doing. Classify returns None for a nil error.
//
// Classify expects the errors of Go's net, crypto/tls and net/http packages
// (an [http.Transport]'s RoundTrip, an [http.Client]'s Do, a [net.Dialer]),
// wrapped or not; an error it does not recognise is named by its phase.
func Classify(err error, p Phase) Cause {
	if err == nil {
		return None
	}
	var ce *Error
	if errors.As(err, &ce) && ce.Cause != None {
		return ce.Cause
	}

	// The caller gave up: whatever the lookup, dial or read was doing when
	// its context was canceled (a canceled lookup is a *net.DNSError that
	// unwraps to context.Canceled), the upstream did not fail.
	if errors.Is(err, context.Canceled) {
		return ClientClosed
	}

	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsTimeout {
			return DNSTimeout
		}
		return DNSError
	}

	if c := classifyTLS(err, p); c != None {
		return c
	}

	if errors.Is(err, syscall.ECONNREFUSED) {
		return ConnectionRefused
	}

	timeout := isTimeout(err)
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		if timeout {
			return ConnectionTimeout
		}
		if p == PhaseNone {
			p = PhaseConnect
		}
	}

	if timeout {
		switch p {
		case PhaseResolve:
			return DNSTimeout
		case PhaseConnect, PhaseTLS:
			// A TLS handshake that does not finish in time is part of
			// connecting, as nginx counts it ("upstream timed out while SSL
			// handshaking"): nothing was sent, and it is a timeout.
			return ConnectionTimeout
		case PhaseWrite:
			return ConnectionWriteTimeout
		case PhaseRead:
			return ConnectionReadTimeout
		}
		return HTTPResponseTimeout
	}

	if c := classifyText(err, p); c != None {
		return c
	}

	if isTermination(err) {
		return terminated(p)
	}

	switch p {
	case PhaseResolve:
		return DNSError
	case PhaseConnect:
		return ConnectionRefused
	case PhaseTLS:
		return TLSProtocolError
	case PhaseRead:
		return HTTPResponseIncomplete
	case PhaseWait:
		return HTTPProtocolError
	}
	return ConnectionTerminated
}

func classifyTLS(err error, p Phase) Cause {
	var (
		certInvalid x509.CertificateInvalidError
		hostErr     x509.HostnameError
		unknownAuth x509.UnknownAuthorityError
		verifyErr   *tls.CertificateVerificationError
		recordErr   tls.RecordHeaderError
		quicAlert   tls.AlertError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &certInvalid),
		errors.As(err, &hostErr), errors.As(err, &unknownAuth):
		return TLSCertificateError
	case errors.As(err, &recordErr), errors.Is(err, http.ErrSchemeMismatch):
		// The first record was not TLS: the port speaks plain HTTP (Client
		// turns that case into ErrSchemeMismatch) or something else.
		return TLSProtocolError
	case errors.As(err, &quicAlert):
		// Only QUIC connections return AlertError, and it wraps the alert
		// this side sent, not one it received.
		return TLSProtocolError
	}
	return None
}

// TLSDetail says what was wrong with a certificate that the TLS handshake
// rejected, for logs: "expired" (or not yet valid), "wrong_name" (valid for
// other names than the one dialled), "unknown_authority" (signed by a CA
// that is not trusted), or "" when err is no such rejection.
func TLSDetail(err error) string {
	var (
		certInvalid x509.CertificateInvalidError
		hostErr     x509.HostnameError
		unknownAuth x509.UnknownAuthorityError
	)
	switch {
	case errors.As(err, &certInvalid) && certInvalid.Reason == x509.Expired:
		return "expired"
	case errors.As(err, &hostErr):
		return "wrong_name"
	case errors.As(err, &unknownAuth):
		return "unknown_authority"
	}
	return ""
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// terminated names a connection closed or reset by the upstream in phase p.
func terminated(p Phase) Cause {
	switch p {
	case PhaseConnect:
		return ConnectionRefused
	case PhaseTLS:
		return TLSProtocolError
	case PhaseRead, PhaseDone:
		return HTTPResponseIncomplete
	}
	return ConnectionTerminated
}

func isTermination(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, net.ErrClosed)
}

// classifyText is the one place where holdfast reads error text, for the
// conditions that Go reports with no exported error value or type to match:
// net/http formats them with fmt.Errorf or errors.New into unexported
// values, and crypto/tls reports an alert as a *net.OpError whose only
// exported mark is its Op. Text is read from the leaves of err's chain, never
// from the whole message, so that a URL or a name quoted by a wrapper (such
// as *url.Error) cannot match; and only by prefix where the leaf quotes
// bytes the upstream sent. Keep each string next to the Go source it mirrors
// and the test that proves it (classify_test.go).
func classifyText(err error, p Phase) Cause {
	// crypto/tls (conn.go): an alert from the peer is
	// &net.OpError{Op: "remote error", Err: alert}, one this side sent is
	// Op "local error"; alert is unexported (tls.AlertError is for QUIC).
	var opErr *net.OpError
	if errors.As(err, &opErr) && (opErr.Op == "remote error" || opErr.Op == "local error") {
		if p >= PhaseRead {
			return HTTPResponseIncomplete // the response had started
		}
		if opErr.Op == "remote error" {
			// With TLS 1.3 the server rejects a client certificate after
			// the client finished its side of the handshake, so the alert
			// surfaces while waiting for the response: still a rejected
			// handshake, and the server never read the request.
			return TLSAlertReceived
		}
		return TLSProtocolError
	}

	var textErr textproto.ProtocolError // malformed header lines
	if errors.As(err, &textErr) || errors.Is(err, http.ErrLineTooLong) {
		return HTTPProtocolError
	}

	c := None
	eachLeaf(err, func(leaf error) bool {
		c = leafCause(leaf.Error(), p)
		return c == None
	})
	return c
}

func leafCause(s string, p Phase) Cause {
	has := func(prefixes ...string) bool {
		for _, pre := range prefixes {
			if strings.HasPrefix(s, pre) {
				return true
			}
		}
		return false
	}
	switch {
	case has(
		"net/http: server response headers exceeded",               // transport.go, HTTP/1
		"http2: response header list larger than advertised limit", // h2_bundle.go
	):
		return HTTPResponseHeaderSectionSize
	case has(`malformed HTTP response "\x15\x03`, `malformed HTTP response "\x16\x03`):
		// The "response" is a TLS alert or handshake record: plain HTTP was
		// sent to a port that speaks TLS.
		return TLSProtocolError
	case has(
		"malformed HTTP ",    // response.go: response line, status code, version
		"bad Content-Length", // transfer.go
		"http: message cannot contain multiple Content-Length headers", // transfer.go
		"too many transfer encodings",                                  // transfer.go
		"unsupported transfer encoding",                                // transfer.go
		"malformed chunked encoding",                                   // internal/chunked.go
		"chunked encoding contains too much non-data",                  // internal/chunked.go
		"chunked line ends with bare LF",                               // internal/chunked.go
		"invalid CR in chunked line",                                   // internal/chunked.go
		"empty hex number for chunk length",                            // internal/chunked.go
		"invalid byte in chunk length",                                 // internal/chunked.go
		"http chunk length too large",                                  // internal/chunked.go
	):
		return HTTPProtocolError
	case has("stream error: ", "connection error: ", "http2: server sent GOAWAY"):
		// HTTP/2 errors (h2_bundle.go) carry their code only in the text.
		// Go's HTTP/2 client reports a response header section over its
		// limit mostly as a PROTOCOL_ERROR or COMPRESSION_ERROR connection
		// error, like any other broken header block: only the rarer
		// "response header list larger than advertised limit" above names
		// the size. Other codes (INTERNAL_ERROR, CANCEL, a GOAWAY with
		// NO_ERROR) mean the upstream dropped the stream or the connection.
		for _, code := range []string{"PROTOCOL_ERROR", "COMPRESSION_ERROR", "FRAME_SIZE_ERROR", "FLOW_CONTROL_ERROR"} {
			if strings.Contains(s, code) {
				return HTTPProtocolError
			}
		}
		return terminated(p)
	case has("net/http: invalid header"): // transport.go, before sending
		// The request itself cannot be sent as it is; nothing was sent.
		return HTTPRequestError
	case has("tls: ") && (p == PhaseNone || p == PhaseTLS):
		// crypto/tls handshake failures without a type of their own
		// ("tls: server selected unsupported protocol version").
		return TLSProtocolError
	}
	return None
}

// eachLeaf calls f for each error in err's tree that wraps nothing, depth
// first, until f returns false.
func eachLeaf(err error, f func(error) bool) bool {
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if next := u.Unwrap(); next != nil {
			return eachLeaf(next, f)
		}
	case interface{ Unwrap() []error }:
		for _, next := range u.Unwrap() {
			if next != nil && !eachLeaf(next, f) {
				return false
			}
		}
		return true
	}
	return f(err)
}
