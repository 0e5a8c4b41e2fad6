package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/upstream"
)

// ServeHTTP proxies one request: route, admit the body, then attempts until
// one succeeds or no further attempt is safe, then answer and log.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchangePool.Get().(*exchange)
	x.reset()
	x.start = h.now()
	x.reqID = requestID(r.Header)
	defer exchangePool.Put(x)
	if h.bodyTO > 0 || h.sendTO > 0 {
		if x.dl = deadlinesOf(w); x.dl != nil {
			x.send = newStall(h.sendTO, x.dl, r.ProtoMajor >= 2, true)
			defer x.stopClientTimers()
		}
	}

	abort := h.serve(w, r, x)
	h.logRequest(r, x)
	if abort {
		// The response had started when the upstream failed or the client
		// stopped reading: the only honest signal left is to cut the
		// stream.
		panic(http.ErrAbortHandler)
	}
	h.finishSend(w, x)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, x *exchange) (abort bool) {
	if !h.admitRequest(w, r, x) {
		return false
	}
	x.route = h.router.match(r.Host, r.URL.Path)
	if x.route == nil {
		x.cause = cause.DestinationNotFound
		x.status = http.StatusNotFound
		x.detail = "no route for host " + r.Host + " path " + r.URL.Path
		h.answerError(w, r, x, 0, nil)
		return false
	}
	p := x.route.pool

	body, ok := h.admitBody(w, r, x, p)
	if !ok {
		return false
	}
	up := upgradeType(r.Header)
	body.viaStd = body.expect || up != ""

	hdr := r.Header.Clone()
	removeHopHeaders(hdr)
	if up != "" {
		hdr.Set("Connection", "Upgrade")
		hdr.Set("Upgrade", up)
	}
	if headerHasToken(r.Header, "Te", "trailers") {
		hdr.Set("Te", "trailers")
	}
	setForwarded(hdr, r, h.trusted)
	hdr.Set("X-Request-Id", x.reqID)
	if _, ok := hdr["User-Agent"]; !ok {
		hdr["User-Agent"] = nil // do not let net/http add its own
	}

	idempotent := cause.Idempotent(r) || x.route.nonIdem
	var deadline time.Time
	if p.total > 0 && up == "" && body.stream == nil {
		// retry.timeout bounds the retries. A streamed body is never sent
		// twice, so its one long upload is bounded by the send and read
		// timeouts alone, as an upgraded connection is.
		deadline = x.start.Add(p.total)
	}
	key, hasKey := h.hashKey(r, p)
	p.Budget.Request(x.start)

	var (
		last       *upstream.Server
		retryAfter time.Duration // the last upstream's Retry-After
	)
	for n := 1; ; n++ {
		now := h.now()
		s, retryAt := p.Pick(&x.tried, key, hasKey, now, x.cands[:0])
		if s == nil {
			if n == 1 {
				x.cause, x.status = cause.DestinationUnavailable, http.StatusServiceUnavailable
				x.detail = cause.DestinationUnavailable.Explain("upstream " + p.Name)
				ra := time.Second
				if !retryAt.IsZero() {
					ra = retryAt.Sub(now)
				}
				h.answerError(w, r, x, ra, x.route.pages)
				return false
			}
			x.retrySkipped = "no_server"
			break
		}
		var wait time.Duration
		if n > 1 {
			if x.tried.Has(s) && x.attempts[len(x.attempts)-1].Cause == cause.TLSCertificateError {
				// A rejected certificate will be rejected again.
				x.retrySkipped = "no_server"
				break
			}
			if x.tried.Has(s) && !p.sameOnTimeout && timedOutAt(x, s) {
				// A server that let this request time out is struggling:
				// the same request again would only add to its load.
				x.retrySkipped = "timeout_same_server"
				break
			}
			if x.tried.Has(s) {
				// Going back to a server already tried: give it a moment,
				// and no less than it asked for with Retry-After.
				wait = p.backoffFor(n - 1)
				if s == last && retryAfter > wait {
					// Honoured only within the total deadline, or up to
					// backoff_max without one: past that, the upstream's
					// answer (with its Retry-After) goes to the client.
					if limit := p.backoffMax; (deadline.IsZero() && retryAfter > limit) ||
						(!deadline.IsZero() && now.Add(retryAfter).After(deadline)) {
						x.retrySkipped = "retry_after"
						break
					}
					wait = retryAfter
				}
			}
			if !deadline.IsZero() && now.Add(wait).After(deadline) {
				x.retrySkipped = "deadline"
				break
			}
			if !p.Budget.Allow(now) {
				x.retrySkipped = "budget"
				h.log.Warn("retry skipped: retry budget of pool exhausted", "pool", p.Name, "request_id", x.reqID)
				break
			}
			if wait > 0 {
				if !sleep(r.Context(), wait) {
					x.cause, x.status = cause.ClientClosed, cause.StatusClientClosed
					return false
				}
			}
		}
		if n > 1 {
			// The previous attempt is now known to have been retried.
			prev := x.attempts[len(x.attempts)-1]
			if p.m != nil {
				p.m.Retried(prev.Cause)
			}
			if h.events != nil {
				h.events.Attempt(p.Name, prev.Server, prev.Cause, prev.Status, true)
			}
		}
		x.tried.Add(s)
		last = s
		release := s.Acquire()
		resp, rec, actx, cancel := h.attempt(r, x, p, s, hdr, body, deadline)
		rec.WaitMS = ms(wait)
		retryAfter = 0

		retryable, listed := false, false
		if resp != nil && p.retryOn.status(resp.StatusCode) {
			rec.Cause = cause.UpstreamStatus
			listed, retryable = true, rec.Cause.RetryableFor(idempotent, true)
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), h.now()); ok {
				retryAfter = d
			}
		} else if resp == nil && rec.Cause != cause.ClientClosed && p.retryOn.failure(rec.Cause) {
			listed, retryable = true, rec.Cause.RetryableFor(idempotent, rec.Written)
		}
		if listed && !retryable && !idempotent && rec.Cause.RetryableFor(true, rec.Written) {
			// The condition is listed, and only the method stood in the
			// way: a POST that may have reached the upstream.
			x.retrySkipped = "non_idempotent"
		}
		if p.sm != nil {
			p.sm[s.Index()].Attempt(rec.Cause)
		}
		h.report(p, s, resp, rec)
		h.noteDesync(p, s, x)
		x.attempts = append(x.attempts, rec)

		if retryable && n >= p.tries {
			retryable = false
			x.retrySkipped = "tries"
		}
		if retryable && !body.replayable() {
			retryable = false
			x.retrySkipped = "body_too_large"
		}
		if h.events != nil && !retryable {
			h.events.Attempt(p.Name, s.Name, rec.Cause, rec.Status, false)
		}

		if !retryable {
			if resp == nil {
				release()
				cancel(nil)
				x.cause = rec.Cause
				if x.cause == cause.ClientClosed {
					x.status = cause.StatusClientClosed
					return false
				}
				if x.kept != nil && x.cause != cause.ClientTimeout {
					x.status = x.kept.status
					x.cause = cause.UpstreamStatus
					h.writeKept(w, r, x)
					return false
				}
				x.status = x.cause.Status()
				if x.clientStatus != 0 {
					x.status = x.clientStatus
				}
				if x.status == cause.StatusAbort {
					x.status = http.StatusBadGateway
				}
				h.answerError(w, r, x, 0, x.route.pages)
				return false
			}
			abort = h.respond(w, r, x, p, resp, actx, cancel, up)
			h.noteDesync(p, s, x)
			release()
			cancel(nil)
			return abort
		}
		if resp != nil {
			h.keep(x, resp)
			h.noteDesync(p, s, x)
		}
		release()
		cancel(nil)
	}
	if h.events != nil && len(x.attempts) > 0 {
		// The last attempt looked retryable, but no retry could be made.
		prev := x.attempts[len(x.attempts)-1]
		h.events.Attempt(p.Name, prev.Server, prev.Cause, prev.Status, false)
	}
	// Out of attempts with no response to pass on.
	if x.kept != nil {
		x.status = x.kept.status
		x.cause = cause.UpstreamStatus
		h.writeKept(w, r, x)
		return false
	}
	if n := len(x.attempts); n > 0 {
		x.cause = x.attempts[n-1].Cause
	}
	x.status = x.cause.Status()
	if x.status == cause.StatusAbort || x.status == 0 {
		x.status = http.StatusBadGateway
	}
	h.answerError(w, r, x, 0, x.route.pages)
	return false
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
	x.reqID = requestID(r.Header)
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
func (h *Handler) report(p *pool, s *upstream.Server, resp *http.Response, rec attemptRecord) {
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
