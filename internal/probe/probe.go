// Package probe answers "why is this 502?" for a person at a terminal: it
// sends one request on a fresh connection, times every phase (DNS, connect,
// TLS, request, first byte, body), names the outcome with a cause from the
// shared vocabulary, reads the Proxy-Status of any RFC 9209 proxy on the
// way, and says what to check next.
package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/limits"
)

// Options shape each probe. The zero value probes with GET, a 10s timeout
// and the system's resolver and certificate roots.
type Options struct {
	Method    string      // default GET (POST when Body is set)
	Header    http.Header // extra request headers; "Host" sets the Host header
	Body      []byte      // request body
	Insecure  bool        // skip TLS certificate verification (-k)
	ConnectTo string      // host:port to connect to instead of the URL's host, keeping Host and SNI

	// Timeout bounds the whole probe; default 10s. Within it, as at the
	// gateway with its default timeouts, resolving and connecting stop
	// after 5s and the wait for the response header after 60s, and a
	// response header section over 64 KiB is refused (package limits):
	// the probe names a failure as the gateway would.
	Timeout time.Duration

	// Resolver resolves names. nil means net.DefaultResolver.
	Resolver *net.Resolver
	// RootCAs verifies TLS servers. nil means the system roots.
	RootCAs *x509.CertPool
	// Expect decides whether a status passes. nil means below 500.
	Expect func(status int) bool
}

func (o *Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 10 * time.Second
}

// Timings are the durations of each phase of one probe. A phase that did
// not happen is zero.
type Timings struct {
	DNS       time.Duration `json:"dns_ms"`
	Connect   time.Duration `json:"connect_ms"`
	TLS       time.Duration `json:"tls_ms"`
	Request   time.Duration `json:"request_ms"`    // from connected to request written
	FirstByte time.Duration `json:"first_byte_ms"` // from request written to the first response byte
	Body      time.Duration `json:"body_ms"`
	Total     time.Duration `json:"total_ms"`
}

// Result is the outcome of one probe.
type Result struct {
	URL        string        `json:"url"`
	Method     string        `json:"method"`
	Addr       string        `json:"addr,omitempty"` // the address dialled
	Connected  bool          `json:"connected"`      // the TCP connection was made
	Proto      string        `json:"proto,omitempty"`
	Status     int           `json:"status,omitempty"`
	Cause      cause.Cause   `json:"cause,omitempty"`
	Phase      cause.Phase   `json:"phase"`
	Timings    Timings       `json:"timings"`
	BodyBytes  int64         `json:"body_bytes"`
	Error      string        `json:"error,omitempty"`   // Go's error text, for the record
	Explain    string        `json:"explain,omitempty"` // the cause, with the address
	Advice     string        `json:"advice,omitempty"`  // the next thing to check
	Proxies    []ProxyStatus `json:"proxy_status,omitempty"`
	ReportedBy string        `json:"reported_by,omitempty"` // the proxy whose Proxy-Status names the cause
	TLSVersion string        `json:"tls_version,omitempty"`
	CertExpiry time.Time     `json:"cert_expiry,omitzero"`
	OK         bool          `json:"ok"`
}

