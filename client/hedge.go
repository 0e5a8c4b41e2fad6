package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// HedgeConfig sets hedged requests, in the manner of gRPC's and Envoy's
// hedging: when an attempt has had no response header for Delay, another
// is sent beside it, to the next fallback base URL if there is one, else
// to the same host (net/http's Transport opens a new connection for it,
// the first one being busy; over HTTP/2 it is a new stream of the same
// connection), and so on every Delay up to MaxInFlight attempts at once.
// The first response that is not a retryable failure wins; the other
// attempts are canceled and their responses, if any, closed. When every
// attempt fails, retries go on as without hedging.
//
// Hedging cuts the tail latency of reads: one slow server, a lost packet
// or a long garbage-collection pause costs Delay rather than the
// request's whole deadline. Its cost is load: every hedge is a request
// the servers work on, mostly for nothing. So only requests that are
// safe to send twice are hedged (GET, HEAD, OPTIONS, TRACE, PUT, DELETE,
// or a request with an Idempotency-Key), never one whose body cannot be
// replayed (a body streamed past BodyBufferLimit) nor one that asks for a
// protocol upgrade (Upgrade, as a WebSocket handshake); every hedge takes a
// token of its host's retry budget, and none is sent when the budget is
// spent, when the host's circuit is not closed or when adaptive
// throttling refuses any of its requests, so that a slow host is not hit
// by a storm of hedges. Hedges are attempts: they count against
// MaxAttempts, and AttemptInfo and Error.History mark them (Hedge). Set
// Delay at about the 95th percentile of the latency, so that about one
// request in twenty is hedged.
//
// The zero value turns hedging off.
type HedgeConfig struct {
	// Delay is how long an attempt may go without a response header
	// before a hedge is sent. If zero or negative, hedging is off.
	Delay time.Duration
	// MaxInFlight is how many attempts of a request may be in flight at
	// once, the first included; 1 turns hedging off. If zero, 2.
	MaxInFlight int
}

// hedges reports whether the request is hedged: hedging is on, it is safe
// to send twice, its body can be given to attempts at the same time, and
// it asks for no protocol upgrade (a WebSocket handshake is a GET, but two
// of them would open two sessions).
func (c *call) hedges() bool {
	hc := c.t.Hedge
	return hc.Delay > 0 && hc.MaxInFlight != 1 && c.idempotent && c.body.shareable() && c.req.Header.Get("Upgrade") == ""
}

// flight is one attempt of a hedged round.
type flight struct {
	n, target int
	h         *host
	probe     uint64
	hedge     bool
	cancel    context.CancelFunc
	resp      *http.Response
	a         Attempt
	tr        *cause.Tracker
}

// hedged sends attempt n to u, the current target, and hedges while no
// response header comes. It returns the first response that is not a
// retryable failure or, when every attempt failed, the attempt that ended
// last, with c.target set to its target, and the number of the last
// attempt made. The other attempts are settled and reported here.
func (c *call) hedged(n int, u *url.URL, h *host, probe uint64) (*http.Response, Attempt, *cause.Tracker, int) {
	maxInFlight := c.t.Hedge.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = 2
	}
	ended := make(chan *flight, maxInFlight)
	inFlight := make(map[*flight]bool, maxInFlight)
	launch := func(f *flight, u *url.URL) {
		ctx, cancel := context.WithCancel(c.ctx)
		f.cancel = cancel
		s := c.prepare(ctx, f.n, f.target, u)
		s.a.Hedge = f.hedge
		inFlight[f] = true
		go func() {
			if s.a.Err != nil {
				f.a, f.tr = s.a, s.tr
			} else {
				f.resp, f.a, f.tr = c.send(s)
			}
			ended <- f
		}()
	}
	last := &flight{n: n, target: c.target, h: h, probe: probe}
	launch(last, u)
	timer := time.NewTimer(c.t.Hedge.Delay)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			if len(inFlight) < maxInFlight && n < c.max && c.ctx.Err() == nil {
				if f, u := c.hedge(n+1, last.target); f != nil {
					n, last = f.n, f
					launch(f, u)
				}
			}
			if n < c.max {
				timer.Reset(c.t.Hedge.Delay)
			}
		case f := <-ended:
			delete(inFlight, f)
			c.settle(f.h, f.probe, f.a)
			if f.a.Cause == cause.None || len(inFlight) == 0 {
				c.supersede(inFlight, ended)
				if f.a.Cause != cause.None {
					c.target = f.target
				}
				if f.resp != nil && f.resp.StatusCode != http.StatusSwitchingProtocols {
					// The attempt's context must outlive RoundTrip, for the
					// body; it ends when the body is closed.
					f.resp.Body = &cancelBody{ReadCloser: f.resp.Body, cancel: f.cancel}
				} else if f.resp == nil {
					f.cancel()
				}
				return f.resp, f.a, f.tr, n
			}
			// Another attempt is still in flight: this failure is not the
			// last word.
			if f.resp != nil {
				c.keep(f.resp)
			}
			f.cancel()
			c.tell(AttemptInfo{Attempt: f.a, Retry: true, Pending: len(inFlight)})
		}
	}
}

// hedge prepares hedge n, to the target after the last one if there is
// one, or else the same: nil when its host should not get it.
func (c *call) hedge(n, after int) (*flight, *url.URL) {
	target := after
	if target < len(c.t.fallbacks) {
		target++
	}
	u := c.urlAt(target)
	now := c.t.clock()
	h := c.t.host(u, now)
	if h.throttle.refusing(now) || h.breaker.current() != BreakerClosed || !h.budget.spend() {
		return nil, nil
	}
	probe, ok := h.breaker.allow(now)
	if !ok { // opened since current
		h.budget.refund()
		return nil, nil
	}
	return &flight{n: n, target: target, h: h, probe: probe, hedge: true}, u
}

// supersede cancels the attempts still in flight, now that the round is
// decided, waits for them to end, closes their responses and reports them.
func (c *call) supersede(inFlight map[*flight]bool, ended <-chan *flight) {
	for f := range inFlight {
		f.cancel()
	}
	for range len(inFlight) {
		f := <-ended
		c.settle(f.h, f.probe, f.a)
		if f.resp != nil {
			f.resp.Body.Close()
		}
		c.tell(AttemptInfo{Attempt: f.a, Stop: StopSuperseded})
	}
	clear(inFlight)
}
