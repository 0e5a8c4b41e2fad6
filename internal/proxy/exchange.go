package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/limits"
	"github.com/holdfast/holdfast/internal/upstream"
)

// exchange is the state of one client request while it is proxied.
type exchange struct {
	reqID        string
	reqIDVal     []string // a header value holding reqID when holdfast made it, owned by whoever takes it
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
	bodyRd       clientBody    // a body read into body: under client.body_timeout
	dl           connDeadlines // the client connection's; nil if none can be set
	send         stall         // client.send_timeout, on writes of the response
	trip         trip          // what the attempts share (serve.go)
	cache        cacheState    // what the cache step learnt (cache.go)
	out          outRequest    // the request of the attempt in progress, for holdfast's own client

	// The outgoing header's storage, kept from one exchange to the next
	// (serve.go, prepare): the map, the array its values share, and the
	// forwarding fields' values. Nothing may keep a reference to them once
	// the exchange is over.
	hdrMap  http.Header
	hdrVals []string
	fwdVals [forwardingFields]string
}

func (x *exchange) reset() {
	body := x.body
	if body.Cap() > 64<<10 {
		body = bytes.Buffer{} // a large body's buffer is not kept pooled
	}
	hdrMap, hdrVals := x.hdrMap, x.hdrVals
	if len(hdrMap) > maxKeptFields || cap(hdrVals) > maxKeptFields {
		hdrMap, hdrVals = nil, nil // an unusually large header's are not kept
	}
	// Kept empty: a pooled exchange holds none of the last request's
	// values (its cookies, its credentials).
	clear(hdrMap)
	clear(hdrVals[:cap(hdrVals)])
	*x = exchange{body: body, hdrMap: hdrMap, hdrVals: hdrVals}
	x.body.Reset()
	x.attempts = x.attemptsBuf[:0]
}

// maxKeptFields bounds the outgoing header an exchange keeps the storage
// of for the next one.
const maxKeptFields = 64

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
const keptBodyMax = limits.DiscardedBodyBytes

