package adaptive

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake time source: the tests move it by hand, so that every
// window closes at a known moment and a run repeats exactly.
type clock struct{ t time.Time }

func newClock() *clock                   { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// sim drives a Limiter against a model of the servers, with unlimited
// demand unless capped. Each step admits as many requests as the limit lets
// through, all of them complete after the latency the model gives for that
// concurrency, and the clock moves on by it. This is the closed loop the
// limiter lives in, without the noise of a real network.
type sim struct {
	t      *testing.T
	clock  *clock
	l      *Limiter
	demand int                        // most requests in flight the caller offers; 0: no cap
	model  func(n int) time.Duration  // latency at n requests in flight
	noise  *rand.Rand                 // ±5% per request when not nil
	onStep func(s *sim, admitted int) // checks run after each step
	latest time.Duration              // latency of the last step
	limits []int                      // Limit() after each step
	times  []time.Duration            // when each step ended, from the start
	start  time.Time
}

func newSim(t *testing.T, c Config, model func(int) time.Duration) *sim {
	t.Helper()
	clk := newClock()
	c.Now = clk.now
	return &sim{t: t, clock: clk, l: New(c), model: model, noise: rand.New(rand.NewPCG(1, 2)), start: clk.t}
}

func (s *sim) step() {
	var toks []Token
	for s.demand == 0 || len(toks) < s.demand {
		tok, ok := s.l.TryAcquire()
		if !ok {
			break
		}
		toks = append(toks, tok)
	}
	if len(toks) == 0 {
		s.t.Fatalf("step: nothing admitted, Snapshot() = %+v", s.l.Snapshot())
	}
	lat := s.model(len(toks))
	s.latest = lat
	s.clock.advance(lat)
	for _, tok := range toks {
		d := lat
		if s.noise != nil {
			d = time.Duration(float64(lat) * (0.95 + 0.1*s.noise.Float64()))
		}
		tok.Done(d, false)
	}
	s.limits = append(s.limits, s.l.Limit())
	s.times = append(s.times, s.clock.t.Sub(s.start))
	if s.onStep != nil {
		s.onStep(s, len(toks))
	}
}

// run steps for d of simulated time.
func (s *sim) run(d time.Duration) {
	end := s.clock.t.Add(d)
	for s.clock.t.Before(end) {
		s.step()
	}
}

// meanLimit is the average limit over the steps that ended in the last d.
func (s *sim) meanLimit(d time.Duration) float64 {
	from := s.times[len(s.times)-1] - d
	sum, n := 0, 0
	for i, at := range s.times {
		if at > from {
			sum += s.limits[i]
			n++
		}
	}
	return float64(sum) / float64(n)
}

// flat is a service with no queue: every request takes d, however many run.
func flat(d time.Duration) func(int) time.Duration {
	return func(int) time.Duration { return d }
}

// queueing is a service of c workers taking s per request: up to c requests
// at once take s, beyond that they wait for a worker, and the latency grows
// with the excess (the fluid limit of an M/D/c queue under a closed loop).
func queueing(c *atomic.Int64, s time.Duration) func(int) time.Duration {
	return func(n int) time.Duration {
		workers := int(c.Load())
		if n <= workers {
			return s
		}
		return time.Duration(float64(s) * float64(n) / float64(workers))
	}
}

func TestNewDefaults(t *testing.T) {
	tests := []struct {
		name      string
		c         Config
		wantLimit int
	}{
		{"zero", Config{}, defaultInitialLimit},
		{"initial above max", Config{MaxLimit: 10, InitialLimit: 50}, 10},
		{"initial below min", Config{MinLimit: 30, InitialLimit: 5}, 30},
		{"max below min", Config{MinLimit: 40, MaxLimit: 10}, 40},
		{"negatives", Config{MinLimit: -1, MaxLimit: -1, InitialLimit: -1, Tolerance: -1, Backoff: -1}, defaultInitialLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.ProbeInterval = -1 // no first measure: the limit starts at InitialLimit
			if got := New(tt.c).Limit(); got != tt.wantLimit {
				t.Errorf("New(%+v).Limit() = %d, want %d", tt.c, got, tt.wantLimit)
			}
		})
	}
}

