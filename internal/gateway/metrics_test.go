package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// scrape returns the holdfast_* series of the admin listener's /metrics,
// one line each.
func scrape(t *testing.T, admin string) []string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "holdfast_") {
			out = append(out, l)
		}
	}
	return out
}

func has(series []string, prefix string) bool {
	for _, s := range series {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestMetricsCardinality: series are labelled by configuration and cause
// only. A thousand requests with distinct paths and Host headers add no
// series, and the series of a route and a server removed by a reload
// disappear.
func TestMetricsCardinality(t *testing.T) {
	t.Parallel()
	a := testutil.Backend(t, nil)
	b := testutil.Backend(t, nil)
	yaml := func(servers ...string) string {
		var s strings.Builder
		fmt.Fprintf(&s, `listen: [{addr: "127.0.0.1:0"}]
admin: {addr: "127.0.0.1:0"}
routes:
  - {match: {host: api.test, path_prefix: /}, upstream: api}
  - {match: {host: old.test, path_prefix: /}, upstream: api}
upstreams:
  api:
    servers:
`)
		for _, u := range servers {
			fmt.Fprintf(&s, "      - {url: %q}\n", u)
		}
		return s.String()
	}
	g, addr := start(t, yaml(a.URL, b.URL))
	admin := g.AdminAddr().String()
	get := func(host, path string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Warm up every combination the loop below makes: a 200 through each
	// route, and the 404 of a request that matches no route.
	for i := 0; i < 4; i++ {
		get("api.test", "/warm")
		get("old.test", "/warm")
		get("nowhere.test", "/warm")
	}
	before := scrape(t, admin)
	for i := 0; i < 1000; i++ {
		host := "api.test"
		switch i % 3 {
		case 1:
			host = fmt.Sprintf("h%d.test", i) // matches no route
		case 2:
			host = "old.test"
		}
		get(host, fmt.Sprintf("/p/%d?q=%d", i, i))
	}
	after := scrape(t, admin)
	t.Logf("holdfast_* series: %d before, %d after 1,000 requests with distinct paths and hosts", len(before), len(after))
	if len(after) != len(before) {
		t.Errorf("series grew from %d to %d", len(before), len(after))
	}
	for _, s := range after {
		if strings.Contains(s, "/p/") || strings.Contains(s, "h1.test") || strings.Contains(s, "127.0.0.1:") && !strings.Contains(s, "server=") {
			t.Errorf("a series carries a value from a client: %s", s)
		}
	}
	if !has(after, `holdfast_requests_total{cause="destination_not_found",code="404",route="none"} 337`) {
		t.Errorf("no count of the 337 requests that matched no route (333 + 4 warm-up):\n%s", strings.Join(after, "\n"))
	}

	// A reload drops route old.test and server b: their series go.
	if err := g.Reload(parse(t, strings.Replace(yaml(a.URL), "  - {match: {host: old.test, path_prefix: /}, upstream: api}\n", "", 1))); err != nil {
		t.Fatal(err)
	}
	reloaded := scrape(t, admin)
	for _, s := range reloaded {
		if strings.Contains(s, `route="old.test/"`) || strings.Contains(s, b.URL) {
			t.Errorf("after the reload, a series of a removed route or server remains: %s", s)
		}
	}
	if !has(reloaded, `holdfast_config_reloads_total{result="success"} 1`) {
		t.Error("the reload is not counted")
	}
	if !has(reloaded, `holdfast_upstream_server_up{pool="api",server="`+a.URL+`"} 1`) {
		t.Error("server a is not reported up")
	}
}

// TestAlertWebhookEndToEnd: a gateway with the built-in webhook, whose
// pool loses both servers to their health checks and gets them back, sends
// one firing message and one resolved message to a loopback receiver.
func TestAlertWebhookEndToEnd(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var msgs []map[string]any
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		msgs = append(msgs, m)
		mu.Unlock()
	}))
	defer recv.Close()
	a, b := newFlaky(t, "a"), newFlaky(t, "b")
	yaml := healthConfig("", a.URL, b.URL) + fmt.Sprintf("alerts: {webhook: %q, interval: 50ms}\n", recv.URL)
	start(t, yaml)
	got := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), msgs...)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(got()); n != 0 {
		t.Fatalf("%d messages while both servers are up: %v", n, got())
	}
	a.healthy.Store(false)
	b.healthy.Store(false)
	deadline := time.Now().Add(3 * time.Second)
	for len(got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // more evaluations while it holds
	a.healthy.Store(true)
	deadline = time.Now().Add(3 * time.Second)
	for len(got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	ms := got()
	if len(ms) != 2 {
		t.Fatalf("%d messages, want 2 (fired once, resolved once): %v", len(ms), ms)
	}
	if ms[0]["alert"] != "HoldfastPoolNoHealthyServer" || ms[0]["status"] != "firing" || ms[0]["pool"] != "p" {
		t.Errorf("first = %v", ms[0])
	}
	if ms[1]["alert"] != "HoldfastPoolNoHealthyServer" || ms[1]["status"] != "resolved" {
		t.Errorf("second = %v", ms[1])
	}
	if c, _ := ms[0]["top_causes"].([]any); len(c) == 0 || !strings.Contains(fmt.Sprint(c), "upstream_status") {
		t.Errorf("firing message causes = %v, want upstream_status", ms[0]["top_causes"])
	}
}
