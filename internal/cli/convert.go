package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/holdfast/holdfast/internal/codegen"
	"github.com/holdfast/holdfast/internal/curl"
)

// convertCmd is "holdfast convert": a curl command, after "--" or on
// standard input, becomes a program in another language. Warnings go to
// stderr; a command that cannot be parsed exits 2 with its position.
func convertCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("convert", stderr)
	lang := fs.String("lang", "go", "target `language`: "+strings.Join(codegen.Languages(), ", "))
	noRetry := fs.Bool("no-retry", false, "plain translation: one attempt, no retry loop")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: holdfast convert [--lang LANG] [--no-retry] [-- curl ...]\n"+
			"Without a command after --, the command is read from standard input.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var script *curl.Script
	var err error
	if rest := fs.Args(); len(rest) > 0 {
		script, err = curl.ParseArgs(rest)
	} else {
		src, rerr := io.ReadAll(stdin)
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
	for _, w := range script.AllWarnings() {
		fmt.Fprintf(stderr, "holdfast convert: warning: %s\n", w)
	}
	for i, r := range script.Requests {
		out, err := codegen.Generate(*lang, r, codegen.Options{NoRetry: *noRetry})
		if err != nil {
			fmt.Fprintf(stderr, "holdfast convert: %v\n", err)
			return 2
		}
		if len(script.Requests) > 1 {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			marker := fmt.Sprintf("request %d of %d: %s %s", i+1, len(script.Requests), r.Method, r.URL)
			// Several commands give several programs, one after another, to
			// be saved as separate files. Before the first <?php, PHP would
			// print a bare comment line: there it goes in a block that
			// prints nothing.
			if l := strings.ToLower(*lang); l == "php" && i == 0 {
				fmt.Fprintf(stdout, "<?php /* %s */ ?>\n", strings.ReplaceAll(marker, "*/", "* /"))
			} else {
				fmt.Fprintf(stdout, "%s %s\n", commentPrefix(*lang), marker)
			}
		}
		fmt.Fprint(stdout, out)
	}
	return 0
}

func commentPrefix(lang string) string {
	switch strings.ToLower(lang) {
	case "python", "py", "shell", "sh", "bash", "ruby", "rb":
		return "#"
	}
	return "//"
}
