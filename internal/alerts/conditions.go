package alerts

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/upstream"
)

// The windows of the conditions, as the shipped Prometheus rules use them.
const (
	errorWindow    = 5 * time.Minute
	flapWindow     = 15 * time.Minute
	budgetWindow   = 5 * time.Minute
	minRequests    = 20 // fewer requests over errorWindow say nothing of a ratio
	flapEjections  = 3
	criticalFactor = 5
)

// Alert is one condition that holds, for one route, pool or server.
type Alert struct {
	Name      string       `json:"alert"`
	Severity  string       `json:"severity"`
	Route     string       `json:"route,omitempty"`
	Pool      string       `json:"pool,omitempty"`
	Server    string       `json:"server,omitempty"`
	Value     float64      `json:"value"`
	Causes    []CauseShare `json:"top_causes,omitempty"`
	Summary   string       `json:"summary"`
	Detail    string       `json:"description"`
	StartedAt time.Time    `json:"started_at"`
}

// CauseShare is one of the causes behind an alert, with its count.
type CauseShare struct {
	Cause string `json:"cause"`
	Count uint64 `json:"count"`
}

// Message is what the webhook receives: an alert and whether it started
// or resolved.
type Message struct {
	Alert
	Status     string     `json:"status"` // firing or resolved
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	Source     string     `json:"source"` // "holdfast"
}

type slackMessage struct {
	Text string `json:"text"`
}

func (a *Alert) key() string {
	return a.Name + "\x00" + a.Route + "\x00" + a.Pool + "\x00" + a.Server
}

func (a *Alert) message(status string, now time.Time) Message {
	m := Message{Alert: *a, Status: status, Source: "holdfast"}
	if status == "resolved" {
		m.ResolvedAt = &now
	}
	return m
}

// text is the message as one line of text, for Slack.
func (m Message) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s (%s): %s", strings.ToUpper(m.Status), m.Name, m.Severity, m.Summary)
	if m.Status == "firing" {
		fmt.Fprintf(&b, "\n%s", m.Detail)
		if len(m.Causes) > 0 {
			parts := make([]string, len(m.Causes))
			for i, c := range m.Causes {
				parts[i] = fmt.Sprintf("%s %d", c.Cause, c.Count)
			}
			fmt.Fprintf(&b, "\ntop causes: %s", strings.Join(parts, ", "))
		}
	}
	return b.String()
}

// conditions returns the alerts that hold at now, by key. Called with n.mu
// held.
func (n *Notifier) conditions(cfg *config.Alerts, now time.Time) map[string]*Alert {
	out := make(map[string]*Alert)
	add := func(a *Alert) { out[a.key()] = a }
	n.routeErrors(cfg, now, add)
	pools := n.o.Pools()
	for _, p := range pools {
		if p.Available == 0 {
			a := &Alert{Name: "HoldfastPoolNoHealthyServer", Severity: "critical", Pool: p.Name,
				Summary: fmt.Sprintf("pool %s has no server that takes requests", p.Name),
				Detail:  fmt.Sprintf("Every request to pool %s gets 503 destination_unavailable. Check first why its servers are out: holdfast status shows each one's state and last failure.", p.Name),
			}
			a.Causes = serverCauses(p)
			add(a)
		}
		skipped := float64(n.o.Metrics.SkippedTotal(p.Name, "budget"))
		if inc := n.hist.increase("budget\x00"+p.Name, skipped, now, budgetWindow); inc > 0 {
			add(&Alert{Name: "HoldfastRetryBudgetExhausted", Severity: "warning", Pool: p.Name, Value: inc,
				Summary: fmt.Sprintf("pool %s ran out of retry budget %.0f times in 5 minutes", p.Name, inc),
				Detail:  fmt.Sprintf("Retries to pool %s were refused to protect it: its servers fail more than retries can absorb. Check first which server fails and why (holdfast status, the access log's ledger).", p.Name),
			})
		}
		for _, s := range p.Servers {
			k := "eject\x00" + p.Name + "\x00" + s.URL
			if inc := n.hist.increase(k, float64(s.Passive.EjectionsTotal), now, flapWindow); inc >= flapEjections {
				a := &Alert{Name: "HoldfastServerFlapping", Severity: "warning", Pool: p.Name, Server: s.URL, Value: inc,
					Summary: fmt.Sprintf("server %s of pool %s was ejected %.0f times in 15 minutes", s.URL, p.Name, inc),
					Detail:  "The server keeps failing and coming back. Check first its last failure's cause (holdfast status) and the server's own logs.",
				}
				if s.LastFailure != nil {
					a.Causes = []CauseShare{{Cause: s.LastFailure.Cause, Count: 1}}
				}
				add(a)
			}
		}
	}
	n.hist.forgetBefore(now.Add(-flapWindow - time.Minute))
	if ok, failed := n.o.Metrics.LastReloads(); failed.After(ok) {
		add(&Alert{Name: "HoldfastReloadFailed", Severity: "warning",
			Summary: "the last configuration reload failed: the previous configuration keeps serving",
			Detail:  "Check first the error of the reload in the event log, or run holdfast check -c FILE.",
		})
	}
	return out
}

