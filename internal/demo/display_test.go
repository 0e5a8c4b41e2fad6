package demo

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// sampleReport is a busy run's state, every count a different number, so
// that a number missing from the display cannot be mistaken for another.
func sampleReport() *Report {
	return &Report{
		Gateway: "http://127.0.0.1:41234",
		Elapsed: 12300 * time.Millisecond,
		Clients: ClientStats{
			Requests: 3417, OK: 3385,
			Errors: 7, ErrorsByStatus: map[int]int64{502: 5, 0: 2},
			NotResent: 25, NotResentByReason: map[string]int64{"answered 502": 12, "died": 4, "timed out": 9},
			DuplicatePOSTs: 1, ResentWithKey: 31,
		},
		Holdfast: GatewayStats{
			Requests: 3417, Failed: 32, Attempts: 3602, Retries: 185, Ejections: 41, CappedEjections: 77,
			Causes: []CauseCount{
				{"http_response_timeout", 111}, {"upstream_status", 53}, {"connection_refused", 19},
				{"connection_terminated", 8}, {"http_response_incomplete", 3},
			},
		},
		Backends: []BackendStats{
			{Name: "flaky-dies", State: "DOWN, back in 1.5s", Received: 1201, Ejections: 13, Deaths: 6},
			{Name: "flaky-502", State: "up", Received: 1188, Ejections: 17, Answered502: 148},
			{Name: "slow", State: "up, slow: 10 waiting", Received: 1213, Ejections: 11, SlowAnswers: 121, SlowNow: 10},
		},
	}
}

// quietReport is the state of a run's first second: nothing went wrong yet.
func quietReport() *Report {
	return &Report{
		Gateway: "http://127.0.0.1:41234",
		Elapsed: time.Second,
		Clients: ClientStats{Requests: 48, OK: 48},
		Backends: []BackendStats{
			{Name: "flaky-dies", State: "up", Received: 16},
			{Name: "flaky-502", State: "up", Received: 17},
			{Name: "slow", State: "up", Received: 15},
		},
	}
}

// shownNumbers are the numbers of rep that the live frame shows. The
// gateway's own Requests and Failed are left out: they repeat the clients'
// counts from the other side, and the frame shows the clients'.
func shownNumbers(rep *Report) map[string]int64 {
	c, h := rep.Clients, rep.Holdfast
	n := map[string]int64{
		"elapsed seconds": int64(rep.Elapsed.Round(time.Second).Seconds()),
		"requests":        c.Requests, "2xx": c.OK, "avoidable errors": c.Errors,
		"unavoidable": c.NotResent, "POSTs twice": c.DuplicatePOSTs, "resent with key": c.ResentWithKey,
		"attempts": h.Attempts, "retries": h.Retries, "ejections": h.Ejections, "held back": h.CappedEjections,
	}
	for st, v := range c.ErrorsByStatus {
		n["errors with status "+strconv.Itoa(st)] = v
	}
	for why, v := range c.NotResentByReason {
		n["unavoidable, "+why] = v
	}
	for _, k := range h.Causes {
		n["cause "+k.Cause] = k.N
	}
	for _, b := range rep.Backends {
		n[b.Name+" received"] = b.Received
		n[b.Name+" ejected"] = b.Ejections
		switch b.Name {
		case "flaky-dies":
			n["deaths"] = b.Deaths
		case "flaky-502":
			n["502s"] = b.Answered502
		case "slow":
			n["slow answers"] = b.SlowAnswers
			n["slow now"] = b.SlowNow
		}
	}
	return n
}

