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
	// have absorbed (avoidable errors), with the gateway's access-log line
	// when there is one.
	Failures []Failure
	// NotResent are the first POSTs without Idempotency-Key that got an
	// upstream's failure because resending them was not safe (unavoidable
	// failures).
	NotResent []Failure
}

// ClientStats is what the demo's clients saw.
type ClientStats struct {
	// Requests finished, with or without a response.
	Requests int64
	// OK counts the requests answered 2xx.
	OK int64
	// Errors counts the avoidable errors: requests that failed although
	// holdfast could safely have tried them again (a GET, a POST with
	// Idempotency-Key, a POST that reached no server). The demo expects
	// none.
	Errors int64
	// ErrorsByStatus splits Errors by the status the client got; 0 means
	// no response at all.
	ErrorsByStatus map[int]int64
	// NotResent counts the unavoidable failures: POSTs without
	// Idempotency-Key that reached a server that then failed (died with
	// the request, answered 502, or did not answer in time). The server
	// may have acted on them, so resending could deliver them twice, and
	// holdfast passes the failure on, as its retry rules require. The demo
	// expects a few: they are the price of not sending a POST twice.
	NotResent int64
	// NotResentByReason splits NotResent by what the server did: "died",
	// "answered 502", "timed out" (or, for a failure of another kind, the
	// cause of the last attempt).
	NotResentByReason map[string]int64
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

// OK reports whether the run kept its promise: no avoidable error (one
// that holdfast could have absorbed), and no POST delivered twice.
// Unavoidable failures (see [ClientStats.NotResent]) do not break it.
func (r *Report) OK() bool {
	return r.Clients.Errors == 0 && r.Clients.DuplicatePOSTs == 0
}

// Verdict is the run in one line.
func (r *Report) Verdict() string {
	return strings.Join(r.verdictPhrases(), " ")
}

// verdictPhrases are the verdict's phrases, in order: a narrow terminal
// breaks the verdict between them, never inside one.
func (r *Report) verdictPhrases() []string {
	c := r.Clients
	ps := []string{"clients saw " + plural(c.Errors, "avoidable error")}
	twice := plural(c.DuplicatePOSTs, "POST") + " delivered twice"
	if c.NotResent > 0 {
		ps[0] += ","
		ps = append(ps, twice, "and "+plural(c.NotResent, "unavoidable failure"))
	} else {
		ps = append(ps, "and "+twice)
	}
	deaths := int64(0)
	if len(r.Backends) > 0 {
		deaths = r.Backends[0].Deaths
	}
	return append(ps, "while flaky-dies died "+plural(deaths, "time")+";",
		"holdfast retried "+plural(r.Holdfast.Retries, "attempt"))
}

// unavoidableItems are the phrases that say what the unavoidable failures
// were, for a row: how many, and what the servers that had them did.
func unavoidableItems(c ClientStats, what string) []string {
	items := []string{plural(c.NotResent, what), "reached a server that then failed"}
	reasons := slices.Sorted(maps.Keys(c.NotResentByReason))
	for i, why := range reasons {
		s := why + ": " + strconv.FormatInt(c.NotResentByReason[why], 10)
		if i == 0 {
			s = "(" + s
		}
		if i == len(reasons)-1 {
			s += ")"
		} else {
			s += ","
		}
		items = append(items, s)
	}
	return items
}

// summaryIndent is the column where the summary's rows start, after their
// labels.
const summaryIndent = 10

// WriteSummary writes the final summary for a person: totals, the
// client-visible errors with their attempt ledgers, and the verdict. On a
// terminal its lines fit the terminal's width, broken between phrases;
// elsewhere each row is one line.
func (r *Report) WriteSummary(w io.Writer) {
	width, _ := terminalWidth(w)
	for _, l := range r.summary(width) {
		fmt.Fprintln(w, l)
	}
}

// summary is the final summary's lines for a terminal width columns wide;
// 0 means no limit.
func (r *Report) summary(width int) []string {
	c, h := r.Clients, r.Holdfast
	limit := lineLimit(width)
	comma := func(items []string) []string { // "a, b, c" broken after a comma
		out := slices.Clone(items)
		for i := range len(out) - 1 {
			out[i] += ","
		}
		return out
	}
	lines := []string{""}
	lines = append(lines, row("holdfast demo:", 0,
		[]string{fmt.Sprintf("ran %.1fs", r.Elapsed.Seconds()), "against " + r.Gateway}, " ", limit)...)
	lines = append(lines, row("clients", summaryIndent, []string{
		fmt.Sprintf("%d requests:", c.Requests),
		fmt.Sprintf("%d 2xx,", c.OK),
		fmt.Sprintf("%d not 2xx;", c.Requests-c.OK),
		fmt.Sprintf("avoidable errors: %d%s;", c.Errors, byStatus(c.ErrorsByStatus)),
		fmt.Sprintf("POSTs delivered twice: %d", c.DuplicatePOSTs),
	}, " ", limit)...)
	if c.NotResent > 0 {
		items := append([]string{"unavoidable:"}, unavoidableItems(c, "POST")...)
		items[1] += " without Idempotency-Key"
		items[len(items)-1] += ":"
		items = append(items, "sending them again could deliver them twice,", "so holdfast passed the failure on")
		lines = append(lines, row("", summaryIndent, items, " ", limit)...)
	}
	if c.ResentWithKey > 0 {
		lines = append(lines, row("", summaryIndent, []string{
			plural(c.ResentWithKey, "POST") + " with Idempotency-Key", "resent after an upstream had them", "(the key allows it)",
		}, " ", limit)...)
	}
	hold := []string{fmt.Sprintf("%d attempts,", h.Attempts), plural(h.Retries, "retry") + ",", plural(h.Ejections, "ejection")}
	if h.CappedEjections > 0 {
		hold = append(hold, fmt.Sprintf("(%d more held back by max_ejected_percent)", h.CappedEjections))
	}
	lines = append(lines, row("holdfast", summaryIndent, hold, " ", limit)...)
	lines = append(lines, row(strings.Repeat(" ", summaryIndent)+"failed attempts:", summaryIndent+2,
		comma(causeList(h.Causes)), " ", limit)...)
	for i, b := range r.Backends {
		label := "backends"
		if i > 0 {
			label = ""
		}
		lines = append(lines, row(fmt.Sprintf("%-*s%-11s", summaryIndent, label, b.Name), summaryIndent+12, []string{
			fmt.Sprintf("received %d,", b.Received), misbehaviour(b) + ",", "ejected " + plural(b.Ejections, "time"),
		}, " ", limit)...)
	}
	if len(r.Failures) > 0 {
		lines = append(lines, "")
		lines = append(lines, row("", 0, []string{
			"avoidable errors", fmt.Sprintf("(%d shown of %d),", len(r.Failures), c.Errors), "with the gateway's ledgers:",
		}, " ", limit)...)
		for _, f := range r.Failures {
			lines = append(lines, failureLines(f, limit)...)
		}
	}
	return append(lines, row("verdict", summaryIndent, r.verdictPhrases(), " ", limit)...)
}

// failureLines shows one avoidable error: what the client got, and the
// gateway's access-log line with the ledger of its attempts.
func failureLines(f Failure, limit int) []string {
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
	lines := row("  "+f.RequestID+"  ", 6, []string{f.Method + " " + f.Path + ",", f.Shape + ":", got}, " ", limit)
	l := f.Line
	if l == nil {
		return append(lines, "      gateway: no access-log line for this request")
	}
	gw := []string{fmt.Sprintf("status %d,", l.Status), "cause " + orNone(l.Cause) + ",", fmt.Sprintf("%d attempts in %.0fms", l.Attempts, l.DurationMS)}
	if l.RetrySkipped != "" {
		gw[len(gw)-1] += ","
		gw = append(gw, "retry skipped: "+l.RetrySkipped)
	}
	lines = append(lines, row("      gateway:", 8, gw, " ", limit)...)
	if l.Detail != "" {
		lines = append(lines, row("      detail:", 8, []string{l.Detail}, " ", limit)...)
	}
	for i, a := range l.Ledger {
		items := []string{a.Server, "phase=" + a.Phase, fmt.Sprintf("reused=%t", a.Reused), fmt.Sprintf("written=%t", a.Written),
			"cause=" + orNone(a.Cause), fmt.Sprintf("status=%d", a.Status), fmt.Sprintf("%.0fms", a.DurationMS)}
		if a.Reused {
			items = append(items, fmt.Sprintf("idle=%.0fms", a.IdleMS))
		}
		if a.WaitMS > 0 {
			items = append(items, fmt.Sprintf("after %.0fms backoff", a.WaitMS))
		}
		lines = append(lines, row(fmt.Sprintf("      %d.", i+1), 9, items, " ", limit)...)
	}
	return lines
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
