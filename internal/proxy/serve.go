package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/adaptive"
	"github.com/holdfast/holdfast/internal/upstream"
)

// ServeHTTP proxies one request: route, admit the body, then attempts until
// one succeeds or no further attempt is safe, then answer and log.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchangePool.Get().(*exchange)
	x.reset()
	x.start = h.now()
	x.setRequestID(r.Header)
	defer exchangePool.Put(x)
	if h.bodyTO > 0 || h.sendTO > 0 {
		if x.dl = deadlinesOf(w); x.dl != nil {
			x.send = newStall(h.sendTO, x.dl, r.ProtoMajor >= 2, true)
			defer x.stopClientTimers()
		}
	}

	abort := h.serve(w, r, x)
	if x.cache.done != nil {
		x.cache.done() // the requests collapsed behind this one look again
	}
	h.logRequest(r, x)
	if abort {
		// The response had started when the upstream failed or the client
		// stopped reading: the only honest signal left is to cut the
		// stream.
		panic(http.ErrAbortHandler)
	}
	h.finishSend(w, x)
}

// serve runs a request's life in the order it happens: admit, route, admit
// the body, prepare the trip, then attempts until one is the answer (next
// picks a server and decides whether the attempt may be made, try makes it
// and judges its outcome), and answer. Each step answers the client itself
// when the request cannot go on, and says so.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, x *exchange) (abort bool) {
	if !h.admitRequest(w, r, x) || !h.route(w, r, x) || !h.admitRate(w, r, x) || h.fromCache(w, r, x) {
		return false
	}
	body, ok := h.admitBody(w, r, x, x.route.pool)
	if !ok {
		return false
	}
	t := &x.trip
	h.prepare(r, x, t, body)
	for n := 1; ; n++ {
		s, wait, ok := h.next(w, r, x, t, n)
		if !ok {
			if x.status != 0 {
				return false // answered (503), or the client left
			}
			break
		}
		if done, abort := h.try(w, r, x, t, s, n, wait); done {
			return abort
		}
	}
	h.answerExhausted(w, r, x, t)
	return false
}

// route finds the request's route, or answers 404.
func (h *Handler) route(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	x.route = h.router.match(r.Host, r.URL.Path)
	if x.route != nil {
		return true
	}
	x.cause = cause.DestinationNotFound
	x.status = http.StatusNotFound
	x.detail = "no route for host " + r.Host + " path " + r.URL.Path
	h.answerError(w, r, x, 0, nil)
	return false
}

// admitRate asks the route's rate limits, and answers 429 when one
// refuses: with Retry-After (the time until every limit allows), the
// RateLimit-Policy and RateLimit headers, and the cause
// http_request_denied. The client's address is the one the gateway
// believes (X-Forwarded-For only from trusted proxies).
func (h *Handler) admitRate(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	rl := x.route.limits
	if rl == nil {
		return true
	}
	d := rl.Allow(r.Context(), rateKeyIP(h.clientIP(r)), r.Header)
	if d.Allowed {
		return true
	}
	d.WriteHeaders(w.Header())
	x.cause, x.status = cause.HTTPRequestDenied, http.StatusTooManyRequests
	x.detail = "rate limit " + d.Policy.Name + " of route " + x.route.name + " (" + d.Mode.String() + ")"
	h.answerError(w, r, x, time.Duration(d.RetryAfterSeconds())*time.Second, x.route.pages)
	return false
}

// rateKeyIP is the client address as rate limits count it: an IPv6
// address by its /64, the block one subscriber usually has, so that a
// client cannot get a fresh bucket from each of its 2^64 addresses.
func rateKeyIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// trip is what every attempt of one request shares: settled by prepare
// before the first, updated by each attempt. It lives in the pooled
// exchange.
type trip struct {
	p          *pool
	body       *requestBody
	hdr        http.Header // the outgoing header
	up         string      // the protocol of an upgrade, or ""
	idempotent bool
	deadline   time.Time // retry.timeout; zero when none applies
	key        uint64    // the hash policy's key
	hasKey     bool
	last       *upstream.Server // the server of the last attempt
	retryAfter time.Duration    // its Retry-After
	trial      bool             // the attempt about to be made is a breaker's half-open trial
	tok        adaptive.Token   // its slot of the adaptive limit; zero without one
	held       *upstream.Server // the server whose slot next took for the attempt
}

