package codegen

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/curl"
)

// TestScriptRunsEveryRequest: in a language that writes several requests
// as one program, the program makes them in order, goes on after one
// fails, as curl goes on with the next URL, and then exits non-zero; when
// none fails, it prints every response and exits 0.
func TestScriptRunsEveryRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs generated programs")
	}
	const src = `curl "$HOLDFAST_URL/one" --next -d 'a=1' -H 'X-Test: two' "$HOLDFAST_URL/two"
curl -X PUT --data-binary three "$HOLDFAST_URL/three"`
	s, err := curl.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	want := []recorded{{method: "GET", uri: "/one"}, {method: "POST", uri: "/two", body: "a=1"}, {method: "PUT", uri: "/three", body: "three"}}
	for _, rn := range runners() {
		t.Run(rn.testName(), func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath(rn.tool); err != nil {
				skipOrFail(t, rn.tool)
			}
			prog, err := GenerateScript(rn.lang, s.Requests, rn.opts)
			if err != nil {
				t.Fatal(err)
			}
			argv := buildPrograms(t, rn, t.TempDir(), []string{prog})[0]
			for _, tt := range []struct {
				failures []string
				ok       bool
			}{{nil, true}, {[]string{"404"}, false}} {
				srv := newFlaky(t, tt.failures...)
				stdout, stderr, err := runProgram(t, argv, srv.srv.URL)
				if (err == nil) != tt.ok {
					t.Errorf("failures %v: exit error %v, want ok = %v\nstdout: %s\nstderr: %s", tt.failures, err, tt.ok, stdout, stderr)
				}
				reqs := srv.requests()
				if len(reqs) != len(want) {
					t.Errorf("failures %v: %d requests, want %d\nstderr: %s", tt.failures, len(reqs), len(want), stderr)
					continue
				}
				for i, r := range reqs {
					if r.method != want[i].method || r.uri != want[i].uri || r.body != want[i].body {
						t.Errorf("failures %v: request %d = %s %s %q, want %s %s %q", tt.failures, i+1, r.method, r.uri, r.body, want[i].method, want[i].uri, want[i].body)
					}
				}
				if got := reqs[1].header.Get("X-Test"); got != "two" {
					t.Errorf("request 2: X-Test %q, want two", got)
				}
				if tt.ok && strings.Count(stdout, "ok") < 3 {
					t.Errorf("stdout %q: want the three responses", stdout)
				}
			}
		})
	}
}
