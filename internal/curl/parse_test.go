package curl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mvdan.cc/sh/v3/syntax"
)

func parseOne(t *testing.T, src string) *Request {
	t.Helper()
	s, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q) error: %v", src, err)
	}
	if len(s.Requests) != 1 {
		t.Fatalf("Parse(%q) = %d requests, want 1", src, len(s.Requests))
	}
	return s.Requests[0]
}

func headerString(r *Request, name string) string {
	v, ok := r.Header(name)
	if !ok {
		return "<none>"
	}
	return v.String()
}

func hasWarning(ws []Warning, sub string) bool {
	for _, w := range ws {
		if strings.Contains(w.String(), sub) {
			return true
		}
	}
	return false
}

func TestParseShell(t *testing.T) {
	tests := []struct {
		name, src   string
		method, url string
		header      [2]string // name, want value
		body        string
	}{
		{"single quotes", `curl 'http://h/a b' -H 'X-A: it''s'`, "GET", "http://h/a b", [2]string{"X-A", "its"}, ""},
		{"double quotes and escapes", `curl "http://h/" -d "a=\"q\"&b=\$x"`, "POST", "http://h/", [2]string{"Content-Type", "application/x-www-form-urlencoded"}, `a="q"&b=$x`},
		{"ansi c quotes", `curl http://h -d $'line1\nline2\t\x41'`, "POST", "http://h", [2]string{}, "line1\nline2\tA"},
		{"line continuation", "curl http://h \\\n  -H 'X-B: 1' \\\n  -X PUT", "PUT", "http://h", [2]string{"X-B", "1"}, ""},
		{"env vars", `curl "$BASE/path" -H "Authorization: Bearer ${TOKEN}"`, "GET", "${BASE}/path", [2]string{"Authorization", "Bearer ${TOKEN}"}, ""},
		{"scheme added", `curl example.com:8080/x`, "GET", "http://example.com:8080/x", [2]string{}, ""},
		{"comment", "# a comment\ncurl http://h # trailing\n", "GET", "http://h", [2]string{}, ""},
		{"clustered short options", `curl -sSLkXPOST http://h`, "POST", "http://h", [2]string{}, ""},
		{"attached value", `curl -HX-C:3 -ofile http://h`, "GET", "http://h", [2]string{"X-C", "3"}, ""},
		{"opt=value", `curl --header=X-D:4 --request=DELETE http://h`, "DELETE", "http://h", [2]string{"X-D", "4"}, ""},
		{"repeated data", `curl http://h -d a=1 -d b=2 --data-raw @c`, "POST", "http://h", [2]string{}, "a=1&b=2&@c"},
		{"data urlencode", `curl http://h --data-urlencode 'q=a b&c' --data-urlencode =x/y`, "POST", "http://h", [2]string{}, "q=a+b%26c&x%2Fy"},
		{"json", `curl http://h --json '{"a":' --json '1}'`, "POST", "http://h", [2]string{"Accept", "application/json"}, `{"a":1}`},
		{"get moves data", `curl -G http://h?x=1 -d a=1 -d b=2`, "GET", "http://h?x=1&a=1&b=2", [2]string{}, ""},
		{"url query", `curl --url-query 'q=a b' --url-query +raw=%20 http://h/`, "GET", "http://h/?q=a+b&raw=%20", [2]string{}, ""},
		{"head", `curl -I http://h`, "HEAD", "http://h", [2]string{}, ""},
		{"user agent referer cookie", `curl -A ua -e ref -b 'a=1' -b b=2 http://h`, "GET", "http://h", [2]string{"Cookie", "a=1; b=2"}, ""},
		{"explicit method keeps case of odd ones", `curl -X wHat http://h`, "wHat", "http://h", [2]string{}, ""},
		{"lower case standard method kept verbatim", `curl -X post http://h`, "post", "http://h", [2]string{}, ""},
		{"upload", `curl -T f.txt http://h`, "PUT", "http://h/f.txt", [2]string{}, ""},
		{"upload names the file", `curl -T f.txt http://h/x`, "PUT", "http://h/x", [2]string{}, ""},
		{"stdin data from redirect", `curl --data-binary @- http://h < in.json`, "POST", "http://h", [2]string{}, ""},
		{"here string", `curl --data-binary @- http://h <<< 'x=1'`, "POST", "http://h", [2]string{}, "x=1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parseOne(t, tt.src)
			if r.Method != tt.method {
				t.Errorf("Method = %q, want %q", r.Method, tt.method)
			}
			if got := r.URL.String(); got != tt.url {
				t.Errorf("URL = %q, want %q", got, tt.url)
			}
			if tt.header[0] != "" {
				if got := headerString(r, tt.header[0]); got != tt.header[1] {
					t.Errorf("header %s = %q, want %q", tt.header[0], got, tt.header[1])
				}
			}
			if got := r.Body.Data.String(); got != tt.body {
				t.Errorf("body = %q, want %q", got, tt.body)
			}
		})
	}
}

