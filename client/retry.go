package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// RoundTrip sends req, retrying as the Transport's fields say, and returns
// the first response that is not a retryable failure; when retries run
// out, the last response (or, if the last attempt got none, the last
// discarded one whose body fit in 64 KiB, its body replayed from memory);
// and an *[Error] when no attempt produced a response.
//
// The returned response's body is untouched, except that a read error
// (the upstream reset the connection part way through the body, or the
// body stalled past the deadline) is returned as a *[cause.Error] naming
// its cause, such as http_response_incomplete: a truncated body is never
// reported as a clean end. A body sent without Content-Length or chunked
// encoding ends when the connection closes, so HTTP itself cannot tell
// its truncation from its end.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	if t.initErr != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, t.initErr
	}
	c := &call{t: t, req: req, max: t.maxAttempts()}
	c.attempts = c.history[:0]
	if err := c.body.init(req, t.bodyBufferLimit()); err != nil {
		return nil, &Error{Method: req.Method, URL: req.URL.Redacted(), Cause: cause.HTTPRequestError,
			Stop: StopNotRetryable, Err: &cause.Error{Cause: cause.HTTPRequestError, Err: err}}
	}
	defer c.body.close()
	c.ctx = req.Context()
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		c.ctx, cancel = context.WithTimeout(c.ctx, t.Timeout)
		resp, err := c.start()
		if resp == nil || resp.Body == nil || resp.Body == http.NoBody {
			cancel()
		} else {
			resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
		}
		return resp, err
	}
	return c.start()
}

// errAttemptTimeout is the cause with which the AttemptTimeout timer ends
// an attempt's context.
var errAttemptTimeout = errors.New("client: attempt timeout")

// cancelBody ends a request's Timeout context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

// Close implements io.Closer.
func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// start runs the request: it adds an Idempotency-Key if the Transport
// says so, and sends the attempts.
func (c *call) start() (*http.Response, error) {
	req := c.req
	if c.t.IdempotencyKeys && (req.Method == http.MethodPost || req.Method == http.MethodPatch) &&
		req.Header.Get("Idempotency-Key") == "" && req.Header.Get("X-Idempotency-Key") == "" {
		c.key = newKey()
	}
	c.idempotent = c.key != "" || cause.Idempotent(req)
	return c.run()
}

// call is the state of one request across its attempts. What the first
// attempt needs is part of it, so that a request that succeeds at once
// costs few allocations.
type call struct {
	t          *Transport
	req        *http.Request
	ctx        context.Context
	body       replay
	key        string // the Idempotency-Key added, if any
	idempotent bool
	max        int
	target     int // 0: the request's own URL, i: Fallbacks[i-1]
	attempts   []Attempt
	waited     time.Duration
	kept       *http.Response // the last discarded response, body buffered
	history    [1]Attempt     // attempts' first backing array
	first      sending        // the first attempt's, when not hedged
	sent       bool           // first is taken
}

func (c *call) url() *url.URL { return c.urlAt(c.target) }

// urlAt is the request's URL on target i: 0 for its own, i for
// Fallbacks[i-1].
func (c *call) urlAt(i int) *url.URL {
	if i == 0 {
		return c.req.URL
	}
	fb := c.t.fallbacks[i-1]
	u := *c.req.URL
	u.Scheme, u.Host, u.User = fb.Scheme, fb.Host, fb.User
	return &u
}

func (c *call) run() (*http.Response, error) {
	t := c.t
	for n := 1; ; n++ {
		u, h, probe, refused := c.route(n)
		if refused != "" {
			return c.finish(refused)
		}
		resp, a, tr, last := c.round(n, u, h, probe)
		n = last
		if a.Cause == cause.None {
			c.report(a, false, 0, "")
			return c.deliver(resp, tr), nil
		}
		stop, wait := c.decide(n, resp, a)
		if stop != "" {
			c.report(a, false, 0, stop)
			if resp != nil {
				return c.deliver(resp, tr), nil
			}
			return c.finish(stop)
		}
		if resp != nil {
			c.keep(resp)
		}
		c.report(a, true, wait, "")
		start := t.clock()
		if err := t.wait(c.ctx, wait); err != nil {
			c.waited += t.clock().Sub(start)
			if errors.Is(err, context.Canceled) {
				return c.finish(StopCanceled)
			}
			return c.finish(StopDeadline)
		}
		c.waited += wait
	}
}

