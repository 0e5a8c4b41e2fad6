package proxy

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/config"
)

// connCounter counts the connections a backend accepts and sees closed.
type connCounter struct{ opened, closed atomic.Int64 }

func (c *connCounter) hook(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		c.opened.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.closed.Add(1)
	}
}

// churnBackend serves a 1 KiB body, as bench/backend does, and counts the
// connections holdfast opens to it and closes.
func churnBackend(t *testing.T, c *connCounter) string {
	t.Helper()
	body := bytes.Repeat([]byte("a"), 1024)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write(body)
	}))
	srv.Config.ConnState = c.hook
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPoolNoChurnUnderSteadyLoad runs steady load whose concurrency wanders
// between 48 and 64 requests in flight, as a load generator's does, over
// two backends, and counts the upstream connections dialled after the
// warm-up. The pool's idle limit (1024) holds every connection the peak
// needs, so none should have to be dialled again: a connection that waits
// at the bottom of the idle stack for the next peak must not be left to
// expire while traffic flows.
//
// timeouts.idle is 1s instead of the default 4s so that several idle
// periods fit in a short test; the proportions (load changes every tens of
// milliseconds, the deepest peaks seconds apart) are those of bench/run.sh.
// Rotation keeps every connection alive while traffic reaches one request
// per connection per half idle time: here 64 connections need 128
// requests a second, which a machine busy with the whole suite under the
// race detector still serves many times over (at 256 connections it needed
// 512 a second, and a loaded run fell below it and saw connections expire,
// as designed).
func TestPoolNoChurnUnderSteadyLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of load")
	}
	const (
		idle      = time.Second
		warmup    = 1500 * time.Millisecond
		maxWarmup = 6 * time.Second
		measure   = 4 * time.Second
		workers   = 64
		low       = 48
	)
	var conns connCounter
	u1 := churnBackend(t, &conns)
	u2 := churnBackend(t, &conns)
	cfg, err := config.Parse([]byte("access_log: {path: \"off\"}\n"+
		poolConfig("balance: round_robin\ntimeouts: {idle: "+idle.String()+"}", u1, u2)), "churn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tr := new(Transports)
	h, err := New(cfg, Options{Transports: tr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdle)

	ctx, cancel := context.WithCancel(context.Background())
	var (
		limit  atomic.Int64 // workers below this index send requests
		failed atomic.Int64
		served atomic.Int64 // requests answered during the measurement
		wg     sync.WaitGroup
	)
	limit.Store(workers)
	for i := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if int64(i) >= limit.Load() {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", "http://example.com/", nil))
				if w.Code != http.StatusOK {
					failed.Add(1)
				}
				served.Add(1)
			}
		})
	}
	// The concurrency wanders: a new level every 20 to 100ms, uniform
	// between low and workers.
	wg.Go(func() {
		for ctx.Err() == nil {
			limit.Store(int64(low + rand.IntN(workers-low+1)))
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(20+rand.IntN(80)) * time.Millisecond):
			}
		}
	})

	// The warm-up lasts until the pool has stopped growing for half a
	// second (at least warmup, at most maxWarmup): on a loaded machine the
	// peaks take longer to be reached.
	start, last, lastAt := time.Now(), conns.opened.Load(), time.Now()
	for time.Since(start) < maxWarmup {
		time.Sleep(50 * time.Millisecond)
		if n := conns.opened.Load(); n != last {
			last, lastAt = n, time.Now()
		}
		if time.Since(start) >= warmup && time.Since(lastAt) >= 500*time.Millisecond {
			break
		}
	}
	opened0, closed0 := conns.opened.Load(), conns.closed.Load()
	served.Store(0)
	time.Sleep(measure)
	opened, closed := conns.opened.Load()-opened0, conns.closed.Load()-closed0
	cancel()
	wg.Wait()

	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed", n)
	}
	t.Logf("upstream connections: %d opened during the warm-up; after it %d opened, %d closed; %d requests a second",
		opened0, opened, closed, served.Load()*int64(time.Second)/int64(measure))
	if closed > 0 {
		t.Errorf("%d upstream connections closed under steady load, want 0", closed)
	}
	// Not zero opened, at times: round robin splits the requests in flight
	// unevenly between the two backends, and a split more uneven than any
	// seen in the warm-up needs a connection more on one side. Such a
	// connection adds to the pool (none was closed, checked above); the
	// bound only catches a pool that dials far more than it grows. On a
	// loaded machine (the suite runs packages side by side) the warm-up
	// reaches fewer of the peaks, so the bound grows with the pool: a
	// quarter of what the warm-up opened, and never under 32.
	if bound := max(32, opened0/4); opened > bound {
		t.Errorf("%d upstream connections opened after the warm-up, want at most %d (growth to new peaks)", opened, bound)
	}
}