func TestParseSettings(t *testing.T) {
	r := parseOne(t, `curl -u 'me:s3:cr' -k --compressed -L --max-redirs 5 -m 2.5 --connect-timeout 1 `+
		`--retry 4 --retry-delay 0.2 --retry-max-time 30 --retry-connrefused --retry-all-errors -o out.bin http://h`)
	if r.Auth == nil || r.Auth.User.String() != "me" || r.Auth.Password.String() != "s3:cr" {
		t.Errorf("Auth = %+v, want me / s3:cr", r.Auth)
	}
	if !r.Insecure || !r.Compressed || !r.FollowRedirects || r.MaxRedirects != 5 || r.Output != "out.bin" {
		t.Errorf("flags = insecure %v compressed %v location %v max-redirs %d output %q", r.Insecure, r.Compressed, r.FollowRedirects, r.MaxRedirects, r.Output)
	}
	if r.MaxTime != 2500*time.Millisecond || r.ConnectTimeout != time.Second {
		t.Errorf("timeouts = %v, %v; want 2.5s, 1s", r.MaxTime, r.ConnectTimeout)
	}
	// Pos is that of the --retry option, on which a warning about it is placed.
	want := Retry{Count: 4, CountSet: true, Delay: 200 * time.Millisecond, MaxTime: 30 * time.Second, ConnRefused: true, AllErrors: true, Pos: Pos{1, 81}}
	if r.Retry != want {
		t.Errorf("Retry = %+v, want %+v", r.Retry, want)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("Warnings = %v, want none", r.Warnings)
	}
}

func TestParseForm(t *testing.T) {
	r := parseOne(t, `curl http://h -F a=1 -F 'f=@up.png;type=image/png;filename=x.png' -F 'v=<val.txt' -F 'q="quoted"'`)
	if r.Body.Kind != BodyMultipart || len(r.Body.Parts) != 4 || r.Method != "POST" {
		t.Fatalf("body = %v with %d parts, method %s; want multipart with 4, POST", r.Body.Kind, len(r.Body.Parts), r.Method)
	}
	p := r.Body.Parts
	if p[0].Name != "a" || p[0].Value.String() != "1" {
		t.Errorf("part 0 = %+v", p[0])
	}
	if p[1].File.String() != "up.png" || p[1].ContentType != "image/png" || p[1].Filename != "x.png" {
		t.Errorf("part 1 = %+v", p[1])
	}
	if !p[2].FileAsValue || p[2].File.String() != "val.txt" {
		t.Errorf("part 2 = %+v", p[2])
	}
	if p[3].Value.String() != "quoted" {
		t.Errorf("part 3 = %+v", p[3])
	}
}

func TestParseWarnings(t *testing.T) {
	tests := []struct{ src, want string }{
		{`curl --bogus http://h`, "unknown option --bogus"},
		{`curl -Z http://h`, "-Z is not supported"},
		{`curl -x ftp://proxy http://h`, "proxy scheme \"ftp\" is not converted"},
		{`curl -U a:b http://h`, "-U without a proxy"},
		{`curl "http://h/$(whoami)"`, "command substitution"},
		{`curl http://h | jq .`, `"jq" is not curl`},
		{`curl http://h > out.txt`, `redirection ">"`},
		{`curl -c "$JAR" http://h`, "a jar named by a variable is not converted"},
		{`curl --data-urlencode "$V" http://h`, "has no literal '='"},
		{`curl --data-urlencode "n@$F" http://h`, "reads a file named by $F"},
		{`curl http://h -H`, "needs a value"},
	}
	for _, tt := range tests {
		s, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q) error: %v", tt.src, err)
			continue
		}
		if !hasWarning(s.AllWarnings(), tt.want) {
			t.Errorf("Parse(%q) warnings = %v, want one containing %q", tt.src, s.AllWarnings(), tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{`wget http://h`, `1:1: "wget" is not a curl command`},
		{"\n  ls -l", `2:3: "ls" is not a curl command`},
		{`curl 'http://h`, "1:6:"},
		{"curl http://h \\\n -d \"abc", "2:5:"},
		{``, "no curl command"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.src)
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error = %v, want an *Error", tt.src, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.src, err, tt.want)
		}
	}
}

func TestParseSeveralCommands(t *testing.T) {
	s, err := Parse("curl http://a && curl -X POST http://b\necho done\ncurl http://c --next -X DELETE http://d")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range s.Requests {
		got = append(got, r.Method+" "+r.URL.String())
	}
	want := "GET http://a,POST http://b,GET http://c,DELETE http://d"
	if strings.Join(got, ",") != want {
		t.Errorf("requests = %v, want %s", got, want)
	}
	if !hasWarning(s.Warnings, `"echo" is not curl`) {
		t.Errorf("warnings = %v, want one about echo", s.Warnings)
	}
}

