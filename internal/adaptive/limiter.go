// Package adaptive keeps the requests in flight to an upstream pool under a
// limit that follows the pool's latency: the limit grows while latency stays
// near the no-load latency, and shrinks when latency rises, which is the sign
// that requests have started to queue inside the servers. Requests over the
// limit are the caller's to queue briefly or shed, so that the servers keep
// working at the concurrency they can sustain instead of building a backlog
// that no client waits for.
//
// The algorithm is written by hand: it is holdfast's own craft, and the Go
// port of Netflix's library (platinummonkey/go-concurrency-limits) offers
// its algorithms one at a time, with its own limiter and blocking types,
// where holdfast needs pieces of several of them behind its own queue and
// admin API. Each piece follows a published design:
//
//   - The gradient and its use, from Envoy's adaptive concurrency filter
//     (gradient controller) and Netflix's concurrency-limits Gradient2:
//     gradient = Tolerance × baseline ÷ current latency, clamped to
//     [0.5, 1] as Gradient2 does (Envoy allows up to 2), then
//     limit' = limit × gradient + √limit. The √limit headroom is Envoy's:
//     without it, a limit whose latency equals the baseline would never
//     grow.
//   - The smoothing of the new limit (Smoothing), and holding the limit when
//     the caller uses less than half of it ("app limited"), from Gradient2.
//   - The latency of a window, summarised as a percentile over at least
//     Window, from Envoy (its sampleRTT).
//   - The baseline: the lowest window latency seen, as BBR's minimum RTT
//     filter keeps it, trusted for ProbeInterval; then re-measured as
//     Envoy measures minRTT, by holding the limit at MinLimit until
//     ProbeSamples requests admitted at that low concurrency complete, with
//     a jittered interval so that proxies do not all probe at once. Envoy
//     also re-measures when the limit has sat at its minimum for five
//     windows, since a baseline that is too low (the servers have become
//     slower for good) would otherwise keep it there.
//   - Drops (timeouts, 503s, whatever the caller counts as one): a window
//     with any drop multiplies the limit by Backoff, the multiplicative
//     decrease of AIMD (concurrency-limits' AIMDLimit, and TCP before it).
//
// Gradient2 uses a long-term average of latencies as its baseline rather
// than a minimum, warning that a minimum of single samples can be
// impractically low. Here the minimum is taken over window percentiles, not
// single samples, and Tolerance leaves room above it (1.5 by default,
// between Envoy's 25% buffer and the 2 of concurrency-limits'
// rttTolerance). An average, in turn, drifts up during a long overload
// until the overload looks normal; the periodic re-measure avoids that.
package adaptive

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Config holds a Limiter's settings. The zero value is usable: every field
// left at zero takes the default its comment gives.
type Config struct {
	// MinLimit is the lowest limit, and the limit held while the no-load
	// latency is re-measured. Zero means 3 (Envoy's min_concurrency).
	MinLimit int
	// MaxLimit is the highest limit. Zero means 1000 (Envoy's default
	// max_concurrency_limit). Below MinLimit, it is raised to MinLimit.
	MaxLimit int
	// InitialLimit is the limit until the first windows are measured. Zero
	// means 20 (Gradient2's); it is clamped to [MinLimit, MaxLimit].
	InitialLimit int

	// Tolerance is how many times the no-load latency a window's latency
	// may reach before the limit shrinks: 1.5 lets requests be 50% slower
	// than without load, which absorbs noise and leaves the servers a short
	// queue so that they never idle. Zero means 1.5; below 1 it is 1.
	Tolerance float64
	// Smoothing is the weight of each new estimate against the current
	// limit, in (0, 1]: 1 takes each estimate as it is. Zero means 0.2
	// (Gradient2's).
	Smoothing float64
	// Backoff multiplies the limit after a window in which any request was
	// dropped, in (0, 1]: 1 ignores drops. Zero means 0.9 (AIMDLimit's).
	Backoff float64

	// Window is the shortest time over which latencies are summarised
	// before the limit changes; it should be a few times the servers'
	// latency, so that a change of the limit shows in the next window.
	// Zero means 100ms (the update interval of Envoy's examples).
	Window time.Duration
	// WindowSamples is the fewest completed requests a window needs: a
	// window that has lasted Window waits for them, so that a quiet pool
	// does not steer by one or two requests. Zero means 10 (the window size
	// of concurrency-limits).
	WindowSamples int
	// Percentile summarises the latencies of a window, and of a
	// re-measure, in (0, 1]. Zero means 0.5, the median (Envoy's default).
	Percentile float64

	// ProbeInterval is how long the no-load latency is trusted without a
	// window confirming it (a window latency within 10% of it). After that
	// it is re-measured: the limit is held at MinLimit until ProbeSamples
	// requests admitted at that concurrency complete, and is then restored.
	// Each interval is shortened by up to 10% at random, as Envoy's jitter,
	// so that proxies sharing servers do not probe together. The first
	// measure is taken the same way: a new Limiter admits MinLimit requests
	// until its first ProbeSamples complete, then InitialLimit. Zero means
	// 30s. Negative never measures: the first window's latency is the
	// baseline, and it can then only go down.
	ProbeInterval time.Duration
	// ProbeSamples is the number of requests a measure of the no-load
	// latency waits for. Zero means 20.
	ProbeSamples int

	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
}