// round sends attempt n to u, with hedges when the request may have them,
// and returns the outcome that decides what follows (see hedged) and the
// number of the last attempt made.
func (c *call) round(n int, u *url.URL, h *host, probe uint64) (*http.Response, Attempt, *cause.Tracker, int) {
	if c.hedges() {
		return c.hedged(n, u, h, probe)
	}
	resp, a, tr := c.attempt(c.ctx, n, c.target, u)
	c.settle(h, probe, a)
	return resp, a, tr, n
}

// route picks the target of attempt n: the current one, unless adaptive
// throttling or its open circuit refuses the attempt; then the next
// fallback that lets it through. A refusal is recorded under the same n,
// as it sends nothing; when no target is left, route returns why.
func (c *call) route(n int) (u *url.URL, h *host, probe uint64, refused StopReason) {
	for {
		u = c.url()
		now := c.t.clock()
		h = c.t.host(u, now)
		err, stop := ErrThrottled, StopThrottled
		if h.throttle.allow(now, c.t.random) {
			var ok bool
			if probe, ok = h.breaker.allow(now); ok {
				return u, h, probe, ""
			}
			err, stop = ErrCircuitOpen, StopCircuitOpen
		}
		a := Attempt{N: n, u: u, Cause: cause.DestinationUnavailable, Err: err}
		if c.target == len(c.t.fallbacks) {
			c.report(a, false, 0, stop)
			return nil, nil, 0, stop
		}
		c.target++
		c.report(a, true, 0, "")
	}
}

// settle tells the host's breaker, budget and throttle how an attempt
// sent to it ended.
func (c *call) settle(h *host, probe uint64, a Attempt) {
	now := a.end
	if now.IsZero() {
		now = c.t.clock()
	}
	out := outcomeOf(a.Cause)
	if c.ctx.Err() != nil {
		out = ignored // the caller's own deadline or cancel: nothing about the host
	}
	h.breaker.record(now, out, probe)
	h.budget.record(out)
	if out != ignored {
		// Throttling counts what the host turned away, a 429 included
		// even when it is not retried.
		switch a.Status {
		case 0, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			h.throttle.record(now, false)
		default:
			h.throttle.record(now, true)
		}
	}
}

// attempt sends attempt n to u, Fallbacks[target-1] or the request's own
// URL (target 0), within ctx, and names its cause: None for a response
// that is not retried on, UpstreamStatus or HTTPRequestDenied for one that
// is, the tracker's classification for an error.
func (c *call) attempt(ctx context.Context, n, target int, u *url.URL) (*http.Response, Attempt, *cause.Tracker) {
	s := c.prepare(ctx, n, target, u)
	if s.a.Err != nil {
		return nil, s.a, s.tr
	}
	return c.send(s)
}

// sending is an attempt prepared by the goroutine that runs the request
// (the request body is not safe for others to hand out), to be sent by
// any goroutine.
type sending struct {
	areq       *http.Request
	actx       context.Context
	endAttempt func()
	timer      *time.Timer
	tr         *cause.Tracker
	a          Attempt
}

func (c *call) prepare(ctx context.Context, n, target int, u *url.URL) *sending {
	s := &c.first
	if c.sent {
		s = new(sending)
	}
	c.sent = true
	*s = sending{actx: ctx, endAttempt: func() {}}
	if c.t.reuseTrackers {
		s.tr = cause.AcquireTracker()
	} else {
		s.tr = new(cause.Tracker)
	}
	if d := c.t.AttemptTimeout; d > 0 {
		actx, cancel := context.WithCancelCause(ctx)
		timer := time.AfterFunc(d, func() { cancel(errAttemptTimeout) })
		s.actx, s.timer, s.endAttempt = actx, timer, func() { timer.Stop(); cancel(nil) }
	}
	// A shallow copy: the attempt replaces fields (URL, Body, GetBody)
	// but changes nothing they point to, except the header when it adds a
	// key, which it copies first. Clone would copy the URL and the header
	// on every attempt, a third of the Transport's allocations. Attempts
	// in flight together (hedges) share only what none of them changes.
	areq := c.req.WithContext(s.tr.WithContext(s.actx))
	// The copy keeps the Cancel channel http.Client installs for
	// transports it does not know; the context already carries deadline
	// and cancellation, and that channel makes a hang look like a bad
	// response.
	areq.Cancel = nil //lint:ignore SA1019 cleared, not used
	if target > 0 {
		areq.URL, areq.Host = u, ""
	}
	if c.key != "" {
		h := areq.Header.Clone()
		if h == nil {
			h = make(http.Header, 1)
		}
		h.Set("Idempotency-Key", c.key)
		areq.Header = h
	}
	s.a = Attempt{N: n, u: u}
	body, err := c.body.next(areq)
	if err != nil {
		s.endAttempt()
		s.a.Cause, s.a.Err = cause.HTTPRequestError, err
		return s
	}
	areq.Body = body
	if !c.idempotent {
		// With GetBody set, net/http's HTTP/2 transport resends a request
		// whose stream the server reset, whatever its method, out of
		// holdfast's sight. A request that must not arrive twice is
		// retried only by this loop, which checks that it was never sent.
		areq.GetBody = nil
	}
	s.areq = areq
	return s
}

