package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a configuration file. It is safe to copy and to
// share between goroutines once returned.
type Error struct {
	// File is the configuration file's name as given to Load or Parse; ""
	// when Parse was given none.
	File string
	// Line and Col locate the offending key or value, both counting from 1.
	// Zero means unknown (the YAML parser did not say).
	Line, Col int
	// Key is the dotted path of the setting, with list indexes counting
	// from 0: "upstreams.api.servers[1].url". For an unknown key it is the
	// path of the mapping that holds it ("" at the top level).
	Key string
	// Msg says what is wrong and what would be valid, in lower case.
	Msg string
	// Err is the underlying error, if any (a file that cannot be read, an
	// invalid regular expression). Nil otherwise.
	Err error
}

// Error formats the problem as "file:line:col: key: msg", leaving out what
// is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		if e.Col > 0 {
			b.WriteString(strconv.Itoa(e.Col))
			b.WriteByte(':')
		}
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, so that errors.Is(err,
// fs.ErrNotExist) works for a missing certificate file.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one configuration, in file order. Parse
// and Load return it as a *Errors; errors.As(err, &target) with a *Error
// target yields the first problem.
type Errors struct {
	List []*Error
}

// Error lists the problems, one a line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, x := range e.List {
		lines[i] = x.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, x := range e.List {
		errs[i] = x
	}
	return errs
}

// sortErrors puts problems in file order; problems without a line go last.
func sortErrors(list []*Error) {
	slices.SortStableFunc(list, func(a, b *Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}

// choices returns ` (did you mean "x"? label: a, b, c)`, leaving out the
// suggestion when no member of valid is close to got.
func choices(got string, valid []string, label string) string {
	var b strings.Builder
	b.WriteString(" (")
	if s := suggest(got, valid); s != "" {
		fmt.Fprintf(&b, "did you mean %q? ", s)
	}
	b.WriteString(label)
	b.WriteString(": ")
	if len(valid) == 0 {
		b.WriteString("none")
	} else {
		b.WriteString(strings.Join(valid, ", "))
	}
	b.WriteByte(')')
	return b.String()
}

// suggest returns the member of valid closest to got by edit distance, when
// it is close enough to be a likely typo, or "".
func suggest(got string, valid []string) string {
	best, bestDist := "", 0
	lower := strings.ToLower(got)
	for _, v := range valid {
		if strings.ToLower(v) == lower {
			return v
		}
		d := editDistance(lower, strings.ToLower(v))
		if best == "" || d < bestDist {
			best, bestDist = v, d
		}
	}
	// Two edits catch most typos ("tires", "least_con"); short words
	// need a tighter bound or everything looks like everything.
	limit := 2
	if len(got) <= 3 {
		limit = 1
	}
	if best == "" || bestDist > limit || bestDist >= len(got) {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment) between a and b, counting an adjacent transposition as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows are enough for the transposition rule.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
