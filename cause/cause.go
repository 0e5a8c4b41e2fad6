// Package cause is holdfast's single vocabulary of failure.
//
// Every failure anywhere in holdfast (the gateway, the probe, the client
// package) is classified into exactly one Cause. The names are the proxy
// error types registered for the Proxy-Status header by RFC 9209, so that a
// cause means the same thing to every tool that reads it; holdfast adds
// [UpstreamStatus], [ClientClosed] and [ClientTimeout], which RFC 9209 has no
// name for.
//
// Each cause carries the HTTP status a gateway answers with, whether a retry
// is safe and for which methods ([Cause.Safety]), and a one-line explanation
// a person can act on ([Cause.Explain]).
package cause

import (
	"fmt"
	"net/http"
)

// Cause is one reason a request failed. The zero value, [None], means no
// failure. Causes are small comparable values, safe to use as map keys and
// metric labels; [Cause.String] gives the stable RFC 9209 name.
type Cause uint8

// The causes. The order is part of no contract; the names are.
const (
	None Cause = iota

	DNSError                      // the name did not resolve (NXDOMAIN, SERVFAIL)
	DNSTimeout                    // the resolver did not answer in time
	DestinationNotFound           // no route or pool for the request
	DestinationUnavailable        // no healthy server left, or a circuit is open
	ConnectionRefused             // RST in answer to SYN: nothing listens
	ConnectionTimeout             // no SYN-ACK in time
	ConnectionTerminated          // closed or reset before any response byte
	ConnectionReadTimeout         // the response body stalled
	ConnectionWriteTimeout        // writing the request stalled
	ConnectionLimitReached        // a concurrency cap or queue timeout
	TLSProtocolError              // the TLS handshake failed
	TLSCertificateError           // expired, wrong name, unknown authority
	TLSAlertReceived              // the upstream sent a TLS alert
	HTTPRequestError              // the client's own malformed request
	HTTPRequestDenied             // rate limited or refused by policy
	HTTPResponseIncomplete        // the response stopped part way through
	HTTPResponseHeaderSectionSize // response headers over the limit
	HTTPResponseTimeout           // no response header in time
	HTTPProtocolError             // malformed status line or headers
	HTTPUpgradeFailed             // a protocol upgrade (WebSocket) failed
	ProxyInternalError            // holdfast itself failed
	UpstreamStatus                // the upstream itself answered 502, 503 or 504 (holdfast's own)
	ClientClosed                  // the client went away (holdfast's own; logged as 499)
	ClientTimeout                 // the client stalled sending its body or reading the response (holdfast's own)

	numCauses
)

// Safety says when a request that failed with a cause may be sent again.
type Safety uint8

const (
	// NeverSent: the request provably never reached the upstream, so a
	// retry is safe for every method, POST included.
	NeverSent Safety = iota + 1
	// SafeIfUnsent: a retry is safe for every method only if no request
	// byte was written; otherwise only for idempotent requests.
	SafeIfUnsent
	// IdempotentOnly: the upstream may have acted on the request; only
	// idempotent requests (or ones with an Idempotency-Key) may be retried.
	IdempotentOnly
	// NotTried: the gateway decided locally and nothing was sent; another
	// server or a later attempt (after Retry-After) may succeed.
	NotTried
	// NoRetry: retrying cannot help (the client's own error, or the client
	// is gone).
	NoRetry
)

// String returns the name of the safety class.
func (s Safety) String() string {
	switch s {
	case NeverSent:
		return "never_sent"
	case SafeIfUnsent:
		return "safe_if_unsent"
	case IdempotentOnly:
		return "idempotent_only"
	case NotTried:
		return "not_tried"
	case NoRetry:
		return "no_retry"
	}
	return "unknown"
}

// StatusAbort is the status of causes that strike after the response header
// has been sent to the client: there is no status left to send, so the
// gateway aborts the stream instead.
const StatusAbort = 0

// StatusClientClosed is the status logged for a client that went away
// (nginx's 499). It is never sent.
const StatusClientClosed = 499

type info struct {
	name    string
	status  int
	safety  Safety
	timeout bool   // counts as nginx's "timeout" retry condition
	explain string // with one %s for the upstream address
	generic string // without the address, safe for clients
}

