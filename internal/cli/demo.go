package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	demorun "github.com/holdfast/holdfast/internal/demo"
)

// demoScriptDuration is how long the demo runs when no --duration is given and
// standard output is not a terminal: a script that runs it never hangs.
const demoScriptDuration = 30 * time.Second

var demoCommand = &command{
	name:     "demo",
	summary:  "the gateway in front of misbehaving local backends, live",
	synopsis: []string{"demo [--duration D] [--rate N] [--clients N] [--listen ADDR] [--admin ADDR]"},
	about: `Shows the gateway at work: starts three local backends that misbehave on a schedule
(one dies and comes back, one answers 502 now and then, one is slow), puts the
gateway in front of them, drives a steady load of GETs and POSTs, and shows side
by side what the clients saw and what holdfast absorbed. The banner names the
admin listener: "holdfast status --admin ADDR" in another terminal shows each
server's state as it changes. It stops on Ctrl-C or
after --duration (30s when standard output is not a terminal).

Exit status: 0 when the clients saw no error that holdfast could have absorbed
and no POST was delivered twice, 1 otherwise, 2 on bad usage.`,
	examples: []string{"holdfast demo --duration 1m --rate 100"},
	values:   map[string]completion{"access-log": {files: true}},
	define:   defineDemo,
}

// defineDemo declares the flags of "holdfast demo": the gateway in front of
// three misbehaving local backends under load, shown live.
func defineDemo(fs *flag.FlagSet, e env) func([]string) int {
	duration := fs.Duration("duration", 0, "stop after this long (default: until Ctrl-C on a terminal, 30s otherwise)")
	rate := fs.Int("rate", 50, "requests per second sent to the gateway")
	clients := fs.Int("clients", 16, "concurrent clients sharing the load")
	listen := fs.String("listen", "127.0.0.1:0", "the gateway's listen `address`")
	admin := fs.String("admin", "127.0.0.1:0", "the admin listener's `address` (loopback), for holdfast status in another terminal")
	accessLog := fs.String("access-log", "", "also write the gateway's JSON access log (with attempt ledgers) to `file`")
	verbose := fs.Bool("verbose", false, "print the gateway's event log (ejections, skipped retries) on standard error")
	return noArgs(e, func() int {
		switch {
		case *rate < 1 || *rate > 10000:
			return e.usage("--rate must be between 1 and 10000")
		case *clients < 1 || *clients > 1000:
			return e.usage("--clients must be between 1 and 1000")
		case *duration < 0:
			return e.usage("--duration must not be negative")
		}
		return demo(demorun.Options{Duration: *duration, Rate: *rate, Clients: *clients, Listen: *listen, Admin: *admin}, *accessLog, *verbose, e.stdout, e.stderr)
	})
}

// demo runs the demo with o, filled in with what depends on the terminal.
func demo(o demorun.Options, accessLog string, verbose bool, stdout, stderr io.Writer) int {
	terminal := isTerminalWriter(stdout)
	o.Out = stdout
	// The event log on the same terminal would tear a redrawn table.
	o.Live = terminal && !verbose
	if o.Duration == 0 && !terminal {
		o.Duration = demoScriptDuration
	}
	if verbose {
		o.EventLog = stderr
	}
	if accessLog != "" {
		f, err := os.OpenFile(accessLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "holdfast demo: --access-log: %v\n", err)
			return 1
		}
		defer f.Close()
		o.AccessLog = f
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first Ctrl-C the demo stops gracefully; a second one
	// kills it at once, as a person who presses it twice expects.
	context.AfterFunc(ctx, stop)

	rep, err := demorun.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "holdfast %v\n", err)
		if rep == nil {
			return 1
		}
	}
	rep.WriteSummary(stdout)
	if err != nil || !rep.OK() {
		return 1
	}
	return 0
}

// isTerminalWriter reports whether w is a terminal, where the display can redraw
// in place.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