func TestFirstMeasure(t *testing.T) {
	clk := newClock()
	l := New(Config{MinLimit: 4, InitialLimit: 30, ProbeSamples: 8, Now: clk.now})
	if snap := l.Snapshot(); !snap.Probing || snap.Limit != 4 {
		t.Fatalf("New(...).Snapshot() = %+v, want probing at MinLimit 4", snap)
	}
	for range 2 {
		var toks []Token
		for {
			tok, ok := l.TryAcquire()
			if !ok {
				break
			}
			toks = append(toks, tok)
		}
		if len(toks) != 4 {
			t.Fatalf("admitted %d during the first measure, want 4", len(toks))
		}
		clk.advance(15 * time.Millisecond)
		for _, tok := range toks {
			tok.Done(15*time.Millisecond, false)
		}
	}
	snap := l.Snapshot()
	want := Snapshot{Limit: 30, MinRTT: 15 * time.Millisecond, SampleRTT: 15 * time.Millisecond}
	if snap != want {
		t.Errorf("Snapshot() after 8 requests = %+v, want %+v", snap, want)
	}
}

func TestTryAcquireRespectsLimit(t *testing.T) {
	l := New(Config{InitialLimit: 3, MinLimit: 1, ProbeInterval: -1, Now: newClock().now})
	var toks []Token
	for range 3 {
		tok, ok := l.TryAcquire()
		if !ok {
			t.Fatalf("TryAcquire() with %d in flight of 3 = false, want true", l.InFlight())
		}
		toks = append(toks, tok)
	}
	if _, ok := l.TryAcquire(); ok {
		t.Fatalf("TryAcquire() at the limit = true, want false")
	}
	toks[0].Ignore()
	if got := l.InFlight(); got != 2 {
		t.Errorf("InFlight() after Ignore = %d, want 2", got)
	}
	if _, ok := l.TryAcquire(); !ok {
		t.Errorf("TryAcquire() after a slot was freed = false, want true")
	}
}

func TestZeroTokenDoesNothing(t *testing.T) {
	var tok Token
	tok.Done(time.Second, true)
	tok.Ignore()
}

func TestDoneTwiceKeepsInFlightAtZero(t *testing.T) {
	l := New(Config{Now: newClock().now})
	tok, _ := l.TryAcquire()
	tok.Done(time.Millisecond, false)
	tok.Done(time.Millisecond, false)
	if got := l.InFlight(); got != 0 {
		t.Errorf("InFlight() after a second Done = %d, want 0", got)
	}
}

func TestGrowsUnderFlatLatency(t *testing.T) {
	s := newSim(t, Config{MinLimit: 5, MaxLimit: 200}, flat(20*time.Millisecond))
	prev := s.l.Limit()
	s.onStep = func(s *sim, _ int) {
		if got := s.l.Limit(); got < prev {
			t.Fatalf("at %v: Limit() fell from %d to %d under flat latency", s.times[len(s.times)-1], prev, got)
		}
		prev = s.l.Limit()
	}
	s.run(20 * time.Second)
	if got := s.l.Limit(); got != 200 {
		t.Errorf("Limit() after 20s of flat 20ms latency = %d, want the maximum 200", got)
	}
	if snap := s.l.Snapshot(); snap.Probing {
		t.Errorf("Snapshot().Probing = true, want false: a confirmed baseline needs no re-measure")
	}
}

func TestAppLimitedDoesNotGrow(t *testing.T) {
	s := newSim(t, Config{MinLimit: 5, MaxLimit: 200, InitialLimit: 20}, flat(20*time.Millisecond))
	s.demand = 6 // under half the limit
	s.run(10 * time.Second)
	if got := s.l.Limit(); got != 20 {
		t.Errorf("Limit() after 10s with 6 of 20 in use = %d, want 20 unchanged", got)
	}
}

