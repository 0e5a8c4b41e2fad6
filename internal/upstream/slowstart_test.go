package upstream

import (
	"math"
	"testing"
	"time"
)

// TestSlowStartEveryPolicy: a server that came back at t0 with a slow start
// of 10s gets, in every policy, a share of picks that follows its ramp from
// a tenth of its weight to all of it.
func TestSlowStartEveryPolicy(t *testing.T) {
	for _, pol := range []string{"round_robin", "least_conn", "p2c", "hash"} {
		t.Run(pol, func(t *testing.T) {
			p := testPool(t, pol, "a:1", "b:1", "c:1", "d:1")
			t0 := time.Now()
			d := p.Servers[3]
			for _, s := range p.Servers {
				s.SlowStart = 10 * time.Second
			}
			d.State.upSince.Store(t0.UnixNano())
			prev := -1.0
			for _, at := range []time.Duration{0, 2500 * time.Millisecond, 5 * time.Second, 7500 * time.Millisecond, 11 * time.Second} {
				now := t0.Add(at)
				const n = 40000
				got := 0
				for i := 0; i < n; i++ {
					key := uint64(i) * 0x9e3779b97f4a7c15
					if s, _ := p.Pick(&Tried{}, key, true, now, nil); s == d {
						got++
					}
				}
				share := float64(got) / n
				// Weight w = max(0.1, elapsed/10s) against three servers of 1.
				w := math.Max(0.1, math.Min(1, at.Seconds()/10))
				want := w / (3 + w)
				if math.Abs(share-want) > 0.03 {
					t.Errorf("at %s: share %.3f, want %.3f", at, share, want)
				}
				if share <= prev && at <= 10*time.Second {
					t.Errorf("at %s: share %.3f did not grow from %.3f", at, share, prev)
				}
				prev = share
			}
			if c := d.Condition(t0.Add(time.Second)); c != SlowStart {
				t.Errorf("condition during the ramp = %s, want slow_start", c)
			}
			if c := d.Condition(t0.Add(11 * time.Second)); c != Up {
				t.Errorf("condition after the ramp = %s, want up", c)
			}
		})
	}
}
