package client

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// Against a server that turns away 9 requests in 10, adaptive throttling
// (K = 2) refuses most requests locally, so that the share reaching the
// server falls from all of them towards what it accepts; once the server
// accepts everything again, the share comes back to all of them.
func TestAdaptiveThrottling(t *testing.T) {
	var healthy atomic.Bool
	srv, count := counting(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() && n%10 != 0 {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	clk := newFakeClock()
	c, tr := testClient(t, clk, WithMaxAttempts(1), WithAdaptiveThrottling(2),
		WithBudget(BudgetConfig{Disabled: true}), WithBreaker(BreakerConfig{Disabled: true}))
	tr.randN = rand.New(rand.NewPCG(1, 2)).Int64N // the requests are sent one at a time
	// Start on a slot of the window, so that the run is the same every time.
	clk.Advance(throttleSlot - time.Duration(clk.Now().UnixNano()%int64(throttleSlot)))

	// send sends n requests, 2 a second, and returns the share that
	// reached the server; every other one must be refused as throttled.
	send := func(n int) float64 {
		t.Helper()
		before := count.Load()
		for range n {
			clk.Advance(500 * time.Millisecond)
			resp, err := c.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
				continue
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Cause != cause.DestinationUnavailable || ce.Stop != StopThrottled ||
				!errors.Is(err, ErrThrottled) || ce.Attempts != 1 || ce.History[0].Status != 0 {
				t.Fatalf("Get = %v, want a request refused as throttled", err)
			}
		}
		return float64(count.Load()-before) / float64(n)
	}

	var shares []float64
	for range 6 { // three minutes of overload, 60 requests in each 30s
		shares = append(shares, send(60))
	}
	healthy.Store(true)
	for range 10 { // five minutes of health
		shares = append(shares, send(60))
	}
	t.Logf("share reaching the server, per 30s: %.2f", shares)
	// Without throttling all would reach it. Over the last two minutes
	// of overload, fewer than the server's 1 in 10 accepted (each refusal
	// lowers what it can accept, and a trickle still goes through, so the
	// share keeps near but not at zero).
	for i, s := range shares[2:6] {
		if s > 0.1 {
			t.Errorf("share reaching the overloaded server in 30s period %d = %.2f, want at most 0.1", i+3, s)
		}
	}
	if shares[5] == 0 && shares[4] == 0 {
		t.Errorf("no request reached the overloaded server in a minute: its recovery could never be seen")
	}
	// Once it accepts everything, the share grows back to all.
	if last := shares[len(shares)-1]; last < 0.9 {
		t.Errorf("share reaching the recovered server after 5 minutes = %.2f, want at least 0.9", last)
	}
	if shares[len(shares)-2] < shares[6] {
		t.Errorf("share did not grow after recovery: %.2f", shares[6:])
	}
}

// The throttle's arithmetic: nothing is refused while accepts keep up
// with requests over K, and the window forgets after two minutes.
func TestThrottleShare(t *testing.T) {
	th := &throttle{k: 2}
	now := time.Unix(1_000_000, 0)
	never := func(int64) int64 { return 1<<53 - 1 } // a draw that refuses only at p = 1
	always := func(int64) int64 { return 0 }        // a draw that refuses at any p > 0
	for range 10 {
		th.record(now, false)
		th.record(now, true)
	}
	if !th.allow(now, always) || th.refusing(now) {
		t.Fatalf("with half accepted (K = 2), share = %.2f, want 0", th.share(now))
	}
	for range 10 {
		th.record(now, false)
	}
	// 30 requests, 10 accepts: (30 - 20) / 31.
	if got, want := th.share(now), 10.0/31; got != want {
		t.Errorf("share = %v, want %v", got, want)
	}
	if !th.allow(now, never) {
		t.Error("a draw above the share was refused")
	}
	if th.allow(now, always) {
		t.Error("a draw below the share was let through")
	}
	if got, want := th.share(now), 11.0/32; got != want { // the refusal counts as a request
		t.Errorf("share after a refusal = %v, want %v", got, want)
	}
	later := now.Add(throttleSlot * throttleSlots)
	if th.refusing(later) {
		t.Errorf("share two minutes later = %v, want 0", th.share(later))
	}
	if off := (&throttle{}); !off.allow(now, always) {
		t.Error("a throttle that is off refused")
	}
}

// A request refused by a host's throttle goes to the next fallback at
// once, as with an open circuit.
func TestThrottledRequestFailsOver(t *testing.T) {
	primary, primaryCount := counting(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {})
	backup, backupCount := counting(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {})
	clk := newFakeClock()
	var rec recorder
	c, tr := testClient(t, clk, WithAdaptiveThrottling(2), WithFallbacks(backup.URL), WithOnAttempt(rec.hook))
	tr.randN = func(int64) int64 { return 0 } // refuses whenever the share is above zero
	tr.init()
	th := &tr.host(mustURL(t, primary.URL), tr.clock()).throttle
	for range 20 {
		th.record(clk.Now(), false)
	}
	resp, err := c.Get(primary.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if primaryCount.Load() != 0 || backupCount.Load() != 1 {
		t.Errorf("primary saw %d, backup %d requests; want 0 and 1", primaryCount.Load(), backupCount.Load())
	}
	infos := rec.all()
	if len(infos) != 2 || !errors.Is(infos[0].Err, ErrThrottled) || infos[0].Cause != cause.DestinationUnavailable ||
		!infos[0].Retry || infos[0].Next != backup.URL {
		t.Errorf("attempts = %v, want a throttled refusal, then the backup", infos)
	}
}
