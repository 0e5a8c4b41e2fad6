// Package demo runs holdfast's gateway in front of three local backends that
// misbehave on a schedule, drives a steady load at it, and shows what the
// clients saw beside what the gateway absorbed.
//
// Everything runs in one process on loopback: the backends are in-process
// http.Servers, the gateway is built from an embedded configuration, and
// the load comes from in-process clients. The clients label every request,
// the backends count every POST they receive, and the gateway's access log
// is read back, so that the demo's claims are checked rather than asserted:
// no avoidable error (none that holdfast could have absorbed by trying
// again), and no POST delivered twice. A POST without Idempotency-Key that
// reached a server that then failed is an unavoidable failure, counted
// apart: sending it again could deliver it twice.
package demo

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/gateway"
)

// Options configure a demo run. The zero value runs the default scenario
// until the context ends, showing nothing.
type Options struct {
	// Duration stops the run after this long. Zero means until the
	// context ends.
	Duration time.Duration
	// Rate is the load in requests per second. Zero means 50.
	Rate int
	// Clients is the number of concurrent client goroutines sharing the
	// load. Zero means 16.
	Clients int
	// Listen is the gateway's address. "" means 127.0.0.1 on a free port.
	Listen string
	// Admin is the admin listener's address. "" means 127.0.0.1 on a free
	// port. It must be a loopback address.
	Admin string
	// Schedule is how the backends misbehave. Zero fields take the
	// defaults of [DefaultSchedule].
	Schedule Schedule

	// Out receives the banner and the running display. nil discards them.
	Out io.Writer
	// Live redraws the display in place once a second with ANSI escapes
	// (for a terminal). When false, a plain line is printed every Every.
	Live bool
	// Every is how often the display is updated. Zero means 1s when Live,
	// 5s otherwise.
	Every time.Duration

	// AccessLog, when set, receives a copy of the gateway's JSON access
	// log (with each request's attempt ledger). The demo reads the log
	// itself whether or not this is set.
	AccessLog io.Writer
	// EventLog, when set, receives the gateway's event log (ejections,
	// skipped retries) as JSON lines. nil discards it.
	EventLog io.Writer
}

// Schedule is how the three backends misbehave. Each behaviour is
// deterministic, so that a short run shows every one of them.
type Schedule struct {
	// Up and Down are flaky-dies's cycle: it serves for Up, then dies (its
	// port refuses connections and its open connections are reset) for
	// Down, then comes back on the same port, again and again.
	Up, Down time.Duration
	// FailEvery makes flaky-502 answer 502 to every FailEvery-th request
	// it receives.
	FailEvery int
	// SlowEvery makes slow wait SlowDelay before answering every
	// SlowEvery-th request it receives. SlowDelay should be longer than
	// the gateway's 800ms read timeout, or no timeout shows.
	SlowEvery int
	SlowDelay time.Duration
}

// DefaultSchedule is the schedule of `holdfast demo`: within 20 seconds
// flaky-dies dies twice (at 6s and 15s), and the others misbehave dozens of
// times.
func DefaultSchedule() Schedule {
	return Schedule{
		Up:        6 * time.Second,
		Down:      3 * time.Second,
		FailEvery: 8,
		SlowEvery: 10,
		SlowDelay: 2 * time.Second,
	}
}

