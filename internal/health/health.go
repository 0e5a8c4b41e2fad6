// Package health runs what keeps a gateway's picture of its servers current
// between requests: active HTTP checks of each server, re-resolution of
// server host names, and discovery of a pool's servers in DNS SRV records.
//
// Results go into the servers' upstream.State, where balancing reads them;
// this package decides nothing about requests. A Runner owns one goroutine
// per task (a server's checks, a host's lookups, a pool's discovery) and
// stops and waits for them on Sync and Close.
package health

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/upstream"
)

// Options configure a Runner. The zero value is ready for production use.
type Options struct {
	// Resolver resolves host names and SRV records. nil means
	// net.DefaultResolver.
	Resolver *net.Resolver
	// TLSConfig is the base TLS configuration for checks of https servers.
	// nil means the system roots.
	TLSConfig *tls.Config
	// Logger receives state changes and failed lookups. nil discards them.
	Logger *slog.Logger
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// MaxConcurrent bounds the checks in flight at once, over every pool.
	// 0 means 64.
	MaxConcurrent int
	// Discovered is called from a discovery task when the servers found for
	// a pool change; the gateway builds the pool again with them. May be nil.
	Discovered func(pool string)
}

// Runner runs the health tasks of the pools in force. Its methods are safe
// for concurrent use.
type Runner struct {
	o    Options
	sem  chan struct{}
	root context.Context
	stop context.CancelFunc

	mu     sync.Mutex
	tasks  map[string]*task // by key: kind, pool, server and settings
	found  map[string]*Found
	closed bool
}

// task is one goroutine: its loop, and how to stop it and wait for it.
type task struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Runner with no tasks.
func New(o Options) *Runner {
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 64
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{
		o:     o,
		sem:   make(chan struct{}, o.MaxConcurrent),
		root:  ctx,
		stop:  cancel,
		tasks: make(map[string]*task),
		found: make(map[string]*Found),
	}
}

// Sync makes the running tasks those the pools need: tasks whose server and
// settings are unchanged keep running on their schedule, new ones start,
// and the others are stopped and waited for before Sync returns.
func (r *Runner) Sync(pools []*upstream.Pool) {
	want := make(map[string]func(ctx context.Context))
	discovered := make(map[string]bool)
	for _, p := range pools {
		if d := p.Config.Discover; d != nil {
			want[discoverKey(p.Name, d)] = r.discoverLoop(p.Name, *d)
			discovered[foundKey(p.Name, *d)] = true
		}
		h := p.Config.Health
		for _, s := range p.Servers {
			if h.Path != "" {
				want[checkKey(p.Name, s, h)] = r.checkLoop(p, s, h)
			}
			if rf := p.Config.DNS.Refresh; rf > 0 && !isIP(s.URL.Hostname()) {
				want[resolveKey(p.Name, s, rf)] = r.resolveLoop(p.Name, s, rf)
			}
		}
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	for k := range r.found {
		if !discovered[k] {
			delete(r.found, k) // the pool, or its discovery, is gone
		}
	}
	var stopped []*task
	for k, t := range r.tasks {
		if _, ok := want[k]; !ok {
			t.cancel()
			stopped = append(stopped, t)
			delete(r.tasks, k)
		}
	}
	for k, loop := range want {
		if _, ok := r.tasks[k]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(r.root)
		t := &task{cancel: cancel, done: make(chan struct{})}
		r.tasks[k] = t
		go func() {
			defer close(t.done)
			loop(ctx)
		}()
	}
	r.mu.Unlock()
	for _, t := range stopped {
		<-t.done
	}
}

// Close stops every task and waits for them. The Runner cannot be used
// again.
func (r *Runner) Close() {
	r.mu.Lock()
	r.closed = true
	r.stop()
	tasks := r.tasks
	r.tasks = nil
	r.mu.Unlock()
	for _, t := range tasks {
		<-t.done
	}
}

// Tasks returns the number of tasks running.
func (r *Runner) Tasks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tasks)
}

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func isIP(host string) bool { return net.ParseIP(host) != nil }
