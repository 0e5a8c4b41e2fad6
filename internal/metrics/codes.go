package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/holdfast/holdfast/cause"
)

// maxCauses bounds the cause values counted in fixed arrays; the cause
// vocabulary has fewer (a test holds it to that).
const maxCauses = 32

// codeTable counts requests by (status code, cause) without a lock or an
// allocation on the hot path: a fixed open-addressing table of atomic
// slots, claimed once per pair. A route sees a handful of pairs; past the
// table's size, pairs go to a map under a mutex, which only a route with
// dozens of distinct statuses and causes ever reaches.
type codeTable struct {
	slots [codeSlots]codeSlot

	mu       sync.Mutex
	overflow map[uint32]*atomic.Uint64
}

const codeSlots = 32

type codeSlot struct {
	key atomic.Uint32 // code<<8 | cause+1; 0: free
	n   atomic.Uint64
}

func codeKey(code int, c cause.Cause) uint32 {
	if code < 0 || code > 999 {
		code = 0
	}
	return uint32(code)<<8 | uint32(c+1)
}

// add counts one request answered with code and cause c.
func (t *codeTable) add(code int, c cause.Cause) {
	k := codeKey(code, c)
	i := (k * 2654435761) >> 27 // Fibonacci hashing onto 32 slots
	for probe := uint32(0); probe < codeSlots; probe++ {
		s := &t.slots[(i+probe)%codeSlots]
		switch got := s.key.Load(); {
		case got == k:
			s.n.Add(1)
			return
		case got == 0 && s.key.CompareAndSwap(0, k):
			s.n.Add(1)
			return
		case got == 0 && s.key.Load() == k:
			// Another request claimed it for the same pair.
			s.n.Add(1)
			return
		}
	}
	t.mu.Lock()
	if t.overflow == nil {
		t.overflow = make(map[uint32]*atomic.Uint64)
	}
	n := t.overflow[k]
	if n == nil {
		n = new(atomic.Uint64)
		t.overflow[k] = n
	}
	t.mu.Unlock()
	n.Add(1)
}

// each calls f for every (code, cause) pair counted, with its count.
func (t *codeTable) each(f func(code int, c cause.Cause, n uint64)) {
	for i := range t.slots {
		s := &t.slots[i]
		if k := s.key.Load(); k != 0 {
			f(int(k>>8), cause.Cause(k&0xff-1), s.n.Load())
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, n := range t.overflow {
		f(int(k>>8), cause.Cause(k&0xff-1), n.Load())
	}
}
