package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// report writes the Markdown report of the runs.
func report(w io.Writer, o *options, runs []*run) {
	fmt.Fprintf(w, "# holdfast under overload\n\n")
	work := "works on requests whose caller went away, when their turn comes"
	if o.abandon {
		work = "drops queued requests whose caller went away (-abandon)"
	}
	fmt.Fprintf(w, "Backend: %d workers × %v → capacity %.0f req/s; it %s.\n", o.workers, o.service, o.capacity(), work)
	fmt.Fprintf(w, "Load: open loop, %.0f req/s (%g× capacity) for %v, client deadline %v", o.capacity()*o.multiplier, o.multiplier, o.duration, o.deadline)
	if o.warmup > 0 {
		fmt.Fprintf(w, ", after %v of warm-up at %.0f req/s (not counted)", o.warmup, o.capacity()/2)
	}
	fmt.Fprintf(w, ".\n")
	if o.busy != "" {
		fmt.Fprintf(w, "Warning: %s before the runs; other work competes for the CPU and the numbers are noisy.\n", o.busy)
	}
	fmt.Fprintln(w)

	var steady, halved []*run
	for _, r := range runs {
		if r.halve {
			halved = append(halved, r)
		} else {
			steady = append(steady, r)
		}
	}
	if len(steady) > 0 {
		fmt.Fprintf(w, "## Steady overload\n\n")
		summaryTable(w, o, steady)
		for _, r := range steady {
			if o.timeline && r.skipped == "" {
				timeline(w, o, r)
			}
		}
	}
	if len(halved) > 0 {
		fmt.Fprintf(w, "## Capacity halved at %v (%d → %d workers)\n\n", o.halveAt, o.workers, o.workers/2)
		summaryTable(w, o, halved)
		for _, r := range halved {
			if r.skipped == "" {
				timeline(w, o, r)
			}
		}
	}
}

func summaryTable(w io.Writer, o *options, runs []*run) {
	fmt.Fprintln(w, "| configuration | offered req/s | goodput req/s | goodput ÷ capacity | 2xx p50 ms | 2xx p99 ms | shed | shed p50 ms | shed p99 ms | timeouts | other failures | backend work wasted |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var notes []string
	for _, r := range runs {
		if r.skipped != "" {
			fmt.Fprintf(w, "| %s | skipped: %s |%s\n", r.cfg.label, r.skipped, strings.Repeat(" |", 10))
			continue
		}
		var okLat, shedLat []time.Duration
		timeouts := 0
		other := map[string]int{}
		for _, res := range r.results {
			switch res.outcome {
			case ok:
				okLat = append(okLat, res.took)
			case shed:
				shedLat = append(shedLat, res.took)
			case timeout:
				timeouts++
			default:
				other[res.detail]++
			}
		}
		secs := o.duration.Seconds()
		capacity := o.capacity()
		if r.halve {
			// The capacity the run had on average, full then halved.
			h := o.halveAt.Seconds()
			capacity = (capacity*h + capacity/2*(secs-h)) / secs
		}
		goodput := float64(len(okLat)) / secs
		wasted := "–"
		if all := r.backend.Served + r.backend.Wasted; all > 0 {
			wasted = fmt.Sprintf("%.0f%%", 100*float64(r.backend.Wasted)/float64(all))
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f%% | %s | %s | %d | %s | %s | %d | %d | %s |\n",
			r.cfg.label, float64(len(r.results))/secs, goodput, 100*goodput/capacity,
			msec(quantile(okLat, 0.5)), msec(quantile(okLat, 0.99)),
			len(shedLat), msec(quantile(shedLat, 0.5)), msec(quantile(shedLat, 0.99)),
			timeouts, sum(other), wasted)
		if len(other) > 0 {
			var kinds []string
			for _, k := range slices.Sorted(maps.Keys(other)) {
				kinds = append(kinds, fmt.Sprintf("%d × %s", other[k], k))
			}
			notes = append(notes, fmt.Sprintf("%s, other failures: %s.", r.cfg.label, strings.Join(kinds, "; ")))
		}
		if r.cfg.name == "adaptive" && !slices.ContainsFunc(r.seconds, func(s sample) bool { return s.limit >= 0 }) {
			notes = append(notes, fmt.Sprintf("%s: the pool's JSON at /api/v1/pools never showed an adaptive limit (\"adaptive\": {\"limit\": N}); this holdfast accepted the configuration, but may not apply the limit.", r.cfg.label))
		}
		if r.maxLag > 50*time.Millisecond {
			notes = append(notes, fmt.Sprintf("%s: the load generator fell up to %v behind its schedule; the machine may be too busy for this rate.", r.cfg.label, r.maxLag.Round(time.Millisecond)))
		}
	}
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
}

// timeline writes one row per second of a run: the answers that arrived in
// that second, and the state of holdfast and the backend at its end.
func timeline(w io.Writer, o *options, r *run) {
	fmt.Fprintf(w, "### %s, second by second\n\n", r.cfg.label)
	fmt.Fprintln(w, "| second | workers | limit | in flight | backend queue | 2xx/s | shed/s | timeouts/s | 2xx p50 ms |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	n := int(o.duration / time.Second)
	type bucket struct {
		ok, shed, timeouts int
		lat                []time.Duration
	}
	buckets := make([]bucket, n+2)
	for _, res := range r.results {
		i := int((res.at + res.took) / time.Second)
		if i >= len(buckets) {
			continue
		}
		switch res.outcome {
		case ok:
			buckets[i].ok++
			buckets[i].lat = append(buckets[i].lat, res.took)
		case shed:
			buckets[i].shed++
		case timeout:
			buckets[i].timeouts++
		}
	}
	for i := range n {
		s := sample{workers: -1, queued: -1, inFlight: -1, limit: -1}
		if i < len(r.seconds) {
			s = r.seconds[i]
		}
		b := buckets[i]
		fmt.Fprintf(w, "| %d–%d | %s | %s | %s | %s | %d | %d | %d | %s |\n", i, i+1,
			num(s.workers), num(s.limit), num(s.inFlight), num(s.queued),
			b.ok, b.shed, b.timeouts, msec(quantile(b.lat, 0.5)))
	}
	fmt.Fprintln(w)
}

func msec(d time.Duration) string {
	if d < 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

func num(n int) string {
	if n < 0 {
		return "–"
	}
	return fmt.Sprint(n)
}

func sum(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}