// attemptTrace follows one attempt through net/http's transport.
type attemptTrace struct {
	// until is retry.timeout's deadline for this attempt, until a response
	// header arrives; zero for none. Read by holdfast's own client only.
	until     time.Time
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
				t.gotConn(uc, info.Reused, info.IdleTime, uc.now())
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

// gotConn notes the connection an attempt is about to write on, taken at
// now.
func (t *attemptTrace) gotConn(uc *upConn, reused bool, idle time.Duration, now time.Time) {
	t.set(cause.PhaseWrite)
	t.reused.Store(reused)
	t.idle.Store(int64(idle))
	t.startWrit.Store(uc.Written())
	t.since.Store(now.UnixNano())
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
	errBodyTimeout  = errors.New("holdfast: the request body stalled longer than client.body_timeout")
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
	cb  clientBody            // what r reads from: the client's body
}

// newStream returns the reader through which a body streams upstream:
// first sent, the part already read into the replay buffer, then the rest
// of cb.
func newStream(cb clientBody, sent []byte) *countingReader {
	c := &countingReader{cb: cb}
	c.r = &c.cb
	if len(sent) > 0 {
		c.r = io.MultiReader(bytesReader(sent), &c.cb)
	}
	return c
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

// connDeadlines is what net/http's response writers offer to bound one read
// or write on the client's connection (HTTP/1) or stream (HTTP/2).
type connDeadlines interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// deadlinesOf finds the deadlines behind w, as http.ResponseController
// does, without its allocation per call on writers that have none.
func deadlinesOf(w http.ResponseWriter) connDeadlines {
	for {
		switch t := w.(type) {
		case connDeadlines:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}

// stall bounds each read, or each write, on a client connection by d.
//
// On HTTP/1 that is the socket's deadline, which matters only to an
// operation in progress. It is moved before an operation only once less
// than d is left of it, so that many small operations set it a few times
// per d rather than each once: every operation gets d, and at most d and a
// sixteenth.
//
// On HTTP/2 a deadline is a timer on the stream, which resets the stream
// when it runs out whether an operation is in progress or not (a pause of
// the upstream's would cut the client), and each setting is a message to
// the connection's goroutine and an allocation. A watchdog notes instead
// when the operation in progress began, and cuts one that has run d by
// setting a deadline in the past.
type stall struct {
	d     time.Duration // 0: no limit
	dl    connDeadlines
	write bool
	at    time.Time // HTTP/1: the deadline set; zero for none
	dog   *watchdog // HTTP/2
}

func newStall(d time.Duration, dl connDeadlines, h2, write bool) stall {
	if d <= 0 || dl == nil {
		return stall{}
	}
	s := stall{d: d, dl: dl, write: write}
	if h2 {
		s.dog = newWatchdog(d, dl, write)
	}
	return s
}

// start is called before an operation, end after it.
func (s *stall) start() {
	if s.d <= 0 {
		return
	}
	if s.dog != nil {
		s.dog.since.Store(int64(time.Since(s.dog.base)) | 1)
		return
	}
	now := time.Now()
	if !s.at.IsZero() && s.at.Sub(now) >= s.d {
		return
	}
	s.at = now.Add(s.d + s.d/16)
	s.set(s.at)
}

func (s *stall) end() {
	if s.dog != nil {
		s.dog.since.Store(0)
	}
}

func (s *stall) set(t time.Time) {
	if s.write {
		_ = s.dl.SetWriteDeadline(t)
	} else {
		_ = s.dl.SetReadDeadline(t)
	}
}

// clear lifts an HTTP/1 deadline.
func (s *stall) clear() {
	if s.d > 0 && s.dog == nil && !s.at.IsZero() {
		s.at = time.Time{}
		s.set(s.at)
	}
}

// expired reports whether an operation that just failed ran out of time.
func (s *stall) expired() bool {
	if s.dog != nil {
		return s.dog.fired.Load()
	}
	return !s.at.IsZero() && !time.Now().Before(s.at)
}

// stop ends the watchdog. It must be called before the handler returns:
// past that, net/http's HTTP/2 writer is gone and setting its deadline
// panics.
func (s *stall) stop() {
	if s.dog != nil {
		s.dog.stop()
	}
}

// watchdog cuts an HTTP/2 read or write that has run d.
type watchdog struct {
	d     time.Duration
	dl    connDeadlines
	write bool
	base  time.Time
	since atomic.Int64 // since base, when the operation in progress began; 0: none
	fired atomic.Bool

	mu   sync.Mutex // orders check and stop
	done bool
	t    *time.Timer
}

func newWatchdog(d time.Duration, dl connDeadlines, write bool) *watchdog {
	w := &watchdog{d: d, dl: dl, write: write, base: time.Now()}
	w.mu.Lock()
	w.t = time.AfterFunc(d, w.check)
	w.mu.Unlock()
	return w
}

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	next := w.d
	if since := w.since.Load(); since != 0 {
		ran := time.Since(w.base) - time.Duration(since)
		if ran >= w.d {
			w.fired.Store(true)
			past := time.Unix(1, 0)
			if w.write {
				_ = w.dl.SetWriteDeadline(past)
			} else {
				_ = w.dl.SetReadDeadline(past)
			}
			return
		}
		next = w.d - ran
	}
	w.t.Reset(next)
}

func (w *watchdog) stop() {
	w.mu.Lock()
	w.done = true
	w.t.Stop()
	w.mu.Unlock()
}

// clientBody is a client's request body with client.body_timeout on every
// read (nginx's client_body_timeout): a body that trickles holds neither the
// request nor the upstream connection it streams to for longer than that
// between two reads. It is read from one goroutine at a time.
type clientBody struct {
	r    io.Reader
	ctx  context.Context // the request's
	st   stall
	over bool // the body ended (EOF or an error): no deadline is set again
}

func (c *clientBody) Read(p []byte) (int, error) {
	if c.st.d <= 0 || c.over || c.ctx.Err() != nil {
		// Past the handler (net/http's Transport may still read a body
		// after the response), an HTTP/1 connection may be serving the
		// next request: no deadline of this one may land on it.
		return c.r.Read(p)
	}
	c.st.start()
	n, err := c.r.Read(p)
	c.st.end()
	switch {
	case err == nil:
	case err == io.EOF:
		c.over = true
		// At EOF net/http starts reading an HTTP/1 connection in the
		// background, to notice a client that leaves: a deadline left set
		// would end that read and cancel the request's context as if the
		// client had gone. (Go 1.26's net/http clears it too as that read
		// starts; not setting it again matters more.)
		c.st.clear()
	default:
		// Any other error is left with its deadline, so that net/http's
		// own reads of what remains of the body after the handler (up to
		// 256 KiB, to keep the connection) stay bounded too.
		c.over = true
		if errors.Is(err, os.ErrDeadlineExceeded) || c.st.expired() {
			err = errBodyTimeout
		}
	}
	return n, err
}

// stopClientTimers ends the client timeouts' watchdogs before the handler
// returns. A streamed body's reader may outlive the handler; its stall is
// stopped too (it shares its watchdog with bodyRd's when part of the body
// was read first).
func (x *exchange) stopClientTimers() {
	x.send.stop()
	x.bodyRd.st.stop()
	if x.reqBody.stream != nil {
		x.reqBody.stream.cb.st.stop()
	}
	// The pooled exchange keeps no hold on the connection.
	x.dl, x.send, x.bodyRd = nil, stall{}, clientBody{}
}

// replayable reports whether the body can be sent again.
func (b *requestBody) replayable() bool {
	return b.stream == nil || b.stream.n.Load() == 0
}

func noCancel(error) {}

// outRequest is the request of one attempt with what it points to,
// allocated as one.
type outRequest struct {
	req  http.Request
	url  url.URL
	body bytesBody
}

// bytesBody is a buffered request body for holdfast's own client, which
// rewinds it for another attempt (rewind, h1.go) with no GetBody closure.
type bytesBody struct{ bytes.Reader }

func (*bytesBody) Close() error { return nil }

// outgoing builds the request for one attempt at server s. Only a request
// for net/http's Transport carries ctx: holdfast's own client takes the
// attempt's context as an argument, which saves a copy of the request.
func (h *Handler) outgoing(ctx context.Context, r *http.Request, x *exchange, s *upstream.Server, hdr http.Header, body *requestBody) *http.Request {
	path, rawPath := r.URL.Path, r.URL.RawPath
	if x.route.strip && x.route.prefix != "/" {
		path = stripPrefix(path, x.route.prefix)
		if rawPath != "" {
			rawPath = stripPrefix(rawPath, x.route.prefix)
		}
	}
	o := &x.out
	if body.viaStd {
		// net/http's Transport may use the request after the exchange has
		// gone back to the pool; holdfast's own client is done with it
		// once the response is (the next attempt's request takes its
		// place only after that).
		o = &outRequest{}
	}
	o.url = url.URL{Scheme: s.URL.Scheme, Host: s.URL.Host, Path: path, RawPath: rawPath, RawQuery: r.URL.RawQuery}
	o.req = http.Request{
		Method:     r.Method,
		URL:        &o.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Host:       r.Host,
		Trailer:    r.Trailer,
	}
	out := &o.req
	switch {
	case body.buffered && !body.viaStd:
		b := x.body.Bytes()
		out.ContentLength = int64(len(b))
		if len(b) > 0 {
			o.body.Reset(b)
			out.Body = &o.body
		}
	case body.buffered:
		b := x.body.Bytes()
		if len(b) > 0 {
			// net/http's Transport writes a body on a goroutine of its own,
			// which may still be reading after the response came back and
			// the exchange, with its buffer, went to the next request.
			b = bytes.Clone(b)
		}
		out.ContentLength = int64(len(b))
		if len(b) > 0 {
			out.Body = io.NopCloser(bytes.NewReader(b))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		}
	case body.stream != nil:
		out.ContentLength = body.length
		out.Body = body.stream
	}
	if body.viaStd {
		return out.WithContext(ctx)
	}
	return out
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
	tr := &attemptTrace{until: deadline}
	var headerTimer *time.Timer
	if !body.viaStd {
		// Nothing will cancel this attempt but the client: its context is
		// enough. holdfast's own client applies the total deadline as
		// socket deadlines, which saves a context and a timer per attempt.
		actx, cancel = r.Context(), noCancel
	} else {
		var cancelStd context.CancelCauseFunc // captured only here, so on the heap only here
		actx, cancelStd = context.WithCancelCause(r.Context())
		cancel = cancelStd
		if !deadline.IsZero() {
			headerTimer = time.AfterFunc(deadline.Sub(h.now()), func() { cancelStd(errTotalTimeout) })
		}
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
			case rerr == errBodyTimeout:
				// Never the upstream's fault, never retried: the body
				// that was being sent is gone.
				rec.Cause = cause.ClientTimeout
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
		if rec.Cause == cause.ClientTimeout {
			// The address in parentheses would read as the client's.
			x.detail = rec.Cause.Explain("client.body_timeout " + h.bodyTO.String() + ", streaming to " + s.Addr)
		}
		return nil, rec, actx, cancel
	}
	rec.Phase = cause.PhaseRead
	rec.Status = resp.StatusCode
	// net/http's Transport may hand back a response before its writer
	// goroutine has counted the last bytes: a response proves the request
	// went out.
	rec.Written = true
	if ka := field(resp.Header, "Keep-Alive"); ka != "" {
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