const (
	defaultMinLimit      = 3
	defaultMaxLimit      = 1000
	defaultInitialLimit  = 20
	defaultTolerance     = 1.5
	defaultSmoothing     = 0.2
	defaultBackoff       = 0.9
	defaultWindow        = 100 * time.Millisecond
	defaultWindowSamples = 10
	defaultPercentile    = 0.5
	defaultProbeInterval = 30 * time.Second
	defaultProbeSamples  = 20

	// minGradient is Gradient2's floor: one window cannot cut the limit by
	// more than about half, so that a burst of outliers cannot empty it.
	minGradient = 0.5
	// confirmSlack: a window within this factor of the baseline confirms
	// that the baseline still holds, and postpones the re-measure. Without
	// slack, noise would make a window beat the minimum so rarely that a
	// lightly loaded pool would be probed at every interval.
	confirmSlack = 1.1
	// probeJitter is the largest share of ProbeInterval taken off at random.
	probeJitter = 0.1
	// atMinProbe is the number of consecutive windows at MinLimit that
	// trigger a re-measure (Envoy's 5).
	atMinProbe = 5
	// maxWindowLatencies bounds the latencies kept per window; beyond it a
	// uniform sample of them is kept (reservoir sampling), which is all a
	// percentile needs.
	maxWindowLatencies = 512
)

// Limiter is an adaptive limit on requests in flight. It is safe for
// concurrent use. The zero value is not usable: use New.
type Limiter struct {
	now           func() time.Time
	minLimit      float64
	maxLimit      float64
	tolerance     float64
	smoothing     float64
	backoff       float64
	window        time.Duration
	windowSamples int
	percentile    float64
	probeInterval time.Duration
	probeSamples  int

	mu       sync.Mutex
	limit    float64 // kept fractional so that small steps add up
	inFlight int
	rng      *rand.Rand

	baseline   time.Duration // the no-load latency; 0 until the first window
	baselineAt time.Time     // when it was last set or confirmed
	probeAfter time.Duration // ProbeInterval less this round's jitter
	sample     time.Duration // the latest window's latency
	atMin      int           // consecutive windows that ended at MinLimit

	// The window being collected.
	winStart       time.Time
	winLatencies   []time.Duration
	winSeen        int // latencies offered to the reservoir
	winDone        int // completions, dropped ones included
	winDrops       int
	winMaxInFlight int

	// The re-measure of the baseline, while probing.
	probing    bool
	epoch      uint64 // tokens issued since the probe began carry it
	savedLimit float64
	probeLat   []time.Duration
	probeDone  int
	probeDrops int
}

// New returns a Limiter with the settings of c, defaults filled in.
func New(c Config) *Limiter {
	l := &Limiter{
		now:           c.Now,
		tolerance:     orFloat(c.Tolerance, defaultTolerance),
		smoothing:     orFloat(c.Smoothing, defaultSmoothing),
		backoff:       orFloat(c.Backoff, defaultBackoff),
		window:        orDuration(c.Window, defaultWindow),
		windowSamples: orInt(c.WindowSamples, defaultWindowSamples),
		percentile:    orFloat(c.Percentile, defaultPercentile),
		probeInterval: orDuration(c.ProbeInterval, defaultProbeInterval),
		probeSamples:  orInt(c.ProbeSamples, defaultProbeSamples),
	}
	if l.now == nil {
		l.now = time.Now
	}
	minLimit := orInt(c.MinLimit, defaultMinLimit)
	maxLimit := max(orInt(c.MaxLimit, defaultMaxLimit), minLimit)
	l.minLimit, l.maxLimit = float64(minLimit), float64(maxLimit)
	l.limit = math.Max(l.minLimit, math.Min(l.maxLimit, float64(orInt(c.InitialLimit, defaultInitialLimit))))
	l.tolerance = math.Max(l.tolerance, 1)
	l.smoothing = math.Min(l.smoothing, 1)
	l.backoff = math.Min(l.backoff, 1)
	l.percentile = math.Min(l.percentile, 1)
	if c.ProbeInterval < 0 {
		l.probeInterval = 0
	}

	now := l.now()
	// Seeded from the clock: proxies started at different moments jitter
	// differently, and a test's fake clock makes the jitter repeatable.
	seed := uint64(now.UnixNano())
	l.rng = rand.New(rand.NewPCG(seed, seed>>32|1))
	l.winStart = now
	l.drawProbeAfter()
	if l.probeInterval > 0 {
		// Measure the baseline before steering by it, as Envoy does at
		// start: a first window taken at InitialLimit could already be
		// queueing, and the limit would then grow on a false baseline
		// until the first re-measure.
		l.startProbe()
	}
	return l
}

