package demo

import (
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"
)

// defaultWidth is the width the live display assumes when it cannot read
// the terminal's: the classic terminal's 80 columns.
const defaultWidth = 80

// minLiveWidth is the narrowest terminal the live display redraws in place.
// Below it the longest words of the display (cause names, backend states)
// would not fit a line beside their indent, so the display prints a plain
// line each update instead: a narrow terminal wraps it, but nothing is
// redrawn over wrapped lines.
const minLiveWidth = 48

// terminalWidth returns the number of columns of w when w is a terminal,
// read now: a window resized since the last call gives its new width.
// ok is false when w is not a terminal or its size cannot be read.
func terminalWidth(w io.Writer) (width int, ok bool) {
	f, isFile := w.(interface{ Fd() uintptr })
	if !isFile {
		return 0, false
	}
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return 0, false
	}
	width, _, err := term.GetSize(fd)
	if err != nil || width <= 0 {
		return 0, false
	}
	return width, true
}

// displayWidth is the number of columns s takes on a terminal. The display
// writes only single-width characters, so that is its number of runes
// (not bytes: a "…" is one column and three bytes).
func displayWidth(s string) int {
	return utf8.RuneCountInString(s)
}

// lineLimit is the longest line, in columns, that a terminal width columns
// wide shows without wrapping. It is one less than the width: a line that
// fills the last column leaves some terminals with a pending wrap that the
// next newline turns into an empty line, which would throw the redraw's
// line count off. 0 (no terminal) means no limit.
func lineLimit(width int) int {
	if width <= 0 {
		return 0
	}
	return max(width-1, 1)
}

// row lays out one row of the display within limit columns: head padded
// to indent columns, then items separated by sep, continued on lines
// indented by indent whenever the next item would pass the limit. Items are
// kept whole where they fit a line: an item is a phrase ("4 ejections (+18
// held back)") that reads wrong cut in two. An item too wide for a line of
// its own is broken by pieces (see pieces), never inside a word, so that no
// number is ever cut. limit 0 means no limit: one line.
func row(head string, indent int, items []string, sep string, limit int) []string {
	type token struct {
		sep, text string
	}
	var toks []token
	for i, it := range items {
		s := sep
		if i == 0 {
			s = ""
		}
		if limit > 0 && indent+displayWidth(it) > limit {
			for j, p := range pieces(it, limit-indent) {
				if j > 0 {
					s = " "
				}
				toks = append(toks, token{s, p})
			}
			continue
		}
		toks = append(toks, token{s, it})
	}

	first := head
	if pad := indent - displayWidth(head); pad > 0 {
		first += strings.Repeat(" ", pad)
	} else if head != "" && !strings.HasSuffix(head, " ") {
		first += " " // a head longer than the indent still ends in a space
	}
	cont := strings.Repeat(" ", indent)

	var lines []string
	cur, empty := first, true // empty: nothing after the head or indent yet
	for _, t := range toks {
		sep := t.sep
		if empty {
			sep = ""
		}
		fits := limit <= 0 || displayWidth(cur)+displayWidth(sep)+displayWidth(t.text) <= limit
		if !fits {
			// On a new line: after the items that fill this one, or after
			// a head too long to share its line with the item.
			if strings.TrimSpace(cur) != "" {
				lines = append(lines, strings.TrimRight(cur, " "))
				cur = cont
			}
			sep = ""
			if displayWidth(cur)+displayWidth(t.text) > limit {
				// A word too long for the indent: start it at the left
				// margin rather than let the terminal wrap it.
				cur = ""
			}
		}
		cur += sep + t.text
		empty = false
	}
	return append(lines, strings.TrimRight(cur, " "))
}

// pieces breaks an item too wide for a line of avail columns where it
// reads best: after a comma or semicolon and before a parenthesis first,
// then, in a piece still too wide, between words, but never between a word
// with a digit and its neighbours ("errors: 3", "3417 requests", "answered
// 502 to 148"), so that a number stays with what it counts.
func pieces(item string, avail int) []string {
	var out []string
	for _, phrase := range phrases(item) {
		if displayWidth(phrase) <= avail {
			out = append(out, phrase)
			continue
		}
		words := strings.Fields(phrase)
		for i, w := range words {
			if i > 0 && (hasDigit(words[i-1]) || hasDigit(w)) {
				out[len(out)-1] += " " + w
				continue
			}
			out = append(out, w)
		}
	}
	return out
}

// phrases splits s at its spaces that follow a comma or a semicolon or
// precede an opening parenthesis.
func phrases(s string) []string {
	var out []string
	start := 0
	for i := 1; i < len(s)-1; i++ {
		if s[i] == ' ' && (s[i-1] == ',' || s[i-1] == ';' || s[i+1] == '(') {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func hasDigit(s string) bool {
	return strings.ContainsAny(s, "0123456789")
}

// column is one column of a table: its heading, its cells top to bottom,
// and whether it is a column of numbers, aligned right.
type column struct {
	head  string
	right bool
	minw  int // width at least, to line up with the rows above
	cells []string
}

// table lays out columns side by side after margin spaces, two spaces
// apart, each as wide as its widest cell or heading, and returns the lines
// (heading first) and the widest line's width. The last column is not
// padded, so that no line ends in spaces.
func table(margin int, cols []column) (lines []string, widest int) {
	rows := 1
	if len(cols) > 0 {
		rows += len(cols[0].cells)
	}
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = max(c.minw, displayWidth(c.head))
		for _, s := range c.cells {
			widths[i] = max(widths[i], displayWidth(s))
		}
	}
	for r := range rows {
		var b strings.Builder
		b.WriteString(strings.Repeat(" ", margin))
		for i, c := range cols {
			s := c.head
			if r > 0 {
				s = c.cells[r-1]
			}
			pad := strings.Repeat(" ", widths[i]-displayWidth(s))
			if i > 0 {
				b.WriteString("  ")
			}
			switch {
			case c.right:
				b.WriteString(pad + s)
			case i < len(cols)-1:
				b.WriteString(s + pad)
			default:
				b.WriteString(s)
			}
		}
		l := strings.TrimRight(b.String(), " ")
		widest = max(widest, displayWidth(l))
		lines = append(lines, l)
	}
	return lines, widest
}