// routeErrors adds the 5xx alerts of each route, over the last
// errorWindow of the metrics' samples.
func (n *Notifier) routeErrors(cfg *config.Alerts, now time.Time, add func(*Alert)) {
	st := n.o.Metrics.Stats()
	for _, rs := range st.Routes {
		var total, bad uint64
		causes := map[string]uint64{}
		for _, p := range rs.Points {
			if now.Sub(p.Time) > errorWindow {
				continue
			}
			total += p.Requests
			bad += p.Codes502
			for c, v := range p.Causes {
				causes[c] += v
			}
		}
		if total < minRequests {
			continue
		}
		ratio := float64(bad) / float64(total)
		for _, level := range []struct {
			name, severity string
			limit          float64
		}{
			{"HoldfastRoute5xxHigh", "warning", cfg.ErrorPercent / 100},
			{"HoldfastRoute5xxCritical", "critical", criticalFactor * cfg.ErrorPercent / 100},
		} {
			if ratio <= level.limit {
				continue
			}
			add(&Alert{Name: level.name, Severity: level.severity, Route: rs.Route, Value: ratio,
				Causes:  top(causes, 3),
				Summary: fmt.Sprintf("route %s answers %.1f%% of its requests with 502, 503 or 504", rs.Route, 100*ratio),
				Detail:  fmt.Sprintf("Over 5 minutes, %d of %d requests to route %s got 502, 503 or 504 (more than %.1f%%). The top causes say where to look first: connection_refused or dns_error, the servers are gone; http_response_timeout, they are slow; upstream_status, they answer errors themselves.", bad, total, rs.Route, 100*level.limit),
			})
		}
	}
}

// serverCauses returns the last failure causes of a pool's servers.
func serverCauses(p upstream.PoolStatus) []CauseShare {
	counts := map[string]uint64{}
	for _, s := range p.Servers {
		if s.LastFailure != nil {
			counts[s.LastFailure.Cause]++
		}
	}
	return top(counts, 3)
}

// top returns the n largest counts, largest first.
func top(counts map[string]uint64, n int) []CauseShare {
	out := make([]CauseShare, 0, len(counts))
	for c, v := range counts {
		out = append(out, CauseShare{c, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Cause < out[j].Cause
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// history keeps the recent values of counters, to take their increase over
// a window.
type history struct {
	series map[string][]sample
}

type sample struct {
	at time.Time
	v  float64
}

// increase records v for key at now and returns its increase over the
// window (a reset to a lower value counts from zero, as PromQL's increase).
func (h *history) increase(key string, v float64, now time.Time, window time.Duration) float64 {
	s := append(h.series[key], sample{now, v})
	h.series[key] = s
	var inc float64
	prev := -1.0
	for _, x := range s {
		if now.Sub(x.at) > window {
			prev = x.v
			continue
		}
		switch {
		case prev < 0:
		case x.v >= prev:
			inc += x.v - prev
		default:
			inc += x.v
		}
		prev = x.v
	}
	return inc
}

// forgetBefore drops samples older than t, and keys with none left.
func (h *history) forgetBefore(t time.Time) {
	for k, s := range h.series {
		i := 0
		for i < len(s) && s[i].at.Before(t) {
			i++
		}
		if i == len(s) {
			delete(h.series, k)
			continue
		}
		h.series[k] = s[i:]
	}
}