func TestParseArgs(t *testing.T) {
	s, err := ParseArgs([]string{"curl", "-H", "X: $NOT_A_VAR", "http://h", "-d", "a=1"})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Requests[0]
	if got := headerString(r, "X"); got != "$NOT_A_VAR" || !r.Headers[0].Value.IsLiteral() {
		t.Errorf("header X = %q, want the literal $NOT_A_VAR", got)
	}
	if _, err := ParseArgs([]string{"wget", "x"}); err == nil {
		t.Error("ParseArgs(wget) succeeded, want an error")
	}
}

func TestIdempotency(t *testing.T) {
	tests := []struct {
		src        string
		idempotent bool
		key        bool
	}{
		{`curl http://h`, true, false},
		{`curl -X PUT http://h`, true, false},
		{`curl -d x http://h`, false, false},
		{`curl -d x -H 'Idempotency-Key: 1' http://h`, false, true},
		{`curl -X wHat http://h`, false, false},
	}
	for _, tt := range tests {
		r := parseOne(t, tt.src)
		if r.Idempotent() != tt.idempotent || r.HasIdempotencyKey() != tt.key {
			t.Errorf("%s: Idempotent, HasIdempotencyKey = %v, %v; want %v, %v", tt.src, r.Idempotent(), r.HasIdempotencyKey(), tt.idempotent, tt.key)
		}
	}
}

// TestCorpus parses every command of the shared corpus and checks that no
// header and no data argument is dropped without a word: each reaches a
// request, or a warning names it.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("../../../shared/curl-corpus/*.sh")
	if err != nil || len(files) == 0 {
		t.Skipf("corpus not found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(string(src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, item := range sourceItems(t, string(src)) {
				if !reaches(s, item) {
					t.Errorf("%s %q (at %s) reaches no request and no warning", item.opt, item.value, item.pos)
				}
			}
		})
	}
}

type sourceItem struct {
	opt, value string
	pos        Pos
}

// sourceItems lists the -H and data arguments of every curl command in src,
// found independently of the parser under test (short options only when
// they stand alone, which is how the corpus writes them).
func sourceItems(t *testing.T, src string) []sourceItem {
	f, err := syntax.NewParser().Parse(strings.NewReader(src), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []sourceItem
	syntax.Walk(f, func(n syntax.Node) bool {
		c, ok := n.(*syntax.CallExpr)
		if !ok || len(c.Args) == 0 {
			return true
		}
		for i := 1; i+1 < len(c.Args); i++ {
			name, _ := wordText(c.Args[i])
			switch name.String() {
			case "-H", "--header", "-d", "--data", "--data-raw", "--data-binary", "--data-ascii", "--data-urlencode", "--json":
				v, _ := wordText(c.Args[i+1])
				out = append(out, sourceItem{opt: name.String(), value: v.String(), pos: pos(c.Args[i+1].Pos())})
			}
		}
		return true
	})
	return out
}

func reaches(s *Script, it sourceItem) bool {
	_, hv, _ := strings.Cut(it.value, ":")
	for _, w := range s.AllWarnings() {
		if strings.Contains(w.Msg, it.value) || w.Pos == it.pos || (hv != "" && strings.Contains(w.Msg, strings.TrimSpace(hv))) {
			return true
		}
	}
	for _, r := range s.Requests {
		if it.opt == "-H" || it.opt == "--header" {
			name, _, _ := strings.Cut(it.value, ":")
			if _, ok := r.Header(strings.TrimSpace(name)); ok {
				return true
			}
			continue
		}
		v := strings.TrimPrefix(it.value, "@")
		if it.opt == "--data-urlencode" {
			v, _, _ = strings.Cut(v, "=")
		}
		if strings.Contains(r.Body.Data.String(), v) || r.Body.File.String() == v || strings.Contains(r.URL.String(), v) ||
			(v == "-" && r.Body.Kind != BodyNone) {
			return true
		}
	}
	return false
}

// FuzzParse checks that no input makes the parser panic, and that what it
// accepts it accepts consistently.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../codegen/testdata/curl-corpus/*.sh")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(string(b))
		}
	}
	for _, s := range []string{`curl -sSLk http://h`, `curl -XPOST -d@- http://h <<< x`, `curl "$A${B}" -F 'a=@"x;y";type=t'`, `curl -- -x`, `curl --next`,
		`curl --data-urlencode n@f --url-query @q -G --data-urlencode "=$V" http://h`, `curl --digest -u "$C" -c j -b j http://h --next http://i`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Parse(src)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error %T is not *Error: %v", err, err)
			}
			return
		}
		if len(s.Requests) == 0 {
			t.Fatal("Parse succeeded with no request")
		}
		for _, r := range s.Requests {
			if r.Method == "" {
				t.Fatal("request without a method")
			}
		}
	})
}
