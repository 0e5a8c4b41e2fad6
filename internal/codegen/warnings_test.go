package codegen

import (
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/curl"
)

// TestWarnings: Warnings says, once and at the --retry option, that a
// --retry is refused for a request that may not be sent twice, and says
// nothing when the command's retries are kept or none were asked for.
func TestWarnings(t *testing.T) {
	tests := []struct {
		cmd  string
		opts Options
		want string // "" for no warning
	}{
		{`curl -X POST --retry 3 -d a=1 https://h/orders`, Options{}, "1:14: --retry 3 is not applied to POST https://h/orders:"},
		{`curl -d a=1 --retry-all-errors --retry 2 https://h/`, Options{}, "1:32: --retry 2 is not applied to POST https://h/:"},
		{`curl -X PATCH --retry 1 -d a=1 "$BASE/x"`, Options{}, "--retry 1 is not applied to PATCH ${BASE}/x:"},
		// The key comes from a variable that may be empty: not counted.
		{`curl -X POST --retry 3 -H "Idempotency-Key: $KEY" -d a=1 https://h/`, Options{}, "--retry 3 is not applied to POST"},
		{`curl -X POST --retry 3 -H 'Idempotency-Key: k1' -d a=1 https://h/`, Options{}, ""},
		{`curl -X POST -d a=1 https://h/`, Options{}, ""},
		{`curl -X POST --retry 0 -d a=1 https://h/`, Options{}, ""},
		{`curl -X POST --retry 3 -d a=1 https://h/`, Options{NoRetry: true}, ""},
		{`curl --retry 3 https://h/`, Options{}, ""},
		{`curl -X DELETE --retry 3 https://h/`, Options{}, ""},
	}
	for _, tt := range tests {
		s, err := curl.Parse(tt.cmd)
		if err != nil {
			t.Fatal(err)
		}
		ws := Warnings("go", s.Requests[0], tt.opts)
		switch {
		case tt.want == "" && len(ws) != 0:
			t.Errorf("%s: warnings %v, want none", tt.cmd, ws)
		case tt.want != "" && (len(ws) != 1 || !strings.Contains(ws[0].String(), tt.want)):
			t.Errorf("%s: warnings %v, want one containing %q", tt.cmd, ws, tt.want)
		}
	}
}

// TestWarningsMatchGeneratedPolicy: the warning is given exactly when the
// shell program drops curl's --retry, and the other programs say in their
// comment that only a refused connection is retried: what is said on
// stderr is what every language does.
func TestWarningsMatchGeneratedPolicy(t *testing.T) {
	for _, cmd := range []string{
		`curl -X POST --retry 3 -d a=1 https://h/`,
		`curl -X POST --retry 3 -H 'Idempotency-Key: k' -d a=1 https://h/`,
		`curl -X PUT --retry 3 -d a=1 https://h/`,
	} {
		s, err := curl.Parse(cmd)
		if err != nil {
			t.Fatal(err)
		}
		r := s.Requests[0]
		warned := len(Warnings("go", r, Options{})) > 0
		sh, _ := Generate("shell", r, Options{})
		if dropped := !strings.Contains(sh, "--retry 3"); dropped != warned {
			t.Errorf("%s: shell drops --retry %v, warning given %v", cmd, dropped, warned)
		}
		for _, lang := range Languages() {
			if lang == "shell" {
				continue
			}
			src, _ := Generate(lang, r, Options{})
			if refusedOnly := strings.Contains(src, "retried only when the connection was refused"); refusedOnly != warned {
				t.Errorf("%s, %s: comment says refused-only %v, warning given %v", cmd, lang, refusedOnly, warned)
			}
		}
	}
}

// TestHTTPXLimits: the httpx program says what it does differently from
// curl: a sync --max-time bounds each step, not the attempt.
func TestHTTPXLimits(t *testing.T) {
	tests := []struct {
		cmd    string
		opts   Options
		option string // "" for no warning
	}{
		{`curl -m 3 https://h/`, Options{}, "--max-time"},
		{`curl -m 3 https://h/`, Options{Async: true}, ""},
		{`curl -F "f=@$FILE;type=text/plain" -F 'g=@a.txt' https://h/`, Options{}, ""},
		{`curl https://h/`, Options{}, ""},
	}
	for _, tt := range tests {
		s, err := curl.Parse(tt.cmd)
		if err != nil {
			t.Fatal(err)
		}
		ws := Warnings("python-httpx", s.Requests[0], tt.opts)
		switch {
		case tt.option == "" && len(ws) != 0:
			t.Errorf("%s (%+v): warnings %v, want none", tt.cmd, tt.opts, ws)
		case tt.option != "" && (len(ws) != 1 || ws[0].Option != tt.option):
			t.Errorf("%s (%+v): warnings %+v, want one for %s", tt.cmd, tt.opts, ws, tt.option)
		}
	}
}