var table = [numCauses]info{
	None:                          {"", http.StatusOK, NoRetry, false, "no failure", "no failure"},
	DNSError:                      {"dns_error", http.StatusBadGateway, NeverSent, false, "the upstream name %s did not resolve: check the DNS record and the resolver", "the upstream name did not resolve"},
	DNSTimeout:                    {"dns_timeout", http.StatusGatewayTimeout, NeverSent, true, "the resolver did not answer for %s in time: check that the DNS server is reachable", "the upstream name could not be resolved in time"},
	DestinationNotFound:           {"destination_not_found", http.StatusNotFound, NoRetry, false, "no route matches %s: check the routes in the configuration", "no route matches this request"},
	DestinationUnavailable:        {"destination_unavailable", http.StatusServiceUnavailable, NotTried, false, "no healthy server is left in %s: every server is ejected, down or its circuit is open", "no healthy upstream server is available"},
	ConnectionRefused:             {"connection_refused", http.StatusBadGateway, NeverSent, false, "the upstream refused the connection: nothing listens on %s", "the upstream refused the connection"},
	ConnectionTimeout:             {"connection_timeout", http.StatusGatewayTimeout, NeverSent, true, "no answer to the connection attempt to %s in time: check the network path and firewall", "the upstream did not accept the connection in time"},
	ConnectionTerminated:          {"connection_terminated", http.StatusBadGateway, SafeIfUnsent, false, "the connection to %s was closed or reset before a response: the upstream crashed or closed an idle connection", "the upstream closed the connection before responding"},
	ConnectionReadTimeout:         {"connection_read_timeout", StatusAbort, IdempotentOnly, true, "the response body from %s stalled longer than the read timeout", "the upstream response stalled"},
	ConnectionWriteTimeout:        {"connection_write_timeout", http.StatusGatewayTimeout, IdempotentOnly, true, "writing the request to %s stalled longer than the send timeout", "the upstream did not accept the request in time"},
	ConnectionLimitReached:        {"connection_limit_reached", http.StatusServiceUnavailable, NotTried, false, "the concurrency limit for %s is reached and the wait queue timed out", "the upstream is at its concurrency limit"},
	TLSProtocolError:              {"tls_protocol_error", http.StatusBadGateway, NeverSent, false, "the TLS handshake with %s failed: check that it speaks TLS and shares a protocol version and cipher", "the TLS handshake with the upstream failed"},
	TLSCertificateError:           {"tls_certificate_error", http.StatusBadGateway, NeverSent, false, "the certificate of %s was rejected (expired, wrong name or unknown authority)", "the upstream's TLS certificate was rejected"},
	TLSAlertReceived:              {"tls_alert_received", http.StatusBadGateway, NeverSent, false, "%s sent a TLS alert during the handshake: it rejected our TLS parameters or client certificate", "the upstream rejected the TLS handshake"},
	HTTPRequestError:              {"http_request_error", http.StatusBadRequest, NoRetry, false, "the client's request was malformed or too large (%s)", "the request was malformed or too large"},
	HTTPRequestDenied:             {"http_request_denied", http.StatusTooManyRequests, NotTried, false, "the request was denied by a rate limit or policy (%s)", "the request was denied by a rate limit"},
	HTTPResponseIncomplete:        {"http_response_incomplete", StatusAbort, IdempotentOnly, false, "the response from %s stopped part way through: the upstream closed or reset the connection", "the upstream response was cut short"},
	HTTPResponseHeaderSectionSize: {"http_response_header_section_size", http.StatusBadGateway, IdempotentOnly, false, "the response headers from %s are larger than the limit", "the upstream response headers are too large"},
	HTTPResponseTimeout:           {"http_response_timeout", http.StatusGatewayTimeout, IdempotentOnly, true, "%s accepted the request but sent no response header within the read timeout", "the upstream did not respond in time"},
	HTTPProtocolError:             {"http_protocol_error", http.StatusBadGateway, IdempotentOnly, false, "%s answered with a malformed status line or headers: is it speaking HTTP on that port?", "the upstream sent a malformed response"},
	HTTPUpgradeFailed:             {"http_upgrade_failed", http.StatusBadGateway, IdempotentOnly, false, "the protocol upgrade with %s failed", "the protocol upgrade failed"},
	ProxyInternalError:            {"proxy_internal_error", http.StatusInternalServerError, NoRetry, false, "holdfast failed internally while handling a request for %s", "the gateway failed internally"},
	UpstreamStatus:                {"upstream_status", http.StatusBadGateway, IdempotentOnly, false, "%s itself answered with an error status (502, 503 or 504)", "the upstream answered with an error status"},
	ClientClosed:                  {"client_closed", StatusClientClosed, NoRetry, false, "the client closed the connection before the response was complete (%s)", "the client went away"},
	ClientTimeout:                 {"client_timeout", http.StatusRequestTimeout, NoRetry, false, "the client stalled longer than its timeout (%s)", "the client was too slow sending the request or reading the response"},
}

