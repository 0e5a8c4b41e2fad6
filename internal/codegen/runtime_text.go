package codegen

import (
	"strings"

	"github.com/holdfast/holdfast/internal/curl"
)

// valueSyntax renders a curl.Text as an expression of a language whose
// program reads files and encodes values when it runs:
// lit quotes a literal, env reads a variable, file reads a file's whole
// contents, encode wraps an expression in the language's form of curl's
// --data-urlencode encoding, and join concatenates.
type valueSyntax struct {
	lit, env, file, encode func(string) string
	join                   string
}

// expr renders t.
func (s valueSyntax) expr(t curl.Text) string {
	if len(t) == 0 {
		return s.lit("")
	}
	parts := make([]string, 0, len(t))
	for _, seg := range t {
		var e string
		switch {
		case seg.Env != "":
			e = s.env(seg.Env)
		case seg.File != "":
			e = s.file(seg.File)
		default:
			parts = append(parts, s.lit(seg.Lit))
			continue
		}
		if seg.Encode {
			e = s.encode(e)
		}
		parts = append(parts, e)
	}
	return strings.Join(parts, s.join)
}

// readsValues reports whether r reads a file's contents or encodes a value
// when the program runs: in its URL (--url-query, -G) or its data
// (--data-urlencode).
func readsValues(r *curl.Request) (files, encodes bool) {
	files = len(r.URL.Files()) > 0 || len(r.Body.Data.Files()) > 0
	encodes = r.URL.Encodes() || r.Body.Data.Encodes()
	return files, encodes
}