// Token is one admitted request. Exactly one of Done or Ignore must be
// called when the request ends: a second call would give away another
// request's slot (the count of requests in flight never goes below zero,
// but it would be one short). The zero Token, which a caller without a
// limiter may hold, does nothing.
type Token struct {
	l     *Limiter
	epoch uint64
}

// TryAcquire admits a request if fewer than Limit are in flight. When ok is
// false the request is over the limit, and the caller queues or sheds it.
//
// The limit only rises inside Token.Done, and a slot only frees inside
// Token.Done or Token.Ignore: a caller that queues requests should try to
// admit the next one after each of those calls.
func (l *Limiter) TryAcquire() (tok Token, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight >= int(l.limit) {
		return Token{}, false
	}
	l.inFlight++
	l.winMaxInFlight = max(l.winMaxInFlight, l.inFlight)
	return Token{l: l, epoch: l.epoch}, true
}

// Done ends the request and reports its outcome. latency is the time from
// when the request was sent upstream to its response header (time spent in
// the caller's queue is not the servers' doing and must not be in it).
// dropped says the request failed in a way that signals overload, such as a
// timeout or a 503 from the upstream; its latency is then not used.
func (t Token) Done(latency time.Duration, dropped bool) {
	if t.l != nil {
		t.l.done(t.epoch, latency, dropped, true)
	}
}

// Ignore ends the request without a sample: it ended for a reason that
// says nothing about the servers' load, such as the client going away
// before the response.
func (t Token) Ignore() {
	if t.l != nil {
		t.l.done(t.epoch, 0, false, false)
	}
}

// Limit returns the current limit.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// InFlight returns the number of requests admitted and not yet ended.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight
}

// Snapshot is a Limiter's state at one moment, for the admin API and logs.
type Snapshot struct {
	Limit    int
	InFlight int
	// MinRTT is the no-load latency the limit steers by; 0 until the first
	// window is measured.
	MinRTT time.Duration
	// SampleRTT is the latency of the latest window (at Config.Percentile),
	// or of the latest re-measure; 0 until the first.
	SampleRTT time.Duration
	// Probing is true while the no-load latency is being re-measured, with
	// the limit held at its minimum.
	Probing bool
}

// MarshalJSON writes the durations as milliseconds, as the field names say:
// {"limit", "in_flight", "min_rtt_ms", "sample_rtt_ms", "probing"}.
func (s Snapshot) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Limit     int     `json:"limit"`
		InFlight  int     `json:"in_flight"`
		MinRTT    float64 `json:"min_rtt_ms"`
		SampleRTT float64 `json:"sample_rtt_ms"`
		Probing   bool    `json:"probing"`
	}{s.Limit, s.InFlight, ms(s.MinRTT), ms(s.SampleRTT), s.Probing})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Snapshot returns the Limiter's current state.
func (l *Limiter) Snapshot() Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Snapshot{
		Limit:     int(l.limit),
		InFlight:  l.inFlight,
		MinRTT:    l.baseline,
		SampleRTT: l.sample,
		Probing:   l.probing,
	}
}

func (l *Limiter) done(epoch uint64, latency time.Duration, dropped, sampled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight > 0 { // a second Done must not make room that is not there
		l.inFlight--
	}
	if !sampled {
		return
	}
	now := l.now()
	if l.probing {
		l.probeSample(now, epoch, latency, dropped)
		return
	}
	l.winDone++
	if dropped {
		l.winDrops++
	} else {
		l.addLatency(max(latency, 0))
	}
	if l.winDone >= l.windowSamples && now.Sub(l.winStart) >= l.window {
		l.closeWindow(now)
	}
}

