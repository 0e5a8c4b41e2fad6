// Package limits holds the limits and timeouts that holdfast's gateway, its
// probe and its client package share when they talk to an upstream.
//
// A limit decides how a failure is named: an upstream whose response header
// section is 100 KiB is http_response_header_section_size to a tool that
// stops at 64 KiB and a 200 OK to one that stops at 10 MiB (net/http's
// default). So every value that more than one of them applies lives here,
// once, and each tool takes it from here rather than writing its own
// number: the gateway's upstream transports and configuration defaults
// (internal/proxy, internal/config, internal/health), the probe
// (internal/probe), and the client's default base transport (client).
// The test in this package sends the same faults through all three and
// checks that they name the same cause.
//
// The values are constants, not settings: a gateway pool's timeouts and a
// client's options override them where each tool documents it.
package limits

import "time"

const (
	// MaxResponseHeaderBytes bounds an upstream's response header section
	// (status line and header fields). Over it, the response is refused as
	// http_response_header_section_size, a 502 at the gateway. 64 KiB is
	// far above any legitimate response header, while net/http's own
	// default of 10 MiB lets a runaway Set-Cookie loop through. Untyped, so
	// that it fits both int and int64 fields.
	MaxResponseHeaderBytes = 64 << 10

	// ConnectTimeout bounds resolving the upstream's name and the TCP
	// connect (and, separately or together where the transport allows, the
	// TLS handshake): past it the failure is connection_timeout (or
	// dns_timeout), and nothing was sent, so any method may be retried.
	// A loaded server on the same network answers a SYN in milliseconds;
	// 5s rides out two lost SYNs (Linux resends after 1s and 3s) and no
	// more.
	ConnectTimeout = 5 * time.Second

	// ResponseHeaderTimeout bounds the wait for a response header once
	// the request is written: past it the failure is http_response_timeout
	// (a 504 at the gateway). 60s is nginx's proxy_read_timeout: generous
	// for a web API, short enough that a hung upstream is named.
	ResponseHeaderTimeout = 60 * time.Second

	// IdleConnTimeout is how long a pooled keep-alive connection may sit
	// unused before it is closed: 4s, below Node.js's 5s and most servers'
	// keep-alive timeouts, so that the caller closes first and never sends
	// a request on a connection the server is closing at that moment (the
	// keep-alive race, the most common cause of intermittent 502s).
	IdleConnTimeout = 4 * time.Second

	// TCPKeepAlive is the interval of TCP keep-alive probes on upstream
	// connections, which find a peer that vanished without a FIN or RST.
	TCPKeepAlive = 30 * time.Second

	// ExpectContinueTimeout is how long a request with
	// "Expect: 100-continue" waits for the 100 before its body is sent
	// anyway.
	ExpectContinueTimeout = 1 * time.Second

	// DiscardedBodyBytes bounds how much of a response that is discarded
	// for a retry is read (and kept, in case no later attempt does better):
	// enough for any error page; reading more costs more than a new
	// connection.
	DiscardedBodyBytes = 64 << 10
)