// prepare builds the outgoing header and settles what the attempts share.
func (h *Handler) prepare(r *http.Request, x *exchange, t *trip, body *requestBody) {
	p := x.route.pool
	t.p, t.body = p, body
	t.up = upgradeType(r.Header)
	body.viaStd = body.expect || t.up != ""

	var hdr http.Header
	fwd := &x.fwdVals
	if body.viaStd {
		// net/http's Transport may still read the request after the
		// exchange is over: its header must be its own.
		hdr, _ = outgoingHeader(nil, r.Header, nil, forwardingFields)
		fwd = nil
	} else {
		// holdfast's own client is done with it when the exchange is:
		// the exchange's storage serves again for the next one.
		hdr, x.hdrVals = outgoingHeader(x.hdrMap, r.Header, x.hdrVals, forwardingFields)
		x.hdrMap = hdr
	}
	if t.up != "" {
		hdr.Set("Connection", "Upgrade")
		hdr.Set("Upgrade", t.up)
	}
	if headerHasToken(r.Header, "Te", "trailers") {
		hdr.Set("Te", "trailers")
	}
	setForwarded(hdr, r, h.trusted, x.reqID, fwd)
	x.cache.revalidate(hdr)
	if _, ok := hdr["User-Agent"]; !ok {
		hdr["User-Agent"] = nil // do not let net/http add its own
	}
	t.hdr = hdr

	t.idempotent = cause.Idempotent(r) || x.route.nonIdem
	if p.total > 0 && t.up == "" && body.stream == nil {
		// retry.timeout bounds the retries. A streamed body is never sent
		// twice, so its one long upload is bounded by the send and read
		// timeouts alone, as an upgraded connection is.
		t.deadline = x.start.Add(p.total)
	}
	t.key, t.hasKey = h.hashKey(r, p)
	p.Budget.Request(x.start)
}

// next picks the server of attempt n and decides whether that attempt may
// be made; it waits for a slot (queue) or the backoff first. ok false with
// x.status set means it answered the client (no server at all, or no slot)
// or the client left; with x.status unset, that the retries are over
// (x.retrySkipped says why).
func (h *Handler) next(w http.ResponseWriter, r *http.Request, x *exchange, t *trip, n int) (s *upstream.Server, wait time.Duration, ok bool) {
	p := t.p
	var queueEnd time.Time // set on the first wait for a slot
	if !h.takeLimit(w, r, x, t, n, &queueEnd) {
		return nil, 0, false
	}
	if s = h.pick(w, r, x, t, n, &queueEnd); s == nil {
		h.unadmit(nil, t)
		return nil, 0, false
	}
	if n == 1 {
		return s, 0, true
	}
	now := h.now()
	prev := x.attempts[len(x.attempts)-1]
	wait, skip := p.retry.decide(retryAsk{
		n:          n,
		tried:      x.tried.Has(s),
		lastCause:  prev.Cause,
		timedOut:   timedOutAt(x, s),
		same:       s == t.last,
		retryAfter: t.retryAfter,
		now:        now,
		deadline:   t.deadline,
	})
	if skip == "" && !p.Budget.Allow(now) {
		skip = "budget"
		h.log.Warn("retry skipped: retry budget of pool exhausted", "pool", p.Name, "request_id", x.reqID)
	}
	if skip != "" {
		x.retrySkipped = skip
		h.unadmit(s, t)
		return nil, 0, false
	}
	if wait > 0 && !sleep(r.Context(), wait) {
		x.cause, x.status = cause.ClientClosed, cause.StatusClientClosed
		h.unadmit(s, t)
		return nil, 0, false
	}
	// The previous attempt is now known to have been retried.
	if p.m != nil {
		p.m.Retried(prev.Cause)
	}
	if h.events != nil {
		h.events.Attempt(p.Name, prev.Server, prev.Cause, prev.Status, true)
	}
	return s, wait, true
}