// Probe sends one request to rawURL on a fresh connection and reports what
// happened, phase by phase. It never returns an error: a failure is the
// Result's Cause.
func Probe(ctx context.Context, rawURL string, o Options) Result {
	res := Result{URL: rawURL, Method: o.Method}
	if res.Method == "" {
		res.Method = http.MethodGet
		if o.Body != nil {
			res.Method = http.MethodPost
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		res.Cause = cause.HTTPRequestError
		res.Error = "not an http or https URL: " + rawURL
		res.Explain = res.Error
		res.Advice = "Give a full URL such as https://api.example.com/health."
		return res
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()

	var (
		tr        cause.Tracker
		start     = time.Now()
		dnsStart  time.Time
		connStart time.Time
		tlsStart  time.Time
		connected time.Time
		wrote     time.Time
		firstByte time.Time
		remote    string
		tlsState  *tls.ConnectionState
		timings   Timings
	)
	trace := &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { dnsStart = time.Now() },
		DNSDone: func(httptrace.DNSDoneInfo) {
			if !dnsStart.IsZero() {
				timings.DNS = time.Since(dnsStart)
			}
		},
		ConnectStart: func(_, addr string) { connStart = time.Now(); remote = addr },
		ConnectDone: func(_, addr string, err error) {
			if err == nil {
				timings.Connect = time.Since(connStart)
				remote = addr
			}
		},
		TLSHandshakeStart: func() { tlsStart = time.Now() },
		TLSHandshakeDone: func(st tls.ConnectionState, err error) {
			if err == nil {
				timings.TLS = time.Since(tlsStart)
				tlsState = &st
			}
		},
		GotConn:              func(info httptrace.GotConnInfo) { connected = time.Now() },
		WroteRequest:         func(httptrace.WroteRequestInfo) { wrote = time.Now() },
		GotFirstResponseByte: func() { firstByte = time.Now() },
	}
	ctx = httptrace.WithClientTrace(tr.WithContext(ctx), trace)

	var body io.Reader
	if o.Body != nil {
		body = bytes.NewReader(o.Body)
	}
	req, err := http.NewRequestWithContext(ctx, res.Method, rawURL, body)
	if err != nil {
		res.Cause, res.Error = cause.HTTPRequestError, err.Error()
		res.Explain = "the request cannot be built: " + err.Error()
		return res
	}
	for k, vs := range o.Header {
		if strings.EqualFold(k, "Host") && len(vs) > 0 {
			req.Host = vs[0]
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "holdfast-probe")
	}

	transport := o.transport(u, req.Host)
	defer transport.CloseIdleConnections()
	resp, err := transport.RoundTrip(req)
	if err == nil {
		tr.Reading()
		res.Status, res.Proto = resp.StatusCode, resp.Proto
		res.Proxies = ParseProxyStatus(resp.Header.Values("Proxy-Status"))
		bodyStart := time.Now()
		n, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res.BodyBytes = n
		timings.Body = time.Since(bodyStart)
		err = rerr
	}
	timings.Total = time.Since(start)
	if !connected.IsZero() && !wrote.IsZero() {
		timings.Request = wrote.Sub(connected)
	}
	if !wrote.IsZero() && !firstByte.IsZero() {
		timings.FirstByte = firstByte.Sub(wrote)
	}
	res.Timings = timings
	res.Phase = tr.Phase()
	res.Addr = remote
	res.Connected = timings.Connect > 0 || res.Status != 0
	if tlsState != nil {
		res.TLSVersion = tls.VersionName(tlsState.Version)
		if len(tlsState.PeerCertificates) > 0 {
			res.CertExpiry = tlsState.PeerCertificates[0].NotAfter
		}
	}

	target := remote
	if target == "" {
		target = u.Host
	}
	switch {
	case err != nil:
		res.Error = err.Error()
		res.Cause = tr.Classify(err)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && res.Cause == cause.ClientClosed {
			res.Cause = cause.HTTPResponseTimeout
		}
		if res.Cause == cause.DNSError || res.Cause == cause.DNSTimeout {
			target = u.Hostname()
		}
		res.Explain = res.Cause.Explain(target)
		if d := cause.TLSDetail(err); d != "" {
			res.Explain += " (" + strings.ReplaceAll(d, "_", " ") + ")"
		}
		res.Advice = advice(res.Cause, target, u, o)
	case res.Status >= 500 || res.Status == http.StatusTooManyRequests:
		res.Cause, res.ReportedBy = fromResponse(res.Status, res.Proxies)
		res.Explain, res.Advice = explainStatus(res, target)
	}
	pass := o.Expect
	if pass == nil {
		pass = func(s int) bool { return s < 500 }
	}
	res.OK = err == nil && pass(res.Status)
	if err == nil && !res.OK && res.Cause == cause.None {
		res.Cause = cause.UpstreamStatus
		res.Explain = "the status " + http.StatusText(res.Status) + " is not what the check expects"
	}
	return res
}

// transport builds a one-shot transport: no pooling, so that every probe
// shows every phase; --connect-to dials elsewhere while Host and SNI stay.
func (o *Options) transport(u *url.URL, host string) *http.Transport {
	d := &net.Dialer{Resolver: o.Resolver, Timeout: limits.ConnectTimeout}
	tlsConf := &tls.Config{InsecureSkipVerify: o.Insecure, RootCAs: o.RootCAs, NextProtos: []string{"http/1.1"}}
	if h, _, err := net.SplitHostPort(host); err == nil {
		tlsConf.ServerName = h
	} else if host != "" {
		tlsConf.ServerName = host
	}
	t := &http.Transport{
		Proxy:              nil,
		DialContext:        d.DialContext,
		TLSClientConfig:    tlsConf,
		DisableKeepAlives:  true,
		DisableCompression: true,
		// HTTP/1.1 only: over HTTP/2, net/http hides some failures (a TLS
		// 1.3 alert after the handshake becomes "client conn could not be
		// established"), and a diagnosis needs the real one.
		ForceAttemptHTTP2:      false,
		TLSHandshakeTimeout:    limits.ConnectTimeout,
		ResponseHeaderTimeout:  limits.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: limits.MaxResponseHeaderBytes,
	}
	if o.ConnectTo != "" {
		to := o.ConnectTo
		t.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, to)
		}
	}
	return t
}
