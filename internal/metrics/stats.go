package metrics

import (
	"sort"
	"sync"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// Stats are the per-route request and error counts of the last minutes,
// for the dashboard and the alert webhook.
type Stats struct {
	// Interval is the length of each point, in seconds.
	Interval float64      `json:"interval_seconds"`
	Routes   []RouteStats `json:"routes"`
}

// RouteStats are one route's points, oldest first.
type RouteStats struct {
	Route  string  `json:"route"`
	Points []Point `json:"points"`
}

// Point counts the requests of one route answered during one interval
// ending at Time. Errors are the requests that failed (a cause other than
// none), and Causes breaks them down.
type Point struct {
	Time     time.Time         `json:"time"`
	Requests uint64            `json:"requests"`
	Errors   uint64            `json:"errors"`
	Codes5xx uint64            `json:"codes_5xx"`     // answered 500 to 599 (upstream answers passed on included)
	Codes502 uint64            `json:"codes_502_504"` // answered 502, 503 or 504: what the shipped alerts measure
	Causes   map[string]uint64 `json:"causes,omitempty"`
}

// sample is the cumulative counts of every route at one time.
type sample struct {
	at     time.Time
	routes map[string]routeCounts
}

type routeCounts struct {
	byCause [maxCauses]uint64
	codes5  uint64
	codes52 uint64 // 502 to 504
}

// sampler takes a sample every interval and keeps the last n.
type sampler struct {
	r        *Registry
	interval time.Duration
	n        int

	mu      sync.Mutex
	samples []sample // oldest first

	stopCh chan struct{}
	done   sync.WaitGroup
	once   sync.Once
}

func newSampler(r *Registry, interval time.Duration, n int) *sampler {
	return &sampler{r: r, interval: interval, n: n, stopCh: make(chan struct{})}
}

func (s *sampler) start() {
	s.take()
	s.done.Go(func() {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-s.stopCh:
				return
			case <-t.C:
				s.take()
			}
		}
	})
}

func (s *sampler) stop() {
	s.once.Do(func() { close(s.stopCh) })
	s.done.Wait()
}

// take records the cumulative counts of every route now.
func (s *sampler) take() {
	r := s.r
	r.mu.Lock()
	routes := make(map[string]*Route, len(r.routes))
	for n, rt := range r.routes {
		routes[n] = rt
	}
	r.mu.Unlock()
	sm := sample{at: r.o.Now(), routes: make(map[string]routeCounts, len(routes))}
	for n, rt := range routes {
		var rc routeCounts
		for i := range rt.byCause {
			rc.byCause[i] = rt.byCause[i].Load()
		}
		rt.codes.each(func(code int, _ cause.Cause, v uint64) {
			if code >= 500 && code <= 599 {
				rc.codes5 += v
			}
			if code >= 502 && code <= 504 {
				rc.codes52 += v
			}
		})
		sm.routes[n] = rc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, sm)
	if len(s.samples) > s.n+1 {
		s.samples = append(s.samples[:0], s.samples[len(s.samples)-s.n-1:]...)
	}
}

// Stats returns the points of every route over the samples kept: one point
// per interval, the difference between two samples.
func (r *Registry) Stats() Stats {
	s := r.samples
	s.mu.Lock()
	samples := append([]sample(nil), s.samples...)
	s.mu.Unlock()
	st := Stats{Interval: s.interval.Seconds(), Routes: []RouteStats{}}
	names := map[string]bool{}
	for _, sm := range samples {
		for n := range sm.routes {
			names[n] = true
		}
	}
	r.mu.Lock()
	for n := range names {
		if r.routes[n] == nil {
			delete(names, n) // removed by a reload
		}
	}
	r.mu.Unlock()
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		rs := RouteStats{Route: n, Points: []Point{}}
		for i := 1; i < len(samples); i++ {
			prev, cur := samples[i-1].routes[n], samples[i].routes[n]
			p := Point{Time: samples[i].at}
			for c := range cur.byCause {
				d := cur.byCause[c] - min(prev.byCause[c], cur.byCause[c])
				p.Requests += d
				if c != int(cause.None) && d > 0 {
					p.Errors += d
					if p.Causes == nil {
						p.Causes = map[string]uint64{}
					}
					p.Causes[cause.Cause(c).String()] = d
				}
			}
			p.Codes5xx = cur.codes5 - min(prev.codes5, cur.codes5)
			p.Codes502 = cur.codes52 - min(prev.codes52, cur.codes52)
			rs.Points = append(rs.Points, p)
		}
		st.Routes = append(st.Routes, rs)
	}
	return st
}
