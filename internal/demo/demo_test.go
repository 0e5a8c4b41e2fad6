package demo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRun runs the whole demo for a few seconds with a shortened schedule
// and checks the claims it makes: traffic reached every backend, flaky-dies
// died under load, holdfast retried and ejected, the clients saw no error
// that holdfast could have absorbed, no POST without Idempotency-Key was
// delivered twice, and nothing is left running afterwards.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 7s")
	}
	before := runtime.NumGoroutine()
	var out, access bytes.Buffer
	rep, err := Run(context.Background(), Options{
		Duration: 7 * time.Second,
		// A light load: the claims do not need more, and a busy machine
		// (the race detector, other tests) must not starve the gateway
		// into timeouts that are not the backends' doing.
		Rate:     40,
		Clients:  8,
		Schedule: Schedule{Up: 1500 * time.Millisecond, Down: 1500 * time.Millisecond, FailEvery: 8, SlowEvery: 10, SlowDelay: 1500 * time.Millisecond},
		Out:      &out,
		Every:    2 * time.Second,
		// Kept for the failure message: the ledger of every request.
		AccessLog: &access,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var summary strings.Builder
	rep.WriteSummary(&summary)
	t.Logf("output:\n%s%s", out.String(), summary.String())

	c, h := rep.Clients, rep.Holdfast
	if c.Requests < 200 {
		t.Errorf("clients sent %d requests in 7s at 40/s, want at least 200", c.Requests)
	}
	if c.Errors != 0 {
		t.Errorf("clients saw %d errors holdfast should have absorbed, want 0 (see the ledgers in the summary)", c.Errors)
	}
	if c.DuplicatePOSTs != 0 {
		t.Errorf("%d POSTs without Idempotency-Key were delivered twice, want 0", c.DuplicatePOSTs)
	}
	if got := c.OK + c.Errors + c.NotResent; got != c.Requests {
		t.Errorf("2xx %d + errors %d + not resent %d = %d, want the %d requests", c.OK, c.Errors, c.NotResent, got, c.Requests)
	}
	if h.Retries == 0 {
		t.Error("holdfast retried nothing, want retries")
	}
	if h.Ejections == 0 {
		t.Error("holdfast ejected no server, want at least one ejection")
	}
	if h.Requests != c.Requests {
		t.Errorf("holdfast answered %d requests, clients finished %d", h.Requests, c.Requests)
	}
	if len(rep.Backends) != 3 {
		t.Fatalf("%d backends in the report, want 3", len(rep.Backends))
	}
	for _, b := range rep.Backends {
		if b.Received == 0 {
			t.Errorf("backend %s received nothing", b.Name)
		}
	}
	if d := rep.Backends[0].Deaths; d < 1 {
		t.Errorf("flaky-dies died %d times while the load ran, want at least 1", d)
	}
	if n := rep.Backends[1].Answered502; n < 1 {
		t.Errorf("flaky-502 answered 502 %d times, want at least 1", n)
	}
	if n := rep.Backends[2].SlowAnswers; n < 1 {
		t.Errorf("slow answered slowly %d times, want at least 1", n)
	}
	for _, f := range rep.NotResent {
		if f.Shape != shapePOSTNoKey.String() || f.Line == nil || !sentAndUnsafe(f.Line) {
			t.Errorf("request %s counted as not resent: %s, ledger %+v", f.RequestID, f.Shape, f.Line)
		}
	}
	var byReason int64
	for _, n := range c.NotResentByReason {
		byReason += n
	}
	if byReason != c.NotResent {
		t.Errorf("unavoidable failures by reason %v add up to %d, want %d", c.NotResentByReason, byReason, c.NotResent)
	}
	if !rep.OK() {
		t.Errorf("Report.OK() = false, verdict %q", rep.Verdict())
	}
	if !strings.Contains(out.String(), "holdfast status --admin 127.0.0.1:") || !strings.Contains(out.String(), "dashboard:") {
		t.Error("the banner does not say where the admin listener and the dashboard are")
	}
	// Not a terminal: plain lines, no cursor movement.
	if !strings.Contains(out.String(), "avoidable errors") || strings.Contains(out.String(), "\x1b") {
		t.Errorf("output to a buffer: want plain lines without escape sequences, got %q", out.String())
	}

	// Everything is stopped: the gateway's and the backends' ports refuse.
	// flaky-dies lets its port go each time it dies, and another test's
	// listener may have been given it since, so its port proves nothing;
	// that it stopped shows in the goroutines below (its server's would
	// be left).
	addrs := []string{strings.TrimPrefix(rep.Gateway, "http://")}
	for _, b := range rep.Backends {
		if b.Name != "flaky-dies" {
			addrs = append(addrs, b.Addr)
		}
	}
	if len(addrs) != 3 {
		t.Fatalf("ports to look at: %v, want the gateway's, flaky-502's and slow's", addrs)
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Run returned", a)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %s after Run: %v, want connection refused", a, err)
		}
	}
	// And no goroutine is left behind. net/http's connection goroutines
	// take a moment to notice their closed sockets: allow them that.
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Run, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestRunStopsOnCancel checks that cancelling the context (Ctrl-C) stops a
// run that has no duration, promptly.
func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, Options{Rate: 20})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run returned %s after the context ended, want promptly", d-1500*time.Millisecond)
	}
	if rep.Clients.Requests == 0 {
		t.Error("no request was sent")
	}
}