// All lists every cause except [None], in a stable order.
func All() []Cause {
	out := make([]Cause, 0, numCauses-1)
	for c := Cause(1); c < numCauses; c++ {
		out = append(out, c)
	}
	return out
}

// Parse returns the cause with the given RFC 9209 (or holdfast) name.
func Parse(name string) (Cause, bool) {
	for c := Cause(1); c < numCauses; c++ {
		if table[c].name == name {
			return c, true
		}
	}
	return None, false
}

func (c Cause) info() info {
	if c >= numCauses {
		return info{name: "unknown", status: http.StatusBadGateway, safety: NoRetry, explain: "unknown failure (%s)", generic: "unknown failure"}
	}
	return table[c]
}

// String returns the stable name: the RFC 9209 proxy error type, or
// "upstream_status", "client_closed" or "client_timeout" for holdfast's own;
// "" for None.
func (c Cause) String() string { return c.info().name }

// Status is the status a gateway answers with for this cause: 502, 503, 504,
// 429, 400 and so on; [StatusAbort] when the failure can only strike after the
// response started; [StatusClientClosed] for [ClientClosed].
func (c Cause) Status() int { return c.info().status }

// Safety says whether and when a request that failed this way may be retried.
func (c Cause) Safety() Safety { return c.info().safety }

// IsTimeout reports whether the cause is a timeout, nginx's "timeout"
// retry condition. The other upstream failures are its "error" condition.
func (c Cause) IsTimeout() bool { return c.info().timeout }

// RetryableFor reports whether a request that failed with c may be sent again.
// idempotent is true for GET, HEAD, OPTIONS, TRACE, PUT and DELETE, for a
// request with an Idempotency-Key, or when the operator opted in; written is
// true when at least one byte of the request reached the connection.
//
// A cause that normally proves the request never left (a TLS failure, say)
// proves nothing once bytes of the request were written: a TLS alert can
// arrive after the upstream read the request. Then only idempotent
// requests may be retried.
func (c Cause) RetryableFor(idempotent, written bool) bool {
	switch c.Safety() {
	case NeverSent:
		return idempotent || !written
	case NotTried:
		return true
	case SafeIfUnsent:
		return idempotent || !written
	case IdempotentOnly:
		return idempotent
	}
	return false
}

// Explain returns the one-line explanation of the cause for logs and the
// admin side, naming addr (an upstream address, pool or detail). It may hold
// internal addresses: never send it to a client unless the operator asked.
func (c Cause) Explain(addr string) string {
	if addr == "" {
		return c.info().generic
	}
	return fmt.Sprintf(c.info().explain, addr)
}

// Summary returns the explanation without any address: safe for clients.
func (c Cause) Summary() string { return c.info().generic }

// MarshalText implements encoding.TextMarshaler with the stable name.
func (c Cause) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Cause) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*c = None
		return nil
	}
	v, ok := Parse(string(b))
	if !ok {
		return fmt.Errorf("cause: unknown cause %q", b)
	}
	*c = v
	return nil
}

// IdempotentMethod reports whether a request with this method may be repeated
// without changing its effect (RFC 9110 section 9.2.2): GET, HEAD, OPTIONS,
// TRACE, PUT and DELETE.
func IdempotentMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// Idempotent reports whether req may be sent more than once: its method is
// idempotent, or it carries an Idempotency-Key (or X-Idempotency-Key) header.
func Idempotent(req *http.Request) bool {
	if IdempotentMethod(req.Method) {
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}
