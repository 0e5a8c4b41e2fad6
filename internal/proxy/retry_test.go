package proxy

import (
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
)

func TestRetryPolicyDecide(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	rp := retryPolicy{backoff: 10 * time.Millisecond, backoffMax: 250 * time.Millisecond}
	cases := []struct {
		name     string
		rp       retryPolicy
		ask      retryAsk
		skip     string
		wait     time.Duration // exact, or the upper bound with jitter
		jittered bool
	}{
		{name: "untried server: at once", ask: retryAsk{n: 2}, wait: 0},
		{name: "tried server: jittered backoff", ask: retryAsk{n: 2, tried: true}, wait: 10 * time.Millisecond, jittered: true},
		{name: "third attempt doubles the bound", ask: retryAsk{n: 3, tried: true}, wait: 20 * time.Millisecond, jittered: true},
		{name: "backoff capped", ask: retryAsk{n: 10, tried: true}, wait: 250 * time.Millisecond, jittered: true},
		{name: "bad certificate is not tried again", ask: retryAsk{n: 2, tried: true, lastCause: cause.TLSCertificateError}, skip: "no_server"},
		{name: "bad certificate, another server", ask: retryAsk{n: 2, lastCause: cause.TLSCertificateError}, wait: 0},
		{name: "timed out here: not again", ask: retryAsk{n: 2, tried: true, timedOut: true}, skip: "timeout_same_server"},
		{name: "timed out here, same_server_on_timeout", rp: retryPolicy{sameOnTimeout: true, backoff: 10 * time.Millisecond, backoffMax: 250 * time.Millisecond},
			ask: retryAsk{n: 2, tried: true, timedOut: true}, wait: 10 * time.Millisecond, jittered: true},
		{name: "Retry-After honoured within the deadline", ask: retryAsk{n: 2, tried: true, same: true, retryAfter: time.Second, now: now, deadline: now.Add(5 * time.Second)}, wait: time.Second},
		{name: "Retry-After past the deadline", ask: retryAsk{n: 2, tried: true, same: true, retryAfter: 10 * time.Second, now: now, deadline: now.Add(5 * time.Second)}, skip: "retry_after"},
		{name: "Retry-After past backoff_max without a deadline", ask: retryAsk{n: 2, tried: true, same: true, retryAfter: time.Second}, skip: "retry_after"},
		{name: "Retry-After of another server ignored", ask: retryAsk{n: 2, tried: true, retryAfter: time.Hour}, wait: 10 * time.Millisecond, jittered: true},
		{name: "deadline passed", ask: retryAsk{n: 2, now: now, deadline: now.Add(-time.Millisecond)}, skip: "deadline"},
		{name: "tried server after the deadline", ask: retryAsk{n: 2, tried: true, now: now, deadline: now.Add(-time.Nanosecond)}, skip: "deadline"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := rp
			if c.rp != (retryPolicy{}) {
				p = c.rp
			}
			for i := 0; i < 20; i++ { // the jitter differs each time
				wait, skip := p.decide(c.ask)
				if skip != c.skip {
					t.Fatalf("decide(%+v) skip = %q, want %q", c.ask, skip, c.skip)
				}
				if c.jittered && (wait < 0 || wait > c.wait) || !c.jittered && wait != c.wait {
					t.Fatalf("decide(%+v) wait = %v, want %v (jittered: %v)", c.ask, wait, c.wait, c.jittered)
				}
			}
		})
	}
}
