package proxy

import (
	"math/rand/v2"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// retryPolicy decides whether another attempt of a request may go to a
// server, and after how long: the part of the "next upstream" rules that
// depends only on the request's own history. The budget, which every
// request of the pool shares, is asked after it; whether the last attempt
// was retryable at all (retry.on, the method, the body) is settled by
// classify before.
type retryPolicy struct {
	sameOnTimeout bool          // retry.same_server_on_timeout
	backoff       time.Duration // retry.backoff: the base of the jittered wait
	backoffMax    time.Duration // retry.backoff_max
}

// retryAsk is what the decision about attempt n at one server knows.
type retryAsk struct {
	n          int         // the attempt to make, 2 or more
	tried      bool        // the server was tried already for this request
	lastCause  cause.Cause // how the last attempt ended
	timedOut   bool        // an attempt of this request timed out at the server after it was sent
	same       bool        // the server is the last attempt's
	retryAfter time.Duration
	now        time.Time
	deadline   time.Time // retry.timeout; zero when none applies
}

// decide returns the wait before the attempt, or the reason it must not be
// made (as the access log's retry_skipped names it).
func (rp retryPolicy) decide(a retryAsk) (wait time.Duration, skip string) {
	if a.tried {
		switch {
		case a.lastCause == cause.TLSCertificateError:
			// A rejected certificate will be rejected again.
			return 0, "no_server"
		case a.timedOut && !rp.sameOnTimeout:
			// A server that let this request time out is struggling: the
			// same request again would only add to its load.
			return 0, "timeout_same_server"
		}
		// Going back to a server already tried: give it a moment, and no
		// less than it asked for with Retry-After.
		wait = rp.backoffFor(a.n - 1)
		if a.same && a.retryAfter > wait {
			// Honoured only within the total deadline, or up to
			// backoff_max without one: past that, the upstream's answer
			// (with its Retry-After) goes to the client.
			if (a.deadline.IsZero() && a.retryAfter > rp.backoffMax) ||
				(!a.deadline.IsZero() && a.now.Add(a.retryAfter).After(a.deadline)) {
				return 0, "retry_after"
			}
			wait = a.retryAfter
		}
	}
	if !a.deadline.IsZero() && a.now.Add(wait).After(a.deadline) {
		return 0, "deadline"
	}
	return wait, ""
}

// backoffFor returns the jittered wait before retry number n (1 for the
// first retry): uniform in [0, min(max, base*2^(n-1))], full jitter.
func (rp retryPolicy) backoffFor(n int) time.Duration {
	if rp.backoff <= 0 {
		return 0
	}
	d := rp.backoff
	for i := 1; i < n && d < rp.backoffMax; i++ {
		d *= 2
	}
	if rp.backoffMax > 0 && d > rp.backoffMax {
		d = rp.backoffMax
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}
