package demo

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is what a demo run saw, from the clients, the gateway and the
// backends. Run returns the final one; the display shows one a second.
type Report struct {
	// Gateway is the base URL the gateway listened on.
	Gateway string
	// Elapsed is how long the load ran.
	Elapsed time.Duration

	Clients  ClientStats
	Holdfast GatewayStats
	// Backends are flaky-dies, flaky-502 and slow, in that order.
	Backends []BackendStats

	// Failures are the first client-visible errors that holdfast should
	// have absorbed, with the gateway's access-log line when there is one.
	Failures []Failure
	// NotResent are the first POSTs without Idempotency-Key that got an
	// upstream's failure because resending them was not safe.
	NotResent []Failure
}

// ClientStats is what the demo's clients saw.
type ClientStats struct {
	// Requests finished, with or without a response.
	Requests int64
	// OK counts the requests answered 2xx.
	OK int64
	// Errors counts the requests that failed where holdfast could safely
	// have tried another server: the errors the demo expects none of.
	Errors int64
	// ErrorsByStatus splits Errors by the status the client got; 0 means
	// no response at all.
	ErrorsByStatus map[int]int64
	// NotResent counts POSTs without Idempotency-Key that got an upstream's
	// failure (its 502, or a 504 when it did not answer in time) because
	// the upstream had received them: resending could have delivered them
	// twice, so holdfast passes the failure on, as SPEC 3.4 requires.
	NotResent int64
	// NotResentByStatus splits NotResent by status.
	NotResentByStatus map[int]int64
	// DuplicatePOSTs counts POSTs without Idempotency-Key that reached the
	// backends more than once. Expected: zero, always.
	DuplicatePOSTs int64
	// ResentWithKey counts POSTs with an Idempotency-Key that reached the
	// backends more than once: allowed, the key lets a server deduplicate.
	ResentWithKey int64
}

// GatewayStats is what holdfast did, as its proxy.Observer saw it.
type GatewayStats struct {
	Requests        int64 // requests answered
	Failed          int64 // requests answered with a status other than 2xx
	Attempts        int64 // attempts at upstream servers
	Retries         int64 // failed attempts followed by another
	Ejections       int64 // servers ejected
	CappedEjections int64 // ejections skipped for max_ejected_percent
	// Causes counts failed attempts by cause, most frequent first.
	Causes []CauseCount
}

// CauseCount is how many attempts failed with one cause.
type CauseCount struct {
	Cause string // the cause's name, as in the access log
	N     int64
}

// BackendStats is one backend's state and counts.
type BackendStats struct {
	Name  string // flaky-dies, flaky-502 or slow
	Addr  string // host:port it listens on, the same across restarts
	Up    bool   // false while dead, and after the run
	State string // for a person: "up", "DOWN, back in 2.1s", ...

	Received  int64 // requests that reached it
	Ejections int64 // times holdfast ejected it

	Deaths      int64 // flaky-dies: times it died
	Answered502 int64 // flaky-502: 502s it sent
	SlowAnswers int64 // slow: answers it delayed
	SlowNow     int64 // slow: delayed answers in progress
}

// Failure is one request whose client did not get a 2xx.
type Failure struct {
	RequestID   string
	Shape       string // "GET", "POST with Idempotency-Key", "POST without Idempotency-Key"
	Method      string
	Path        string
	Status      int    // 0: no response
	Err         string // the client's error when there was no (whole) response
	ProxyStatus string // the response's Proxy-Status header
	// Line is the gateway's access-log line for the request, with the
	// ledger of its attempts; nil when the gateway logged none.
	Line *AccessLine
}

func (f clientFailure) failure() Failure {
	return Failure{
		RequestID:   f.id,
		Shape:       f.shape.String(),
		Method:      f.method,
		Path:        f.path,
		Status:      f.status,
		Err:         f.err,
		ProxyStatus: f.proxyStatus,
		Line:        f.line,
	}
}

// OK reports whether the run kept its promise: no client-visible error
// that holdfast could have absorbed, and no POST delivered twice.
func (r *Report) OK() bool {
	return r.Clients.Errors == 0 && r.Clients.DuplicatePOSTs == 0
}

// Verdict is the run in one line.
func (r *Report) Verdict() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clients saw %s holdfast could have absorbed", plural(r.Clients.Errors, "error"))
	if n := r.Clients.NotResent; n > 0 {
		fmt.Fprintf(&b, " (and %d keyless POSTs it rightly did not send twice)", n)
	}
	if d := r.Clients.DuplicatePOSTs; d > 0 {
		fmt.Fprintf(&b, " and %s delivered twice", plural(d, "POST"))
	}
	deaths := int64(0)
	if len(r.Backends) > 0 {
		deaths = r.Backends[0].Deaths
	}
	fmt.Fprintf(&b, " while flaky-dies died %s; holdfast retried %s",
		plural(deaths, "time"), plural(r.Holdfast.Retries, "attempt"))
	return b.String()
}

