package upstream

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/config"
)

func intp(n int) *int { return &n }

// testPool builds a pool from "name:weight[:backup]" specs.
func testPool(t *testing.T, balance string, specs ...string) *Pool {
	t.Helper()
	u := &config.Upstream{Name: "p", Balance: balance, Hash: "client_ip",
		Passive: config.Passive{MaxEjectedPercent: 50, MaxEjectionTime: 300 * time.Second}}
	for _, sp := range specs {
		parts := strings.Split(sp, ":")
		var w int
		fmt.Sscan(parts[1], &w)
		u.Servers = append(u.Servers, config.Server{
			URL: "http://" + parts[0] + ":80", Weight: w, MaxFails: intp(1), FailTimeout: 10 * time.Second,
			Backup: len(parts) > 2 && parts[2] == "backup",
		})
	}
	p, err := NewPool(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pick(p *Pool, tried *Tried, now time.Time) string {
	s, _ := p.Pick(tried, 0, false, now, nil)
	if s == nil {
		return "-"
	}
	return s.URL.Hostname()
}

func TestSmoothWeightedRoundRobin(t *testing.T) {
	p := testPool(t, "round_robin", "a:5", "b:1", "c:1")
	var got []string
	now := time.Now()
	for i := 0; i < 7; i++ {
		got = append(got, pick(p, &Tried{}, now))
	}
	if want := "a a b a c a a"; strings.Join(got, " ") != want {
		t.Errorf("sequence = %v, want %s (nginx's smooth weighted round robin)", got, want)
	}
}

func TestRetryAvoidsTriedServers(t *testing.T) {
	for _, pol := range []string{"round_robin", "least_conn", "p2c", "hash"} {
		t.Run(pol, func(t *testing.T) {
			p := testPool(t, pol, "a:1", "b:1", "c:1")
			now := time.Now()
			for i := 0; i < 50; i++ {
				var tried Tried
				seen := map[string]bool{}
				for j := 0; j < 3; j++ {
					s, _ := p.Pick(&tried, uint64(i)*0x9e3779b97f4a7c15, true, now, nil)
					if seen[s.URL.Hostname()] {
						t.Fatalf("attempt %d went back to %s while untried servers remained", j+1, s.URL.Hostname())
					}
					seen[s.URL.Hostname()] = true
					tried.Add(s)
				}
				// All tried: a fourth attempt may reuse one.
				if s, _ := p.Pick(&tried, 0, false, now, nil); s == nil {
					t.Fatal("no server once all were tried")
				}
			}
		})
	}
}

func TestLeastConnPrefersIdle(t *testing.T) {
	p := testPool(t, "least_conn", "a:1", "b:1", "c:1")
	now := time.Now()
	a, _ := p.Pick(&Tried{}, 0, false, now, nil)
	rel := a.Acquire()
	defer rel()
	b, _ := p.Pick(&Tried{}, 0, false, now, nil)
	rel2 := b.Acquire()
	defer rel2()
	c, _ := p.Pick(&Tried{}, 0, false, now, nil)
	if a == b || b == c || a == c {
		t.Errorf("least_conn picked %s, %s, %s: want three distinct while each is busy", a, b, c)
	}
}

func TestP2CAvoidsLoaded(t *testing.T) {
	p := testPool(t, "p2c", "a:1", "b:1")
	now := time.Now()
	busy := p.Primaries()[0]
	for i := 0; i < 10; i++ {
		busy.Acquire()
	}
	for i := 0; i < 100; i++ {
		if s, _ := p.Pick(&Tried{}, 0, false, now, nil); s == busy {
			t.Fatal("p2c picked the loaded server of two")
		}
	}
}

func TestHashIsConsistent(t *testing.T) {
	p := testPool(t, "hash", "a:1", "b:1", "c:1", "d:1")
	now := time.Now()
	assign := map[uint64]*Server{}
	for k := uint64(0); k < 1000; k++ {
		key := HashString(fmt.Sprint("client-", k))
		s, _ := p.Pick(&Tried{}, key, true, now, nil)
		assign[key] = s
		if again, _ := p.Pick(&Tried{}, key, true, now, nil); again != s {
			t.Fatal("same key, different server")
		}
	}
	counts := map[*Server]int{}
	for _, s := range assign {
		counts[s]++
	}
	for s, n := range counts {
		if n < 150 || n > 350 {
			t.Errorf("%s holds %d of 1000 keys: the ring is uneven", s, n)
		}
	}
	// Eject one server: only its keys move.
	gone := p.Primaries()[1]
	gone.State.ejectedUntil.Store(now.Add(time.Hour).UnixNano())
	moved := 0
	for key, s := range assign {
		n, _ := p.Pick(&Tried{}, key, true, now, nil)
		if n == gone {
			t.Fatal("ejected server picked")
		}
		if s != gone && n != s {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("%d keys of healthy servers moved when another was ejected", moved)
	}
}

func TestBackupOnlyWhenPrimariesUnavailable(t *testing.T) {
	p := testPool(t, "round_robin", "a:1", "b:1", "z:1:backup")
	p.maxEjectedPercent = 100
	now := time.Now()
	for i := 0; i < 10; i++ {
		if got := pick(p, &Tried{}, now); got == "z" {
			t.Fatal("backup used while primaries are up")
		}
	}
	for _, s := range p.Primaries() {
		p.Report(s, HardFailure, "connection_refused", "", now)
	}
	if got := pick(p, &Tried{}, now); got != "z" {
		t.Errorf("picked %s with every primary ejected, want backup z", got)
	}
	p.Report(p.Backups()[0], HardFailure, "connection_refused", "", now)
	s, retryAt := p.Pick(&Tried{}, 0, false, now, nil)
	if s != nil || retryAt.IsZero() {
		t.Errorf("all down: picked %v, retryAt %v; want nil and the earliest return", s, retryAt)
	}
}

func TestEjectionGrowsAndIsCapped(t *testing.T) {
	p := testPool(t, "round_robin", "a:1", "b:1", "c:1", "d:1")
	s := p.Primaries()[0]
	now := time.Now()
	var durs []time.Duration
	for i := 0; i < 7; i++ {
		ev, ok := p.Report(s, HardFailure, "connection_refused", "", now)
		if !ok || ev.Capped {
			t.Fatalf("round %d: no ejection (%+v)", i, ev)
		}
		durs = append(durs, ev.Duration)
		now = now.Add(ev.Duration + time.Millisecond) // back, and fails again at once
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	if fmt.Sprint(durs) != fmt.Sprint(want) {
		t.Errorf("ejection times = %v, want %v", durs, want)
	}
	// A success long after its return resets the growth.
	now = now.Add(time.Hour)
	p.Report(s, Success, "", "", now)
	ev, _ := p.Report(s, HardFailure, "connection_refused", "", now)
	if ev.Duration != 10*time.Second {
		t.Errorf("after recovery, ejection = %v, want 10s", ev.Duration)
	}
}

func TestMaxEjectedPercent(t *testing.T) {
	p := testPool(t, "round_robin", "a:1", "b:1", "c:1", "d:1")
	now := time.Now()
	var ejected, capped int
	for _, s := range p.Primaries() {
		ev, ok := p.Report(s, SoftFailure, "http_502", "", now)
		if !ok {
			t.Fatal("no event")
		}
		if ev.Capped {
			capped++
		} else {
			ejected++
		}
	}
	if ejected != 2 || capped != 2 {
		t.Errorf("soft failures of all 4: ejected %d, capped %d; want 2 and 2 (50%%)", ejected, capped)
	}
	// Hard failures are not capped: a refused port cannot serve anyway.
	for _, s := range p.Primaries() {
		p.Report(s, HardFailure, "connection_refused", "", now)
	}
	if s, _ := p.Pick(&Tried{}, 0, false, now, nil); s != nil {
		t.Errorf("picked %s with every server refusing", s)
	}
}

func TestMaxFailsWindow(t *testing.T) {
	u := &config.Upstream{Name: "p", Passive: config.Passive{MaxEjectedPercent: 100, MaxEjectionTime: time.Minute}}
	u.Servers = []config.Server{
		{URL: "http://a:80", Weight: 1, MaxFails: intp(3), FailTimeout: time.Second},
		{URL: "http://b:80", Weight: 1, MaxFails: intp(3), FailTimeout: time.Second},
	}
	p, err := NewPool(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Primaries()[0]
	now := time.Now()
	p.Report(s, SoftFailure, "x", "", now)
	p.Report(s, SoftFailure, "x", "", now.Add(500*time.Millisecond))
	// The window (fail_timeout) ended: counting starts again.
	if _, ok := p.Report(s, SoftFailure, "x", "", now.Add(1100*time.Millisecond)); ok {
		t.Fatal("ejected on failures spread over more than fail_timeout")
	}
	p.Report(s, SoftFailure, "x", "", now.Add(1200*time.Millisecond))
	if _, ok := p.Report(s, SoftFailure, "x", "", now.Add(1300*time.Millisecond)); !ok {
		t.Fatal("3 failures within fail_timeout did not eject")
	}
}

func TestLoneServerNeverEjected(t *testing.T) {
	p := testPool(t, "round_robin", "a:1")
	now := time.Now()
	for i := 0; i < 5; i++ {
		if _, ok := p.Report(p.Primaries()[0], HardFailure, "connection_refused", "", now); ok {
			t.Fatal("a pool's only server was ejected")
		}
	}
}

func TestRegistryKeepsStateAcrossRebuild(t *testing.T) {
	reg := new(Registry)
	u := &config.Upstream{Name: "p", Passive: config.Passive{MaxEjectedPercent: 100}, Servers: []config.Server{
		{URL: "http://a:80", Weight: 1, MaxFails: intp(1), FailTimeout: time.Minute},
		{URL: "http://b:80", Weight: 1, MaxFails: intp(1), FailTimeout: time.Minute},
	}}
	p1, _ := NewPool(u, reg)
	now := time.Now()
	p1.Report(p1.Primaries()[0], HardFailure, "connection_refused", "", now)
	p2, _ := NewPool(u, reg)
	if !p2.Primaries()[0].State.Ejected(now) {
		t.Error("ejection lost when the pool was rebuilt (reload)")
	}
}

func TestBudget(t *testing.T) {
	b := NewBudget(20, 0)
	now := time.Unix(1000, 0)
	for i := 0; i < 100; i++ {
		b.Request(now)
	}
	allowed := 0
	for i := 0; i < 100; i++ {
		if b.Allow(now) {
			allowed++
		}
	}
	if allowed != 20 {
		t.Errorf("allowed %d retries for 100 requests at 20%%, want 20", allowed)
	}
	// Ten seconds later the window has moved on.
	later := now.Add(11 * time.Second)
	if b.Allow(later) {
		t.Error("retry allowed with no recent requests and no floor")
	}
	f := NewBudget(20, 1)
	if !f.Allow(now) {
		t.Error("the floor allows retries on a quiet pool")
	}
}

func BenchmarkPick(b *testing.B) {
	for _, pol := range []string{"round_robin", "least_conn", "p2c", "hash"} {
		b.Run(pol, func(b *testing.B) {
			u := &config.Upstream{Name: "p", Balance: pol, Passive: config.Passive{MaxEjectedPercent: 50}}
			for i := 0; i < 8; i++ {
				u.Servers = append(u.Servers, config.Server{URL: fmt.Sprintf("http://s%d:80", i), Weight: 1 + i%3, MaxFails: intp(1), FailTimeout: time.Second})
			}
			p, _ := NewPool(u, nil)
			buf := make([]*Server, 0, 16)
			now := time.Now()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				var tried Tried
				p.Pick(&tried, uint64(i)*0x9e3779b97f4a7c15, true, now, buf)
			}
		})
	}
}

func TestBudgetConcurrent(t *testing.T) {
	b := NewBudget(20, 0)
	now := time.Unix(2000, 0)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				b.Request(now)
				if i%2 == 0 && b.Allow(now) {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	// 8000 requests at 20%: about 1600 retries, give or take the races a
	// lock-free count allows.
	if n := allowed.Load(); n < 1500 || n > 1700 {
		t.Errorf("allowed %d retries for 8000 requests at 20%%, want about 1600", n)
	}
}
