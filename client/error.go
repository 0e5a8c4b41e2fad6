package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// ErrCircuitOpen is the error of an attempt refused locally because its
// host's circuit breaker is open; its cause is destination_unavailable.
// errors.Is finds it in an *[Error] whose last attempt was refused.
var ErrCircuitOpen = errors.New("client: circuit open")

// ErrThrottled is the error of an attempt refused locally by adaptive
// throttling (Transport.AdaptiveThrottle), because its host rejected most
// of the recent requests; its cause is destination_unavailable. errors.Is
// finds it in an *[Error] whose last attempt was refused.
var ErrThrottled = errors.New("client: throttled: the host rejects most requests")

// Attempt is the record of one attempt. The zero value is an attempt that
// has not happened. It also carries unexported bookkeeping (the URL
// before its string is made, when the response came), so compare
// Attempts field by field rather than with == or a deep comparison.
type Attempt struct {
	N      int    // 1 for the first attempt
	URL    string // the URL tried (after any fallback), password redacted
	Status int    // the response status; 0 when there was no response

	// Cause is None for a response that is not retried on (a success, or a
	// status such as 404 or 500 that retrying cannot fix), upstream_status
	// for 502/503/504, http_request_denied for a retried 429,
	// destination_unavailable for an attempt refused by an open circuit or
	// by adaptive throttling, and the classified error otherwise.
	Cause cause.Cause

	Phase    cause.Phase   // how far the attempt got
	Written  bool          // whether any of the request may have been written
	Duration time.Duration // from sending to the response header or error
	Err      error         // the error; nil when there was a response

	// Hedge is whether the attempt was a hedge (see HedgeConfig): sent
	// while an earlier attempt of the request was still waiting for its
	// response.
	Hedge bool

	u   *url.URL  // the URL tried, until name writes URL from it
	end time.Time // when the attempt's response header or error came
}

// name sets URL from the URL tried, when it is not set yet: the string is
// made only for an attempt that someone sees.
func (a *Attempt) name() {
	if a.URL == "" && a.u != nil {
		a.URL = a.u.Redacted()
	}
}

// StopReason says why a failed attempt was not retried.
type StopReason string

// The reasons a failed attempt is not retried.
const (
	StopAttempts      StopReason = "attempts_exhausted"     // MaxAttempts reached
	StopNotIdempotent StopReason = "not_idempotent"         // POST/PATCH that may have reached the server, with no Idempotency-Key
	StopBodyTooLarge  StopReason = "body_too_large"         // the body is streamed (over BodyBufferLimit) and was read by an attempt
	StopDeadline      StopReason = "deadline"               // the wait would pass the request's deadline, or it passed
	StopCanceled      StopReason = "canceled"               // the request's context was canceled
	StopBudget        StopReason = "retry_budget_exhausted" // the host's retry budget is spent
	StopCircuitOpen   StopReason = "circuit_open"           // every remaining target's circuit is open
	StopThrottled     StopReason = "throttled"              // refused locally by adaptive throttling, with no target left
	StopNotRetryable  StopReason = "not_retryable"          // retrying cannot help (the request itself is bad)
	StopRetryAfter    StopReason = "retry_after_too_long"   // the server's Retry-After exceeds MaxRetryAfter
	StopSuperseded    StopReason = "superseded"             // another attempt in flight (a hedge) answered first: this one was canceled
)

// AttemptInfo is what [Transport.OnAttempt] sees after each attempt: the
// attempt's record and what happens next.
type AttemptInfo struct {
	Attempt
	Method string
	Max    int           // MaxAttempts
	Retry  bool          // whether another attempt follows
	Wait   time.Duration // the wait before the next attempt, when Retry
	Next   string        // the next attempt's URL, when Retry moves to another target
	Stop   StopReason    // why a failed attempt is not retried; "" on success or Retry

	// Pending is how many other attempts of the request (hedges) are
	// still in flight when this one failed: their outcome comes next, with
	// no wait (Retry is true).
	Pending int
}

// String describes the attempt for a person, as in
// "retrying in 2s (502 Bad Gateway, attempt 2/5)".
func (i AttemptInfo) String() string {
	what := i.Cause.String()
	if i.Status != 0 {
		what = fmt.Sprintf("%d %s", i.Status, http.StatusText(i.Status))
	}
	wait := i.Wait.Round(time.Millisecond)
	hedge := ""
	if i.Hedge {
		hedge = ", hedge"
	}
	switch {
	case i.Stop == StopSuperseded:
		return fmt.Sprintf("canceled: another attempt answered first (attempt %d/%d%s)", i.N, i.Max, hedge)
	case i.Retry && i.Pending > 0:
		return fmt.Sprintf("waiting for %d other attempt(s) in flight (%s, attempt %d/%d%s)", i.Pending, what, i.N, i.Max, hedge)
	case i.Retry && i.Next != "":
		return fmt.Sprintf("retrying on %s in %s (%s, attempt %d/%d%s)", i.Next, wait, what, i.N, i.Max, hedge)
	case i.Retry:
		return fmt.Sprintf("retrying in %s (%s, attempt %d/%d%s)", wait, what, i.N, i.Max, hedge)
	case i.Stop != "":
		return fmt.Sprintf("giving up: %s (%s, attempt %d/%d%s)", i.Stop, what, i.N, i.Max, hedge)
	}
	return fmt.Sprintf("done (%s, attempt %d/%d%s)", what, i.N, i.Max, hedge)
}

// Error is returned by RoundTrip (and so, wrapped in a *url.Error, by
// [http.Client.Do]) when no attempt produced a response to return. Use
// errors.As to get it.
type Error struct {
	Method    string
	URL       string        // the request's URL, password redacted
	Cause     cause.Cause   // the cause of the last attempt
	Attempts  int           // how many attempts were made, refused ones included
	History   []Attempt     // every attempt, in the order they ended (hedges may end out of turn)
	TotalWait time.Duration // the time spent waiting between attempts
	Stop      StopReason    // why the last attempt was not retried

	// Err is the last attempt's error as a *cause.Error that fixes its
	// cause, wrapping what the base transport returned; so cause.Of, and
	// errors.Is with such errors as context.DeadlineExceeded,
	// syscall.ECONNREFUSED and ErrCircuitOpen, see through an Error.
	Err error
}

// Error reads like "GET http://api/x: 3 attempts, last: connection_refused
// (the upstream refused the connection); waited 1.2s", followed by
// "; not retried: body_too_large" when retries stopped for another reason
// than MaxAttempts.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Attempts == 0 {
		fmt.Fprintf(&b, "%s %s: not sent: %s (%s)", e.Method, e.URL, e.Cause, e.Cause.Summary())
		if e.Err != nil {
			fmt.Fprintf(&b, ": %v", errors.Unwrap(e.Err))
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%s %s: %d attempt", e.Method, e.URL, e.Attempts)
	if e.Attempts != 1 {
		b.WriteByte('s')
	}
	fmt.Fprintf(&b, ", last: %s (%s); waited %s", e.Cause, e.Cause.Summary(), e.TotalWait.Round(time.Millisecond))
	if e.Stop != StopAttempts && e.Stop != "" {
		fmt.Fprintf(&b, "; not retried: %s", e.Stop)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the last attempt timed out, as [net.Error] does.
func (e *Error) Timeout() bool { return e.Cause.IsTimeout() }
