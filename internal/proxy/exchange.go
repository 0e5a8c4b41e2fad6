package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/upstream"
)

// exchange is the state of one client request while it is proxied.
type exchange struct {
	reqID        string
	start        time.Time
	route        *route
	attempts     []attemptRecord
	attemptsBuf  [4]attemptRecord
	tried        upstream.Tried
	cands        [16]*upstream.Server
	status       int
	cause        cause.Cause
	detail       string // explanation with addresses, for the log
	retrySkipped string
	bytesIn      int64
	bytesOut     int64
	body         bytes.Buffer
	kept         *keptResponse
	clientStatus int // the status for a client's own error, when not the cause's
	reqBody      requestBody
}

func (x *exchange) reset() {
	body := x.body
	if body.Cap() > 64<<10 {
		body = bytes.Buffer{} // a large body's buffer is not kept pooled
	}
	*x = exchange{body: body}
	x.body.Reset()
	x.attempts = x.attemptsBuf[:0]
}

// attemptRecord is one line of the attempt ledger in the access log.
type attemptRecord struct {
	Server   string      `json:"server"`
	Phase    cause.Phase `json:"phase"`
	Reused   bool        `json:"reused"`
	IdleMS   float64     `json:"idle_ms,omitempty"`
	Written  bool        `json:"written"`
	Cause    cause.Cause `json:"cause,omitempty"`
	Status   int         `json:"status,omitempty"`
	Duration float64     `json:"duration_ms"`
	WaitMS   float64     `json:"wait_ms,omitempty"` // backoff before this attempt

	// stale: the pooled connection was closed by the upstream before any
	// response byte (the keep-alive race), or retired by holdfast itself.
	stale bool
}

// keptResponse is an upstream error response read in full and set aside, so
// that if later attempts fail without any response it can still be passed
// to the client (never a blank gateway page when the upstream said more).
type keptResponse struct {
	status int
	header http.Header
	body   []byte
}

// keptBodyMax bounds what is read of a discarded response: enough for any
// error page, small enough that draining never costs much.
const keptBodyMax = 64 << 10

// attemptTrace follows one attempt through net/http's transport.
type attemptTrace struct {
	phase     atomic.Uint32
	conn      atomic.Pointer[upConn]
	reused    atomic.Bool
	idle      atomic.Int64
	startWrit atomic.Int64
	since     atomic.Int64 // unix ns when the connection was taken
}

func (t *attemptTrace) set(p cause.Phase) {
	for {
		cur := t.phase.Load()
		if cur >= uint32(p) || t.phase.CompareAndSwap(cur, uint32(p)) {
			return
		}
	}
}

func (t *attemptTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { t.set(cause.PhaseResolve) },
		ConnectStart:      func(string, string) { t.set(cause.PhaseConnect) },
		TLSHandshakeStart: func() { t.set(cause.PhaseTLS) },
		GotConn: func(info httptrace.GotConnInfo) {
			if uc := unwrapUpConn(info.Conn); uc != nil {
				t.gotConn(uc, info.Reused, info.IdleTime)
			}
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil { // called on failure too
				t.set(cause.PhaseWait)
			}
		},
		GotFirstResponseByte: func() { t.set(cause.PhaseWait) },
	}
}

// gotConn notes the connection an attempt is about to write on.
func (t *attemptTrace) gotConn(uc *upConn, reused bool, idle time.Duration) {
	t.set(cause.PhaseWrite)
	t.reused.Store(reused)
	t.idle.Store(int64(idle))
	t.startWrit.Store(uc.Written())
	t.since.Store(uc.now().UnixNano())
	t.conn.Store(uc)
}

// gotResponseByte reports whether the connection delivered any byte after
// the attempt took it.
func (t *attemptTrace) gotResponseByte() bool {
	uc := t.conn.Load()
	return uc != nil && uc.lastRead.Load() > t.since.Load()
}

// written reports whether any byte of the request reached the connection.
func (t *attemptTrace) written() bool {
	uc := t.conn.Load()
	return uc != nil && uc.Written() > t.startWrit.Load()
}