func TestSettlesNearCapacity(t *testing.T) {
	const service = 20 * time.Millisecond
	var workers atomic.Int64
	workers.Store(50)
	for _, initial := range []int{10, 500} {
		t.Run("from "+strconv.Itoa(initial), func(t *testing.T) {
			s := newSim(t, Config{MinLimit: 5, MaxLimit: 1000, InitialLimit: initial}, queueing(&workers, service))
			s.run(30 * time.Second)
			mean := s.meanLimit(10 * time.Second)
			// The fixed point of limit×(1.5×base÷latency)+√limit = limit is
			// about 1.7 × the 50 workers; below 50 the workers idle.
			if mean < 50 || mean > 120 {
				t.Errorf("mean Limit() over the last 10s = %.1f, want within [50, 120] for 50 workers", mean)
			}
			if s.latest > 3*service {
				t.Errorf("latency at the end = %v, want under %v", s.latest, 3*service)
			}
			if snap := s.l.Snapshot(); snap.MinRTT < service*9/10 || snap.MinRTT > service*11/10 {
				t.Errorf("Snapshot().MinRTT = %v, want about %v", snap.MinRTT, service)
			}
		})
	}
}

func TestFollowsCapacity(t *testing.T) {
	const service = 20 * time.Millisecond
	var workers atomic.Int64
	workers.Store(100)
	s := newSim(t, Config{MinLimit: 5, MaxLimit: 1000}, queueing(&workers, service))
	s.run(30 * time.Second)
	before := s.meanLimit(5 * time.Second)

	workers.Store(25)
	s.run(3 * time.Second)
	if got := s.l.Limit(); float64(got) > before/2 {
		t.Errorf("Limit() 3s after capacity fell to a quarter = %d, want under half of %.1f", got, before)
	}
	s.run(27 * time.Second)
	halved := s.meanLimit(5 * time.Second)
	if halved < 25 || halved > 60 {
		t.Errorf("mean Limit() with 25 workers = %.1f, want within [25, 60]", halved)
	}

	workers.Store(100)
	s.run(15 * time.Second)
	if got := s.meanLimit(5 * time.Second); got < before*0.8 {
		t.Errorf("mean Limit() 15s after capacity came back = %.1f, want at least 80%% of %.1f", got, before)
	}
}

func TestDropsCutTheLimit(t *testing.T) {
	clk := newClock()
	l := New(Config{MinLimit: 5, MaxLimit: 100, InitialLimit: 40, WindowSamples: 5, ProbeInterval: -1, Now: clk.now})
	// window completes 5 requests 100ms after they started, the first
	// drops of them dropped. 5 of a limit of 40 in use: app limited, so
	// without drops the limit holds.
	window := func(drops int) {
		t.Helper()
		var toks []Token
		for range 5 {
			tok, ok := l.TryAcquire()
			if !ok {
				t.Fatalf("TryAcquire() = false with %d in flight, limit %d", l.InFlight(), l.Limit())
			}
			toks = append(toks, tok)
		}
		clk.advance(100 * time.Millisecond)
		for i, tok := range toks {
			tok.Done(20*time.Millisecond, i < drops)
		}
	}
	window(0)
	if got := l.Limit(); got != 40 {
		t.Fatalf("Limit() after a window without drops = %d, want 40", got)
	}
	window(1)
	if got := l.Limit(); got != 36 {
		t.Errorf("Limit() after a window with one drop = %d, want 36 (40 × 0.9)", got)
	}
	for range 50 {
		window(5)
	}
	if got := l.Limit(); got != 5 {
		t.Errorf("Limit() after 50 windows of drops = %d, want the minimum 5", got)
	}
}

