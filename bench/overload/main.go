// Command overload measures what holdfast does for a backend under more load
// than it can serve: with no limit, with a static limit and queue, and with
// the adaptive limit. See bench/overload/README.md.
//
//	go run ./bench/overload [-capacity 50] [-service 50ms] [-duration 20s] [-multiplier 3]
//
// Everything runs on loopback, on ports the kernel picks: a model backend
// of fixed capacity (a separate process, this program's "backend"
// subcommand), holdfast built from this tree and run as "holdfast serve" with
// the configuration of each case (configs/*.yaml, Go templates), and an
// open-loop load generator in this process. The report (Markdown) goes to
// stdout, progress and errors to stderr. Every process started is stopped
// by its PID at the end, on an error and on Ctrl-C.
package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed configs/*.yaml
var configFS embed.FS

func main() {
	if len(os.Args) > 1 && os.Args[1] == "backend" {
		os.Exit(backendMain(os.Args[2:]))
	}
	os.Exit(harness(os.Args[1:]))
}

// options are the harness's flags.
type options struct {
	workers      int
	service      time.Duration
	duration     time.Duration
	multiplier   float64
	deadline     time.Duration
	warmup       time.Duration
	configs      []string
	halve        []string
	halveAt      time.Duration
	queueSize    int
	queueTimeout time.Duration
	minLimit     int
	maxLimit     int
	abandon      bool
	holdfast     string
	keep         bool
	out          string
	timeline     bool
	busy         string // set when the machine was busy at the start
}

// capacity is what the backend serves per second, in requests.
func (o *options) capacity() float64 { return float64(o.workers) / o.service.Seconds() }

// configuration is one way of running holdfast in front of the backend.
type configuration struct {
	name  string // as -configs names it, and its template configs/NAME.yaml
	label string
}

func (o *options) configuration(name string) configuration {
	q := fmt.Sprintf("queue %d/%v", o.queueSize, o.queueTimeout)
	switch name {
	case "none":
		return configuration{name, "(a) no limit"}
	case "static":
		return configuration{name, fmt.Sprintf("(b) max_conns %d, %s", o.workers, q)}
	default:
		return configuration{name, fmt.Sprintf("(c) adaptive %d-%d, %s", o.minLimit, o.maxLimit, q)}
	}
}

var knownConfigs = []string{"none", "static", "adaptive"}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("overload", flag.ContinueOnError)
	fs.IntVar(&o.workers, "capacity", 50, "C: requests the backend serves at once")
	fs.DurationVar(&o.service, "service", 100*time.Millisecond, "S: the backend's service time per request; capacity is C/S per second")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of each measured run")
	fs.Float64Var(&o.multiplier, "multiplier", 3, "offered load as a multiple of the capacity C/S")
	fs.DurationVar(&o.deadline, "deadline", time.Second, "the client's deadline for each request")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load at half the capacity before each measured run, not counted (0: none)")
	configs := fs.String("configs", "none,static,adaptive", "configurations to run under steady overload, of: none, static, adaptive (empty: none)")
	halve := fs.String("halve", "adaptive", "configurations to run again with the capacity halved mid-run (empty: none)")
	fs.DurationVar(&o.halveAt, "halve-at", 0, "when the capacity is halved, from the start of the measured run (0: half of -duration)")
	fs.IntVar(&o.queueSize, "queue-size", 100, "queue.size of configurations (b) and (c)")
	fs.DurationVar(&o.queueTimeout, "queue-timeout", time.Second, "queue.timeout of configurations (b) and (c)")
	fs.IntVar(&o.minLimit, "min-limit", 5, "adaptive.min_limit of configuration (c)")
	fs.IntVar(&o.maxLimit, "max-limit", 500, "adaptive.max_limit of configuration (c)")
	fs.BoolVar(&o.abandon, "abandon", false, "the backend drops queued requests whose caller went away, instead of working on them")
	fs.StringVar(&o.holdfast, "holdfast", "", "holdfast `binary` to run, instead of building ./cmd/holdfast")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configurations and logs) and print its path")
	fs.StringVar(&o.out, "out", "", "also write the report to this `file`")
	fs.BoolVar(&o.timeline, "timeline", false, "print the second-by-second table of steady runs too (it is always printed for halved runs)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./bench/overload [flags]   (see bench/overload/README.md)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.configs, err = configList(*configs); err != nil {
		return nil, fmt.Errorf("-configs: %w", err)
	}
	if o.halve, err = configList(*halve); err != nil {
		return nil, fmt.Errorf("-halve: %w", err)
	}
	if o.halveAt == 0 {
		o.halveAt = o.duration / 2
	}
	switch {
	case o.workers < 2:
		return nil, errors.New("-capacity must be 2 or more (it is halved)")
	case o.service <= 0 || o.duration <= 0 || o.deadline <= 0 || o.warmup < 0:
		return nil, errors.New("-service, -duration and -deadline must be more than 0, -warmup 0 or more")
	case o.multiplier <= 0:
		return nil, errors.New("-multiplier must be more than 0")
	case o.halveAt <= 0 || o.halveAt >= o.duration:
		return nil, errors.New("-halve-at must fall within -duration")
	case len(o.configs)+len(o.halve) == 0:
		return nil, errors.New("nothing to run: -configs and -halve are both empty")
	}
	return o, nil
}

func configList(s string) ([]string, error) {
	var names []string
	for n := range strings.SplitSeq(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(knownConfigs, n) {
			return nil, fmt.Errorf("unknown configuration %q (known: %s)", n, strings.Join(knownConfigs, ", "))
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}

// errRejected marks a configuration that holdfast check refused.
var errRejected = errors.New("holdfast check rejects the configuration")

func harness(args []string) int {
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "overload:", err)
		return 2
	}
	o.busy = machineBusy()
	if o.busy != "" {
		logf("warning: %s; other work competes for the CPU and the numbers will be noisy", o.busy)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "holdfast-overload-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "overload:", err)
		return 1
	}
	if o.keep {
		defer fmt.Fprintf(os.Stderr, "overload: configurations and logs kept in %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	ps := &procs{}
	defer ps.stopAll() // runs before the removal above

	h := &bench{o: o, ps: ps, work: work}
	if h.self, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "overload:", err)
		return 1
	}
	h.holdfast = o.holdfast
	if h.holdfast == "" {
		logf("building ./cmd/holdfast")
		if h.holdfast, err = buildHoldfast(ctx, work); err != nil {
			if ctx.Err() != nil {
				return 130
			}
			fmt.Fprintln(os.Stderr, "overload:", err)
			return 1
		}
	}

	var runs []*run
	status := 0
	plan := make([]*run, 0, len(o.configs)+len(o.halve))
	for _, n := range o.configs {
		plan = append(plan, &run{cfg: o.configuration(n)})
	}
	for _, n := range o.halve {
		plan = append(plan, &run{cfg: o.configuration(n), halve: true})
	}
	for _, r := range plan {
		err := h.measure(ctx, r)
		switch {
		case ctx.Err() != nil:
			logf("interrupted: stopping everything")
			return 130
		case errors.Is(err, errRejected):
			r.skipped = "holdfast check rejects the configuration (see stderr)"
			status = 1
		case err != nil:
			logf("%s: %v", r.cfg.label, err)
			r.skipped = "failed (see stderr)"
			status = 1
		}
		runs = append(runs, r)
	}

	var buf bytes.Buffer
	report(&buf, o, runs)
	os.Stdout.Write(buf.Bytes())
	if o.out != "" {
		if err := os.WriteFile(o.out, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "overload:", err)
			status = 1
		}
	}
	return status
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[overload] "+format+"\n", args...)
}

// bench holds what every run shares.
type bench struct {
	o        *options
	ps       *procs
	work     string
	self     string // this program, to start the backend
	holdfast string
}

// run is one measured run of one configuration, and what it measured.
type run struct {
	cfg     configuration
	halve   bool
	skipped string // why there are no results

	results []result
	maxLag  time.Duration // how far behind schedule the generator fell
	seconds []sample      // the state at the end of each second
	backend backendStats  // at the end
}

// sample is the state of holdfast and the backend at one moment; -1 stands
// for what is not known.
type sample struct {
	workers, queued int // the backend
	inFlight        int // holdfast's requests in flight to the pool
	limit           int // the pool's adaptive limit
}

// measure runs one configuration: a fresh backend and holdfast, a warm-up,
// then the measured load. Every process it starts is stopped before it
// returns.
func (h *bench) measure(ctx context.Context, r *run) error {
	o := h.o
	scenario := "steady overload"
	if r.halve {
		scenario = fmt.Sprintf("capacity halved at %v", o.halveAt)
	}
	logf("%s, %s", r.cfg.label, scenario)
	dir := filepath.Join(h.work, r.cfg.name+"-steady")
	if r.halve {
		dir = filepath.Join(h.work, r.cfg.name+"-halved")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	args := []string{h.self, "backend", "-workers", strconv.Itoa(o.workers), "-service", o.service.String()}
	if o.abandon {
		args = append(args, "-abandon")
	}
	be, beAddr, err := h.ps.startListening("backend", filepath.Join(dir, "backend.log"), args...)
	if be != nil {
		defer h.ps.stop(be)
	}
	if err != nil {
		return err
	}

	file, listen, admin, err := h.writeConfig(dir, r.cfg, beAddr)
	if err != nil {
		return err
	}
	check := exec.CommandContext(ctx, h.holdfast, "check", "-c", file)
	if out, err := check.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logf("%s: SKIPPED: holdfast check rejects the configuration made from configs/%s.yaml\n"+
			"    (a holdfast that does not know one of its keys does). holdfast said:\n%s",
			r.cfg.label, r.cfg.name, indent(string(out)))
		return errRejected
	}

	hf, err := h.ps.start("holdfast", filepath.Join(dir, "holdfast.log"), h.holdfast, "serve", "-c", file)
	if err != nil {
		return err
	}
	defer h.ps.stop(hf)
	proxyURL := "http://" + listen + "/"
	if err := waitReady(ctx, hf, proxyURL, "http://"+admin+"/readyz"); err != nil {
		return fmt.Errorf("%w; holdfast's log:\n%s", err, tail(hf.logf, 20))
	}

	if o.warmup > 0 {
		w := newLoad(proxyURL, o.capacity()/2, o.deadline)
		w.run(ctx, o.warmup)
		w.close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	g := newLoad(proxyURL, o.capacity()*o.multiplier, o.deadline)
	defer g.close()
	ctl := &http.Client{Timeout: 900 * time.Millisecond}
	start := time.Now()
	pollDone := make(chan struct{})
	pollCtx, stopPoll := context.WithCancel(ctx)
	go func() {
		defer close(pollDone)
		r.seconds = poll(pollCtx, ctl, start, "http://"+admin, "http://"+beAddr)
	}()
	if r.halve {
		t := time.AfterFunc(o.halveAt, func() {
			if err := setWorkers(ctl, "http://"+beAddr, o.workers/2); err != nil {
				logf("halving the capacity: %v", err)
			}
		})
		defer t.Stop()
	}
	g.run(ctx, o.duration)
	stopPoll()
	<-pollDone
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.results, r.maxLag = g.take()
	r.backend, _ = backendState(ctl, "http://"+beAddr)
	select {
	case <-hf.exited:
		return fmt.Errorf("holdfast exited during the run (%v); its log:\n%s", hf.err, tail(hf.logf, 20))
	default:
	}
	return nil
}

// templateData fills configs/*.yaml.
type templateData struct {
	Listen, Admin, Backend string
	Workers                int
	QueueSize              int
	QueueTimeout           string
	MinLimit, MaxLimit     int
}

func (h *bench) writeConfig(dir string, c configuration, backend string) (file, listen, admin string, err error) {
	text, err := configFS.ReadFile("configs/" + c.name + ".yaml")
	if err != nil {
		return "", "", "", err
	}
	tmpl, err := template.New(c.name).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return "", "", "", fmt.Errorf("configs/%s.yaml: %w", c.name, err)
	}
	if listen, err = freePort(); err != nil {
		return "", "", "", err
	}
	if admin, err = freePort(); err != nil {
		return "", "", "", err
	}
	var b bytes.Buffer
	err = tmpl.Execute(&b, templateData{
		Listen: listen, Admin: admin, Backend: "http://" + backend,
		Workers: h.o.workers, QueueSize: h.o.queueSize, QueueTimeout: h.o.queueTimeout.String(),
		MinLimit: h.o.minLimit, MaxLimit: h.o.maxLimit,
	})
	if err != nil {
		return "", "", "", fmt.Errorf("configs/%s.yaml: %w", c.name, err)
	}
	file = filepath.Join(dir, "holdfast.yaml")
	return file, listen, admin, os.WriteFile(file, b.Bytes(), 0o644)
}

// waitReady waits up to 15s for holdfast to be ready and to pass a request
// through to the backend.
func waitReady(ctx context.Context, hf *proc, proxyURL, readyURL string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-hf.exited:
			return fmt.Errorf("holdfast exited at start (%v)", hf.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if last = get(c, readyURL); last != nil {
			continue
		}
		if last = get(c, proxyURL); last == nil {
			return nil
		}
	}
	return fmt.Errorf("holdfast not ready within 15s: %v", last)
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// poll records the state of holdfast and the backend at the end of every
// second from start, until ctx ends.
func poll(ctx context.Context, c *http.Client, start time.Time, admin, backend string) []sample {
	var out []sample
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return out
		case <-time.After(time.Until(start.Add(time.Duration(i) * time.Second))):
		}
		s := sample{workers: -1, queued: -1, inFlight: -1, limit: -1}
		if b, err := backendState(c, backend); err == nil {
			s.workers, s.queued = b.Workers, b.Queued
		}
		s.inFlight, s.limit = poolState(c, admin)
		out = append(out, s)
	}
}

func backendState(c *http.Client, backend string) (backendStats, error) {
	var b backendStats
	resp, err := c.Get(backend + backendPrefix + "stats")
	if err != nil {
		return b, err
	}
	defer resp.Body.Close()
	return b, json.NewDecoder(resp.Body).Decode(&b)
}

func setWorkers(c *http.Client, backend string, n int) error {
	resp, err := c.Post(fmt.Sprintf("%s%sworkers?n=%d", backend, backendPrefix, n), "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("POST %sworkers: %s", backendPrefix, resp.Status)
	}
	return nil
}

// poolState reads GET /api/v1/pools: the requests in flight to the pool's
// servers, and its adaptive limit when the pool shows one
// ("adaptive": {"limit": N, ...}); -1 for what it does not show.
func poolState(c *http.Client, admin string) (inFlight, limit int) {
	inFlight, limit = -1, -1
	resp, err := c.Get(admin + "/api/v1/pools")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var doc struct {
		Pools []struct {
			Servers []struct {
				InFlight int `json:"in_flight"`
			} `json:"servers"`
			Adaptive *struct {
				Limit *float64 `json:"limit"`
			} `json:"adaptive"`
		} `json:"pools"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&doc) != nil || len(doc.Pools) == 0 {
		return
	}
	p := doc.Pools[0]
	inFlight = 0
	for _, s := range p.Servers {
		inFlight += s.InFlight
	}
	if p.Adaptive != nil && p.Adaptive.Limit != nil {
		limit = int(*p.Adaptive.Limit)
	}
	return
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// machineBusy describes the machine's load average when it is at half its
// CPUs or more before the harness starts anything, and is "" otherwise (or
// where /proc/loadavg does not exist).
func machineBusy() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	load, err := strconv.ParseFloat(f[0], 64)
	if err != nil || load < float64(runtime.NumCPU())/2 {
		return ""
	}
	return fmt.Sprintf("load average %.1f on %d CPUs", load, runtime.NumCPU())
}