// takeLimit takes a slot of the pool's adaptive limit, waiting in its
// queue while there is none; false when it answered the client or the
// retries are over (see waitSlot).
func (h *Handler) takeLimit(w http.ResponseWriter, r *http.Request, x *exchange, t *trip, n int, queueEnd *time.Time) bool {
	p := t.p
	for p.limit != nil {
		var ok bool
		if t.tok, ok = p.limit.TryAcquire(); ok {
			return true
		}
		if queueEnd.IsZero() {
			*queueEnd = h.queueEnd(t, h.now())
		}
		if !h.waitSlot(w, r, x, t, n, *queueEnd, func() bool {
			t.tok, ok = p.limit.TryAcquire()
			return ok
		}) {
			return false
		}
		if ok {
			return true // the check in line took the slot
		}
		// Woken by a freed slot, which another request may have taken
		// first: try again, within the same deadline.
	}
	return true
}

// pick chooses the server of attempt n among those available and not at
// their max_conns, waiting in the pool's queue while every one is at its
// cap, and takes the server's slot and, for a half-open breaker, a trial.
// nil when it answered the client (503) or the retries are over.
func (h *Handler) pick(w http.ResponseWriter, r *http.Request, x *exchange, t *trip, n int, queueEnd *time.Time) *upstream.Server {
	p := t.p
	for picks := 0; ; picks++ {
		now := h.now()
		s, retryAt := p.Pick(&x.tried, t.key, t.hasKey, now, x.cands[:0])
		switch {
		case s == nil && p.AtCapacity(now):
			if queueEnd.IsZero() {
				*queueEnd = h.queueEnd(t, now)
			}
			if !h.waitSlot(w, r, x, t, n, *queueEnd, func() bool {
				return !p.AtCapacity(h.now()) // a slot freed, or a server came back
			}) {
				return nil
			}
			continue
		case s == nil && n == 1:
			x.cause, x.status = cause.DestinationUnavailable, http.StatusServiceUnavailable
			x.detail = cause.DestinationUnavailable.Explain("upstream " + p.Name)
			ra := time.Second
			if !retryAt.IsZero() {
				ra = retryAt.Sub(now)
			}
			h.answerError(w, r, x, ra, x.route.pages)
			return nil
		case s == nil:
			x.retrySkipped = "no_server"
			return nil
		case picks > 2*len(p.Servers):
			// Every recheck below lost a race: go with this pick.
			s.Acquire()
			t.held = s
			return s
		case !s.TryAcquire():
			continue // its last slot went to another request since the pick
		}
		var admitted bool
		if admitted, t.trial = s.Admit(now); admitted {
			t.held = s
			return s
		}
		s.Release()
		// Its breaker's trial slots went to other requests since the pick:
		// not this server for this request.
		x.tried.Add(s)
	}
}

// unadmit gives back what was taken for an attempt that will not be made:
// a breaker trial at s, a slot of the adaptive limit.
func (h *Handler) unadmit(s *upstream.Server, t *trip) {
	if t.held != nil {
		t.held.Release()
		t.held = nil
	}
	if t.trial && s != nil {
		s.BreakerRecord(upstream.Neutral, true, h.now())
	}
	t.trial = false
	if t.tok != (adaptive.Token{}) {
		t.tok.Ignore()
		t.tok = adaptive.Token{}
		t.p.queue.wake()
	}
}

// queueEnd returns how long a request may wait for a slot: the pool's
// queue.timeout, within the request's retry deadline.
func (h *Handler) queueEnd(t *trip, now time.Time) time.Time {
	if t.p.queue == nil {
		return now
	}
	end := now.Add(t.p.queue.timeout)
	if !t.deadline.IsZero() && t.deadline.Before(end) {
		end = t.deadline
	}
	return end
}

