package main

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The backend is a service of a fixed capacity: W workers, each taking S per
// request. Up to W requests are served at once in S; the others wait in one
// first-come, first-served queue for a worker, so that latency grows with
// every request beyond W (an M/D/W queue). The work is sleeping, not
// computing: the capacity is the workers', and the machine's CPU stays out
// of the measurement.
//
// A request whose caller goes away while it waits is, by default, still
// worked on when its turn comes, as most thread-pool servers do (they learn
// that the client left only when they write the answer): the worker is busy
// for S on an answer nobody reads. This wasted work is what turns an
// overload into a collapse. With -abandon, such requests leave the queue
// instead (a server that checks for gone clients); requests already in
// service always finish.
//
// It runs in its own process, started by the harness as
// "overload backend -workers W -service S", and prints "listening ADDR".
// Besides the load path "/", it serves the harness:
//
//	GET  /_backend/stats          {"workers","busy","queued","served","wasted"}
//	POST /_backend/workers?n=N    sets the number of workers
const backendPrefix = "/_backend/"

// workers is the backend's pool of workers and its queue.
type workers struct {
	service time.Duration
	abandon bool

	mu     sync.Mutex
	n      int        // workers
	busy   int        // workers serving a request, abandoned ones included
	queue  *list.List // of *waiter, oldest first
	served int64      // requests answered
	wasted int64      // requests worked on after their caller left
}

// waiter is a request in the queue. A waiter whose caller left stays in the
// queue as a ghost (unless abandon is set), to take its turn of work.
type waiter struct {
	ready chan struct{} // closed when a worker takes it
	ghost bool
}

func newWorkers(n int, service time.Duration, abandon bool) *workers {
	return &workers{n: n, service: service, abandon: abandon, queue: list.New()}
}

// serve takes a worker (waiting for one if all are busy), works S, and
// reports whether the caller was still there to be answered.
func (w *workers) serve(ctx context.Context) bool {
	w.mu.Lock()
	if w.busy < w.n && w.queue.Len() == 0 {
		w.busy++
		w.mu.Unlock()
	} else {
		wt := &waiter{ready: make(chan struct{})}
		e := w.queue.PushBack(wt)
		w.mu.Unlock()
		select {
		case <-wt.ready:
		case <-ctx.Done():
			w.mu.Lock()
			select {
			case <-wt.ready: // taken just now: a worker is ours, use it
				w.mu.Unlock()
			default:
				if w.abandon {
					w.queue.Remove(e)
				} else {
					wt.ghost = true
				}
				w.mu.Unlock()
				return false
			}
		}
	}
	time.Sleep(w.service)
	w.release(ctx.Err() != nil)
	return ctx.Err() == nil
}

// release frees a worker and hands free workers to the queue in order. A
// ghost keeps its worker busy for S without anyone to answer.
func (w *workers) release(wasted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy--
	if wasted {
		w.wasted++
	} else {
		w.served++
	}
	w.dispatch()
}

// dispatch gives free workers to the oldest waiters. Called with mu held.
func (w *workers) dispatch() {
	for w.busy < w.n && w.queue.Len() > 0 {
		wt := w.queue.Remove(w.queue.Front()).(*waiter)
		w.busy++
		if wt.ghost {
			time.AfterFunc(w.service, func() { w.release(true) })
			continue
		}
		close(wt.ready)
	}
}

func (w *workers) setWorkers(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n = n
	w.dispatch()
}

// backendStats is the JSON of GET /_backend/stats.
type backendStats struct {
	Workers int   `json:"workers"`
	Busy    int   `json:"busy"`
	Queued  int   `json:"queued"`
	Served  int64 `json:"served"`
	Wasted  int64 `json:"wasted"`
}

func (w *workers) stats() backendStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return backendStats{Workers: w.n, Busy: w.busy, Queued: w.queue.Len(), Served: w.served, Wasted: w.wasted}
}

func (w *workers) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == backendPrefix+"stats" && r.Method == http.MethodGet:
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(w.stats())
	case r.URL.Path == backendPrefix+"workers" && r.Method == http.MethodPost:
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 1 {
			http.Error(rw, "n must be a whole number, 1 or more", http.StatusBadRequest)
			return
		}
		w.setWorkers(n)
		rw.WriteHeader(http.StatusNoContent)
	default:
		if w.serve(r.Context()) {
			rw.Header().Set("Content-Type", "text/plain")
			_, _ = rw.Write([]byte("ok\n"))
		}
	}
}

// backendMain is the "backend" subcommand.
func backendMain(args []string) int {
	fs := flag.NewFlagSet("overload backend", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback `host:port` to listen on (port 0: the kernel picks)")
	n := fs.Int("workers", 50, "requests served at once")
	service := fs.Duration("service", 100*time.Millisecond, "service time of one request")
	abandon := fs.Bool("abandon", false, "drop queued requests whose caller went away instead of working on them")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *n < 1 || *service <= 0 {
		fmt.Fprintln(os.Stderr, "backend: -workers and -service must be more than 0")
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: newWorkers(*n, *service, *abandon), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "backend:", err)
		return 1
	case <-ctx.Done():
	}
	// Requests still queued are of no interest to anyone: stop at once.
	if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "backend:", err)
	}
	return 0
}
