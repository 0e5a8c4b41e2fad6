package client

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// Every transition of the breaker reaches OnStateChange, in order, and
// BreakerState reads the state at each step, from the server's handler
// (while a probe is in flight) as well as from outside.
func TestOnStateChange(t *testing.T) {
	type change struct {
		host     string
		from, to BreakerState
	}
	var (
		mu      sync.Mutex
		changes []change
		down    = true
		during  []BreakerState // the state seen by the handler during each request
		tr      *Transport
	)
	srv, count := counting(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := down
		mu.Unlock()
		st := tr.BreakerState("http://" + r.Host)
		mu.Lock()
		during = append(during, st)
		mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	clk := newFakeClock()
	var c *http.Client
	c, tr = testClient(t, clk, WithMaxAttempts(1), WithBudget(BudgetConfig{Disabled: true}),
		WithBreaker(BreakerConfig{MinAttempts: 2, CoolDown: 5 * time.Second, HalfOpenProbes: 1}),
		WithOnStateChange(func(host string, from, to BreakerState) {
			// Reading the state from the callback must not deadlock.
			if got := tr.BreakerState(host); got != to {
				t.Errorf("BreakerState(%q) in the callback = %v, want %v", host, got, to)
			}
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, change{host, from, to})
		}))
	get := func() error {
		resp, err := c.Get(srv.URL + "/x")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	state := func(want BreakerState) {
		t.Helper()
		if got := tr.BreakerState(srv.URL); got != want {
			t.Errorf("BreakerState(%q) = %v, want %v", srv.URL, got, want)
		}
	}

	state(BreakerClosed) // never sent to
	get()
	state(BreakerClosed)
	get() // second failure of two: opens
	state(BreakerOpen)
	if err := get(); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("Get with the circuit open = %v, want ErrCircuitOpen", err)
	}
	clk.Advance(5 * time.Second)
	get() // the probe fails: open again
	state(BreakerOpen)
	clk.Advance(5 * time.Second)
	mu.Lock()
	down = false
	mu.Unlock()
	if err := get(); err != nil { // the probe succeeds: closed
		t.Fatal(err)
	}
	state(BreakerClosed)

	h := srv.URL // already lowercase: "http://127.0.0.1:port"
	want := []change{
		{h, BreakerClosed, BreakerOpen},
		{h, BreakerOpen, BreakerHalfOpen},
		{h, BreakerHalfOpen, BreakerOpen},
		{h, BreakerOpen, BreakerHalfOpen},
		{h, BreakerHalfOpen, BreakerClosed},
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(changes, want) {
		t.Errorf("transitions:\n got %v\nwant %v", changes, want)
	}
	wantDuring := []BreakerState{BreakerClosed, BreakerClosed, BreakerHalfOpen, BreakerHalfOpen}
	if !slices.Equal(during, wantDuring) || count.Load() != 4 {
		t.Errorf("server saw %d requests, in states %v; want 4, in %v", count.Load(), during, wantDuring)
	}
}

func TestBreakerStateNames(t *testing.T) {
	for s, want := range map[BreakerState]string{
		BreakerClosed: "closed", BreakerOpen: "open", BreakerHalfOpen: "half-open", 7: "BreakerState(7)",
	} {
		if got := s.String(); got != want {
			t.Errorf("BreakerState(%d).String() = %q, want %q", uint8(s), got, want)
		}
	}
}

// The host may be given in any case, with or without a path.
func TestBreakerStateHostForms(t *testing.T) {
	clk := newFakeClock()
	tr := &Transport{Breaker: BreakerConfig{MinAttempts: 1}}
	tr.now = clk.Now
	tr.init()
	tr.host(mustURL(t, "https://API.example.com:8443/v1"), tr.clock()).breaker.record(clk.Now(), failure, 0)
	for _, in := range []string{"https://api.example.com:8443", "HTTPS://Api.Example.com:8443/v1?x=1", "https://api.example.com:8443/"} {
		if got := tr.BreakerState(in); got != BreakerOpen {
			t.Errorf("BreakerState(%q) = %v, want open", in, got)
		}
	}
	for _, in := range []string{"http://api.example.com:8443", "https://api.example.com", "api.example.com"} {
		if got := tr.BreakerState(in); got != BreakerClosed {
			t.Errorf("BreakerState(%q) = %v, want closed (another host)", in, got)
		}
	}
	if got := (&Transport{}).BreakerState("http://x"); got != BreakerClosed {
		t.Errorf("BreakerState on an unused Transport = %v, want closed", got)
	}
}