// waitSlot waits in the pool's queue for a server slot, and reports
// whether one may be free now. When not, it answered the client (503
// connection_limit_reached on the first attempt), or the client left, or
// the retries are over.
func (h *Handler) waitSlot(w http.ResponseWriter, r *http.Request, x *exchange, t *trip, n int, until time.Time, ready func() bool) bool {
	p := t.p
	why := "full"
	if p.queue != nil {
		why = p.queue.wait(r.Context(), until, ready)
	}
	switch {
	case why == "":
		return true
	case why == "client":
		x.cause, x.status = cause.ClientClosed, cause.StatusClientClosed
		return false
	case n > 1:
		x.retrySkipped = "no_server"
		return false
	}
	x.cause, x.status = cause.ConnectionLimitReached, http.StatusServiceUnavailable
	x.detail = "every server of upstream " + p.Name + " is at its max_conns"
	if t.tok == (adaptive.Token{}) && p.limit != nil && !p.AtCapacity(h.now()) {
		x.detail = "upstream " + p.Name + " is at its adaptive concurrency limit (" + strconv.Itoa(p.limit.Limit()) + ")"
	}
	switch {
	case p.queue == nil:
		x.detail += ", and the pool has no queue"
	case why == "full":
		x.detail += ", and its queue is full (" + strconv.Itoa(p.queue.size) + " waiting)"
	default:
		x.detail += ", and no slot freed within the queue's timeout"
	}
	if now := h.now(); now.UnixNano() >= p.shedLogAt.Load() {
		// At most one line per pool every 10s: under overload, every
		// request would say the same.
		p.shedLogAt.Store(now.Add(10 * time.Second).UnixNano())
		args := []any{"pool", p.Name, "detail", x.detail}
		if p.limit != nil {
			args = append(args, "adaptive_limit", p.limit.Limit(), "in_flight", p.limit.InFlight())
		}
		if p.queue != nil {
			args = append(args, "queued", p.queue.Len())
		}
		h.log.Warn("requests shed: the pool is at its concurrency limit", args...)
	}
	h.answerError(w, r, x, time.Second, x.route.pages)
	return false
}

// try makes attempt n at s, classifies its outcome, and either answers the
// client with it (done) or sets it aside for another attempt.
func (h *Handler) try(w http.ResponseWriter, r *http.Request, x *exchange, t *trip, s *upstream.Server, n int, wait time.Duration) (done, abort bool) {
	p := t.p
	x.tried.Add(s)
	t.last = s
	release := s.Release
	t.held = nil
	resp, rec, actx, cancel := h.attempt(r, x, p, s, t.hdr, t.body, t.deadline)
	rec.WaitMS = ms(wait)

	var retryable bool
	retryable, t.retryAfter = h.judge(x, t, resp, &rec)
	if t.tok != (adaptive.Token{}) {
		h.sample(t, resp, &rec)
	}
	if p.sm != nil {
		p.sm[s.Index()].Attempt(rec.Cause)
	}
	h.report(p, s, resp, rec, t.trial)
	t.trial = false
	h.noteDesync(p, s, x)
	x.attempts = append(x.attempts, rec)

	if retryable && n >= p.tries {
		retryable = false
		x.retrySkipped = "tries"
	}
	if retryable && !t.body.replayable() {
		retryable = false
		x.retrySkipped = "body_too_large"
	}
	if h.events != nil && !retryable {
		h.events.Attempt(p.Name, s.Name, rec.Cause, rec.Status, false)
	}
	switch {
	case !retryable && resp == nil:
		// The server's slot is free before the client gets the error.
		release()
		cancel(nil)
		p.queue.wake()
		h.answerFailure(w, r, x, rec.Cause)
		return true, false
	case !retryable && x.route.cache != nil && h.cachedAnswer(w, r, x, resp):
		h.noteDesync(p, s, x)
		release()
		cancel(nil)
		p.queue.wake()
		return true, false
	case !retryable:
		abort = h.respond(w, r, x, p, resp, actx, cancel, t.up)
		h.noteDesync(p, s, x)
		release()
		cancel(nil)
		p.queue.wake()
		return true, abort
	case resp != nil:
		h.keep(x, resp)
		h.noteDesync(p, s, x)
	}
	release()
	cancel(nil)
	p.queue.wake()
	return false, false
}

