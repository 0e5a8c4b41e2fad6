package probe

import (
	"encoding/json"
	"time"
)

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// MarshalJSON writes durations as milliseconds, as the field names say.
func (t Timings) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]float64{
		"dns_ms": msf(t.DNS), "connect_ms": msf(t.Connect), "tls_ms": msf(t.TLS),
		"request_ms": msf(t.Request), "first_byte_ms": msf(t.FirstByte),
		"body_ms": msf(t.Body), "total_ms": msf(t.Total),
	})
}

// MarshalJSON writes durations as milliseconds, as the field names say.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		URL      string         `json:"url"`
		Requests int            `json:"requests"`
		Failed   int            `json:"failed"`
		ByStatus map[string]int `json:"by_status"`
		ByCause  map[string]int `json:"by_cause"`
		P50      float64        `json:"p50_ms"`
		P90      float64        `json:"p90_ms"`
		P99      float64        `json:"p99_ms"`
		Elapsed  float64        `json:"elapsed_ms"`
		Example  *Result        `json:"example_failure,omitempty"`
	}{s.URL, s.Requests, s.Failed, s.ByStatus, s.ByCause, msf(s.P50), msf(s.P90), msf(s.P99), msf(s.Elapsed), s.Example})
}
