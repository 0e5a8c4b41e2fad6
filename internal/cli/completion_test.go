package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/codegen"
)

// completionScript writes "holdfast completion shell" to a file and
// returns its path.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	code, out, errOut := runCLI("completion", shell)
	if code != 0 || errOut != "" {
		t.Fatalf("completion %s: exit %d, stderr %q", shell, code, errOut)
	}
	path := filepath.Join(t.TempDir(), "holdfast."+shell)
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// needShell skips the test when shell is not installed: the script is
// still generated and checked for its content by the other tests.
func needShell(t *testing.T, shell string) {
	t.Helper()
	if _, err := exec.LookPath(shell); err != nil {
		t.Skipf("%s is not installed: its completion script is not syntax-checked (Debian: apt-get install %s)", shell, shell)
	}
}

// runShell runs argv and returns its output, failing the test on an error.
func runShell(t *testing.T, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	// No user's startup files: the scripts must stand on their own.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "ZDOTDIR="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// TestCompletionNamesEverything: each script names every command, every
// flag of every command, and the languages of convert --lang.
func TestCompletionNamesEverything(t *testing.T) {
	for _, shell := range shells() {
		t.Run(shell, func(t *testing.T) {
			_, out, _ := runCLI("completion", shell)
			for _, c := range commands {
				if !strings.Contains(out, c.name) {
					t.Errorf("the script does not name the command %s", c.name)
				}
				for _, f := range declaredFlags(c) {
					name := strings.TrimLeft(f, "-")
					if !strings.Contains(out, f) && !strings.Contains(out, "-s "+name) && !strings.Contains(out, "-l "+name) {
						t.Errorf("the script does not name the flag %s of %s", f, c.name)
					}
				}
			}
			if !strings.Contains(out, strings.Join(codegen.Languages(), " ")) {
				t.Errorf("the script does not list the languages %v", codegen.Languages())
			}
		})
	}
}

// TestCompletionBash: the script parses (bash -n), and completes commands,
// the languages of --lang (also as --lang=), files for -c, and nothing
// after "--", where a curl command's words begin.
func TestCompletionBash(t *testing.T) {
	needShell(t, "bash")
	script := completionScript(t, "bash")
	runShell(t, "bash", "-n", script)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "holdfast.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// comp sets the words as bash does before it calls the function; "="
	// is a word of its own, as COMP_WORDBREAKS makes it.
	probe := `source "$1"
comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _holdfast; echo "${COMPREPLY[*]}"; }
cd "$2"
comp holdfast co
comp holdfast convert --lang ''
comp holdfast convert --lang = ja
comp holdfast serve -c holdf
comp holdfast convert -- curl -
comp holdfast completion ''
`
	got := strings.Split(strings.TrimSuffix(runShell(t, "bash", "-c", probe, "bash", script, dir), "\n"), "\n")
	want := []string{
		"convert completion",
		strings.Join(codegen.Languages(), " "),
		"javascript java",
		"holdfast.yaml",
		"",
		"bash zsh fish",
	}
	if len(got) != len(want) {
		t.Fatalf("completions = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("completion %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestCompletionZsh: the script parses (zsh -n), and loaded after
// compinit, registers _holdfast for holdfast.
func TestCompletionZsh(t *testing.T) {
	needShell(t, "zsh")
	script := completionScript(t, "zsh")
	runShell(t, "zsh", "-n", script)
	dump := filepath.Join(t.TempDir(), "zcompdump")
	out := runShell(t, "zsh", "-f", "-c", `autoload -Uz compinit && compinit -u -d "$2" && source "$1" && print -r -- "$_comps[holdfast]"`, "zsh", script, dump)
	if strings.TrimSpace(out) != "_holdfast" {
		t.Errorf("after sourcing the script, holdfast completes with %q, want _holdfast", out)
	}
}

// TestCompletionFish: the script parses (fish --no-execute), and fish's
// own "complete -C" offers the commands, the languages of --lang, and no
// flag of holdfast's after "--".
func TestCompletionFish(t *testing.T) {
	needShell(t, "fish")
	script := completionScript(t, "fish")
	runShell(t, "fish", "--no-execute", script)
	complete := func(line string) []string {
		out := runShell(t, "fish", "-c", "source $argv[1]; complete -C $argv[2]", script, line)
		var words []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				words = append(words, w)
			}
		}
		return words
	}
	if got := strings.Join(complete("holdfast "), " "); got != "check completion convert demo drain enable help probe reload serve status version" {
		t.Errorf("commands = %q", got)
	}
	if got := strings.Join(complete("holdfast convert --lang py"), " "); got != "python python-httpx" {
		t.Errorf("--lang py completes to %q, want python python-httpx", got)
	}
	if got := complete("holdfast convert --"); !strings.Contains(strings.Join(got, " "), "--no-retry") {
		t.Errorf("convert -- completes to %q, want its flags", got)
	}
	if got := complete("holdfast convert -- curl --"); len(got) != 0 {
		t.Errorf("after --, completions = %q, want none of holdfast's", got)
	}
}