// sample gives the adaptive limit the attempt's latency, up to its
// response header: a drop for outcomes that say the pool is overloaded
// (timeouts, resets, 503 and 429), and nothing for those that say nothing
// of its load (the client left, nothing listening, DNS).
func (h *Handler) sample(t *trip, resp *http.Response, rec *attemptRecord) {
	lat := time.Duration(rec.Duration * float64(time.Millisecond))
	c := rec.Cause
	switch {
	case resp != nil:
		t.tok.Done(lat, resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests)
	case c.IsTimeout() || c == cause.ConnectionTerminated || c == cause.HTTPResponseIncomplete:
		t.tok.Done(lat, true)
	default:
		t.tok.Ignore()
	}
	t.tok = adaptive.Token{}
	t.p.queue.wake()
}

// judge names the outcome of an attempt for the retry decision: whether
// another attempt may follow, and the upstream's Retry-After. An upstream
// status listed in retry.on becomes the cause upstream_status.
func (h *Handler) judge(x *exchange, t *trip, resp *http.Response, rec *attemptRecord) (retryable bool, retryAfter time.Duration) {
	p := t.p
	listed := false
	switch {
	case resp != nil && p.retryOn.status(resp.StatusCode):
		rec.Cause = cause.UpstreamStatus
		listed, retryable = true, rec.Cause.RetryableFor(t.idempotent, true)
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), h.now()); ok {
			retryAfter = d
		}
	case resp == nil && rec.Cause != cause.ClientClosed && p.retryOn.failure(rec.Cause):
		listed, retryable = true, rec.Cause.RetryableFor(t.idempotent, rec.Written)
	}
	if listed && !retryable && !t.idempotent && rec.Cause.RetryableFor(true, rec.Written) {
		// The condition is listed, and only the method stood in the way:
		// a POST that may have reached the upstream.
		x.retrySkipped = "non_idempotent"
	}
	return retryable, retryAfter
}

// answerFailure answers a request whose last attempt failed without a
// response: with an upstream's error response set aside earlier if there
// is one, else holdfast's own error for cause c.
func (h *Handler) answerFailure(w http.ResponseWriter, r *http.Request, x *exchange, c cause.Cause) {
	x.cause = c
	if x.cause == cause.ClientClosed {
		x.status = cause.StatusClientClosed
		return
	}
	if x.route.cache != nil && c != cause.ClientTimeout {
		cond := ""
		if x.kept != nil {
			cond = "http_" + strconv.Itoa(x.kept.status)
			x.cache.fwdStatus = x.kept.status
		}
		if h.serveStale(w, r, x, c, cond) {
			return
		}
	}
	if x.kept != nil && x.cause != cause.ClientTimeout {
		x.status = x.kept.status
		x.cause = cause.UpstreamStatus
		h.writeKept(w, r, x)
		return
	}
	x.status = x.cause.Status()
	if x.clientStatus != 0 {
		x.status = x.clientStatus
	}
	if x.status == cause.StatusAbort {
		x.status = http.StatusBadGateway
	}
	h.answerError(w, r, x, 0, x.route.pages)
}

// answerExhausted answers a request whose last attempt could have been
// retried but no retry could be made (x.retrySkipped says why).
func (h *Handler) answerExhausted(w http.ResponseWriter, r *http.Request, x *exchange, t *trip) {
	if h.events != nil && len(x.attempts) > 0 {
		prev := x.attempts[len(x.attempts)-1]
		h.events.Attempt(t.p.Name, prev.Server, prev.Cause, prev.Status, false)
	}
	if n := len(x.attempts); n > 0 && x.route.cache != nil {
		c, cond := x.attempts[n-1].Cause, ""
		if x.kept != nil {
			c, cond = cause.UpstreamStatus, "http_"+strconv.Itoa(x.kept.status)
			x.cache.fwdStatus = x.kept.status
		}
		if h.serveStale(w, r, x, c, cond) {
			return
		}
	}
	if x.kept != nil {
		x.status = x.kept.status
		x.cause = cause.UpstreamStatus
		h.writeKept(w, r, x)
		return
	}
	if n := len(x.attempts); n > 0 {
		x.cause = x.attempts[n-1].Cause
	}
	x.status = x.cause.Status()
	if x.clientStatus != 0 {
		x.status = x.clientStatus // a stored response that could not be revalidated: 504
	}
	if x.status == cause.StatusAbort || x.status == 0 {
		x.status = http.StatusBadGateway
	}
	h.answerError(w, r, x, 0, x.route.pages)
}