func TestStaysWithinBounds(t *testing.T) {
	for seed := range uint64(20) {
		t.Run("seed "+strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			clk := newClock()
			c := Config{
				MinLimit: 1 + rng.IntN(10), MaxLimit: 10 + rng.IntN(300), InitialLimit: rng.IntN(400),
				Smoothing: rng.Float64(), Window: time.Duration(1+rng.IntN(200)) * time.Millisecond,
				WindowSamples: 1 + rng.IntN(20), ProbeInterval: time.Duration(rng.IntN(5)) * time.Second,
				ProbeSamples: 1 + rng.IntN(30), Now: clk.now,
			}
			l := New(c)
			var held []Token
			for range 20000 {
				switch op := rng.IntN(10); {
				case op < 5:
					if tok, ok := l.TryAcquire(); ok {
						held = append(held, tok)
					}
				case len(held) > 0:
					i := rng.IntN(len(held))
					tok := held[i]
					held = append(held[:i], held[i+1:]...)
					switch {
					case op == 9:
						tok.Ignore()
					default:
						// Latencies over four orders of magnitude, some drops.
						lat := time.Duration(float64(time.Millisecond) * (0.1 + 1000*rng.Float64()*rng.Float64()*rng.Float64()))
						tok.Done(lat, rng.IntN(20) == 0)
					}
				}
				clk.advance(time.Duration(rng.IntN(20)) * time.Millisecond)
				snap := l.Snapshot()
				if snap.Limit < c.MinLimit || snap.Limit > max(c.MaxLimit, c.MinLimit) {
					t.Fatalf("Snapshot() = %+v, want a limit within [%d, %d]", snap, c.MinLimit, c.MaxLimit)
				}
				if snap.InFlight != len(held) {
					t.Fatalf("Snapshot().InFlight = %d, want %d", snap.InFlight, len(held))
				}
			}
		})
	}
}

// TestProbeFollowsSlowerServers: the servers become twice as slow for good,
// with no queue. The gradient alone would read that as overload and hold the
// limit at its minimum forever; the re-measure lets the baseline rise.
func TestProbeFollowsSlowerServers(t *testing.T) {
	service := 20 * time.Millisecond
	s := newSim(t, Config{MinLimit: 5, MaxLimit: 200}, func(int) time.Duration { return service })
	s.run(20 * time.Second)
	if got := s.l.Limit(); got != 200 {
		t.Fatalf("Limit() after 20s of flat latency = %d, want 200", got)
	}
	service = 40 * time.Millisecond
	sawProbe, wasProbing := false, false
	s.onStep = func(s *sim, admitted int) {
		if wasProbing && admitted > 5 {
			t.Fatalf("a step that began during the re-measure admitted %d, want at most MinLimit 5", admitted)
		}
		wasProbing = s.l.Snapshot().Probing
		sawProbe = sawProbe || wasProbing
	}
	// The limit shrinks (the gradient reads the slower servers as a queue)
	// until the baseline, no longer confirmed, is re-measured after
	// ProbeInterval (30s less jitter); it then grows back.
	s.run(45 * time.Second)
	if !sawProbe {
		t.Errorf("no re-measure of the baseline in 45s after the servers slowed down")
	}
	if snap := s.l.Snapshot(); snap.MinRTT < 38*time.Millisecond || snap.MinRTT > 42*time.Millisecond {
		t.Errorf("Snapshot().MinRTT = %v, want about 40ms", snap.MinRTT)
	}
	if got := s.l.Limit(); got != 200 {
		t.Errorf("Limit() 45s after the servers slowed down = %d, want back at 200", got)
	}
}

