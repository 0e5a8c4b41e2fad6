package cause_test

import (
	"os"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/cause"
)

// TestCausesDocumented keeps docs/causes.md in step with the vocabulary.
func TestCausesDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/causes.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range cause.All() {
		if !strings.Contains(doc, "| `"+c.String()+"` |") {
			t.Errorf("docs/causes.md has no row for %s", c)
		}
	}
}
