package upstream

import (
	"sync"
	"time"
)

// Budget bounds retry amplification for a pool: over a sliding window of ten
// seconds, retries may not exceed a share of requests plus a small floor per
// second, so that a struggling pool is not hit by a retry storm (the retry
// budget of Finagle and Envoy, gRPC's retry throttling in spirit). It is
// safe for concurrent use.
type Budget struct {
	percent  float64
	floor    float64 // retries per second always allowed
	mu       sync.Mutex
	buckets  [budgetBuckets]budgetBucket
	disabled bool
}

const budgetBuckets = 10 // one a second

type budgetBucket struct {
	sec      int64
	requests int64
	retries  int64
}

// NewBudget returns a budget allowing retries up to percent of requests plus
// floor retries a second. percent <= 0 with floor <= 0 allows no retry;
// percent >= 100 disables the budget.
func NewBudget(percent, floor float64) *Budget {
	return &Budget{percent: percent, floor: floor, disabled: percent >= 100}
}

func (b *Budget) bucket(now time.Time) *budgetBucket {
	sec := now.Unix()
	bk := &b.buckets[sec%budgetBuckets]
	if bk.sec != sec {
		*bk = budgetBucket{sec: sec}
	}
	return bk
}

// Request counts one request (first attempts only).
func (b *Budget) Request(now time.Time) {
	if b == nil || b.disabled {
		return
	}
	b.mu.Lock()
	b.bucket(now).requests++
	b.mu.Unlock()
}

// Allow reports whether one more retry fits in the budget, and counts it if
// so.
func (b *Budget) Allow(now time.Time) bool {
	if b == nil || b.disabled {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var req, ret int64
	oldest := now.Unix() - budgetBuckets + 1
	for i := range b.buckets {
		if bk := &b.buckets[i]; bk.sec >= oldest {
			req += bk.requests
			ret += bk.retries
		}
	}
	limit := float64(req)*b.percent/100 + b.floor*budgetBuckets
	if float64(ret)+1 > limit {
		return false
	}
	b.bucket(now).retries++
	return true
}