// TestRunListenError checks that a gateway address that cannot be bound is
// an error, with the backends stopped.
func TestRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rep, err := Run(context.Background(), Options{Listen: ln.Addr().String(), Duration: time.Second})
	if err == nil || rep != nil {
		t.Fatalf("Run on a busy address = %v, %v; want an error", rep, err)
	}
}

// TestKill checks flaky-dies's death: open connections are reset, not
// closed, the port refuses connections, and a restart serves on the same
// port.
func TestKill(t *testing.T) {
	b := newDies(new(deliveries))
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		b.stop(ctx)
	}()
	addr := b.address()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	b.kill(time.Now().Add(time.Second))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read on a kept-alive connection after kill: %v, want connection reset", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("the port accepts connections while the backend is dead")
	}
	if got := b.stats(time.Now()); got.Up || got.Deaths != 1 {
		t.Errorf("stats after kill: up %v, deaths %d; want down, 1", got.Up, got.Deaths)
	}

	if err := b.start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got := b.address(); got != addr {
		t.Errorf("restarted on %s, want the same port %s", got, addr)
	}
	resp, err = http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET after restart: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET after restart: %d, want 200", resp.StatusCode)
	}
}

// TestBackendsMisbehaveOnSchedule checks the every-nth-request behaviours.
func TestBackendsMisbehaveOnSchedule(t *testing.T) {
	posts := new(deliveries)
	b502 := new502(posts, 3)
	slow := newSlow(posts, 2, 300*time.Millisecond)
	for _, b := range []*backend{b502, slow} {
		if err := b.start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			b.stop(ctx)
		}()
	}
	var statuses []int
	for range 6 {
		resp, err := http.Get(b502.url())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	if want := []int{200, 200, 502, 200, 200, 502}; fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Errorf("flaky-502 answered %v, want %v", statuses, want)
	}
	var took []bool
	for range 4 {
		start := time.Now()
		resp, err := http.Get(slow.url())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		took = append(took, time.Since(start) >= 300*time.Millisecond)
	}
	if want := []bool{false, true, false, true}; fmt.Sprint(took) != fmt.Sprint(want) {
		t.Errorf("slow answers took >= 300ms: %v, want %v", took, want)
	}
}

func TestDeliveries(t *testing.T) {
	var d deliveries
	for _, p := range []struct {
		id    string
		keyed bool
	}{{"a", false}, {"b", true}, {"a", false}, {"a", false}, {"b", true}, {"c", false}, {"", false}, {"", false}} {
		d.add(p.id, p.keyed)
	}
	if got := d.dupes.Load(); got != 1 {
		t.Errorf("duplicates without key = %d, want 1", got)
	}
	if got := d.resent.Load(); got != 1 {
		t.Errorf("resent with key = %d, want 1", got)
	}
}

