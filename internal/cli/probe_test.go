package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
)

func TestProbeCommandJSONAndExit(t *testing.T) {
	good := testutil.Backend(t, nil)
	dead := testutil.DeadAddr(t)
	var out, errb bytes.Buffer
	code := Main([]string{"probe", "--json", good.URL + "/a", "http://" + dead + "/b", "-H", "X-Trace: 1"}, &out, &errb)
	if code != 1 {
		t.Errorf("exit %d with one URL failing, want 1; stderr %s", code, errb.String())
	}
	var doc struct {
		OK      bool `json:"ok"`
		Results []struct {
			URL     string             `json:"url"`
			Status  int                `json:"status"`
			Cause   string             `json:"cause"`
			OK      bool               `json:"ok"`
			Advice  string             `json:"advice"`
			Timings map[string]float64 `json:"timings"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if doc.OK || len(doc.Results) != 2 {
		t.Fatalf("doc %+v", doc)
	}
	a, b := doc.Results[0], doc.Results[1]
	if !a.OK || a.Status != 200 || a.Cause != "" || a.Timings["total_ms"] <= 0 {
		t.Errorf("first result %+v", a)
	}
	if b.OK || b.Cause != "connection_refused" || b.Advice == "" {
		t.Errorf("second result %+v", b)
	}
	for _, k := range []string{"dns_ms", "connect_ms", "tls_ms", "request_ms", "first_byte_ms", "body_ms", "total_ms"} {
		if _, ok := a.Timings[k]; !ok {
			t.Errorf("timings lack %s", k)
		}
	}

	out.Reset()
	if code := Main([]string{"probe", good.URL}, &out, &errb); code != 0 {
		t.Errorf("exit %d for a healthy URL, want 0:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "status     200 OK") {
		t.Errorf("text output:\n%s", out.String())
	}
}

func TestProbeCommandRepeat(t *testing.T) {
	var n atomic.Int64
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.WriteHeader(502)
		}
	}))
	var out, errb bytes.Buffer
	code := Main([]string{"probe", "--repeat", "9", "--json", b.URL}, &out, &errb)
	if code != 1 {
		t.Errorf("exit %d, want 1 (3 of 9 failed)", code)
	}
	var doc struct {
		Summaries []struct {
			Requests int            `json:"requests"`
			Failed   int            `json:"failed"`
			ByStatus map[string]int `json:"by_status"`
			ByCause  map[string]int `json:"by_cause"`
			P99      float64        `json:"p99_ms"`
		} `json:"summaries"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	s := doc.Summaries[0]
	if s.Requests != 9 || s.Failed != 3 || s.ByStatus["502"] != 3 || s.ByCause["upstream_status"] != 3 || s.P99 <= 0 {
		t.Errorf("summary %+v", s)
	}
}

func TestProbeCommandUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"probe"}, &out, &errb); code != 2 {
		t.Errorf("no URL: exit %d, want 2", code)
	}
	if code := Main([]string{"probe", "-H", "no colon", "http://x"}, &out, &errb); code != 2 {
		t.Errorf("bad -H: exit %d, want 2", code)
	}
}