func (o Options) withDefaults() Options {
	if o.Rate <= 0 {
		o.Rate = 50
	}
	if o.Clients <= 0 {
		o.Clients = 16
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Admin == "" {
		o.Admin = "127.0.0.1:0"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Every <= 0 {
		o.Every = 5 * time.Second
		if o.Live {
			o.Every = time.Second
		}
	}
	d := DefaultSchedule()
	s := &o.Schedule
	if s.Up <= 0 {
		s.Up = d.Up
	}
	if s.Down <= 0 {
		s.Down = d.Down
	}
	if s.FailEvery <= 0 {
		s.FailEvery = d.FailEvery
	}
	if s.SlowEvery <= 0 {
		s.SlowEvery = d.SlowEvery
	}
	if s.SlowDelay <= 0 {
		s.SlowDelay = d.SlowDelay
	}
	return o
}

// shutdownTimeout bounds the graceful stop of the gateway and of each
// backend. The longest request in flight is a slow answer that the gateway
// abandons after its read timeout, so a few seconds is plenty.
const shutdownTimeout = 5 * time.Second

// Run runs the demo until ctx ends or o.Duration passes, then stops the
// load, the gateway (gracefully) and the backends, waits for every
// goroutine it started, and returns what it saw. It returns an error only
// when the demo could not run (a port could not be bound, the gateway
// failed); what the clients saw, good or bad, is in the Report.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	posts := new(deliveries)
	bs := []*backend{
		newDies(posts),
		new502(posts, o.Schedule.FailEvery),
		newSlow(posts, o.Schedule.SlowEvery, o.Schedule.SlowDelay),
	}
	stopBackends := func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		for _, b := range bs {
			b.stop(ctx)
		}
	}
	var urls [3]string
	for i, b := range bs {
		if err := b.start(); err != nil {
			stopBackends()
			return nil, fmt.Errorf("demo: backend %w", err)
		}
		urls[i] = b.url()
	}

	tokenFile, err := writeToken()
	if err != nil {
		stopBackends()
		return nil, err
	}
	defer os.Remove(tokenFile)
	cfg, err := gatewayConfig(o.Listen, o.Admin, tokenFile, urls)
	if err != nil {
		stopBackends()
		return nil, err
	}
	events := newCounters(urls[:])
	alog := newAccessLog(o.AccessLog)
	logger := slog.New(slog.DiscardHandler)
	if o.EventLog != nil {
		logger = slog.New(slog.NewJSONHandler(o.EventLog, nil))
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: logger, AccessLog: alog, Events: events})
	if err != nil {
		stopBackends()
		return nil, fmt.Errorf("demo: gateway: %w", err)
	}
	if err := g.Listen(); err != nil {
		stopBackends()
		return nil, fmt.Errorf("demo: gateway: %w", err)
	}
	addr := g.Addrs()[0].String()
	base := "http://" + browsable(addr)

	r := &run{opts: o, backends: bs, posts: posts, events: events, alog: alog, gateway: base,
		admin: g.AdminAddr().String(), tokenFile: tokenFile}
	r.banner()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Duration > 0 {
		var cancelTimeout context.CancelFunc
		runCtx, cancelTimeout = context.WithTimeout(runCtx, o.Duration)
		defer cancelTimeout()
	}
	r.start = time.Now()
	r.load = newLoad(base, o.Rate, o.Clients)

	var wg sync.WaitGroup
	wg.Go(func() { bs[0].cycle(runCtx, o.Schedule.Up, o.Schedule.Down) })
	wg.Go(func() { r.load.run(runCtx) })
	wg.Go(func() { r.display(runCtx) })

	var runErr error
	select {
	case <-runCtx.Done():
	case err := <-g.Errors():
		runErr = fmt.Errorf("demo: gateway: %w", err)
		cancel()
	}
	r.elapsed = time.Since(r.start)
	wg.Wait() // the load finishes its requests in flight

	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	gerr := g.Shutdown(sctx)
	scancel()
	stopBackends()
	if runErr == nil && gerr != nil {
		runErr = fmt.Errorf("demo: gateway shutdown: %w", gerr)
	}
	r.load.resolve(alog, true)
	return r.report(), runErr
}

// writeToken writes a random admin token to a new file readable by the
// user alone, and returns its path.
func writeToken() (string, error) {
	f, err := os.CreateTemp("", "holdfast-demo-*.token")
	if err != nil {
		return "", fmt.Errorf("demo: admin token: %w", err)
	}
	_, err = f.WriteString(rand.Text() + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("demo: admin token: %w", err)
	}
	return f.Name(), nil
}

// browsable turns a listen address into one a person can curl: a wildcard
// host becomes 127.0.0.1.
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// run is the state of one demo run, shared by the display and the report.
type run struct {
	opts      Options
	backends  []*backend
	posts     *deliveries
	events    *counters
	alog      *accessLog
	load      *load
	gateway   string // base URL
	admin     string // the admin listener's address
	tokenFile string // its token
	start     time.Time
	elapsed   time.Duration // until the load stopped sending
}

// snapshot returns what the run saw so far.
func (r *run) snapshot(now time.Time) *Report {
	r.load.resolve(r.alog, false)
	rep := &Report{
		Gateway:  r.gateway,
		Elapsed:  now.Sub(r.start),
		Clients:  r.load.stats(),
		Holdfast: r.events.stats(),
	}
	rep.Clients.DuplicatePOSTs = r.posts.dupes.Load()
	rep.Clients.ResentWithKey = r.posts.resent.Load()
	for _, b := range r.backends {
		s := b.stats(now)
		s.Ejections = r.events.ejectionsOf(b.url())
		rep.Backends = append(rep.Backends, s)
	}
	return rep
}

// report returns the final report, with the failures' ledgers.
func (r *run) report() *Report {
	rep := r.snapshot(r.start.Add(r.elapsed))
	rep.Elapsed = r.elapsed
	r.load.mu.Lock()
	defer r.load.mu.Unlock()
	for _, f := range r.load.errs.examples {
		rep.Failures = append(rep.Failures, f.failure())
	}
	for _, f := range r.load.notResent.examples {
		rep.NotResent = append(rep.NotResent, f.failure())
	}
	return rep
}
