package upstream

import (
	"sync/atomic"
	"time"
)

// Budget bounds retry amplification for a pool: over a sliding window of ten
// seconds, retries may not exceed a share of requests plus a small floor per
// second, so that a struggling pool is not hit by a retry storm (the retry
// budget of Finagle and Envoy, gRPC's retry throttling in spirit). It is
// safe for concurrent use and takes no lock: under contention its counts
// may be off by a request or two, which a budget can afford.
type Budget struct {
	percent  float64
	floor    float64 // retries per second always allowed
	disabled bool
	buckets  [budgetBuckets]budgetBucket
}

const budgetBuckets = 10 // one a second

type budgetBucket struct {
	sec      atomic.Int64
	requests atomic.Int64
	retries  atomic.Int64
}

// NewBudget returns a budget allowing retries up to percent of requests plus
// floor retries a second. percent <= 0 with floor <= 0 allows no retry;
// percent >= 100 disables the budget.
func NewBudget(percent, floor float64) *Budget {
	return &Budget{percent: percent, floor: floor, disabled: percent >= 100}
}

// bucket returns the bucket of the second of now, emptied if it last held
// an older second.
func (b *Budget) bucket(now time.Time) *budgetBucket {
	sec := now.Unix()
	bk := &b.buckets[sec%budgetBuckets]
	if old := bk.sec.Load(); old != sec && bk.sec.CompareAndSwap(old, sec) {
		bk.requests.Store(0)
		bk.retries.Store(0)
	}
	return bk
}

// Request counts one request (first attempts only).
func (b *Budget) Request(now time.Time) {
	if b == nil || b.disabled {
		return
	}
	b.bucket(now).requests.Add(1)
}

// Allow reports whether one more retry fits in the budget, and counts it if
// so.
func (b *Budget) Allow(now time.Time) bool {
	if b == nil || b.disabled {
		return true
	}
	cur := b.bucket(now)
	var req, ret int64
	oldest := now.Unix() - budgetBuckets + 1
	for i := range b.buckets {
		if bk := &b.buckets[i]; bk.sec.Load() >= oldest {
			req += bk.requests.Load()
			ret += bk.retries.Load()
		}
	}
	limit := float64(req)*b.percent/100 + b.floor*budgetBuckets
	if float64(ret)+1 > limit {
		return false
	}
	cur.retries.Add(1)
	return true
}