// WriteSummary writes the final summary for a person: totals, the
// client-visible errors with their attempt ledgers, and the verdict.
func (r *Report) WriteSummary(w io.Writer) {
	c, h := r.Clients, r.Holdfast
	fmt.Fprintf(w, "\nholdfast demo: ran %.1fs against %s\n", r.Elapsed.Seconds(), r.Gateway)
	fmt.Fprintf(w, "clients   %d requests: %d 2xx, %d not 2xx; avoidable errors: %d%s; POSTs delivered twice: %d\n",
		c.Requests, c.OK, c.Requests-c.OK, c.Errors, byStatus(c.ErrorsByStatus), c.DuplicatePOSTs)
	if c.NotResent > 0 {
		fmt.Fprintf(w, "          %s without Idempotency-Key got the upstream's failure%s:\n"+
			"          an upstream had received them, and holdfast does not risk a POST twice\n",
			plural(c.NotResent, "POST"), byStatus(c.NotResentByStatus))
	}
	if c.ResentWithKey > 0 {
		fmt.Fprintf(w, "          %s with Idempotency-Key resent after an upstream had them (the key allows it)\n",
			plural(c.ResentWithKey, "POST"))
	}
	fmt.Fprintf(w, "holdfast  %d attempts, %s, %s", h.Attempts, plural(h.Retries, "retry"), plural(h.Ejections, "ejection"))
	if h.CappedEjections > 0 {
		fmt.Fprintf(w, " (%d more held back by max_ejected_percent)", h.CappedEjections)
	}
	fmt.Fprintln(w)
	for i, line := range wrap(causeList(h.Causes), 68) {
		if i == 0 {
			fmt.Fprintf(w, "          failed attempts: %s\n", line)
		} else {
			fmt.Fprintf(w, "            %s\n", line)
		}
	}
	for i, b := range r.Backends {
		label := "backends"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(w, "%-9s %-11s received %d, %s, ejected %s\n", label, b.Name, b.Received, misbehaviour(b), plural(b.Ejections, "time"))
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(w, "\nerrors that holdfast should have absorbed (%d shown of %d), with the gateway's ledger:\n",
			len(r.Failures), c.Errors)
		for _, f := range r.Failures {
			writeFailure(w, f)
		}
	}
	fmt.Fprintf(w, "verdict   %s\n", r.Verdict())
}

func writeFailure(w io.Writer, f Failure) {
	got := "no response: " + f.Err
	if f.Status != 0 {
		got = strconv.Itoa(f.Status)
		if f.ProxyStatus != "" {
			got += " (Proxy-Status: " + f.ProxyStatus + ")"
		}
		if f.Err != "" {
			got += ", then " + f.Err
		}
	}
	fmt.Fprintf(w, "  %s  %s %s, %s: %s\n", f.RequestID, f.Method, f.Path, f.Shape, got)
	l := f.Line
	if l == nil {
		fmt.Fprintln(w, "      gateway: no access-log line for this request")
		return
	}
	fmt.Fprintf(w, "      gateway: status %d, cause %s, %d attempts in %.0fms", l.Status, orNone(l.Cause), l.Attempts, l.DurationMS)
	if l.RetrySkipped != "" {
		fmt.Fprintf(w, ", retry skipped: %s", l.RetrySkipped)
	}
	fmt.Fprintln(w)
	if l.Detail != "" {
		fmt.Fprintf(w, "      detail: %s\n", l.Detail)
	}
	for i, a := range l.Ledger {
		fmt.Fprintf(w, "      %d. %s phase=%s reused=%t written=%t cause=%s status=%d %.0fms",
			i+1, a.Server, a.Phase, a.Reused, a.Written, orNone(a.Cause), a.Status, a.DurationMS)
		if a.Reused {
			fmt.Fprintf(w, " idle=%.0fms", a.IdleMS)
		}
		if a.WaitMS > 0 {
			fmt.Fprintf(w, " after %.0fms backoff", a.WaitMS)
		}
		fmt.Fprintln(w)
	}
}

// misbehaviour says what a backend did wrong, in a few words.
func misbehaviour(b BackendStats) string {
	switch b.Name {
	case "flaky-dies":
		return "died " + plural(b.Deaths, "time")
	case "flaky-502":
		return "answered 502 to " + strconv.FormatInt(b.Answered502, 10)
	case "slow":
		return "answered " + strconv.FormatInt(b.SlowAnswers, 10) + " slowly"
	}
	return ""
}

func causeList(cs []CauseCount) []string {
	if len(cs) == 0 {
		return []string{"none"}
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Cause + " " + strconv.FormatInt(c.N, 10)
	}
	return out
}

// wrap joins items with ", " into lines of at most width characters.
func wrap(items []string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, it := range items {
		if cur.Len() > 0 && cur.Len()+2+len(it) > width {
			lines = append(lines, cur.String()+",")
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteString(", ")
		}
		cur.WriteString(it)
	}
	return append(lines, cur.String())
}

// byStatus renders counts by status as " (502: 2, 504: 1)", or "".
func byStatus(m map[int]int64) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, st := range slices.Sorted(maps.Keys(m)) {
		name := strconv.Itoa(st)
		if st == 0 {
			name = "no response"
		}
		parts = append(parts, name+": "+strconv.FormatInt(m[st], 10))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func plural(n int64, word string) string {
	s := strconv.FormatInt(n, 10) + " " + word
	if n == 1 {
		return s
	}
	if strings.HasSuffix(word, "y") {
		return s[:len(s)-1] + "ies"
	}
	return s + "s"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
