package demo

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Headers by which the demo's clients label their requests, so that the
// backends can count deliveries and the summary can find a request's
// access-log line.
const (
	headerRequestID = "X-Request-Id"
	headerDemoID    = "X-Demo-Id"
	headerIdemKey   = "Idempotency-Key"
)

// backend is one of the demo's upstream servers: an in-process http.Server
// on a loopback port that it keeps across restarts, counting what reaches
// it, and answering as its behave function decides. Its methods are safe
// for concurrent use.
type backend struct {
	name   string
	behave func(ctx context.Context, n int64, w http.ResponseWriter) // n counts requests from 1
	posts  *deliveries

	received   atomic.Int64 // requests that reached the handler
	misbehaved atomic.Int64 // deaths, 502s or slow answers, by kind
	slowNow    atomic.Int64 // slow answers in progress

	mu       sync.Mutex
	addr     string // fixed by the first start
	srv      *http.Server
	ln       net.Listener
	conns    map[net.Conn]struct{}
	down     bool
	backAt   time.Time // when a dead backend comes back
	serveErr error     // set when a restart could not bind its port
	stopped  bool

	wg       sync.WaitGroup // Serve goroutines
	handlers sync.WaitGroup // requests being answered; Add under mu, unless stopped
}

// newDies returns flaky-dies: it answers every request well, and dies and
// comes back on the schedule that [backend.cycle] runs.
func newDies(posts *deliveries) *backend {
	return &backend{name: "flaky-dies", posts: posts, behave: func(_ context.Context, _ int64, w http.ResponseWriter) {
		answer(w, http.StatusOK, "flaky-dies")
	}}
}

// new502 returns flaky-502: every nth request gets a 502, as from a backend
// whose own upstream failed.
func new502(posts *deliveries, every int) *backend {
	b := &backend{name: "flaky-502", posts: posts}
	b.behave = func(_ context.Context, n int64, w http.ResponseWriter) {
		if n%int64(every) == 0 {
			b.misbehaved.Add(1)
			answer(w, http.StatusBadGateway, "flaky-502")
			return
		}
		answer(w, http.StatusOK, "flaky-502")
	}
	return b
}

// newSlow returns slow: every nth request waits delay before its answer,
// longer than the gateway's read timeout. The wait ends early when the
// gateway gives up and closes the connection, as a server that notices its
// client left would.
func newSlow(posts *deliveries, every int, delay time.Duration) *backend {
	b := &backend{name: "slow", posts: posts}
	b.behave = func(ctx context.Context, n int64, w http.ResponseWriter) {
		if n%int64(every) == 0 {
			b.misbehaved.Add(1)
			b.slowNow.Add(1)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			b.slowNow.Add(-1)
		}
		answer(w, http.StatusOK, "slow")
	}
	return b
}

func answer(w http.ResponseWriter, status int, name string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Demo-Backend", name)
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"backend\":%q,\"status\":%d}\n", name, status)
}

// ServeHTTP counts the request, and for a POST the delivery of its id,
// before the backend's behaviour decides the answer: a POST that reached
// the handler was delivered, whatever the backend answers.
func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return
	}
	b.handlers.Add(1)
	b.mu.Unlock()
	defer b.handlers.Done()
	n := b.received.Add(1)
	_, _ = io.Copy(io.Discard, r.Body)
	if r.Method == http.MethodPost {
		b.posts.add(r.Header.Get(headerDemoID), r.Header.Get(headerIdemKey) != "")
	}
	b.behave(r.Context(), n, w)
}

// start listens on the backend's port (a new loopback port the first time)
// and serves in a goroutine that stop waits for.
func (b *backend) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return fmt.Errorf("%s: stopped", b.name)
	}
	addr := b.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.serveErr = err
		return fmt.Errorf("%s: %w", b.name, err)
	}
	srv := &http.Server{
		Handler:           b,
		ReadHeaderTimeout: 5 * time.Second,
		ConnState:         b.track,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	b.addr, b.ln, b.srv, b.down, b.serveErr = ln.Addr().String(), ln, srv, false, nil
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		_ = srv.Serve(ln) // returns when kill or stop closes it
	}()
	return nil
}

