package demo

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// banner says where the gateway listens, what the backends do and what the
// load is, before the run starts.
func (r *run) banner() {
	o, s := r.opts, r.opts.Schedule
	w := o.Out
	fmt.Fprintf(w, "holdfast demo: the gateway listens on %s\n", r.gateway)
	fmt.Fprintf(w, "  try it:     curl -i %s/items/1\n", r.gateway)
	fmt.Fprintf(w, "  backends:   flaky-dies %s  up %s, then dies for %s (refuses and resets), again\n",
		r.backends[0].address(), s.Up, s.Down)
	fmt.Fprintf(w, "              flaky-502  %s  answers 502 to 1 request in %d\n",
		r.backends[1].address(), s.FailEvery)
	fmt.Fprintf(w, "              slow       %s  answers 1 request in %d after %s (holdfast waits %s)\n",
		r.backends[2].address(), s.SlowEvery, s.SlowDelay, readTimeout)
	fmt.Fprintf(w, "  load:       %d requests/s from %d clients: half GET, half POST (half of those\n"+
		"              with an Idempotency-Key)\n", o.Rate, o.Clients)
	// The gateway has no admin listener yet (gateway.Options has none):
	// name no URL that would not answer.
	fmt.Fprintln(w, "  dashboard and /metrics: not enabled in this build")
	if o.Duration > 0 {
		fmt.Fprintf(w, "  runs for %s; Ctrl-C stops it sooner\n\n", o.Duration)
	} else {
		fmt.Fprint(w, "  runs until Ctrl-C\n\n")
	}
}

// display shows the run every opts.Every until ctx ends: redrawn in place
// on a terminal, a plain line otherwise.
func (r *run) display(ctx context.Context) {
	t := time.NewTicker(r.opts.Every)
	defer t.Stop()
	drawn := 0 // lines of the previous frame, to redraw over
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			rep := r.snapshot(now)
			if !r.opts.Live {
				fmt.Fprintln(r.opts.Out, plainLine(rep))
				continue
			}
			lines := frame(rep)
			var b strings.Builder
			if drawn > 0 {
				fmt.Fprintf(&b, "\x1b[%dA", drawn) // cursor up to the frame's first line
			}
			b.WriteString("\x1b[J") // clear from there to the end of the screen
			for _, l := range lines {
				b.WriteString(l)
				b.WriteByte('\n')
			}
			fmt.Fprint(r.opts.Out, b.String())
			drawn = len(lines)
		}
	}
}

// frame is the live table: the clients' side, holdfast's side, and the
// backends. Its lines stay within 80 columns, so that a terminal does not
// wrap them and the redraw stays in place.
func frame(rep *Report) []string {
	c, h := rep.Clients, rep.Holdfast
	lines := []string{
		fmt.Sprintf("%5.0fs CLIENTS SAW  %d requests  %d 2xx  avoidable errors: %d%s  POSTs twice: %d",
			rep.Elapsed.Seconds(), c.Requests, c.OK, c.Errors, byStatus(c.ErrorsByStatus), c.DuplicatePOSTs),
	}
	if c.NotResent > 0 {
		lines = append(lines, fmt.Sprintf("%20s%s without Idempotency-Key failed, not sent twice%s", "",
			plural(c.NotResent, "POST"), byStatus(c.NotResentByStatus)))
	}
	ej := plural(h.Ejections, "ejection")
	if h.CappedEjections > 0 {
		ej += fmt.Sprintf(" (+%d held back)", h.CappedEjections)
	}
	lines = append(lines, fmt.Sprintf("%7sHOLDFAST     %d attempts  %s  %s", "", h.Attempts, plural(h.Retries, "retry"), ej))
	for i, l := range wrap(causeList(h.Causes), 60) {
		label := ""
		if i == 0 {
			label = "absorbed"
		}
		lines = append(lines, fmt.Sprintf("%7s%-13s%s", "", label, l))
	}
	lines = append(lines, fmt.Sprintf("%7s%-11s  %-22s %8s %7s  %s", "", "BACKEND", "STATE", "RECEIVED", "EJECTED", "MISBEHAVED"))
	for _, b := range rep.Backends {
		lines = append(lines, fmt.Sprintf("%7s%-11s  %-22s %8d %7d  %s", "", b.Name, b.State, b.Received, b.Ejections, misbehaviour(b)))
	}
	return lines
}

// plainLine is the display for a log or a pipe: one line every few seconds.
func plainLine(rep *Report) string {
	c, h := rep.Clients, rep.Holdfast
	var st []string
	for _, b := range rep.Backends {
		state := "up"
		if !b.Up {
			state = "DOWN"
		}
		st = append(st, b.Name+" "+state+" ("+misbehaviour(b)+")")
	}
	return fmt.Sprintf("[%4.0fs] clients: %d requests, %d 2xx, %d avoidable errors, %d keyless POSTs not sent twice, %d POSTs twice | holdfast: %d attempts, %s, %s | %s",
		rep.Elapsed.Seconds(), c.Requests, c.OK, c.Errors, c.NotResent, c.DuplicatePOSTs,
		h.Attempts, plural(h.Retries, "retry"), plural(h.Ejections, "ejection"), strings.Join(st, ", "))
}
