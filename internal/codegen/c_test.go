package codegen

import (
	"bytes"
	"context"
	"mime"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/curl"
)

// TestCGoldenFilesCompile compiles the C program of every golden command
// with optimisation, which turns on gcc's flow warnings (a variable used
// uninitialised, say), as errors: the run test builds only the programs of
// its scenarios, and without -O2.
func TestCGoldenFilesCompile(t *testing.T) {
	if _, err := exec.LookPath("cc"); err != nil {
		skipOrFail(t, "cc")
	}
	requireCurlHeaders(t)
	t.Parallel()
	dir := t.TempDir()
	var files []string
	for _, gc := range goldenCommands {
		s, err := curl.Parse(gc.cmd)
		if err != nil {
			t.Fatal(err)
		}
		src, err := Generate("c", s.Requests[0], gc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, gc.name+".c"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, gc.name+".c")
	}
	// One cc for every file, compiled without linking: the warnings are
	// the compiler's, and one process is quicker than twelve.
	cmd := exec.Command("cc", append([]string{"-Wall", "-Wextra", "-Werror", "-O2", "-c"}, files...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cc: %v\n%s", err, out)
	}
}

// cCurlCommands are commands whose C programs must send what curl itself
// sends, byte for byte: bodies read from files when the program runs,
// uploads, forms, methods and headers that libcurl would otherwise choose
// differently. Each runs in a folder holding the files it names.
var cCurlCommands = []struct{ name, cmd string }{
	{"upload", `curl -T data.bin "$HOLDFAST_URL/put"`},
	{"upload-post", `curl -X POST -T data.bin -H 'Idempotency-Key: k1' "$HOLDFAST_URL/upload"`},
	{"data-binary-file", `curl --data-binary @data.bin -H 'Idempotency-Key: k2' "$HOLDFAST_URL/binary"`},
	{"data-file-stripped", `curl -d @text.txt -X PUT "$HOLDFAST_URL/stripped"`},
	{"form", `curl -H 'Idempotency-Key: k3' -F 'name=a b' -F 'file=@data.bin;type=application/x-test' -F 'note=<note.txt' -F 'doc=@note.txt;filename=other.txt' "$HOLDFAST_URL/form"`},
	{"delete-headers", `curl -X DELETE -H 'X-Empty;' -H "X-From-Env: $TOKEN" "$HOLDFAST_URL/items/1"`},
	{"head", `curl -I "$HOLDFAST_URL/head"`},
	{"user-get", `curl -u 'me:pa:ss' --compressed -G -d q=1 "$HOLDFAST_URL/search?t=$TOKEN"`},
	{"patch-text", `curl -H 'Content-Type: text/plain' -d 'hello' -X PATCH -H 'Idempotency-Key: k4' "$HOLDFAST_URL/patch"`},
}

// TestCProgramsSendWhatCurlSends runs each command with curl and as a C
// program against the same recording server, and compares the requests;
// then runs the program once more against a server that answers 502
// first, where the retry must send the same request again (an upload and
// a form rewound, not half sent).
func TestCProgramsSendWhatCurlSends(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs C programs")
	}
	for _, tool := range []string{"cc", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool)
		}
	}
	requireCurlHeaders(t)
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"data.bin": "line one\r\nline two\n\x00binary\xff\n" + strings.Repeat("0123456789", 200),
		// curl -d @file reads text: a NUL would end its line there.
		"text.txt": "line one\r\nline two\n\xffthree\n" + strings.Repeat("0123456789", 200),
		"note.txt": "a note\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cCurlCommands {
		cmd := c.cmd
		t.Run(c.name, func(t *testing.T) {
			s, err := curl.Parse(cmd)
			if err != nil {
				t.Fatal(err)
			}
			src, err := Generate("c", s.Requests[0], Options{})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "main.c")
			bin := filepath.Join(dir, "prog"+string(rune('a'+i)))
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("cc", "-Wall", "-Wextra", "-Werror", "-o", bin, file, "-lcurl").CombinedOutput(); err != nil {
				t.Fatalf("cc: %v\n%s", err, out)
			}

			want := runIn(t, dir, newFlaky(t), "sh", "-c", cmd+" -s -o /dev/null")
			got := runIn(t, dir, newFlaky(t), bin)
			if len(want) != 1 || len(got) != 1 {
				t.Fatalf("curl made %d requests, the program %d; want 1 each", len(want), len(got))
			}
			compareExactly(t, got[0], want[0])

			retried := runIn(t, dir, newFlaky(t, "502"), bin)
			if len(retried) != 2 {
				t.Fatalf("after a 502: %d requests, want 2", len(retried))
			}
			if a, b := retried[0], retried[1]; a.method != b.method || a.uri != b.uri || a.body != b.body {
				t.Errorf("the retry differs from the first attempt:\n%s %s %q\n%s %s %q", a.method, a.uri, a.body, b.method, b.uri, b.body)
			}
		})
	}
}

// runIn runs argv in dir against srv, with $TOKEN set, and returns what
// srv received. The program's exit status is not checked here: -I and a
// 502 are not failures of the request being compared.
func runIn(t *testing.T, dir string, srv *flaky, argv ...string) []recorded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOLDFAST_URL="+srv.srv.URL, "TOKEN=t/k")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil && ctx.Err() != nil {
		t.Fatalf("%s: %v\n%s", argv[0], err, stderr.String())
	}
	return srv.requests()
}

// compareExactly checks method, URI, body and every header; a multipart
// boundary, chosen at random by each, is replaced by BOUNDARY first.
func compareExactly(t *testing.T, got, want recorded) {
	t.Helper()
	norm := func(r recorded) recorded {
		_, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		if b := params["boundary"]; err == nil && b != "" {
			r.body = strings.ReplaceAll(r.body, b, "BOUNDARY")
			r.header = r.header.Clone()
			r.header.Set("Content-Type", strings.ReplaceAll(r.header.Get("Content-Type"), b, "BOUNDARY"))
		}
		return r
	}
	got, want = norm(got), norm(want)
	if got.method != want.method || got.uri != want.uri || got.body != want.body {
		t.Errorf("request = %s %s %q\ncurl sends %s %s %q", got.method, got.uri, got.body, want.method, want.uri, want.body)
	}
	// The boundary's length may differ from curl's, and with it the body's.
	length := regexp.MustCompile(`^\d+$`)
	for name := range mergeKeys(got.header, want.header) {
		g, w := strings.Join(got.header.Values(name), ", "), strings.Join(want.header.Values(name), ", ")
		if name == "Content-Length" && length.MatchString(g) && length.MatchString(w) && got.body == want.body {
			continue
		}
		if g != w {
			t.Errorf("header %s = %q, curl sends %q", name, g, w)
		}
	}
}

func mergeKeys[V any](a, b map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
