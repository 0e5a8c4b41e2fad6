package proxy

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeepAliveRace drives requests at about the interval after which the
// backend closes idle keep-alive connections (20ms), so that holdfast often
// picks a pooled connection just as the backend closes it: the most common
// source of intermittent 502s behind a proxy. No client may see an error,
// for GET or POST, and no POST may reach the backend twice.
func TestKeepAliveRace(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 800 paced requests")
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var received atomic.Int64
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received.Add(1)
		io.Copy(io.Discard, r.Body)
		if id := r.Header.Get("X-Test-Id"); id != "" {
			mu.Lock()
			seen[id]++
			mu.Unlock()
		}
		io.WriteString(w, "ok")
	}))
	backend.Config.IdleTimeout = 20 * time.Millisecond
	backend.Start()
	t.Cleanup(backend.Close)

	// Default settings: nothing tuned for this backend.
	e := newEnv(t, poolConfig("", backend.URL))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	t.Cleanup(client.CloseIdleConnections)

	// First contact: holdfast does not know this backend's idle timeout
	// until the backend first closes an idle connection. GETs at a slower
	// pace (retried safely if they race) let that happen; the POSTs that
	// follow must then never meet a closing connection. On a loaded
	// machine the backend's timer can fire late enough for a few GETs to
	// find their connection still open, so the warm-up lasts until
	// holdfast has learned the timeout, not a fixed count.
	learned := func() bool {
		for _, p := range e.h.Pools() {
			for _, s := range p.Servers {
				if s.State.IdleLimit(time.Now()) > 0 {
					return true
				}
			}
		}
		return false
	}
	for i := 0; i < 5 || !learned(); i++ {
		if i == 200 {
			t.Fatal("200 warm-up GETs 25ms apart and holdfast never learned the backend's 20ms idle timeout")
		}
		resp, err := client.Get(e.URL + "/warmup")
		if err != nil {
			t.Fatalf("warm-up GET: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(25 * time.Millisecond)
	}

	const perMethod = 400
	var errs []string
	for i := 0; i < 2*perMethod; i++ {
		method := "GET"
		if i%2 == 1 {
			method = "POST"
		}
		id := fmt.Sprintf("%s-%d", method, i)
		req, _ := http.NewRequest(method, e.URL+"/", strings.NewReader("payload "+id))
		req.Header.Set("X-Test-Id", id)
		resp, err := client.Do(req)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", id, err))
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs = append(errs, fmt.Sprintf("%s: status %d (%s)", id, resp.StatusCode, resp.Header.Get("Proxy-Status")))
			}
		}
		// About the backend's idle timeout, with jitter on both sides.
		time.Sleep(17*time.Millisecond + rand.N(6*time.Millisecond))
	}
	if len(errs) > 0 {
		t.Errorf("%d client-visible errors, want 0; first: %s", len(errs), errs[0])
	}
	mu.Lock()
	defer mu.Unlock()
	dup := 0
	for id, n := range seen {
		if n > 1 {
			dup++
			t.Errorf("%s reached the backend %d times", id, n)
		}
	}
	if len(seen) != 2*perMethod {
		t.Errorf("backend saw %d distinct requests, want %d", len(seen), 2*perMethod)
	}
	var retired int64
	for _, p := range e.h.Pools() {
		for _, s := range p.Servers {
			retired += s.State.StaleRetiredCount()
		}
	}
	t.Logf("requests: %d, received by the backend: %d, duplicate POSTs: %d, pooled connections retired at reuse: %d",
		2*perMethod, received.Load(), dup, retired)
}
