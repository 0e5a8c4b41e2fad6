package ratelimit

import (
	"container/list"
	"hash/maphash"
	"strings"
	"sync"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is how many keys each limit tracks when Options.MaxKeys is
// zero.
const DefaultMaxKeys = 100_000

// buckets holds the token buckets of one limit, one per key value, and
// forgets the least recently used when it holds max of them: a flood of
// distinct keys (spoofed headers, a botnet's addresses) costs a bounded
// amount of memory. A forgotten key comes back with a full bucket, which
// only lets a client that was idle long enough to be evicted burst again.
//
// It is a map and a container/list under a mutex, written by hand because it
// is that small; sharding by a hash of the key spreads the lock over
// numShards mutexes, since every request of a route takes one.
type buckets struct {
	seed   maphash.Seed
	mask   uint64
	limit  rate.Limit
	burst  int
	shards []shard
}

type shard struct {
	mu    sync.Mutex
	max   int
	index map[string]*list.Element
	order list.List // of *entry, most recently used first
	_     [64]byte  // keeps neighbouring shards' mutexes off one cache line
}

type entry struct {
	key string
	lim *rate.Limiter
}

// numShards is the number of shards of a limit that tracks many keys; one
// that tracks fewer than minSharded keys has a single shard, so that its
// bound is exact.
const (
	numShards  = 16
	minSharded = 1024
)

// newBuckets returns the buckets of a limit of the given rate and burst that
// tracks at most max keys (max >= 1).
func newBuckets(limit rate.Limit, burst, max int) *buckets {
	n := 1
	if max >= minSharded {
		n = numShards
	}
	b := &buckets{seed: maphash.MakeSeed(), mask: uint64(n - 1), limit: limit, burst: burst, shards: make([]shard, n)}
	for i := range b.shards {
		s := &b.shards[i]
		s.max = max / n
		s.index = make(map[string]*list.Element)
	}
	return b
}

// get returns key's bucket, creating it (and forgetting the least recently
// used key of its shard, if the shard is full) when there is none.
func (b *buckets) get(key string) *rate.Limiter {
	s := &b.shards[maphash.String(b.seed, key)&b.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.index[key]; ok {
		s.order.MoveToFront(el)
		return el.Value.(*entry).lim
	}
	if s.order.Len() >= s.max {
		oldest := s.order.Back()
		s.order.Remove(oldest)
		delete(s.index, oldest.Value.(*entry).key)
	}
	// The key may point into a larger string (a header block, a
	// RemoteAddr): keep a copy of its own.
	e := &entry{key: strings.Clone(key), lim: rate.NewLimiter(b.limit, b.burst)}
	s.index[e.key] = s.order.PushFront(e)
	return e.lim
}

// len returns how many keys b tracks.
func (b *buckets) len() int {
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += s.order.Len()
		s.mu.Unlock()
	}
	return n
}
