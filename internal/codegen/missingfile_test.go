package codegen

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/curl"
)

// TestUnreadableEncodedFile: a file that --data-urlencode name@file names
// and that cannot be read is sent as an empty value, with a warning on
// standard error naming it, and the request still goes, as with curl
// (which leaves the name out as well, sending "&a=1": the shell target,
// curl itself, is not held to the programs' "n=&a=1").
func TestUnreadableEncodedFile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs generated programs")
	}
	const cmd = `curl --data-urlencode n@holdfast-no-such-file.txt -d a=1 "$HOLDFAST_URL/form"`
	s, err := curl.Parse(cmd)
	if err != nil {
		t.Fatal(err)
	}
	for _, rn := range runners() {
		if rn.lang == "shell" {
			continue
		}
		t.Run(rn.testName(), func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath(rn.tool); err != nil {
				skipOrFail(t, rn.tool)
			}
			src, err := Generate(rn.lang, s.Requests[0], rn.opts)
			if err != nil {
				t.Fatal(err)
			}
			argv := buildPrograms(t, rn, t.TempDir(), []string{src})[0]
			srv := newFlaky(t)
			_, stderr, err := runProgram(t, argv, srv.srv.URL)
			if err != nil {
				t.Errorf("program failed: %v\nstderr: %s", err, stderr)
			}
			reqs := srv.requests()
			if len(reqs) != 1 || reqs[0].body != "n=&a=1" {
				t.Errorf("requests %+v, want one with body n=&a=1", reqs)
			}
			if !strings.Contains(stderr, "holdfast-no-such-file.txt") {
				t.Errorf("stderr %q does not name the file", stderr)
			}
		})
	}
}
