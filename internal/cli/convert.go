package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/holdfast/holdfast/internal/codegen"
	"github.com/holdfast/holdfast/internal/curl"
)

var convertCommand = &command{
	name:    "convert",
	summary: "turn a curl command into resilient code in another language",
	synopsis: []string{
		"convert [--lang LANG] [--no-retry] [--async] -- curl ...",
		"convert [--lang LANG] [--no-retry] [--async] < command.sh",
	},
	about: `Turns a curl command into a program that makes the same request and handles failure well:
502, 503, 504 and network errors retried with capped exponential backoff and
full jitter, Retry-After honoured, a POST or PATCH retried only when it carries
an Idempotency-Key header, and the final status checked.
Without a command after --, the command is read from standard input and parsed
as bash would parse it. What is not converted is said in a warning on standard
error; a command that cannot be parsed exits 2 with its position.
--async (python-httpx only) writes an asyncio program around httpx.AsyncClient.`,
	examples: []string{
		`holdfast convert --lang python -- curl -X POST https://api.example.com/orders -H 'Idempotency-Key: 4f1c9a' --json '{"sku": 42}' --retry 3`,
	},
	values: map[string]completion{"lang": {words: codegen.Languages}},
	define: defineConvert,
}

// stdinHint is said on a terminal when convert is about to read the curl
// command from standard input: otherwise it would seem to hang.
const stdinHint = "holdfast convert: reading a curl command from standard input (end with Ctrl-D); or: holdfast convert -- curl ...\n"

// defineConvert declares the flags of "holdfast convert": a curl command,
// after "--" or on standard input, becomes a program in another language.
func defineConvert(fs *flag.FlagSet, e env) func([]string) int {
	lang := fs.String("lang", "go", "target `language`: "+strings.Join(codegen.Languages(), ", "))
	noRetry := fs.Bool("no-retry", false, "plain translation: one attempt, no retry loop")
	async := fs.Bool("async", false, "an asyncio program (python-httpx only)")
	return func(args []string) int {
		return convert(e, args, *lang, codegen.Options{NoRetry: *noRetry, Async: *async})
	}
}

func convert(e env, args []string, lang string, opts codegen.Options) int {
	stdout, stderr := e.stdout, e.stderr
	if opts.Async && !codegen.SupportsAsync(lang) {
		// Said before the command is read, so that a mistaken flag does
		// not wait for standard input first.
		return e.usage(fmt.Sprintf("--async is for %s only, not %s", strings.Join(codegen.AsyncLanguages(), ", "), lang))
	}
	var script *curl.Script
	var err error
	if len(args) > 0 {
		script, err = curl.ParseArgs(args)
	} else {
		if isTerminalReader(e.stdin) {
			fmt.Fprint(stderr, stdinHint)
		}
		src, rerr := io.ReadAll(e.stdin)
		if rerr != nil {
			fmt.Fprintf(stderr, "holdfast convert: reading standard input: %v\n", rerr)
			return 1
		}
		script, err = curl.Parse(string(src))
	}
	if err != nil {
		var pe *curl.Error
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "holdfast convert: %v\n", pe)
			return 2
		}
		fmt.Fprintf(stderr, "holdfast convert: %v\n", err)
		return 1
	}
	// Every program is generated before anything is printed, so that the
	// warnings of the parser and of the generators come out together, in
	// the order of the command.
	warnings := script.AllWarnings()
	out, err := codegen.GenerateScript(lang, script.Requests, opts)
	if err != nil {
		fmt.Fprintf(stderr, "holdfast convert: %v\n", err)
		return 2
	}
	for _, r := range script.Requests {
		warnings = append(warnings, codegen.Warnings(lang, r, opts)...)
	}
	for _, w := range curl.SortWarnings(warnings) {
		fmt.Fprintf(stderr, "holdfast convert: warning: %s\n", w)
	}
	fmt.Fprint(stdout, out)
	return 0
}

// isTerminalReader reports whether r is a terminal, where a person may be
// waiting for something to happen.
func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
