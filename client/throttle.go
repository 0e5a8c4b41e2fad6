package client

import (
	"sync"
	"time"
)

// ThrottleConfig sets adaptive client-side throttling per host, as
// described in Google's Site Reliability Engineering book ("Handling
// Overload"). Over a rolling two-minute window the Transport counts, per
// host, the requests it was asked to send there and those the host
// accepted; a request is accepted when it gets any response but 429, 502,
// 503 or 504 (a connection failure or timeout is a rejection too). Each
// new attempt is then refused locally, at once, with probability
//
//	max(0, (requests - K*accepts) / (requests + 1))
//
// so that a host rejecting most of what it receives is no longer sent what
// it would reject anyway, and the work of rejecting it is spared. A
// refused attempt counts as a request, which keeps the refusals in step
// with the host's recovery: as soon as it accepts again, accepts grow and
// the share refused falls back to zero.
//
// The zero value turns throttling off.
type ThrottleConfig struct {
	// K is how many requests per accepted one may go to the host before
	// throttling starts: with K = 2 (the suggested value) throttling starts
	// when the host rejects more than half of what it receives. A larger K
	// throttles later and less, and wastes more of the host's work on
	// rejections; K = 1 throttles as soon as anything is rejected, and a K
	// between 0 and 1, which would throttle a host that accepts
	// everything, is taken as 1. If zero or negative, throttling is off.
	K float64
}

// The rolling window is kept in throttleSlots slots of throttleSlot each.
const (
	throttleSlot  = 5 * time.Second
	throttleSlots = 24
)

type throttle struct {
	k float64 // 0: off

	mu     sync.Mutex
	window [throttleSlots]struct{ epoch, requests, accepts int64 }
}

// share is the probability with which an attempt is refused now. Called
// with th.mu held.
func (th *throttle) share(now time.Time) float64 {
	epoch := now.UnixNano() / int64(throttleSlot)
	var requests, accepts int64
	for _, s := range th.window {
		if s.epoch > epoch-throttleSlots && s.epoch <= epoch {
			requests, accepts = requests+s.requests, accepts+s.accepts
		}
	}
	return max(0, (float64(requests)-th.k*float64(accepts))/float64(requests+1))
}

func (th *throttle) add(now time.Time, accepted bool) {
	epoch := now.UnixNano() / int64(throttleSlot)
	s := &th.window[epoch%throttleSlots]
	if s.epoch != epoch {
		s.epoch, s.requests, s.accepts = epoch, 0, 0
	}
	s.requests++
	if accepted {
		s.accepts++
	}
}

// allow reports whether an attempt may go to the host, drawing with
// random (uniform over [0, n)). A refusal counts as a request.
func (th *throttle) allow(now time.Time, random func(n int64) int64) bool {
	if th.k <= 0 {
		return true
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	p := th.share(now)
	if p <= 0 || float64(random(1<<53))/(1<<53) >= p {
		return true
	}
	th.add(now, false)
	return false
}

// refusing reports whether the host's throttle refuses any share of
// attempts now.
func (th *throttle) refusing(now time.Time) bool {
	if th.k <= 0 {
		return false
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	return th.share(now) > 0
}

// record counts an attempt that went to the host.
func (th *throttle) record(now time.Time, accepted bool) {
	if th.k <= 0 {
		return
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	th.add(now, accepted)
}