// containsNumber reports whether one of lines holds n as a whole number,
// not as part of a longer one (a number cut by a line break would not
// match).
func containsNumber(lines []string, n int64) bool {
	re := regexp.MustCompile(`(^|[^0-9.])` + strconv.FormatInt(n, 10) + `($|[^0-9])`)
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

func checkFits(t *testing.T, what string, lines []string, width int) {
	t.Helper()
	for _, l := range lines {
		if w := displayWidth(l); w > width-1 {
			t.Errorf("%s at %d columns: a line %d columns wide, want at most %d:\n%s", what, width, w, width-1, l)
		}
		if strings.ContainsAny(l, "\n\r\x1b") {
			t.Errorf("%s at %d columns: a line holds a control character: %q", what, width, l)
		}
	}
}

// TestFrameFits checks the live frame at narrow, classic and wide
// terminals: no line reaches the last column (so none wraps and each is one
// row for the redraw), every number of the state is there whole, and the
// numbers stay beside their labels.
func TestFrameFits(t *testing.T) {
	for _, tc := range []struct {
		name string
		rep  *Report
	}{{"busy", sampleReport()}, {"quiet", quietReport()}} {
		for _, width := range []int{minLiveWidth, 60, 80, 100, 160} {
			lines := frame(tc.rep, width)
			t.Logf("%s at %d columns:\n%s", tc.name, width, strings.Join(lines, "\n"))
			checkFits(t, tc.name+" frame", lines, width)
			for what, n := range shownNumbers(tc.rep) {
				if !containsNumber(lines, n) {
					t.Errorf("%s at %d columns: %s (%d) missing", tc.name, width, what, n)
				}
			}
			all := strings.Join(lines, "\n")
			for _, s := range []string{
				fmt.Sprintf("avoidable errors: %d", tc.rep.Clients.Errors),
				fmt.Sprintf("%d keyless POSTs", tc.rep.Clients.NotResent),
				fmt.Sprintf("%d attempts", tc.rep.Holdfast.Attempts),
			} {
				if !strings.Contains(all, s) {
					t.Errorf("%s at %d columns: no %q", tc.name, width, s)
				}
			}
		}
	}

	// Wide enough, the frame is the same rows as ever, one line each, and
	// the backends a table.
	lines := frame(sampleReport(), 160)
	if len(lines) != 8 {
		t.Errorf("frame at 160 columns: %d lines, want 8 (3 rows, by cause, table head, 3 backends)", len(lines))
	}
	if !strings.Contains(lines[4], "RECEIVED") {
		t.Errorf("frame at 160 columns: line 5 = %q, want the backends' table heading", lines[4])
	}
	// A backend state too long for any table still fits.
	rep := sampleReport()
	rep.Backends[0].State = "down: listen tcp 127.0.0.1:40000: bind: address already in use"
	for _, width := range []int{60, 80, 160} {
		checkFits(t, "frame with a long state", frame(rep, width), width)
	}
}

// TestSummaryFits checks the final summary on terminals of 60, 80 and 160
// columns: no line wraps, every phrase of the verdict is whole on one line,
// the verdict is one line when it fits, and without a terminal every row is
// one line, as before.
func TestSummaryFits(t *testing.T) {
	rep := sampleReport()
	rep.Failures = []Failure{{
		RequestID: "demo-77", Shape: "GET", Method: "GET", Path: "/items/77", Status: 502,
		ProxyStatus: `holdfast; error=connection_refused; details="the upstream refused the connection"`,
		Line: &AccessLine{Status: 502, Cause: "connection_refused", Attempts: 3, DurationMS: 12,
			Detail: "the upstream refused the connection: nothing listens on 127.0.0.1:40000",
			Ledger: []Attempt{{Server: "http://127.0.0.1:40000", Phase: "connect", Cause: "connection_refused", DurationMS: 1}}},
	}}
	verdict := rep.Verdict()
	for _, width := range []int{60, 80, 160} {
		lines := rep.summary(width)
		t.Logf("at %d columns:\n%s", width, strings.Join(lines, "\n"))
		checkFits(t, "summary", lines, width)
		var in []string // the verdict's lines
		for i, l := range lines {
			if strings.HasPrefix(l, "verdict ") {
				in = lines[i:]
			}
		}
		if len(in) == 0 {
			t.Fatalf("at %d columns: no verdict line", width)
		}
		var words []string
		for _, l := range in {
			words = append(words, strings.Fields(strings.TrimPrefix(l, "verdict"))...)
		}
		if got := strings.Join(words, " "); got != verdict {
			t.Errorf("at %d columns: the verdict's lines read %q, want %q", width, got, verdict)
		}
		for _, p := range rep.verdictPhrases() {
			whole := false
			for _, l := range in {
				whole = whole || strings.Contains(l, p)
			}
			if !whole {
				t.Errorf("at %d columns: verdict phrase %q broken across lines:\n%s", width, p, strings.Join(in, "\n"))
			}
		}
		if width == 160 && len(in) != 1 {
			t.Errorf("at 160 columns: the verdict takes %d lines, want 1", len(in))
		}
		for what, n := range shownNumbers(rep) {
			if what != "elapsed seconds" && what != "slow now" && !containsNumber(lines, n) {
				t.Errorf("summary at %d columns: %s (%d) missing", width, what, n)
			}
		}
	}

	var out bytes.Buffer
	rep.WriteSummary(&out) // not a terminal: rows are not broken
	if !strings.Contains(out.String(), "\nverdict   "+verdict+"\n") {
		t.Errorf("summary to a buffer: no one-line verdict %q in\n%s", verdict, out.String())
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Errorf("summary to a buffer holds escape sequences:\n%q", out.String())
	}
}

// TestTerminalWidth checks that what is not a terminal has no width, so
// that the display falls back to plain lines or its default.
func TestTerminalWidth(t *testing.T) {
	if _, ok := terminalWidth(new(bytes.Buffer)); ok {
		t.Error("a buffer has a terminal width")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, ok := terminalWidth(w); ok {
		t.Error("a pipe has a terminal width")
	}
}

func TestRow(t *testing.T) {
	tests := []struct {
		head   string
		indent int
		items  []string
		limit  int
		want   []string
	}{
		{"HEAD", 6, []string{"12 apples", "3 pears"}, 0, []string{"HEAD  12 apples  3 pears"}},
		{"HEAD", 6, []string{"12 apples", "3 pears"}, 20, []string{"HEAD  12 apples", "      3 pears"}},
		// Too wide for a line: broken after a comma, before a parenthesis,
		// then between words, never between a number and its neighbours.
		{"H", 2, []string{"errors: 3 (no response: 1, 502: 2)"}, 18, []string{"H errors: 3", "  (no response: 1,", "  502: 2)"}},
		{"H", 2, []string{"answered 502 to 148 and more words"}, 26, []string{"H answered 502 to 148 and", "  more words"}},
		// A word too wide for the indent starts at the left margin.
		{"H", 4, []string{"1 a", "http_response_header_section_size"}, 36, []string{"H   1 a", "http_response_header_section_size"}},
		// A head wider than the indent: the items follow it, or go below.
		{"a long head", 2, []string{"x 1"}, 20, []string{"a long head x 1"}},
		{"a long head", 2, []string{"x 12345678"}, 20, []string{"a long head", "  x 12345678"}},
	}
	for _, tt := range tests {
		got := row(tt.head, tt.indent, tt.items, "  ", tt.limit)
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
			t.Errorf("row(%q, %d, %q, %d) =\n%q, want\n%q", tt.head, tt.indent, tt.items, tt.limit, got, tt.want)
		}
	}
}

// screen is a tiny terminal for the redraw test: a grid of rows width
// columns wide and height high, with the scrollback above, that
// understands what the live display writes ("\r", "\n" (a new line at its
// first column, as the tty's ONLCR makes it), cursor up
// "\x1b[<n>A", erase "\x1b[K", "\x1b[2K" and "\x1b[J") and wraps a line
// that runs past the last column, as a terminal does, counting the wraps.
// Resizing reflows the rows, as most terminals (and tmux) do.
type screen struct {
	t             *testing.T
	width, height int
	rows          [][]rune
	wrapped       []bool // the row continues on the next: the terminal wrapped it
	row, col      int    // the cursor, row counted from the top of the scrollback
	wraps         int
}

func newScreen(t *testing.T, width, height int) *screen {
	return &screen{t: t, width: width, height: height, rows: [][]rune{nil}, wrapped: []bool{false}}
}

// top is the first row on the screen; the rows above are scrollback, out
// of the cursor's reach.
func (s *screen) top() int { return max(0, len(s.rows)-s.height) }

func (s *screen) Write(p []byte) (int, error) {
	in := string(p)
	for len(in) > 0 {
		if m := regexp.MustCompile(`^\x1b\[(\d*)([AKJ])`).FindStringSubmatch(in); m != nil {
			in = in[len(m[0]):]
			switch m[2] {
			case "A":
				n, _ := strconv.Atoi(m[1])
				s.row = max(s.top(), s.row-max(n, 1))
				s.col = min(s.col, s.width-1)
			case "K":
				switch m[1] {
				case "", "0":
					// The row stays marked as wrapped, as in tmux 3.3: a
					// resize would join it to the next.
					s.rows[s.row] = s.rows[s.row][:min(s.col, len(s.rows[s.row]))]
				case "2":
					s.rows[s.row] = nil
					s.wrapped[s.row] = false
				default:
					s.t.Fatalf("unexpected erase %q", m[0])
				}
			case "J":
				if m[1] != "" && m[1] != "0" {
					s.t.Fatalf("unexpected erase %q", m[0])
				}
				s.rows[s.row] = s.rows[s.row][:min(s.col, len(s.rows[s.row]))]
				s.wrapped[s.row] = false
				s.rows, s.wrapped = s.rows[:s.row+1], s.wrapped[:s.row+1]
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(in)
		in = in[size:]
		switch {
		case r == '\r':
			s.col = 0
		case r == '\n': // with the tty's ONLCR, as on a terminal in its usual mode
			s.newline()
			s.col = 0
		case r == 0x1b || r < 0x20:
			s.t.Fatalf("unexpected control character %q before %q", r, in)
		default:
			if s.col == s.width { // past the last column: the terminal wraps
				s.wraps++
				s.wrapped[s.row] = true
				s.newline()
				s.col = 0
			}
			line := s.rows[s.row]
			for len(line) <= s.col {
				line = append(line, ' ')
			}
			line[s.col] = r
			s.rows[s.row] = line
			s.col++
		}
	}
	return len(p), nil
}

func (s *screen) newline() {
	s.row++
	if s.row == len(s.rows) {
		s.rows = append(s.rows, nil)
		s.wrapped = append(s.wrapped, false)
	}
}

// resize reflows the rows to a new width, as VTE, iTerm2 and tmux do: the
// lines the terminal wrapped are joined, and every line is wrapped again.
// The cursor, at the start of a line (where the display leaves it), stays
// at the start of that line.
func (s *screen) resize(width int) {
	if s.col != 0 {
		s.t.Fatal("resize with the cursor inside a line")
	}
	var rows [][]rune
	var wrapped []bool
	row := 0
	var line []rune
	for i, r := range s.rows {
		if i == s.row {
			row = len(rows)
		}
		line = append(line, r...)
		if s.wrapped[i] && i+1 < len(s.rows) {
			continue
		}
		for len(line) > width {
			rows, wrapped = append(rows, line[:width]), append(wrapped, true)
			line = line[width:]
		}
		rows, wrapped = append(rows, line), append(wrapped, false)
		line = nil
	}
	s.rows, s.wrapped, s.row, s.width = rows, wrapped, row, width
}

// lines are the rows from first on, without trailing spaces.
func (s *screen) lines(first int) []string {
	var out []string
	for _, r := range s.rows[first:] {
		out = append(out, strings.TrimRight(string(r), " "))
	}
	return out
}

// TestLiveRedraw draws frames of different lengths at different widths,
// the window widened and narrowed in between, onto a model terminal, and
// checks that each redraw moves up exactly the rows the previous frame
// took: the screen then holds the lines above the display untouched, one
// copy of the latest frame, and nothing else, and no line was wrapped.
func TestLiveRedraw(t *testing.T) {
	busy := sampleReport()
	calm := sampleReport()
	calm.Clients.Errors, calm.Clients.ErrorsByStatus = 0, nil
	calm.Holdfast.Causes = calm.Holdfast.Causes[:1]
	calm.Holdfast.CappedEjections = 0
	steps := []struct {
		width int
		rep   *Report
	}{
		{80, quietReport()},
		{80, busy},  // longer
		{80, calm},  // shorter
		{160, busy}, // widened
		{160, quietReport()},
		{100, busy}, // narrowed: the terminal reflows the 160-column lines
		{60, calm},  // narrowed again
		{60, busy},
		{120, calm}, // widened
		{minLiveWidth, busy},
	}
	term := newScreen(t, steps[0].width, 500)
	above := []string{"holdfast demo: the banner", "  and its last line", ""}
	fmt.Fprint(term, strings.Join(above, "\n")+"\n")
	width := steps[0].width
	ls := &liveScreen{out: term, width: func() int { return width }}
	var out bytes.Buffer
	for i, st := range steps {
		if st.width != width {
			width = st.width
			term.resize(width)
		}
		// The rows the previous frame takes now, on the model terminal:
		// the redraw must move up over exactly these.
		prevRows := term.row - len(above)
		out.Reset()
		ls.out = &out
		ls.draw(st.rep)
		up := 0
		if m := regexp.MustCompile(`^\r?\x1b\[(\d+)A`).FindStringSubmatch(out.String()); m != nil {
			up, _ = strconv.Atoi(m[1])
		}
		if up != prevRows {
			t.Errorf("step %d (%d columns): moved up %d rows, want the %d rows of the previous frame", i, width, up, prevRows)
		}
		if n := len(regexp.MustCompile(`\x1b\[\d*A`).FindAllString(out.String(), -1)); n != min(up, 1) {
			t.Errorf("step %d: %d cursor movements up in %q, want %d", i, n, out.String(), min(up, 1))
		}
		term.Write(out.Bytes())

		want := append(append([]string(nil), above...), frame(st.rep, width)...)
		want = append(want, "") // the cursor's row, below the frame
		if got := term.lines(0); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("step %d (%d columns): screen\n%s\nwant\n%s", i, width, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if term.row != len(want)-1 || term.col != 0 {
			t.Errorf("step %d: cursor at row %d column %d, want row %d column 0", i, term.row, term.col, len(want)-1)
		}
		if n := strings.Count(strings.Join(term.lines(0), "\n"), "CLIENTS"); n != 1 {
			t.Errorf("step %d: %d copies of the clients' row on the screen, want 1", i, n)
		}
	}
	if term.wraps != 0 {
		t.Errorf("the terminal wrapped %d lines, want none", term.wraps)
	}
}

// TestLiveRedrawTallFrame checks a frame taller than the terminal: the
// cursor cannot move up past the top of the screen, so each redraw starts
// there, and the screen shows the frame's last lines, once.
func TestLiveRedrawTallFrame(t *testing.T) {
	const width, height = 60, 8
	term := newScreen(t, width, height)
	ls := &liveScreen{out: term, width: func() int { return width }}
	rep := sampleReport()
	lines := frame(rep, width)
	if len(lines) < height {
		t.Fatalf("frame of %d lines fits %d rows: the test needs a taller one", len(lines), height)
	}
	for i := range 4 {
		rep.Clients.Requests += int64(i)
		ls.draw(rep)
	}
	want := append(frame(rep, width)[len(lines)-(height-1):], "")
	if got := term.lines(term.top()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLiveTooNarrow checks that a terminal too narrow for the frame gets
// plain lines, drawn after one another, and that the next frame on a wider
// terminal starts below them rather than moving up over them.
func TestLiveTooNarrow(t *testing.T) {
	var out bytes.Buffer
	width := minLiveWidth - 1
	ls := &liveScreen{out: &out, width: func() int { return width }}
	ls.draw(quietReport())
	ls.draw(quietReport())
	if got, want := out.String(), strings.Repeat(plainLine(quietReport())+"\n", 2); got != want {
		t.Errorf("too narrow: wrote %q, want two plain lines %q", got, want)
	}
	out.Reset()
	width = 80
	ls.draw(quietReport())
	if regexp.MustCompile(`\x1b\[\d*A`).MatchString(out.String()) {
		t.Errorf("first frame after plain lines moves the cursor up: %q", out.String())
	}
}
