package client

import (
	"net"
	"net/http"

	"github.com/holdfast/holdfast/internal/limits"
)

// DefaultMaxResponseHeaderBytes is the response header limit of the
// default base transport: 64 KiB, the limit of holdfast's gateway and
// probe, so that the three name an oversized header section alike
// (http_response_header_section_size) where net/http's own 10 MiB would
// let it through.
const DefaultMaxResponseHeaderBytes = limits.MaxResponseHeaderBytes

// WithMaxResponseHeaderBytes sets Transport.MaxResponseHeaderBytes, the
// response header limit of the default base transport.
func WithMaxResponseHeaderBytes(n int64) Option {
	return func(t *Transport) { t.MaxResponseHeaderBytes = n }
}

func (t *Transport) maxResponseHeaderBytes() int64 {
	if t.MaxResponseHeaderBytes <= 0 {
		return DefaultMaxResponseHeaderBytes
	}
	return t.MaxResponseHeaderBytes
}

// defaultBase builds the base transport used when Base is nil: a clone of
// http.DefaultTransport (proxy from the environment, HTTP/2, its pool
// sizes) with the limits and timeouts that holdfast's gateway and probe
// apply to upstreams, taken from the one place that holds them, so that a
// failure has the same name whichever of the three meets it.
func (t *Transport) defaultBase() *http.Transport {
	b, ok := http.DefaultTransport.(*http.Transport)
	if ok {
		b = b.Clone()
	} else { // a program replaced it: start from what net/http ships
		b = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true, MaxIdleConns: 100}
	}
	d := &net.Dialer{Timeout: limits.ConnectTimeout, KeepAlive: limits.TCPKeepAlive}
	b.DialContext = d.DialContext
	b.TLSHandshakeTimeout = limits.ConnectTimeout
	b.ResponseHeaderTimeout = limits.ResponseHeaderTimeout
	b.IdleConnTimeout = limits.IdleConnTimeout
	b.ExpectContinueTimeout = limits.ExpectContinueTimeout
	b.MaxResponseHeaderBytes = t.maxResponseHeaderBytes()
	return b
}