var (
	errTotalTimeout = errors.New("holdfast: retry.timeout reached")
	errReadTimeout  = errors.New("holdfast: read timeout between body reads")
)

// requestBody is the client's body as the attempts see it.
type requestBody struct {
	expect   bool // the client sent Expect: 100-continue
	viaStd   bool // 100-continue or an upgrade: sent with net/http's Transport
	buffered bool // held in full in exchange.body: replayable
	stream   *countingReader
	length   int64 // -1 unknown
}

type countingReader struct {
	r   io.Reader
	n   atomic.Int64
	err atomic.Pointer[error] // a failure reading the client's body
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if err != nil && err != io.EOF {
		e := err // a copy, so that err itself does not escape on every call
		c.err.Store(&e)
	}
	return n, err
}

// readErr returns the error met reading the client's body, or nil.
func (c *countingReader) readErr() error {
	if c == nil {
		return nil
	}
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *countingReader) Close() error { return nil }

// replayable reports whether the body can be sent again.
func (b *requestBody) replayable() bool {
	return b.stream == nil || b.stream.n.Load() == 0
}

func noCancel(error) {}

// outgoing builds the request for one attempt at server s.
func (h *Handler) outgoing(ctx context.Context, r *http.Request, x *exchange, s *upstream.Server, hdr http.Header, body *requestBody) *http.Request {
	path, rawPath := r.URL.Path, r.URL.RawPath
	if x.route.strip && x.route.prefix != "/" {
		path = stripPrefix(path, x.route.prefix)
		if rawPath != "" {
			rawPath = stripPrefix(rawPath, x.route.prefix)
		}
	}
	u := &url.URL{Scheme: s.URL.Scheme, Host: s.URL.Host, Path: path, RawPath: rawPath, RawQuery: r.URL.RawQuery}
	out := &http.Request{
		Method:     r.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Host:       r.Host,
		Trailer:    r.Trailer,
	}
	switch {
	case body.buffered:
		b := x.body.Bytes()
		out.ContentLength = int64(len(b))
		if len(b) > 0 {
			out.Body = io.NopCloser(bytes.NewReader(b))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		}
	case body.stream != nil:
		out.ContentLength = body.length
		out.Body = body.stream
	}
	return out.WithContext(ctx)
}

func stripPrefix(p, prefix string) string {
	p = p[len(prefix):]
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return p
}