// send sends a prepared attempt. It touches nothing of c that changes, so
// hedges can be sent concurrently.
func (c *call) send(s *sending) (*http.Response, Attempt, *cause.Tracker) {
	areq, actx, endAttempt, timer, tr, a := s.areq, s.actx, s.endAttempt, s.timer, s.tr, s.a
	start := c.t.clock()
	resp, err := c.t.base.RoundTrip(areq)
	a.end = c.t.clock()
	a.Duration = a.end.Sub(start)
	a.Phase, a.Written = tr.Phase(), tr.Written()
	if err != nil {
		a.Cause, a.Err = tr.Classify(err), err
		if context.Cause(actx) == errAttemptTimeout && c.ctx.Err() == nil {
			// holdfast's own per-attempt timer, not the caller's deadline.
			a.Cause = cause.HTTPResponseTimeout
			if a.Phase <= cause.PhaseTLS {
				a.Cause = cause.ConnectionTimeout
			}
			a.Err = &cause.Error{Cause: a.Cause, Phase: a.Phase, Err: fmt.Errorf("attempt took longer than AttemptTimeout (%v): %w", c.t.AttemptTimeout, err)}
		}
		endAttempt()
		if a.Phase == cause.PhaseNone {
			// The base transport fired no trace hooks (HTTP/3, a custom
			// RoundTripper): nothing proves the request was not sent, but
			// for the failures whose type shows it never left.
			switch a.Cause {
			case cause.DNSError, cause.DNSTimeout, cause.ConnectionRefused, cause.ConnectionTimeout:
			default:
				a.Written = true
			}
		}
		return nil, a, tr
	}
	if timer != nil {
		// The header arrived in time: the body is the caller's to read,
		// bounded by the request's own deadline. The attempt's context
		// ends when the body is closed.
		timer.Stop()
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: endAttempt}
	}
	a.Status = resp.StatusCode
	switch {
	case resp.StatusCode == http.StatusBadGateway, resp.StatusCode == http.StatusServiceUnavailable,
		resp.StatusCode == http.StatusGatewayTimeout:
		a.Cause = cause.UpstreamStatus
	case resp.StatusCode == http.StatusTooManyRequests && c.t.Retry429:
		a.Cause = cause.HTTPRequestDenied
	}
	return resp, a, tr
}

// decide says whether a failed attempt is retried, and after what wait.
// It moves c.target on when the retry goes to the next fallback.
func (c *call) decide(n int, resp *http.Response, a Attempt) (StopReason, time.Duration) {
	t := c.t
	switch {
	case errors.Is(c.ctx.Err(), context.Canceled):
		return StopCanceled, 0
	case c.ctx.Err() != nil:
		return StopDeadline, 0
	case a.Cause.Safety() == cause.NoRetry:
		return StopNotRetryable, 0
	case resp != nil && !c.idempotent, !a.Cause.RetryableFor(c.idempotent, a.Written):
		return StopNotIdempotent, 0 // a response, even a 429, proves the request arrived
	case n >= c.max:
		return StopAttempts, 0
	case !c.body.replayable():
		return StopBodyTooLarge, 0
	}
	next := c.target
	if a.Cause.Safety() == cause.NeverSent && next < len(t.fallbacks) {
		next++ // the request never reached this host: try the next one
	}
	saved := c.target
	c.target = next
	if !t.host(c.url(), t.clock()).budget.allow() {
		c.target = saved
		return StopBudget, 0
	}
	var wait time.Duration
	if next == saved { // a new host needs no time to recover
		wait = c.backoff(n)
		if ra, ok := retryAfter(resp, t.clock()); ok {
			if ra > t.maxRetryAfter() {
				// Retrying sooner than the server asked would break the
				// promise of a minimum wait: the caller gets the response,
				// Retry-After included, and decides.
				c.target = saved
				return StopRetryAfter, 0
			}
			wait = max(wait, ra)
		}
	}
	if dl, ok := c.ctx.Deadline(); ok && !t.clock().Add(wait).Before(dl) {
		c.target = saved
		return StopDeadline, 0
	}
	return "", wait
}

