package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/codegen"
)

// convertCmd runs "holdfast convert args" with stdin.
func convertCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(append([]string{"convert"}, args...), streams{stdin: stdin, stdout: stdout, stderr: stderr})
}

func TestConvertCmd(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		stdin       string
		code        int
		out, errOut string
	}{
		{"args", []string{"--lang", "python", "--", "curl", "-H", "X-A: 1", "http://h/"}, "", 0, "JitterRetry(", ""},
		{"stdin", []string{"--lang", "javascript"}, "curl http://h \\\n  --bogus\n", 0, "fetch(url", "unknown option --bogus"},
		{"no retry", []string{"--no-retry", "--", "curl", "http://h"}, "", 0, "No retries", ""},
		{"default go", nil, "curl http://h", 0, "package main", ""},
		{"parse error", nil, "curl 'http://h", 2, "", "1:6:"},
		{"not curl", []string{"--", "wget", "http://h"}, "", 2, "", "not a curl command"},
		{"unknown lang", []string{"--lang", "cobol", "--", "curl", "http://h"}, "", 2, "", "unknown language"},
		{"bad flag", []string{"--nope"}, "", 2, "", ""},
		{"java", []string{"--lang", "java", "--", "curl", "--retry-all-errors", "http://h/"}, "", 0, "return status >= 400;", ""},
		{"php", []string{"--lang", "php", "--", "curl", "-d", "a=1", "http://h/"}, "", 0, "curl_exec($ch)", ""},
		{"ruby", []string{"--lang", "rb", "--", "curl", "http://h/"}, "", 0, "require 'net/http'", ""},
		{"c", []string{"--lang", "libcurl", "--", "curl", "-d", "a=1", "http://h/"}, "", 0, "curl_easy_perform(curl)", ""},
		{"several c", []string{"--lang", "c"}, "curl http://a\ncurl http://b", 0, "http://b", ""},
		{"go-holdfast", []string{"--lang", "go-holdfast", "--", "curl", "--retry", "2", "http://h/"}, "", 0, "client.WithMaxAttempts(3)", ""},
		{"httpx", []string{"--lang", "httpx", "--", "curl", "http://h/"}, "", 0, "with httpx.Client(", ""},
		{"httpx async", []string{"--lang", "python-httpx", "--async", "--", "curl", "http://h/"}, "", 0, "asyncio.run(main())", ""},
		{"async elsewhere", []string{"--lang", "ruby", "--async", "--", "curl", "http://h/"}, "", 2, "", "--async is for python-httpx only, not ruby"},
		{"several httpx", []string{"--lang", "httpx"}, "curl http://a\ncurl http://b", 0, "http://b", ""},
		{"several ruby", []string{"--lang", "ruby"}, "curl http://a\ncurl http://b", 0, "http://b", ""},
		{"several", []string{"--lang", "shell"}, "curl http://a\ncurl http://b", 0, "request_2 || status=$?", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := convertCmd(tt.args, strings.NewReader(tt.stdin), &out, &errOut)
			if code != tt.code {
				t.Errorf("convertCmd(%v) = %d, want %d; stderr: %s", tt.args, code, tt.code, errOut.String())
			}
			if !strings.Contains(out.String(), tt.out) {
				t.Errorf("stdout = %q, want it to contain %q", out.String(), tt.out)
			}
			if !strings.Contains(errOut.String(), tt.errOut) {
				t.Errorf("stderr = %q, want it to contain %q", errOut.String(), tt.errOut)
			}
		})
	}
}

// retryDropped is the start of the warning about a --retry that a POST
// without Idempotency-Key does not get.
const retryDropped = "is not applied to POST"