// attempt sends one attempt and classifies its outcome. On success (any
// response) resp is set; the caller owns its body. cancel ends the attempt's
// context and must be called once the response is done with.
func (h *Handler) attempt(r *http.Request, x *exchange, p *pool, s *upstream.Server, hdr http.Header, body *requestBody, deadline time.Time) (resp *http.Response, rec attemptRecord, actx context.Context, cancel context.CancelCauseFunc) {
	tr := &attemptTrace{}
	if deadline.IsZero() && !body.viaStd {
		// Nothing will cancel this attempt but the client: its context is
		// enough, and the common case saves a context per attempt.
		actx, cancel = r.Context(), noCancel
	} else {
		actx, cancel = context.WithCancelCause(r.Context())
	}
	var headerTimer *time.Timer
	if !deadline.IsZero() {
		headerTimer = time.AfterFunc(deadline.Sub(h.now()), func() { cancel(errTotalTimeout) })
	}
	start := h.now()
	var err error
	if !body.viaStd {
		// The common case: holdfast's own HTTP/1.1 client.
		out := h.outgoing(actx, r, x, s, hdr, body)
		resp, err = p.h1[s.Index()].roundTrip(actx, out, tr)
	} else {
		// 100-continue: net/http's Transport waits for the upstream's
		// 100 before it reads the client's body.
		ctx := httptrace.WithClientTrace(actx, tr.clientTrace())
		out := h.outgoing(ctx, r, x, s, hdr, body)
		if err = checkOutgoing(out); err == nil {
			resp, err = p.transports[s.Index()].RoundTrip(out)
		}
	}
	if headerTimer != nil {
		headerTimer.Stop()
	}
	rec = attemptRecord{
		Server:   s.Name,
		Phase:    cause.Phase(tr.phase.Load()),
		Reused:   tr.reused.Load(),
		Written:  tr.written(),
		Duration: ms(h.now().Sub(start)),
	}
	if rec.Reused {
		rec.IdleMS = ms(time.Duration(tr.idle.Load()))
	}
	if err != nil {
		if uc := tr.conn.Load(); uc != nil && uc.WriteErr() != nil && rec.Phase == cause.PhaseWrite {
			err = uc.WriteErr()
		}
		rec.Cause = h.classify(r, actx, err, rec.Phase)
		if rerr := body.stream.readErr(); rerr != nil {
			// The client's body failed, not the upstream.
			rec.Cause = cause.HTTPRequestError
			var mbe *http.MaxBytesError
			switch {
			case errors.As(rerr, &mbe):
				x.clientStatus = http.StatusRequestEntityTooLarge
			case r.Context().Err() != nil || errors.Is(rerr, io.ErrUnexpectedEOF):
				rec.Cause = cause.ClientClosed
			}
			err = rerr
		}
		if rec.Cause == cause.ConnectionTerminated && rec.Reused && !tr.gotResponseByte() {
			// The upstream closed a pooled connection under us before any
			// response: learn its idle timeout so that the next connections
			// retire first.
			rec.stale = true
			if idle := time.Duration(tr.idle.Load()); idle >= minLearnIdle {
				s.State.LearnIdle(idle, h.now())
			}
		}
		x.detail = rec.Cause.Explain(s.Addr) + ": " + err.Error()
		return nil, rec, actx, cancel
	}
	rec.Phase = cause.PhaseRead
	rec.Status = resp.StatusCode
	// net/http's Transport may hand back a response before its writer
	// goroutine has counted the last bytes: a response proves the request
	// went out.
	rec.Written = true
	if ka := resp.Header.Get("Keep-Alive"); ka != "" {
		learnKeepAlive(s, ka, h.now())
	}
	return resp, rec, actx, cancel
}

// classify names the cause of an attempt's error, telling a client that went
// away and holdfast's own timers apart from upstream failures.
func (h *Handler) classify(r *http.Request, actx context.Context, err error, ph cause.Phase) cause.Cause {
	if r.Context().Err() != nil {
		return cause.ClientClosed
	}
	switch context.Cause(actx) {
	case errTotalTimeout:
		switch ph {
		case cause.PhaseResolve:
			return cause.DNSTimeout
		case cause.PhaseConnect, cause.PhaseTLS:
			return cause.ConnectionTimeout
		case cause.PhaseRead:
			return cause.ConnectionReadTimeout
		}
		return cause.HTTPResponseTimeout
	case errReadTimeout:
		return cause.ConnectionReadTimeout
	}
	var te interface{ Timeout() bool }
	if ph <= cause.PhaseConnect && errors.As(err, &te) && te.Timeout() {
		// A dial that ran out of its connect timeout, whether in DNS or TCP.
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return cause.DNSTimeout
		}
		return cause.ConnectionTimeout
	}
	if ph == cause.PhaseTLS {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) {
			return cause.TLSProtocolError
		}
	}
	return cause.Classify(err, ph)
}

// learnKeepAlive honours an upstream's "Keep-Alive: timeout=N": pooled
// connections to it retire before N seconds.
func learnKeepAlive(s *upstream.Server, v string, now time.Time) {
	for _, part := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "timeout") {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 {
			s.State.LearnIdle(time.Duration(n)*time.Second, now)
		}
	}
}

// backoff returns the jittered wait before retry number n (1 for the first
// retry): uniform in [0, min(max, base*2^(n-1))), full jitter.
func (p *pool) backoffFor(n int) time.Duration {
	if p.backoff <= 0 {
		return 0
	}
	d := p.backoff
	for i := 1; i < n && d < p.backoffMax; i++ {
		d *= 2
	}
	if p.backoffMax > 0 && d > p.backoffMax {
		d = p.backoffMax
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// parseRetryAfter parses a Retry-After value (delay-seconds or HTTP-date).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