func TestSentAndUnsafe(t *testing.T) {
	tests := []struct {
		name string
		line AccessLine
		want bool
	}{
		{"upstream 502", AccessLine{Method: "POST", Ledger: []Attempt{{Cause: "upstream_status", Status: 502, Written: true}}}, true},
		{"timeout after sending", AccessLine{Method: "POST", Ledger: []Attempt{{Cause: "http_response_timeout", Written: true}}}, true},
		{"reset after writing", AccessLine{Method: "POST", Ledger: []Attempt{{Cause: "connection_terminated", Written: true}}}, true},
		{"reset before writing", AccessLine{Method: "POST", Ledger: []Attempt{{Cause: "connection_terminated"}}}, false},
		{"refused, then 502", AccessLine{Method: "POST", Ledger: []Attempt{{Cause: "connection_refused"}, {Cause: "upstream_status", Status: 502}}}, true},
		{"502, then refused", AccessLine{Method: "POST", Ledger: []Attempt{{Cause: "upstream_status", Status: 502}, {Cause: "connection_refused"}}}, false},
		{"refused", AccessLine{Method: "POST", Ledger: []Attempt{{Cause: "connection_refused"}}}, false},
		{"no attempt", AccessLine{Method: "POST", Cause: "destination_unavailable"}, false},
		{"GET timeout", AccessLine{Method: "GET", Ledger: []Attempt{{Cause: "http_response_timeout", Written: true}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sentAndUnsafe(&tt.line); got != tt.want {
				t.Errorf("sentAndUnsafe(%+v) = %v, want %v", tt.line, got, tt.want)
			}
		})
	}
}

// TestAccessLogLines checks that lines are put back together across writes
// and that only requests not answered 2xx are kept.
func TestAccessLogLines(t *testing.T) {
	var copyOut bytes.Buffer
	a := newAccessLog(&copyOut)
	in := `{"request_id":"ok-1","method":"GET","status":200}` + "\n" +
		`{"request_id":"bad-1","method":"POST","status":502,"cause":"upstream_status","ledger":[{"server":"http://x","phase":"read","written":true,"cause":"upstream_status","status":502}]}` + "\n" +
		`not json` + "\n" +
		`{"request_id":"bad-2","method":"GET","status":504}` + "\n"
	for i := 0; i < len(in); i += 7 {
		a.Write([]byte(in[i:min(i+7, len(in))]))
	}
	if copyOut.String() != in {
		t.Errorf("copy = %q, want the input", copyOut.String())
	}
	if l := a.take("ok-1"); l != nil {
		t.Errorf("take(ok-1) = %+v, want nil: 2xx lines are not kept", l)
	}
	l := a.take("bad-1")
	if l == nil || l.Status != 502 || len(l.Ledger) != 1 || !l.Ledger[0].Written || l.Ledger[0].Phase != "read" {
		t.Errorf("take(bad-1) = %+v", l)
	}
	if a.take("bad-1") != nil {
		t.Error("take(bad-1) twice: the line was not forgotten")
	}
	if a.take("bad-2") == nil {
		t.Error("take(bad-2) = nil")
	}
}

func TestShapeMix(t *testing.T) {
	var n [3]int
	for i := int64(1); i <= 40000; i++ {
		n[shapeOf(i)]++
	}
	for s, want := range []int{20000, 10000, 10000} {
		if d := n[s] - want; d < -want/20 || d > want/20 {
			t.Errorf("%s: %d of 40000 requests, want about %d", shape(s), n[s], want)
		}
	}
}

func TestGatewayConfig(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tok, []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := gatewayConfig("127.0.0.1:0", "127.0.0.1:0", tok, [3]string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstreams[0]
	if u.Timeouts.Read != readTimeout {
		t.Errorf("timeouts.read = %s, want readTimeout %s", u.Timeouts.Read, readTimeout)
	}
	if len(u.Servers) != 3 || *u.Servers[0].MaxFails != 1 || u.Servers[0].FailTimeout != 2*time.Second {
		t.Errorf("servers = %+v", u.Servers)
	}
	if u.Retry.Tries != 4 || u.Timeouts.Connect != 500*time.Millisecond {
		t.Errorf("retry.tries = %d, timeouts.connect = %s", u.Retry.Tries, u.Timeouts.Connect)
	}
	if !u.Retry.SameServerOnTimeout {
		t.Error("retry.same_server_on_timeout is off: with slow the only server left, its timeouts reach the clients")
	}
}

func TestVerdict(t *testing.T) {
	r := &Report{
		Clients:  ClientStats{},
		Holdfast: GatewayStats{Retries: 41},
		Backends: []BackendStats{{Name: "flaky-dies", Deaths: 2}},
	}
	if got, want := r.Verdict(), "clients saw 0 avoidable errors and 0 POSTs delivered twice while flaky-dies died 2 times; holdfast retried 41 attempts"; got != want {
		t.Errorf("Verdict() = %q, want %q", got, want)
	}
	r.Clients.NotResent = 3
	if got, want := r.Verdict(), "clients saw 0 avoidable errors, 0 POSTs delivered twice and 3 unavoidable failures while flaky-dies died 2 times; holdfast retried 41 attempts"; got != want {
		t.Errorf("Verdict() = %q, want %q", got, want)
	}
	if !r.OK() {
		t.Error("OK() = false with unavoidable failures only")
	}
	r.Clients.Errors, r.Clients.DuplicatePOSTs = 1, 1
	if got, want := r.Verdict(), "clients saw 1 avoidable error, 1 POST delivered twice and 3 unavoidable failures while flaky-dies died 2 times; holdfast retried 41 attempts"; got != want {
		t.Errorf("Verdict() = %q, want %q", got, want)
	}
	if r.OK() {
		t.Error("OK() = true with errors")
	}
}

func TestNotResentReason(t *testing.T) {
	tests := []struct {
		last Attempt
		want string
	}{
		{Attempt{Cause: "connection_terminated", Written: true}, "died"},
		{Attempt{Cause: "upstream_status", Status: 502}, "answered 502"},
		{Attempt{Cause: "http_response_timeout", Written: true}, "timed out"},
		{Attempt{Cause: "http_protocol_error", Written: true}, "http_protocol_error"},
	}
	for _, tt := range tests {
		l := &AccessLine{Method: "POST", Ledger: []Attempt{{Cause: "connection_refused"}, tt.last}}
		if got := notResentReason(l); got != tt.want {
			t.Errorf("notResentReason(last attempt %+v) = %q, want %q", tt.last, got, tt.want)
		}
	}
}
