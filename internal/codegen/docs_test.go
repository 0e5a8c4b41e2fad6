package codegen

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/curl"
)

// TestDocsConversions keeps the conversions shown in docs/convert.md the
// ones the generators make today: each "### ... (`--lang X` ...)" section's
// code block must be Generate(X) of the command above them. With -update
// the document is rewritten.
func TestDocsConversions(t *testing.T) {
	const path = "../../docs/convert.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	_, rest, ok := strings.Cut(doc, "## One conversion per language")
	if !ok {
		t.Fatal("docs/convert.md has no section \"One conversion per language\"")
	}
	_, rest, _ = strings.Cut(rest, "```sh\n")
	command, _, _ := strings.Cut(rest, "```")
	script, err := curl.Parse(command)
	if err != nil || len(script.Requests) != 1 {
		t.Fatalf("the documented command does not parse to one request: %v", err)
	}
	heading := regexp.MustCompile("(?m)^### [^\\n]*\\(`--lang ([a-z-]+)`[^\\n]*\\n\\n```[a-z]*\\n")
	out := doc
	n := 0
	for _, m := range heading.FindAllStringSubmatchIndex(doc, -1) {
		lang := doc[m[2]:m[3]]
		body := doc[m[1]:]
		end := strings.Index(body, "\n```\n")
		if end < 0 {
			t.Fatalf("%s: unterminated code block", lang)
		}
		shown := body[:end+1]
		got, err := Generate(lang, script.Requests[0], Options{})
		if err != nil {
			t.Fatalf("Generate(%s): %v", lang, err)
		}
		n++
		if got != shown {
			if *update {
				out = strings.Replace(out, doc[m[0]:m[1]]+shown, doc[m[0]:m[1]]+got, 1)
				continue
			}
			t.Errorf("docs/convert.md shows an outdated %s conversion (run go test ./internal/codegen -run TestDocsConversions -update):\n%s", lang, firstDiff(got, shown))
		}
	}
	if n != len(Languages()) {
		t.Errorf("docs/convert.md shows %d conversions, want one per language (%d)", n, len(Languages()))
	}
	if *update && out != doc {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
