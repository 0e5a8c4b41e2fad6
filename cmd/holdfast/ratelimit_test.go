package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// tally counts the answers of a paced load.
type tally struct{ ok, limited, other atomic.Int64 }

// pace sends rate requests a second to url until stop is closed, each on
// its own goroutine so that a slow answer does not slow the pace.
func pace(url string, rate int, stop <-chan struct{}, t *tally, wg *sync.WaitGroup) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		wg.Go(func() {
			resp, err := client.Get(url)
			if err != nil {
				t.other.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				t.ok.Add(1)
			case 429:
				t.limited.Add(1)
			default:
				t.other.Add(1)
			}
		})
	}
}

// rateLimitMode reads the mode of the rate limits from an admin API.
func rateLimitMode(admin string) string {
	resp, err := http.Get("http://" + admin + "/api/v1/rate_limits")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var st struct {
		Mode string `json:"mode"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	return st.Mode
}

// TestSharedRateLimit runs two holdfast processes sharing one real
// redis-server, each offered 150 requests a second against a route limit
// of 100 a second shared between them: together they accept about 100 a
// second. With Redis killed, each falls back to half the limit, and no
// client sees a 5xx; with Redis back, the limit is shared again.
func TestSharedRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("18 seconds")
	}
	redis := testutil.Redis(t)
	backend := testutil.Backend(t, nil)
	dir := t.TempDir()
	type inst struct{ listen, admin string }
	var insts []inst
	for i := 0; i < 2; i++ {
		in := inst{freeAddr(t), freeAddr(t)}
		cfg := fmt.Sprintf(`listen: [{addr: %q}]
admin: {addr: %q}
access_log: {path: "off"}
rate_limit_store: {url: %q, store_timeout: 50ms, instances: 2}
routes:
  - upstream: api
    rate_limits: [{key: route, rate: 100/s, burst: 10}]
upstreams:
  api: {servers: [{url: %q}]}
`, in.listen, in.admin, redis.URL(), backend.URL)
		file := filepath.Join(dir, fmt.Sprintf("h%d.yaml", i))
		if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		startServe(t, file, in.listen)
		insts = append(insts, in)
	}

	run := func(d time.Duration, during func()) (ok, limited, other int64) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var tl tally
		for _, in := range insts {
			wg.Go(func() { pace("http://"+in.listen+"/", 150, stop, &tl, &wg) })
		}
		if during != nil {
			during()
		} else {
			time.Sleep(d)
		}
		close(stop)
		wg.Wait()
		return tl.ok.Load(), tl.limited.Load(), tl.other.Load()
	}

	ok, limited, other := run(10*time.Second, nil)
	t.Logf("shared, 10s at 2 × 150/s against 100/s: %d accepted, %d limited, %d other", ok, limited, other)
	if ok < 900 || ok > 1100 || other != 0 {
		t.Errorf("accepted %d (want 1,000 ± 10%%), other answers %d (want 0)", ok, other)
	}
	for _, in := range insts {
		if m := rateLimitMode(in.admin); m != "shared" {
			t.Errorf("mode %q, want shared", m)
		}
	}

	// Redis killed for 3 seconds in the middle of 7.
	var modes [2]string
	ok, limited, other = run(0, func() {
		time.Sleep(2 * time.Second)
		redis.Stop()
		time.Sleep(1500 * time.Millisecond)
		for i, in := range insts {
			modes[i] = rateLimitMode(in.admin)
		}
		time.Sleep(1500 * time.Millisecond)
		redis.Start()
		time.Sleep(2 * time.Second)
	})
	t.Logf("Redis down 3s of 7: %d accepted, %d limited, %d other; modes while down %v", ok, limited, other, modes)
	if other != 0 {
		t.Errorf("%d answers other than 200 and 429 while Redis was down", other)
	}
	if modes != [2]string{"local-fallback", "local-fallback"} {
		t.Errorf("modes while Redis was down = %v, want local-fallback on both", modes)
	}
	if ok < 600 || ok > 850 {
		t.Errorf("accepted %d over 7s with Redis down for 3, want about 700 (100/s shared, 2 × 50/s alone)", ok)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, in := range insts {
		for rateLimitMode(in.admin) != "shared" && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if m := rateLimitMode(in.admin); m != "shared" {
			t.Errorf("mode after Redis came back = %q, want shared", m)
		}
	}
}
