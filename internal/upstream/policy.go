package upstream

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Policy chooses one server among candidates. cands is never empty and holds
// only servers that may take the request; all is true when cands is every
// server the policy was built with, in order (nothing ejected or tried), which
// lets a policy use precomputed state. Implementations are safe for
// concurrent use. now is the time of the pick, for the weights of servers
// in slow start.
type Policy interface {
	Pick(cands []*Server, all bool, key uint64, hasKey bool, now time.Time) *Server
}

// NewPolicy returns the policy named by the configuration (round_robin,
// least_conn, p2c, hash) over servers.
func NewPolicy(name string, servers []*Server) (Policy, error) {
	switch name {
	case "", "round_robin":
		return &RoundRobin{}, nil
	case "least_conn":
		return &LeastConn{}, nil
	case "p2c":
		return P2C{}, nil
	case "hash":
		return NewHash(servers), nil
	}
	return nil, fmt.Errorf("unknown balance policy %q", name)
}

// rampsOwn is implemented by policies that apply slow start themselves, in
// their weights; for the others, the pool leaves a server in slow start
// out of the candidates of a pick with the probability of the share it has
// not yet regained.
type rampsOwn interface{ rampsOwn() }

func (*RoundRobin) rampsOwn() {}
func (*Hash) rampsOwn()       {}

// Interface guards.
var (
	_ Policy = (*RoundRobin)(nil)
	_ Policy = (*LeastConn)(nil)
	_ Policy = P2C{}
	_ Policy = (*Hash)(nil)
)

// RoundRobin is nginx's smooth weighted round robin: each pick adds every
// candidate's weight to its running total, takes the largest and subtracts
// the sum from it, so that weights 5,1,1 give a,a,b,a,c,a,a rather than
// a,a,a,a,a,b,c. The zero value is ready.
type RoundRobin struct {
	mu sync.Mutex
}

// Pick implements Policy.
func (rr *RoundRobin) Pick(cands []*Server, _ bool, _ uint64, _ bool, now time.Time) *Server {
	if len(cands) == 1 {
		return cands[0]
	}
	rr.mu.Lock()
	var best *Server
	var total int64
	for _, s := range cands {
		w := s.scaledWeight(now)
		s.current += w
		total += w
		if best == nil || s.current > best.current {
			best = s
		}
	}
	best.current -= total
	rr.mu.Unlock()
	return best
}

// LeastConn picks the candidate with the fewest requests in flight relative
// to its weight; ties go round robin so that an idle pool still spreads load.
type LeastConn struct {
	next atomic.Uint64
}

// Pick implements Policy.
func (lc *LeastConn) Pick(cands []*Server, _ bool, _ uint64, _ bool, now time.Time) *Server {
	n := len(cands)
	start := int(lc.next.Add(1) % uint64(n))
	var best *Server
	for i := 0; i < n; i++ {
		s := cands[(start+i)%n]
		if best == nil || less(s, best) {
			best = s
		}
	}
	return best
}

// less reports whether a is less loaded than b: a.active/a.weight <
// b.active/b.weight, compared without division. Slow start is applied
// before the policy is asked (see rampsOwn).
func less(a, b *Server) bool {
	return a.active.Load()*int64(b.Weight) < b.active.Load()*int64(a.Weight)
}

// P2C is the power of two random choices: draw two distinct candidates at
// random and take the less loaded. It avoids both least_conn's herd on the
// one idle server and round robin's blindness to load.
type P2C struct{}

// Pick implements Policy.
func (P2C) Pick(cands []*Server, _ bool, _ uint64, _ bool, now time.Time) *Server {
	n := len(cands)
	if n == 1 {
		return cands[0]
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := cands[i], cands[j]
	if less(b, a) {
		return b
	}
	return a
}

// Hash is consistent hashing on a ring with virtual nodes (160 per unit of
// weight, as ketama), so that adding or removing a server moves only its
// share of keys. A key whose server is ejected or already tried goes to the
// next server clockwise. Requests without a key are spread at random.
type Hash struct {
	ring []ringPoint
}

type ringPoint struct {
	h uint64
	s *Server
}

// NewHash builds the ring for servers.
func NewHash(servers []*Server) *Hash {
	h := &Hash{}
	for _, s := range servers {
		for v := 0; v < 160*s.Weight; v++ {
			h.ring = append(h.ring, ringPoint{h: HashString(s.URL.Host + "-" + strconv.Itoa(v)), s: s})
		}
	}
	sort.Slice(h.ring, func(a, b int) bool { return h.ring[a].h < h.ring[b].h })
	return h
}

// Pick implements Policy.
// A server in slow start keeps only its ramped share of its keys: a key
// whose point it owns goes on clockwise unless the key's own draw falls
// within the share, so that as the ramp grows the same keys stay with it.
func (h *Hash) Pick(cands []*Server, all bool, key uint64, hasKey bool, now time.Time) *Server {
	if !hasKey || len(h.ring) == 0 {
		return cands[rand.IntN(len(cands))]
	}
	draw := int64((key >> 17) % weightScale)
	i := sort.Search(len(h.ring), func(i int) bool { return h.ring[i].h >= key })
	for k := 0; k < len(h.ring); k++ {
		p := h.ring[(i+k)%len(h.ring)]
		if all {
			if draw < p.s.rampShare(now) {
				return p.s
			}
			continue
		}
		for _, s := range cands {
			if s == p.s && draw < s.rampShare(now) {
				return s
			}
		}
	}
	return cands[0]
}

// HashString is 64-bit FNV-1a, stable across processes and versions so that
// every holdfast instance maps a key to the same server.
func HashString(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	// FNV-1a's low bits mix poorly for short keys: finish with a
	// multiply-xorshift so that the ring is evenly covered.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
