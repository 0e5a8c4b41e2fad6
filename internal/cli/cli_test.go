package cli

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

// runCLI runs holdfast with args and an empty standard input.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, streams{stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

// declaredFlags returns c's flags as help spells them.
func declaredFlags(c *command) []string {
	fs, _ := c.flags(streams{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, flagName(f)) })
	return names
}

// TestCommandHelp: "holdfast CMD --help", "-h" and "holdfast help CMD"
// succeed and print, on stdout, the usage line, what the command does,
// every flag it declares and an example.
func TestCommandHelp(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, out, errOut := runCLI(args...)
				if code != 0 || errOut != "" {
					t.Fatalf("exit %d, stderr %q; want 0 and nothing on stderr", code, errOut)
				}
				if !strings.HasPrefix(out, "Usage: holdfast "+c.name) {
					t.Errorf("help does not start with the usage line:\n%s", out)
				}
				first, _, _ := strings.Cut(strings.TrimSpace(c.about), ".")
				if first == "" || !strings.Contains(out, "\n\n"+first+".") {
					t.Errorf("help lacks the sentence on what %s does:\n%s", c.name, out)
				}
				for _, f := range declaredFlags(c) {
					if !strings.Contains(out, "\n  "+f+" ") && !strings.Contains(out, "\n  "+f+"\n") {
						t.Errorf("help lacks flag %s:\n%s", f, out)
					}
				}
				_, ex, ok := strings.Cut(out, "\nExample:\n")
				if !ok || !strings.Contains(ex, "holdfast "+c.name) {
					t.Errorf("help lacks an example:\n%s", out)
				}
			})
		}
	}
}

// TestCommandBadFlag: a flag a command does not know exits 2 and prints the
// mistake and the usage on stderr, nothing on stdout.
func TestCommandBadFlag(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(c.name, "--no-such-flag")
			if code != 2 || out != "" {
				t.Fatalf("exit %d, stdout %q; want 2 and nothing on stdout", code, out)
			}
			if !strings.Contains(errOut, "holdfast "+c.name+": flag provided but not defined: -no-such-flag") ||
				!strings.Contains(errOut, "\nUsage: holdfast "+c.name) {
				t.Errorf("stderr lacks the mistake or the usage:\n%s", errOut)
			}
		})
	}
	// A flag's value that does not parse is the same mistake.
	if code, _, errOut := runCLI("demo", "--rate", "many"); code != 2 || !strings.Contains(errOut, "Usage: holdfast demo") {
		t.Errorf("demo --rate many: exit %d, stderr %q; want 2 with the usage", code, errOut)
	}
}

// TestUsageErrors: arguments a command does not take exit 2 with the usage.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"check", "holdfast.yaml"}, // -c forgotten
		{"serve", "extra"},
		{"serve", "--log-level", "loud"},
		{"version", "extra"},
		{"demo", "--rate", "0"},
		{"help", "convert", "probe"},
		{"completion"},
		{"completion", "tcsh"},
	} {
		code, out, errOut := runCLI(args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "Usage: holdfast "+args[0]) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2, the usage on stderr", args, code, out, errOut)
		}
	}
}

// TestTopLevelHelp: "holdfast --help", "-h" and "holdfast help" list every
// command on a line of its own, and succeed; no command, or an unknown one,
// is bad usage.
func TestTopLevelHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errOut := runCLI(args...)
		if code != 0 || errOut != "" {
			t.Errorf("%v: exit %d, stderr %q; want 0", args, code, errOut)
		}
		for _, c := range commands {
			n := 0
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "  "+c.name+" ") {
					n++
					if !strings.Contains(line, c.summary) {
						t.Errorf("%v: line of %s lacks its summary: %q", args, c.name, line)
					}
				}
			}
			if n != 1 {
				t.Errorf("%v: %d lines for %s, want 1:\n%s", args, n, c.name, out)
			}
		}
	}
	for _, args := range [][]string{nil, {"nope"}, {"help", "nope"}} {
		code, out, errOut := runCLI(args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "Commands:") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and the list on stderr", args, code, out, errOut)
		}
	}
}

// TestHelpFlagsSpelling: flags of one letter read -c, longer ones --lang,
// and defaults are shown (quoted for strings).
func TestHelpFlagsSpelling(t *testing.T) {
	_, out, _ := runCLI("serve", "--help")
	for _, want := range []string{"\n  -c file\n", `(default "holdfast.yaml")`, "\n  --log-level level\n", `(default "info")`} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, out)
		}
	}
}

// TestProbeFlagsAfterURLs: probe still takes flags after its URLs, and
// "--" still ends them.
func TestProbeFlagsAfterURLs(t *testing.T) {
	var got []string
	c := &command{
		name:        "t",
		interleaved: true,
		define: func(fs *flag.FlagSet, e env) func([]string) int {
			fs.Bool("k", false, "")
			return func(args []string) int { got = args; return 0 }
		},
	}
	s := streams{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
	c.run([]string{"a", "-k", "b", "--", "-c", "d"}, s)
	if strings.Join(got, " ") != "a b -c d" {
		t.Errorf("arguments = %q, want a b -c d", got)
	}
}