// track keeps the set of open connections, so that kill can reset them.
func (b *backend) track(c net.Conn, s http.ConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch s {
	case http.StateNew:
		if b.conns == nil {
			b.conns = make(map[net.Conn]struct{})
		}
		b.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(b.conns, c)
	}
}

// kill makes the backend die as a crashed process does: its port refuses
// new connections at once, and every open connection, idle or busy, is
// reset (RST, not FIN). back says when cycle will restart it.
func (b *backend) kill(back time.Time) {
	b.mu.Lock()
	ln, srv := b.ln, b.srv
	b.down, b.backAt = true, back
	for c := range b.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST
		}
	}
	b.mu.Unlock()
	if ln == nil {
		return
	}
	b.misbehaved.Add(1)
	_ = ln.Close()
	_ = srv.Close() // closes every tracked connection
}

// cycle runs flaky-dies's schedule until ctx ends: up for up, dead for
// down, back on the same port, again. A restart that cannot bind its port
// (another process took it) is tried again every 100ms.
func (b *backend) cycle(ctx context.Context, up, down time.Duration) {
	for {
		if !sleep(ctx, up) {
			return
		}
		b.kill(time.Now().Add(down))
		if !sleep(ctx, down) {
			return
		}
		for b.start() != nil {
			if !sleep(ctx, 100*time.Millisecond) {
				return
			}
		}
	}
}

// stop shuts the backend down gracefully until ctx ends, then closes what
// is left, and waits for its goroutines and handlers, those of earlier
// lives included. A request that arrives after stop is not answered.
func (b *backend) stop(ctx context.Context) {
	b.mu.Lock()
	srv := b.srv
	b.srv, b.ln, b.down, b.stopped = nil, nil, true, true
	b.mu.Unlock()
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
	b.wg.Wait()
	b.handlers.Wait()
}

// address returns the backend's host:port.
func (b *backend) address() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// url returns the backend's base URL, as the gateway names the server.
func (b *backend) url() string { return "http://" + b.address() }

// stats returns what the backend did so far, with its state at now.
func (b *backend) stats(now time.Time) BackendStats {
	b.mu.Lock()
	down, backAt, addr, serveErr := b.down, b.backAt, b.addr, b.serveErr
	b.mu.Unlock()
	s := BackendStats{Name: b.name, Addr: addr, Up: !down, Received: b.received.Load()}
	switch b.name {
	case "flaky-dies":
		s.Deaths = b.misbehaved.Load()
	case "flaky-502":
		s.Answered502 = b.misbehaved.Load()
	case "slow":
		s.SlowAnswers = b.misbehaved.Load()
		s.SlowNow = b.slowNow.Load()
	}
	switch {
	case serveErr != nil:
		s.State = "down: " + serveErr.Error()
	case down && !backAt.IsZero() && backAt.After(now):
		s.State = "DOWN, back in " + strconv.FormatFloat(backAt.Sub(now).Seconds(), 'f', 1, 64) + "s"
	case down:
		s.State = "DOWN"
	case s.SlowNow > 0:
		s.State = "up, slow: " + strconv.FormatInt(s.SlowNow, 10) + " waiting"
	default:
		s.State = "up"
	}
	return s
}

// deliveries counts, across the backends, how many times each POST reached
// a backend handler, by the id the client gave it. It is safe for
// concurrent use.
type deliveries struct {
	mu     sync.Mutex
	seen   map[string]int
	dupes  atomic.Int64 // ids without Idempotency-Key delivered more than once
	resent atomic.Int64 // ids with Idempotency-Key delivered more than once
}

func (d *deliveries) add(id string, keyed bool) {
	if id == "" {
		return
	}
	d.mu.Lock()
	if d.seen == nil {
		d.seen = make(map[string]int)
	}
	d.seen[id]++
	n := d.seen[id]
	d.mu.Unlock()
	if n != 2 {
		return // count each id once, at its first redelivery
	}
	if keyed {
		d.resent.Add(1)
	} else {
		d.dupes.Add(1)
	}
}

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
