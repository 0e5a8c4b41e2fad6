package demo

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// banner says where the gateway listens, what the backends do and what the
// load is, before the run starts. On the live display its lines fit the
// terminal, broken between phrases; otherwise each is one line.
func (r *run) banner() {
	o, s := r.opts, r.opts.Schedule
	limit := 0
	if o.Live {
		limit = lineLimit(r.width())
	}
	var lines []string
	add := func(head string, indent int, items ...string) {
		lines = append(lines, row(head, indent, items, " ", limit)...)
	}
	add("holdfast demo:", 0, "the gateway listens on "+r.gateway)
	add("  try it:", 14, "curl -i "+r.gateway+"/items/1")
	for i, b := range r.backends {
		label := ""
		if i == 0 {
			label = "  backends:"
		}
		var does []string
		switch b.name {
		case "flaky-dies":
			does = []string{"up " + s.Up.String() + ",", "then dies for " + s.Down.String(), "(refuses and resets),", "again"}
		case "flaky-502":
			does = []string{"answers 502", fmt.Sprintf("to 1 request in %d", s.FailEvery)}
		case "slow":
			does = []string{fmt.Sprintf("answers 1 request in %d", s.SlowEvery), "after " + s.SlowDelay.String(),
				"(holdfast waits " + readTimeout.String() + ")"}
		}
		add(fmt.Sprintf("%-14s%-11s", label, b.name), 25, append([]string{b.address()}, does...)...)
	}
	add("  load:", 14, fmt.Sprintf("%d requests/s", o.Rate), fmt.Sprintf("from %d clients:", o.Clients),
		"half GET, half POST", "(half of those", "with an Idempotency-Key)")
	add("  dashboard:", 14, "http://"+r.admin+"/", "(live pools, rates by cause, failed requests with their ledger)")
	add("  admin:", 14, "http://"+r.admin+"/metrics;", "in another terminal:",
		"holdfast status --admin "+r.admin+",",
		"holdfast drain --admin "+r.admin+" --token-file "+r.tokenFile+" demo 0")
	if o.Duration > 0 {
		add("  runs for "+o.Duration.String()+";", 0, "Ctrl-C stops it sooner")
	} else {
		add("  runs until Ctrl-C", 0)
	}
	fmt.Fprint(o.Out, strings.Join(lines, "\n")+"\n\n")
}

// width is the live display's width now: the terminal's, read again for
// every frame so that a resized window gets frames that fit it.
func (r *run) width() int {
	if w, ok := terminalWidth(r.opts.Out); ok {
		return w
	}
	return defaultWidth
}

// display shows the run every opts.Every until ctx ends: redrawn in place
// on a terminal, a plain line otherwise.
func (r *run) display(ctx context.Context) {
	t := time.NewTicker(r.opts.Every)
	defer t.Stop()
	screen := &liveScreen{out: r.opts.Out, width: r.width}
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
			screen.draw(rep)
		}
	}
}

// liveScreen redraws the live display in place on a terminal: each frame
// moves the cursor up over the rows the previous frame took and writes over
// them, line by line, each row erased first, and at the end erases
// whatever the previous frame had below.
type liveScreen struct {
	out   io.Writer
	width func() int // the terminal's width now
	// drawn are the display widths of the previous frame's lines, or nil
	// when there is no frame to redraw over.
	drawn []int
}

// draw writes the frame of rep over the previous one.
func (s *liveScreen) draw(rep *Report) {
	width := s.width()
	var b strings.Builder
	if width < minLiveWidth {
		// Too narrow for the frame: append a plain line, which the
		// terminal may wrap since nothing is drawn over it; the next frame
		// starts below it.
		b.WriteString(plainLine(rep) + "\n")
		s.drawn = nil
		io.WriteString(s.out, b.String())
		return
	}
	if n := rowsAt(s.drawn, width); n > 0 {
		fmt.Fprintf(&b, "\r\x1b[%dA", n) // to the first row of the previous frame
	}
	lines := frame(rep, width)
	s.drawn = s.drawn[:0]
	for _, l := range lines {
		// Erase the row before writing it, rather than what is left of it
		// after: erasing the whole row also clears the mark a terminal
		// that reflows (tmux) keeps on a row it wrapped, which would
		// otherwise join this line to the next when the window widens.
		b.WriteString("\x1b[2K")
		b.WriteString(l)
		b.WriteByte('\n')
		s.drawn = append(s.drawn, displayWidth(l))
	}
	b.WriteString("\x1b[J") // and the previous frame's lines below this one's
	io.WriteString(s.out, b.String())
}

// rowsAt is the number of terminal rows that lines of the given display
// widths, drawn when the terminal was at least that wide, take once it is
// width columns wide. Each line took one row when drawn; a window since
// narrowed below a line's width has it rewrapped onto more rows by the
// terminals that reflow their contents on resize (VTE, iTerm2, kitty,
// Windows Terminal, tmux), and the cursor must move up over all of them.
// A terminal that does not reflow (xterm) cuts such lines instead: the
// redraw then starts a few rows too high and writes over as many lines
// above the frame, once per resize, but never leaves a second copy of the
// frame behind.
func rowsAt(widths []int, width int) int {
	n := 0
	for _, w := range widths {
		n += max(1, (w+width-1)/width)
	}
	return n
}