// admitBody reads the client's body into the replay buffer when it fits in
// body_buffer, or prepares it to stream. It answers the client itself (413,
// 400, or nothing for a client that left) and returns false when the request
// cannot go on.
func (h *Handler) admitBody(w http.ResponseWriter, r *http.Request, x *exchange, p *pool) (*requestBody, bool) {
	b := &x.reqBody // pooled with the exchange: no allocation per request
	*b = requestBody{length: r.ContentLength}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		b.buffered = true
		return b, true
	}
	if h.maxBody > 0 {
		if r.ContentLength > h.maxBody {
			h.clientError(w, r, x, http.StatusRequestEntityTooLarge, "request body larger than client.max_body_bytes")
			return nil, false
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
	}
	cb := clientBody{r: r.Body, ctx: r.Context(), st: newStall(h.bodyTO, x.dl, r.ProtoMajor >= 2, false)}
	expect := headerHasToken(r.Header, "Expect", "100-continue")
	b.expect = expect
	if expect || (r.ContentLength > p.bodyBuffer) {
		// Stream: 100-continue must reach the upstream before the body is
		// read, and a body over body_buffer is not held in memory.
		b.stream = newStream(cb, nil)
		return b, true
	}
	lim := p.bodyBuffer
	x.bodyRd = cb
	n, err := x.body.ReadFrom(io.LimitReader(&x.bodyRd, lim+1))
	x.bytesIn = n
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case err == errBodyTimeout:
			x.cause, x.status = cause.ClientTimeout, http.StatusRequestTimeout
			x.detail = cause.ClientTimeout.Explain("client.body_timeout " + h.bodyTO.String())
			h.answerError(w, r, x, 0, x.route.pages)
		case errors.As(err, &mbe):
			h.clientError(w, r, x, http.StatusRequestEntityTooLarge, "request body larger than client.max_body_bytes")
		case r.Context().Err() != nil:
			x.cause, x.status = cause.ClientClosed, cause.StatusClientClosed
		default:
			h.clientError(w, r, x, http.StatusBadRequest, "reading the request body: "+err.Error())
		}
		return nil, false
	}
	if n <= lim {
		x.bodyRd.st.stop() // the body is in: no HTTP/2 watchdog to keep
		b.buffered = true
		return b, true
	}
	// Chunked and larger than body_buffer: send what was read, then the rest.
	sent := x.body.Bytes()
	if upgradeType(r.Header) != "" {
		// An upgrade goes through net/http's Transport, whose writer may
		// outlive the exchange and its pooled buffer.
		sent = bytes.Clone(sent)
	}
	b.stream = newStream(x.bodyRd, sent)
	b.length = -1
	return b, true
}

// Reject answers a client's request that the gateway refuses before routing
// it (a malformed or hostile request) with status and the cause
// http_request_error, and logs it. detail goes to the log, and to the client
// only with expose_details.
func (h *Handler) Reject(w http.ResponseWriter, r *http.Request, status int, detail string) {
	x := exchangePool.Get().(*exchange)
	x.reset()
	x.start = h.now()
	x.setRequestID(r.Header)
	defer exchangePool.Put(x)
	x.cause, x.status, x.detail = cause.HTTPRequestError, status, detail
	h.answerError(w, r, x, 0, nil)
	h.logRequest(r, x)
}

func (h *Handler) clientError(w http.ResponseWriter, r *http.Request, x *exchange, status int, detail string) {
	x.cause, x.status, x.detail = cause.HTTPRequestError, status, detail
	h.answerError(w, r, x, 0, x.route.pages)
}

