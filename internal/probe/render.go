package probe

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteResult writes one probe for a person: the phases with their
// timings, the status, what any proxy said, the cause and what to check.
func WriteResult(w io.Writer, r Result) {
	fmt.Fprintf(w, "%s %s\n", r.Method, r.URL)
	if r.Addr != "" && !r.Connected {
		fmt.Fprintf(w, "  no connection to %s\n", r.Addr)
	} else if r.Addr != "" {
		proto := r.Proto
		if r.TLSVersion != "" {
			proto += ", " + r.TLSVersion
		}
		if proto != "" {
			proto = " (" + strings.TrimPrefix(proto, ", ") + ")"
		}
		fmt.Fprintf(w, "  connected to %s%s\n", r.Addr, proto)
	}
	t := r.Timings
	row := func(name string, d time.Duration, reached bool, note string) {
		v := "-"
		if reached {
			v = fmtMS(d)
		}
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-10s %9s  %s", name, v, note), " "))
	}
	row("dns", t.DNS, t.DNS > 0, "")
	row("connect", t.Connect, t.Connect > 0, "")
	row("tls", t.TLS, t.TLS > 0, certNote(r))
	row("request", t.Request, t.Request > 0, "")
	row("first byte", t.FirstByte, t.FirstByte > 0, "server processing")
	row("body", t.Body, r.Status != 0, fmt.Sprintf("%d bytes", r.BodyBytes))
	row("total", t.Total, true, "")
	if r.Status != 0 {
		fmt.Fprintf(w, "  status     %d %s\n", r.Status, http.StatusText(r.Status))
	}
	for _, p := range r.Proxies {
		fmt.Fprintf(w, "  proxy      %s\n", p.Explain())
	}
	if !r.OK {
		switch {
		case r.ReportedBy != "":
			fmt.Fprintf(w, "  cause      %s (reported by the proxy %s)\n", r.Cause, r.ReportedBy)
		case r.Cause != 0 && r.Status != 0:
			fmt.Fprintf(w, "  cause      %s\n", r.Cause)
		case r.Cause != 0:
			fmt.Fprintf(w, "  cause      %s (in the %s phase)\n", r.Cause, r.Phase)
		}
		if r.Explain != "" {
			fmt.Fprintf(w, "  why        %s\n", r.Explain)
		}
		if r.Advice != "" {
			fmt.Fprintf(w, "  next       %s\n", r.Advice)
		}
		fmt.Fprintln(w, "  FAIL")
		return
	}
	fmt.Fprintln(w, "  ok")
}

func certNote(r Result) string {
	if r.CertExpiry.IsZero() {
		return ""
	}
	left := time.Until(r.CertExpiry)
	return fmt.Sprintf("certificate valid %d more days", int(left.Hours()/24))
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}

// ProgressLine is the one-line state of a repeated probe, for a terminal.
func ProgressLine(s Summary) string {
	return fmt.Sprintf("%d probes, %d failed  %s  p50 %s p99 %s",
		s.Requests, s.Failed, statusList(s.ByStatus), fmtMS(s.P50), fmtMS(s.P99))
}

// WriteSummary writes the outcome of a repeated probe for a person.
func WriteSummary(w io.Writer, s Summary) {
	fmt.Fprintf(w, "%s: %d probes in %s, %d failed\n", s.URL, s.Requests, s.Elapsed.Round(time.Millisecond), s.Failed)
	fmt.Fprintf(w, "  by status  %s\n", statusList(s.ByStatus))
	if len(s.ByCause) > 0 {
		fmt.Fprintf(w, "  by cause   %s\n", countList(s.ByCause))
	}
	fmt.Fprintf(w, "  latency    p50 %s  p90 %s  p99 %s\n", fmtMS(s.P50), fmtMS(s.P90), fmtMS(s.P99))
	if s.Example != nil {
		fmt.Fprintln(w, "  one of the failures:")
		var b strings.Builder
		WriteResult(&b, *s.Example)
		for _, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			fmt.Fprintln(w, "  "+l)
		}
	}
}

func statusList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// WriteChecks writes the table of a configuration check.
func WriteChecks(w io.Writer, checks []Check) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tSERVER\tSTATUS\tCAUSE\tLATENCY\t")
	for _, c := range checks {
		st := "-"
		if c.Status != 0 {
			st = fmt.Sprint(c.Status)
		}
		cs := "ok"
		if !c.OK {
			cs = c.Cause.String()
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\t\n", c.Pool, c.Server, c.Path, st, cs, fmtMS(c.Timings.Total))
	}
	tw.Flush()
	for _, c := range checks {
		if c.OK {
			continue
		}
		fmt.Fprintf(w, "%s %s: %s\n", c.Pool, c.Server, c.Explain)
		if c.Advice != "" {
			fmt.Fprintf(w, "  next: %s\n", c.Advice)
		}
	}
}