func TestProbeMeasuresOnlyNewRequests(t *testing.T) {
	clk := newClock()
	l := New(Config{MinLimit: 2, MaxLimit: 100, InitialLimit: 50, WindowSamples: 1, Window: 100 * time.Millisecond,
		ProbeInterval: time.Second, ProbeSamples: 2, Now: clk.now})
	done := func(lat time.Duration) {
		t.Helper()
		tok, ok := l.TryAcquire()
		if !ok {
			t.Fatalf("TryAcquire() = false, Snapshot() = %+v", l.Snapshot())
		}
		clk.advance(lat)
		tok.Done(lat, false)
	}
	done(10 * time.Millisecond) // the first measure: baseline 10ms
	done(10 * time.Millisecond)
	if snap := l.Snapshot(); snap.Probing || snap.MinRTT != 10*time.Millisecond {
		t.Fatalf("Snapshot() after the first measure = %+v, want MinRTT 10ms, not probing", snap)
	}
	// Windows at 30ms: not within 10% of the baseline, which ages.
	var old []Token
	for range 3 {
		tok, _ := l.TryAcquire()
		old = append(old, tok)
	}
	for clk.t.Sub(newClock().t) < 3*time.Second && !l.Snapshot().Probing {
		done(30 * time.Millisecond)
		clk.advance(100 * time.Millisecond)
	}
	snap := l.Snapshot()
	if !snap.Probing || snap.Limit != 2 {
		t.Fatalf("Snapshot() once the baseline is older than ProbeInterval = %+v, want probing at limit 2", snap)
	}
	// Requests admitted before the probe finish slowly: not measured.
	for _, tok := range old {
		tok.Done(time.Second, false)
	}
	if snap := l.Snapshot(); !snap.Probing {
		t.Fatalf("Snapshot() after requests from before the probe ended = %+v, want still probing", snap)
	}
	done(12 * time.Millisecond)
	done(12 * time.Millisecond)
	snap = l.Snapshot()
	if snap.Probing || snap.MinRTT != 12*time.Millisecond {
		t.Errorf("Snapshot() after 2 requests of the probe = %+v, want MinRTT 12ms, not probing", snap)
	}
	if snap.Limit < 3 {
		t.Errorf("Snapshot().Limit after the probe = %d, want the limit from before it restored", snap.Limit)
	}
}

func TestConcurrentUse(t *testing.T) {
	var fake atomic.Int64
	start := time.Now()
	now := func() time.Time { return start.Add(time.Duration(fake.Add(int64(50 * time.Microsecond)))) }
	const maxLimit = 40
	l := New(Config{MinLimit: 2, MaxLimit: maxLimit, InitialLimit: 10, ProbeInterval: 50 * time.Millisecond, Now: now})
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				tok, ok := l.TryAcquire()
				if !ok {
					_ = l.Snapshot()
					continue
				}
				h := held.Add(1)
				for p := peak.Load(); h > p && !peak.CompareAndSwap(p, h); p = peak.Load() {
				}
				lat := time.Duration(1+rng.IntN(int(h))) * time.Millisecond // slower with more in flight
				held.Add(-1)
				if rng.IntN(50) == 0 {
					tok.Ignore()
				} else {
					tok.Done(lat, rng.IntN(100) == 0)
				}
			}
		})
	}
	wg.Wait()
	if got := l.InFlight(); got != 0 {
		t.Errorf("InFlight() after every token ended = %d, want 0", got)
	}
	if p := peak.Load(); p > maxLimit {
		t.Errorf("peak tokens held at once = %d, want at most MaxLimit %d", p, maxLimit)
	}
	if got := l.Limit(); got < 2 || got > maxLimit {
		t.Errorf("Limit() = %d, want within [2, %d]", got, maxLimit)
	}
}

func TestSnapshotJSON(t *testing.T) {
	b, err := json.Marshal(Snapshot{Limit: 7, InFlight: 3, MinRTT: 20 * time.Millisecond, SampleRTT: 31500 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"limit":7,"in_flight":3,"min_rtt_ms":20,"sample_rtt_ms":31.5,"probing":false}`
	if string(b) != want {
		t.Errorf("json.Marshal(Snapshot) = %s, want %s", b, want)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range vs {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	tests := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{ms(5), 0.5, 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.9, 4 * time.Millisecond},
		{ms(4, 1, 3, 2), 1, 4 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.9, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(append([]time.Duration(nil), tt.in...), tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.in, tt.p, got, tt.want)
		}
	}
}

func BenchmarkTryAcquireDone(b *testing.B) {
	l := New(Config{MinLimit: 1000, MaxLimit: 1000})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if tok, ok := l.TryAcquire(); ok {
				tok.Done(time.Millisecond, false)
			}
		}
	})
}