// report feeds one attempt's outcome to passive health.
func (h *Handler) report(p *pool, s *upstream.Server, resp *http.Response, rec attemptRecord, trial bool) {
	c := rec.Cause
	var hl upstream.Health
	switch {
	case resp != nil && p.failOn.status(resp.StatusCode):
		hl = upstream.SoftFailure
	case resp != nil:
		hl = upstream.Success
	case c == cause.ClientClosed || c == cause.HTTPRequestError || c == cause.ClientTimeout:
		hl = upstream.Neutral
	case !p.failOn.failure(c):
		hl = upstream.Neutral
	case rec.Reused && c == cause.ConnectionTerminated && rec.stale:
		// A pooled connection closed under us (the keep-alive race), or
		// one holdfast itself retired: a matter of timing, not health.
		hl = upstream.Neutral
	case c.Safety() == cause.NeverSent && !c.IsTimeout() && !rec.Written:
		hl = upstream.HardFailure
	default:
		hl = upstream.SoftFailure
	}
	if s.Breaker != nil && s.BreakerRecord(hl, trial, h.now()) {
		h.log.Warn("circuit breaker opened: no requests to the server until its trials pass",
			"pool", p.Name, "server", s.Name, "cause", c.String(), "trial", trial)
	}
	if hl == upstream.Success || hl == upstream.Neutral {
		h.health(p, s, hl, "", "")
		return
	}
	name, detail := c.String(), ""
	if resp != nil {
		name, detail = cause.UpstreamStatus.String(), "status "+strconv.Itoa(resp.StatusCode)
	}
	h.health(p, s, hl, name, detail)
}

// health records one outcome at server s in passive health, and logs an
// ejection it causes.
func (h *Handler) health(p *pool, s *upstream.Server, hl upstream.Health, name, detail string) {
	ev, ok := p.Report(s, hl, name, detail, h.now())
	if !ok {
		return
	}
	if ev.Capped {
		h.log.Warn("ejection skipped: max_ejected_percent reached, server stays in rotation",
			"pool", p.Name, "server", s.Name, "cause", name, "detail", detail)
	} else {
		h.log.Warn("server ejected", "pool", p.Name, "server", s.Name, "cause", name, "detail", detail,
			"for", ev.Duration.String(), "consecutive", ev.Count)
	}
	if h.events != nil {
		h.events.Ejected(p.Name, s.Name, ev.Duration, ev.Capped)
	}
}

// keep reads a discarded upstream response (bounded) and sets it aside in
// case no later attempt produces a response; the connection is then free
// for reuse.
func (h *Handler) keep(x *exchange, resp *http.Response) {
	defer resp.Body.Close()
	buf, err := io.ReadAll(io.LimitReader(resp.Body, keptBodyMax+1))
	if err != nil || len(buf) > keptBodyMax {
		return
	}
	removeHopHeaders(resp.Header)
	x.kept = &keptResponse{status: resp.StatusCode, header: resp.Header, body: buf}
}

func (h *Handler) writeKept(w http.ResponseWriter, r *http.Request, x *exchange) {
	h.boundDrain(w, r, x)
	x.send.start()
	defer x.send.end()
	k := x.kept
	dst := w.Header()
	copyResponseHeader(dst, k.header)
	dst.Set("Content-Length", strconv.Itoa(len(k.body)))
	appendProxyStatus(dst, "holdfast; received-status="+strconv.Itoa(k.status))
	if dst.Get("X-Request-Id") == "" {
		dst.Set("X-Request-Id", x.reqID)
	}
	w.WriteHeader(k.status)
	if r.Method != http.MethodHead {
		n, _ := w.Write(k.body)
		x.bytesOut = int64(n)
	}
}

// hashKey computes the consistent-hash key of a request.
func (h *Handler) hashKey(r *http.Request, p *pool) (uint64, bool) {
	if p.Config.Balance != "hash" {
		return 0, false
	}
	var k string
	switch p.hashKind {
	case hashClientIP:
		k, _, _ = net.SplitHostPort(r.RemoteAddr)
	case hashHeader:
		k = r.Header.Get(p.hashName)
	case hashCookie:
		if c, err := r.Cookie(p.hashName); err == nil {
			k = c.Value
		}
	}
	if k == "" {
		return 0, false
	}
	return upstream.HashString(k), true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// timedOutAt reports whether an attempt of this request at s timed out
// after the request was sent.
func timedOutAt(x *exchange, s *upstream.Server) bool {
	for _, a := range x.attempts {
		if a.Server == s.Name && a.Written && a.Cause.IsTimeout() {
			return true
		}
	}
	return false
}
