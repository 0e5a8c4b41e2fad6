package codegen

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/holdfast/holdfast/internal/curl"
)

// FuzzGenerateScript checks that whatever the parser accepts, every
// language writes a program and its warnings without panicking, for one
// request and for all of them together.
func FuzzGenerateScript(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "curl-corpus", "*.sh"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := curl.Parse(src)
		if err != nil {
			return
		}
		for _, lang := range Languages() {
			for _, opts := range []Options{{}, {NoRetry: true}, {Async: SupportsAsync(lang)}} {
				if _, err := GenerateScript(lang, s.Requests, opts); err != nil {
					t.Fatalf("%s: %v", lang, err)
				}
				if _, err := Generate(lang, s.Requests[0], opts); err != nil {
					t.Fatalf("%s: %v", lang, err)
				}
				for _, r := range s.Requests {
					Warnings(lang, r, opts)
				}
			}
		}
	})
}