// addLatency keeps a window's latencies, or a uniform sample of them once
// there are too many (Vitter's algorithm R).
func (l *Limiter) addLatency(d time.Duration) {
	l.winSeen++
	if len(l.winLatencies) < maxWindowLatencies {
		l.winLatencies = append(l.winLatencies, d)
		return
	}
	if i := l.rng.IntN(l.winSeen); i < maxWindowLatencies {
		l.winLatencies[i] = d
	}
}

// closeWindow updates the limit from the window just ended and starts the
// next one.
func (l *Limiter) closeWindow(now time.Time) {
	if len(l.winLatencies) > 0 {
		l.sample = percentile(l.winLatencies, l.percentile)
		l.observeBaseline(now, l.sample)
	}
	limit := l.limit
	switch {
	case l.winDrops > 0:
		limit *= l.backoff
	case len(l.winLatencies) > 0:
		gradient := math.Max(minGradient, math.Min(1, l.tolerance*float64(l.baseline)/float64(max(l.sample, 1))))
		next := limit*gradient + math.Sqrt(limit)
		if gradient == 1 && float64(l.winMaxInFlight) < limit/2 {
			// App limited (Gradient2): the latency says nothing about a
			// limit the caller does not reach, and growing it would only
			// let a later burst through unchecked. Shrinking stays allowed:
			// latency that rises at low concurrency is still a warning.
			next = limit
		}
		limit = (1-l.smoothing)*limit + l.smoothing*next
	}
	l.limit = l.clamp(limit)
	if int(l.limit) <= int(l.minLimit) {
		l.atMin++
	} else {
		l.atMin = 0
	}
	l.resetWindow(now)
	if l.probeDue(now) {
		l.startProbe()
	}
}

// observeBaseline applies BBR's minimum filter to a window's latency.
func (l *Limiter) observeBaseline(now time.Time, d time.Duration) {
	switch {
	case l.baseline == 0 || d < l.baseline:
		l.baseline, l.baselineAt = max(d, 1), now
	case float64(d) <= confirmSlack*float64(l.baseline):
		l.baselineAt = now
	}
}

func (l *Limiter) probeDue(now time.Time) bool {
	if l.probeInterval == 0 || l.baseline == 0 {
		return false
	}
	return now.Sub(l.baselineAt) >= l.probeAfter || l.atMin >= atMinProbe
}

// startProbe holds the limit at its minimum so that the requests admitted
// from now on meet servers without a queue, and measures them (Envoy's minRTT
// calculation). Requests already in flight were admitted at the old limit
// and are not measured: the new epoch tells them apart.
func (l *Limiter) startProbe() {
	l.probing = true
	l.epoch++
	l.savedLimit = l.limit
	l.limit = l.minLimit
	l.probeLat = l.probeLat[:0]
	l.probeDone, l.probeDrops = 0, 0
}

func (l *Limiter) probeSample(now time.Time, epoch uint64, latency time.Duration, dropped bool) {
	if epoch != l.epoch {
		return
	}
	l.probeDone++
	if dropped {
		l.probeDrops++
	} else {
		l.probeLat = append(l.probeLat, max(latency, 0))
	}
	if l.probeDone < l.probeSamples {
		return
	}
	if len(l.probeLat) > 0 {
		// Replace, not minimum: the point is to let the baseline rise when
		// the servers have become slower.
		l.baseline = max(percentile(l.probeLat, l.percentile), 1)
		l.sample = l.baseline
	}
	l.baselineAt = now
	l.limit = l.savedLimit
	if l.probeDrops > 0 {
		l.limit = l.clamp(l.limit * l.backoff)
	}
	l.probing = false
	l.atMin = 0
	l.drawProbeAfter()
	l.resetWindow(now)
}

func (l *Limiter) resetWindow(now time.Time) {
	l.winStart = now
	l.winLatencies = l.winLatencies[:0]
	l.winSeen, l.winDone, l.winDrops = 0, 0, 0
	l.winMaxInFlight = l.inFlight
}

func (l *Limiter) drawProbeAfter() {
	l.probeAfter = l.probeInterval - time.Duration(l.rng.Float64()*probeJitter*float64(l.probeInterval))
}

func (l *Limiter) clamp(limit float64) float64 {
	return math.Max(l.minLimit, math.Min(l.maxLimit, limit))
}

// percentile returns the p-quantile of ds by the nearest-rank method. It
// sorts ds in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	i := int(math.Ceil(p*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func orFloat(v, def float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return def
	}
	return v
}

func orDuration(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}