// frame is the live table for a terminal width columns wide: the clients'
// side, holdfast's side, and the backends. No line is wider than
// lineLimit(width), so that the terminal wraps none and each line is one
// row for the redraw to move up over. A narrower terminal gets shorter
// labels, then rows continued on more lines, then the backends as rows
// rather than a table; every number stays, whole.
func frame(rep *Report, width int) []string {
	c, h := rep.Clients, rep.Holdfast
	limit := lineLimit(width)
	// The rows' items start after a margin that holds the elapsed time, and
	// a label column; both shrink on a narrow terminal.
	margin, labelW := 7, 13
	heads := [...]string{"CLIENTS SAW", "unavoidable", "HOLDFAST", "by cause", "BACKEND"}
	if width < 72 {
		margin, labelW = 5, 12
		heads[0] = "CLIENTS"
	}
	indent := margin + labelW
	head := func(i int) string { return fmt.Sprintf("%*s%s", margin, "", heads[i]) }

	var lines []string
	clients := func(twice, keyed string) []string {
		return []string{
			fmt.Sprintf("%d requests", c.Requests),
			fmt.Sprintf("%d 2xx", c.OK),
			fmt.Sprintf("avoidable errors: %d%s", c.Errors, byStatus(c.ErrorsByStatus)),
			fmt.Sprintf("%s: %d", twice, c.DuplicatePOSTs),
			fmt.Sprintf("%s: %d", keyed, c.ResentWithKey),
		}
	}
	elapsed := fmt.Sprintf("%*.0fs %s", margin-2, rep.Elapsed.Seconds(), heads[0])
	lines = append(lines, fitRow(elapsed, indent, "  ", limit,
		clients("POSTs delivered twice", "POSTs resent with key"),
		clients("POSTs twice", "resent with key"))...)
	lines = append(lines, row(head(1), indent, unavoidableItems(c, "keyless POST"), " ", limit)...)

	ej := plural(h.Ejections, "ejection")
	if h.CappedEjections > 0 {
		ej += fmt.Sprintf(" (+%d held back)", h.CappedEjections)
	}
	lines = append(lines, row(head(2), indent,
		[]string{fmt.Sprintf("%d attempts", h.Attempts), plural(h.Retries, "retry"), ej}, "  ", limit)...)
	causes := causeList(h.Causes)
	for i := range len(causes) - 1 {
		causes[i] += ","
	}
	lines = append(lines, row(head(3), indent, causes, " ", limit)...)
	return append(lines, backendRows(rep.Backends, margin, indent, heads[4], limit)...)
}

// fitRow lays out the first of variants (the same items, worded shorter
// and shorter) that fits on one line, or else the last one over several.
func fitRow(head string, indent int, sep string, limit int, variants ...[]string) []string {
	var lines []string
	for _, items := range variants {
		if lines = row(head, indent, items, sep, limit); len(lines) == 1 {
			break
		}
	}
	return lines
}

// backendRows shows the backends: a table after margin when one fits within
// limit, with shorter headings if need be; otherwise one row a backend,
// its counts labelled, continued at indent.
func backendRows(bs []BackendStats, margin, indent int, name string, limit int) []string {
	cols := func(names ...string) []column {
		// Minimum widths keep the columns still while states come and go
		// ("up", "DOWN, back in 1.5s").
		c := []column{{head: names[0], minw: indent - margin - 2}, {head: names[1], minw: len("up, slow: 3 waiting")},
			{head: names[2], right: true}, {head: names[3], right: true}, {head: names[4]}}
		for _, b := range bs {
			c[0].cells = append(c[0].cells, b.Name)
			c[1].cells = append(c[1].cells, b.State)
			c[2].cells = append(c[2].cells, strconv.FormatInt(b.Received, 10))
			c[3].cells = append(c[3].cells, strconv.FormatInt(b.Ejections, 10))
			c[4].cells = append(c[4].cells, misbehaviour(b))
		}
		return c
	}
	for _, heads := range [][]string{
		{name, "STATE", "RECEIVED", "EJECTED", "MISBEHAVED"},
		{name, "STATE", "RCVD", "EJ", "MISBEHAVED"},
	} {
		if lines, widest := table(margin, cols(heads...)); limit == 0 || widest <= limit {
			return lines
		}
	}
	var lines []string
	for _, b := range bs {
		lines = append(lines, row(fmt.Sprintf("%*s%s", margin, "", b.Name), indent, []string{
			b.State + ";", fmt.Sprintf("received %d,", b.Received), fmt.Sprintf("ejected %d,", b.Ejections), misbehaviour(b),
		}, " ", limit)...)
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
	return fmt.Sprintf("[%4.0fs] clients: %d requests, %d 2xx, %d avoidable errors, %d POSTs twice, %d unavoidable failures (keyless POSTs whose server failed) | holdfast: %d attempts, %s, %s | %s",
		rep.Elapsed.Seconds(), c.Requests, c.OK, c.Errors, c.DuplicatePOSTs, c.NotResent,
		h.Attempts, plural(h.Retries, "retry"), plural(h.Ejections, "ejection"), strings.Join(st, ", "))
}