// backoff is the wait before retry n (n >= 1): full jitter over a capped
// exponential, rand[0, min(MaxDelay, BaseDelay*2^(n-1))].
func (c *call) backoff(n int) time.Duration {
	ceil, maxD := c.t.baseDelay(), c.t.maxDelay()
	for i := 1; i < n && ceil < maxD; i++ {
		ceil *= 2
	}
	ceil = min(ceil, maxD)
	return time.Duration(c.t.random(int64(ceil) + 1))
}

// retryAfter reads a Retry-After header, in delay-seconds or as an
// HTTP-date (RFC 9110 section 10.2.3); a date in the past means no wait.
func retryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' { // delay-seconds is 1*DIGIT: no sign
		secs, err := strconv.ParseInt(v, 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			secs, err = math.MaxInt64, nil // absurdly long: still long
		}
		if err == nil {
			if secs > int64(24*time.Hour/time.Second) {
				secs = int64(24 * time.Hour / time.Second) // saturate
			}
			return time.Duration(secs) * time.Second, true
		}
	}
	if when, err := http.ParseTime(v); err == nil {
		return max(when.Sub(now), 0), true
	}
	return 0, false
}

func (c *call) report(a Attempt, retry bool, wait time.Duration, stop StopReason) {
	info := AttemptInfo{Attempt: a, Retry: retry, Wait: wait, Stop: stop}
	if retry && c.t.OnAttempt != nil {
		info.Attempt.name()
		if next := c.url().Redacted(); next != info.URL {
			info.Next = next
		}
	}
	c.tell(info)
}

// tell records an attempt and passes it to OnAttempt.
func (c *call) tell(info AttemptInfo) {
	c.attempts = append(c.attempts, info.Attempt)
	if c.t.OnAttempt == nil {
		return
	}
	info.Method, info.Max = c.req.Method, c.max
	info.Attempt.name()
	c.t.OnAttempt(info)
}

// keep drains and closes a discarded response so that its connection is
// reused, and keeps it, body buffered, in case no later attempt produces
// a response. A body over drainLimit is cut short and not kept.
func (c *call) keep(resp *http.Response) {
	c.dropKept()
	if b, ok := drain(resp.Body); ok {
		resp.Body = b
		c.kept = resp
	}
}

func (c *call) dropKept() {
	if c.kept != nil {
		c.kept.Body.Close()
		c.kept = nil
	}
}

// deliver returns the final response with its body intact.
func (c *call) deliver(resp *http.Response, tr *cause.Tracker) *http.Response {
	c.dropKept()
	switch {
	case resp.StatusCode == http.StatusSwitchingProtocols:
		// The body is the connection: its tracker is left to the garbage
		// collector.
	case resp.Body != nil && resp.Body != http.NoBody:
		tr.Reading()
		b := &causeBody{ReadCloser: resp.Body}
		b.tr.Store(tr)
		resp.Body = b
	default:
		tr.Release()
	}
	return resp
}

// finish ends a request whose last attempt produced no response: the last
// discarded response if one was kept (and the caller is still waiting),
// else an *Error.
func (c *call) finish(stop StopReason) (*http.Response, error) {
	if c.kept != nil && stop != StopCanceled {
		resp := c.kept
		c.kept = nil
		return resp, nil
	}
	c.dropKept()
	return nil, c.fail(stop)
}

func (c *call) fail(stop StopReason) error {
	for i := range c.attempts {
		c.attempts[i].name()
	}
	e := &Error{Method: c.req.Method, URL: c.req.URL.Redacted(), Attempts: len(c.attempts),
		History: c.attempts, TotalWait: c.waited, Stop: stop}
	if stop == StopCanceled && c.ctx.Err() != nil {
		e.Cause, e.Err = cause.ClientClosed, &cause.Error{Cause: cause.ClientClosed, Err: c.ctx.Err()}
		return e
	}
	if len(c.attempts) > 0 {
		last := c.attempts[len(c.attempts)-1]
		e.Cause = last.Cause
		e.Err = &cause.Error{Cause: last.Cause, Phase: last.Phase, Addr: last.URL, Err: last.Err}
	}
	return e
}
