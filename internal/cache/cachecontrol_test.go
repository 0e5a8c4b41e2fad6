package cache

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestParseCacheControl(t *testing.T) {
	tests := []struct {
		in   string
		want []Directive
	}{
		{"", nil},
		{"no-store", []Directive{{Name: "no-store"}}},
		{"Max-Age=60, PUBLIC", []Directive{{Name: "max-age", Value: "60", HasValue: true}, {Name: "public"}}},
		{` private="Set-Cookie, X-A" , max-age = 5`, []Directive{{Name: "private", Value: "Set-Cookie, X-A", HasValue: true}, {Name: "max-age", Value: "5", HasValue: true}}},
		{`x="a\"b\\c"`, []Directive{{Name: "x", Value: `a"b\c`, HasValue: true}}},
		{",,no-cache,,", []Directive{{Name: "no-cache"}}},
		{"bad name, ok", []Directive{{Name: "ok"}}},
		{`max-age="10"`, []Directive{{Name: "max-age", Value: "10", HasValue: true}}},
	}
	for _, tt := range tests {
		got := parseCacheControl(tt.in).Directives()
		if !slices.Equal(got, tt.want) {
			t.Errorf("parseCacheControl(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestCacheControlSeconds(t *testing.T) {
	tests := []struct {
		in          string
		wantD       time.Duration
		wantPresent bool
	}{
		{"", 0, false},
		{"max-age=60", 60 * time.Second, true},
		{`max-age="60"`, 60 * time.Second, true},
		{"max-age=abc", 0, true},
		{"max-age=-1", 0, true},
		{"max-age", 0, true},
		{"max-age=60, max-age=60", 60 * time.Second, true},
		{"max-age=60, max-age=120", 0, true}, // conflicting: read as stale
		{"max-age=99999999999999999999", maxDelta, true},
		{"max-age=2147483648", maxDelta, true},
		{"max-age=2147483647", 2147483647 * time.Second, true},
	}
	for _, tt := range tests {
		d, ok := parseCacheControl(tt.in).Seconds("max-age")
		if d != tt.wantD || ok != tt.wantPresent {
			t.Errorf("Seconds(max-age) of %q = %v, %v, want %v, %v", tt.in, d, ok, tt.wantD, tt.wantPresent)
		}
	}
}

func TestParseCacheControlJoinsLines(t *testing.T) {
	h := http.Header{"Cache-Control": {"max-age=5", "no-cache"}}
	cc := ParseCacheControl(h)
	if !cc.Has("no-cache") || !cc.Has("max-age") {
		t.Errorf("ParseCacheControl(%v) = %v, want both directives", h, cc)
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{
		"max-age=60, public", `private="a,b"`, `x="\`, `a=, b="c" d, e`, "MAX-AGE=1,max-age=2", "\t,=,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cc := parseCacheControl(s)
		for _, d := range cc.Directives() {
			if !isToken(d.Name) {
				t.Fatalf("parseCacheControl(%q): name %q is not a token", s, d.Name)
			}
		}
		again := parseCacheControl(cc.String())
		if !slices.Equal(cc.Directives(), again.Directives()) {
			t.Fatalf("parse(String(parse(%q))) = %+v, want %+v", s, again.Directives(), cc.Directives())
		}
		for _, d := range cc.Directives() {
			if v, ok := cc.Seconds(d.Name); ok && (v < 0 || v > maxDelta) {
				t.Fatalf("Seconds(%q) of %q = %v, out of range", d.Name, s, v)
			}
		}
	})
}