// TestConvertRetryWarning: a --retry that the generated code refuses for
// a POST without Idempotency-Key is said on stderr, not only in a comment
// of the program: once per request, whatever the language.
func TestConvertRetryWarning(t *testing.T) {
	for _, lang := range codegen.Languages() {
		t.Run(lang, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := []string{"--lang", lang, "--", "curl", "-X", "POST", "--retry", "3", "-d", "a=1", "http://h/orders"}
			if code := convertCmd(args, strings.NewReader(""), &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			want := "holdfast convert: warning: --retry 3 is not applied to POST http://h/orders: "
			if n := strings.Count(errOut.String(), retryDropped); n != 1 || !strings.HasPrefix(errOut.String(), want) {
				t.Errorf("stderr has %d warnings about --retry, want 1 starting %q:\n%s", n, want, errOut.String())
			}
			if strings.Contains(out.String(), retryDropped) {
				t.Errorf("the warning went into the program:\n%s", out.String())
			}

			// Two URLs are two requests: one warning each, at the --retry.
			out.Reset()
			errOut.Reset()
			src := "curl -X POST --retry 2 -d a=1 http://h/a http://h/b\n"
			if code := convertCmd([]string{"--lang", lang}, strings.NewReader(src), &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			for _, u := range []string{"http://h/a", "http://h/b"} {
				w := "warning: 1:14: --retry 2 is not applied to POST " + u + ":"
				if n := strings.Count(errOut.String(), w); n != 1 {
					t.Errorf("%d warnings %q, want 1:\n%s", n, w, errOut.String())
				}
			}
		})
	}
	// Nothing is dropped: a key, an idempotent method, no --retry, or
	// --no-retry, which asks for one attempt.
	for _, args := range [][]string{
		{"--", "curl", "-X", "POST", "--retry", "3", "-H", "Idempotency-Key: k1", "-d", "a=1", "http://h/"},
		{"--", "curl", "-X", "PUT", "--retry", "3", "-d", "a=1", "http://h/"},
		{"--", "curl", "-X", "POST", "-d", "a=1", "http://h/"},
		{"--", "curl", "-X", "POST", "--retry", "0", "-d", "a=1", "http://h/"},
		{"--no-retry", "--", "curl", "-X", "POST", "--retry", "3", "-d", "a=1", "http://h/"},
	} {
		var out, errOut bytes.Buffer
		if code := convertCmd(args, strings.NewReader(""), &out, &errOut); code != 0 || errOut.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 0 and no warning", args, code, errOut.String())
		}
	}
}

// TestConvertWarningsInOrder: warnings found in different passes (shell,
// options, the request built from them, the generators) come out in the
// order of their positions, each once.
func TestConvertWarningsInOrder(t *testing.T) {
	src := `curl -X POST --retry 3 --bogus -b cookies.txt -d @file1 -d x=1 https://h/a --frobnicate https://h/b | jq . && curl -u bob https://h/c --zzz` + "\n"
	var out, errOut bytes.Buffer
	if code := convertCmd([]string{"--lang", "python"}, strings.NewReader(src), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) < 10 {
		t.Fatalf("%d warnings, want at least 10:\n%s", len(lines), errOut.String())
	}
	prev := 0
	seen := map[string]bool{}
	for _, l := range lines {
		var line, col int
		if _, err := fmt.Sscanf(l, "holdfast convert: warning: %d:%d:", &line, &col); err != nil {
			t.Fatalf("warning without a position: %q", l)
		}
		if at := line*10000 + col; at < prev {
			t.Errorf("warning out of order: %q after position %d:%d\n%s", l, prev/10000, prev%10000, errOut.String())
		} else {
			prev = at
		}
		if seen[l] {
			t.Errorf("warning said twice: %q", l)
		}
		seen[l] = true
	}
}

// TestConvertStdinNotTerminal: reading the command from a pipe or a file,
// convert says nothing about standard input: scripts get only warnings.
func TestConvertStdinNotTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "command")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("curl http://h/\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	for _, stdin := range []io.Reader{strings.NewReader("curl http://h/\n"), f} {
		var out, errOut bytes.Buffer
		if code := convertCmd(nil, stdin, &out, &errOut); code != 0 || errOut.Len() != 0 || !strings.Contains(out.String(), "package main") {
			t.Errorf("stdin %T: exit %d, stderr %q; want 0, a program and nothing on stderr", stdin, code, errOut.String())
		}
	}
}

// TestConvertSeveralOneProgram: several commands give one program in
// every language, aliases included, which makes both requests, and no
// warning.
func TestConvertSeveralOneProgram(t *testing.T) {
	for _, lang := range append(codegen.Languages(), "python3", "py", "curl", "rb", "js", "golang") {
		var out, errOut bytes.Buffer
		if code := convertCmd([]string{"--lang", lang}, strings.NewReader("curl http://a.test/one\ncurl http://b.test/two\n"), &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", lang, code, errOut.String())
		}
		if errOut.Len() != 0 {
			t.Errorf("%s: warnings %q, want none", lang, errOut.String())
		}
		for _, want := range []string{"http://a.test/one", "http://b.test/two"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: the program does not name %s", lang, want)
			}
		}
		if n := strings.Count(strings.ToLower(out.String()), "generated by holdfast convert"); n != 1 {
			t.Errorf("%s: %d programs, want one", lang, n)
		}
	}
}
