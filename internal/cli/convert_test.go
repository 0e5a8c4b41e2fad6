package cli

import (
	"bytes"
	"strings"
	"testing"
)

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
		{"go-holdfast", []string{"--lang", "go-holdfast", "--", "curl", "--retry", "2", "http://h/"}, "", 0, "client.WithMaxAttempts(3)", ""},
		{"several ruby", []string{"--lang", "ruby"}, "curl http://a\ncurl http://b", 0, "# request 2 of 2: GET http://b", ""},
		{"several", []string{"--lang", "shell"}, "curl http://a\ncurl http://b", 0, "# request 2 of 2: GET http://b", ""},
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
