package probe

import (
	"context"
	"sort"
	"strconv"
	"time"
)

// Summary is what repeated probes of one URL saw: for intermittent 502s.
type Summary struct {
	URL      string         `json:"url"`
	Requests int            `json:"requests"`
	Failed   int            `json:"failed"`
	ByStatus map[string]int `json:"by_status"` // "200", "502", or "none" when no response came
	ByCause  map[string]int `json:"by_cause"`  // failures only
	P50      time.Duration  `json:"p50_ms"`
	P90      time.Duration  `json:"p90_ms"`
	P99      time.Duration  `json:"p99_ms"`
	Elapsed  time.Duration  `json:"elapsed_ms"`
	// Example holds one failed probe in full, to show a failure's phases.
	Example *Result `json:"example_failure,omitempty"`

	latencies []time.Duration
}

// RepeatOptions bound a repeated probe: it stops after Count probes or
// after Duration, whichever comes first (0 means no bound of that kind; at
// least one must be set), sending Rate probes a second (0: one after
// another, as fast as they complete).
type RepeatOptions struct {
	Count    int
	Duration time.Duration
	Rate     float64
	// Progress, when set, is called after each probe with the summary so
	// far.
	Progress func(Summary)
}

// Repeat probes rawURL again and again and summarises what it saw.
func Repeat(ctx context.Context, rawURL string, o Options, ro RepeatOptions) Summary {
	s := Summary{URL: rawURL, ByStatus: map[string]int{}, ByCause: map[string]int{}}
	start := time.Now()
	var end time.Time
	if ro.Duration > 0 {
		end = start.Add(ro.Duration)
	}
	var interval time.Duration
	if ro.Rate > 0 {
		interval = time.Duration(float64(time.Second) / ro.Rate)
	}
	next := start
	for i := 0; ro.Count <= 0 || i < ro.Count; i++ {
		if ctx.Err() != nil || (!end.IsZero() && !time.Now().Before(end)) {
			break
		}
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
				case <-t.C:
				}
				if ctx.Err() != nil {
					break
				}
			}
			next = next.Add(interval)
		}
		r := Probe(ctx, rawURL, o)
		if ctx.Err() != nil && r.Cause != 0 {
			break // interrupted: not a finding
		}
		s.add(r)
		s.Elapsed = time.Since(start)
		if ro.Progress != nil {
			ro.Progress(s)
		}
	}
	s.Elapsed = time.Since(start)
	return s
}

func (s *Summary) add(r Result) {
	s.Requests++
	key := "none"
	if r.Status != 0 {
		key = strconv.Itoa(r.Status)
	}
	s.ByStatus[key]++
	if !r.OK {
		s.Failed++
		s.ByCause[r.Cause.String()]++
		if s.Example == nil {
			ex := r
			s.Example = &ex
		}
	}
	s.latencies = append(s.latencies, r.Timings.Total)
	sorted := append([]time.Duration(nil), s.latencies...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	s.P50, s.P90, s.P99 = percentile(sorted, 50), percentile(sorted, 90), percentile(sorted, 99)
}

// percentile returns the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (p*len(sorted)+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}
