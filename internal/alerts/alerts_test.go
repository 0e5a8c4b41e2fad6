package alerts

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/upstream"
)

// receiver is a webhook endpoint on loopback that keeps what it receives.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []map[string]any
	keys []string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("webhook body is not JSON: %s", b)
		}
		rc.mu.Lock()
		rc.msgs = append(rc.msgs, m)
		rc.keys = append(rc.keys, r.Header.Get("Idempotency-Key"))
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.msgs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPoolAlertFiresAndResolvesOnce: a pool with no server left fires one
// message, however many evaluations see it, and one resolved message when
// a server is back.
func TestPoolAlertFiresAndResolvesOnce(t *testing.T) {
	rc := newReceiver(t)
	var mu sync.Mutex
	available := 2
	pools := func() []upstream.PoolStatus {
		mu.Lock()
		defer mu.Unlock()
		return []upstream.PoolStatus{{Name: "api", Available: available, Servers: []upstream.ServerStatus{
			{URL: "http://a:1", LastFailure: &upstream.Failure{Cause: "connection_refused"}},
		}}}
	}
	n := New(config.Alerts{Webhook: rc.URL, Format: "json", Interval: time.Hour, ErrorPercent: 1},
		Options{Metrics: metrics.New(metrics.Options{}), Pools: pools})
	n.Start()
	defer n.Close()
	n.Evaluate()
	mu.Lock()
	available = 0
	mu.Unlock()
	for i := 0; i < 5; i++ {
		n.Evaluate()
	}
	mu.Lock()
	available = 1
	mu.Unlock()
	n.Evaluate()
	n.Evaluate()
	waitFor(t, "two messages", func() bool { return len(rc.got()) >= 2 })
	time.Sleep(50 * time.Millisecond)
	msgs := rc.got()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2 (fired once, resolved once): %v", len(msgs), msgs)
	}
	f, r := msgs[0], msgs[1]
	if f["alert"] != "HoldfastPoolNoHealthyServer" || f["status"] != "firing" || f["pool"] != "api" || f["severity"] != "critical" {
		t.Errorf("first message = %v", f)
	}
	if c, _ := f["top_causes"].([]any); len(c) != 1 || !strings.Contains(f["description"].(string), "holdfast status") {
		t.Errorf("first message causes %v, description %q", f["top_causes"], f["description"])
	}
	if r["alert"] != "HoldfastPoolNoHealthyServer" || r["status"] != "resolved" || r["resolved_at"] == nil {
		t.Errorf("second message = %v", r)
	}
	if rc.keys[0] == "" || rc.keys[0] == rc.keys[1] {
		t.Errorf("Idempotency-Keys %q: want one per message", rc.keys)
	}
}

// TestRouteErrorRatio: a route over the ratio fires a warning with its top
// causes; at five times the ratio a critical alert too; a route under it,
// or with too few requests, does not fire.
func TestRouteErrorRatio(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := metrics.New(metrics.Options{Now: func() time.Time { return now }})
	n := New(config.Alerts{Webhook: "http://127.0.0.1:1", Format: "json", Interval: time.Hour, ErrorPercent: 1},
		Options{Metrics: m, Pools: func() []upstream.PoolStatus { return nil }, Now: func() time.Time { return now }})
	bad, fine, quiet := m.Route("bad/"), m.Route("fine/"), m.Route("quiet/")
	m.Sample()
	for i := 0; i < 100; i++ {
		bad.Observe(200, cause.None, time.Millisecond)
		fine.Observe(200, cause.None, time.Millisecond)
	}
	for i := 0; i < 8; i++ {
		bad.Observe(502, cause.ConnectionRefused, time.Millisecond)
	}
	bad.Observe(504, cause.HTTPResponseTimeout, time.Millisecond)
	fine.Observe(502, cause.ConnectionRefused, time.Millisecond) // 1 in 101: under 1%
	for i := 0; i < 5; i++ {
		quiet.Observe(502, cause.ConnectionRefused, time.Millisecond) // 100%, but 5 requests
	}
	now = now.Add(5 * time.Second)
	m.Sample()
	n.Evaluate()
	got := map[string]Alert{}
	for _, a := range n.Active() {
		got[a.Name+" "+a.Route] = a
	}
	if len(got) != 2 {
		t.Fatalf("active alerts = %v, want the warning and the critical of bad/", got)
	}
	w := got["HoldfastRoute5xxHigh bad/"]
	if w.Severity != "warning" || w.Value < 0.08 || len(w.Causes) != 2 || w.Causes[0].Cause != "connection_refused" || w.Causes[0].Count != 8 {
		t.Errorf("warning = %+v", w)
	}
	if _, ok := got["HoldfastRoute5xxCritical bad/"]; !ok {
		t.Error("no critical alert at 8% (more than 5 × 1%)")
	}
	// Five minutes later the errors are out of the window: resolved.
	now = now.Add(6 * time.Minute)
	m.Sample()
	n.Evaluate()
	if a := n.Active(); len(a) != 0 {
		t.Errorf("after the window: %v still active", a)
	}
}

// TestReceiverDownIsBounded: while the receiver refuses, messages wait in
// a bounded queue and the oldest are dropped.
func TestReceiverDownIsBounded(t *testing.T) {
	hang := testutil.Hang(t)
	n := New(config.Alerts{Webhook: "http://" + hang.Addr, Format: "json", Interval: time.Hour, ErrorPercent: 1},
		Options{Metrics: metrics.New(metrics.Options{}), Pools: func() []upstream.PoolStatus { return nil }})
	n.Start()
	defer n.Close()
	for i := 0; i < 500; i++ {
		n.enqueue(Message{Alert: Alert{Name: "x"}, Status: "firing"})
	}
	if l := len(n.queue); l > queueSize {
		t.Errorf("queue holds %d, want at most %d", l, queueSize)
	}
	if d := n.Dropped(); d < 500-queueSize-1 {
		t.Errorf("dropped %d, want at least %d", d, 500-queueSize-1)
	}
	start := time.Now()
	n.Close()
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Close took %s with a delivery hanging", el)
	}
}

func TestSlackFormat(t *testing.T) {
	rc := newReceiver(t)
	n := New(config.Alerts{Webhook: rc.URL, Format: "slack", Interval: time.Hour, ErrorPercent: 1},
		Options{Metrics: metrics.New(metrics.Options{}), Pools: func() []upstream.PoolStatus {
			return []upstream.PoolStatus{{Name: "api"}}
		}})
	n.Start()
	defer n.Close()
	n.Evaluate()
	waitFor(t, "a message", func() bool { return len(rc.got()) == 1 })
	text, _ := rc.got()[0]["text"].(string)
	if !strings.HasPrefix(text, "[FIRING] HoldfastPoolNoHealthyServer (critical): pool api has no server") {
		t.Errorf("slack text = %q", text)
	}
}

func TestIncrease(t *testing.T) {
	var h history
	h.series = map[string][]sample{}
	t0 := time.Unix(0, 0)
	vals := []float64{0, 1, 3, 1, 2} // a reset from 3 to 1 counts 1
	var got float64
	for i, v := range vals {
		got = h.increase("k", v, t0.Add(time.Duration(i)*time.Minute), 10*time.Minute)
	}
	if got != 5 {
		t.Errorf("increase = %v, want 5 (1+2+1+1)", got)
	}
	if got := h.increase("k", 2, t0.Add(20*time.Minute), 10*time.Minute); got != 0 {
		t.Errorf("increase after a quiet window = %v, want 0", got)
	}
}
