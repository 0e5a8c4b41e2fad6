// Package cli holds holdfast's subcommands and their flags. Each command
// parses its arguments, calls into the packages that do the work, and turns
// the outcome into output and an exit status.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/gateway"
	"github.com/holdfast/holdfast/internal/sdnotify"
)

// Version is holdfast's version when set at build time with
// -ldflags "-X github.com/holdfast/holdfast/internal/cli.Version=v1.2.3";
// left at "dev", the module version of the build information is used.
var Version = "dev"

// streams are the standard files a command reads and writes: the real ones
// in Main, buffers in tests.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// env is what a command's run function has: its streams, and usage, which
// reports a mistake in its arguments: it prints msg and the command's help
// on stderr, and returns 2, the exit status of bad usage.
type env struct {
	streams
	usage func(msg string) int
}

// command is one subcommand: what "holdfast help" and "holdfast CMD
// --help" say about it, how the shell completes it, and how it runs.
type command struct {
	name    string
	summary string // its line in "holdfast help"
	// synopsis are its usage lines, after "holdfast ".
	synopsis []string
	// about says what it does: one sentence first, details after.
	about    string
	examples []string
	// define declares the command's flags on fs and returns the function
	// that runs it on the arguments the flags leave. Declaring flags apart
	// from running lets help and completion list them without running
	// anything, from the same declaration that the command reads.
	define func(fs *flag.FlagSet, e env) func(args []string) int
	// interleaved lets flags follow arguments ("probe URL -H x"). Not for
	// convert, whose arguments after "--" are curl's own flags.
	interleaved bool
	// values complete the value of a flag, by name, in the shell; a flag
	// not named here completes nothing.
	values map[string]completion
	// args complete the command's arguments.
	args completion
}

// completion is what a shell offers in one place: files, or words.
type completion struct {
	files bool
	words func() []string
}

// commands are holdfast's subcommands, in the order help lists them.
// Filled in by init, as help and completion refer to the list itself.
var commands []*command

func init() {
	commands = []*command{
		serveCommand, checkCommand, probeCommand, convertCommand, demoCommand,
		statusCommand, drainCommand, enableCommand, reloadCommand,
		versionCommand, completionCommand, helpCommand,
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func commandNames() []string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return names
}

const tagline = "holdfast keeps 502, 503 and 504 away from your users, and says why when one must be returned."

// writeUsage writes the list of commands, one line each.
func writeUsage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage: holdfast COMMAND [flags] [arguments]\n\nCommands:\n", tagline)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun \"holdfast help COMMAND\" or \"holdfast COMMAND --help\" for a command's flags and an example.\n")
}

// Main runs holdfast with args (without the program name) and returns the
// exit status: 0 success, 1 failure, 2 bad usage. Standard input is the
// process's own.
func Main(args []string, stdout, stderr io.Writer) int {
	return run(args, streams{stdin: os.Stdin, stdout: stdout, stderr: stderr})
}

func run(args []string, s streams) int {
	if len(args) == 0 {
		writeUsage(s.stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		writeUsage(s.stdout)
		return 0
	case "-v", "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(s.stderr, "holdfast: unknown command %q\n\n", args[0])
		writeUsage(s.stderr)
		return 2
	}
	return c.run(args[1:], s)
}

// flags returns c's flag set with its flags declared, and the function
// that runs c.
func (c *command) flags(s streams) (*flag.FlagSet, func([]string) int) {
	fs := flag.NewFlagSet("holdfast "+c.name, flag.ContinueOnError)
	// The flag package's own messages and usage are silenced: help goes to
	// stdout and succeeds, a mistake goes to stderr with the usage, and
	// each is printed once, below.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs, c.define(fs, env{streams: s, usage: func(msg string) int { return c.usageError(s.stderr, fs, msg) }})
}

// run parses args and runs c: "--help" or "-h" print c's help on stdout
// and exit 0; a flag that does not parse exits 2 with the usage on stderr.
func (c *command) run(args []string, s streams) int {
	fs, runFn := c.flags(s)
	var rest []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.writeHelp(s.stdout, fs)
			return 0
		}
		if err != nil {
			return c.usageError(s.stderr, fs, err.Error())
		}
		if !c.interleaved || fs.NArg() == 0 {
			rest = append(rest, fs.Args()...)
			break
		}
		if len(args) > fs.NArg() && args[len(args)-fs.NArg()-1] == "--" {
			// After "--" everything is an argument, flags or not.
			rest = append(rest, fs.Args()...)
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return runFn(rest)
}

// usageError prints msg and c's help on w, and returns 2, the exit status
// of bad usage.
func (c *command) usageError(w io.Writer, fs *flag.FlagSet, msg string) int {
	fmt.Fprintf(w, "holdfast %s: %s\n\n", c.name, msg)
	c.writeHelp(w, fs)
	return 2
}

// writeHelp writes c's usage lines, what it does, its flags and examples.
func (c *command) writeHelp(w io.Writer, fs *flag.FlagSet) {
	for i, l := range c.synopsis {
		prefix := "Usage: "
		if i > 0 {
			prefix = "       "
		}
		fmt.Fprintf(w, "%sholdfast %s\n", prefix, l)
	}
	fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		writeFlags(w, fs)
	}
	if len(c.examples) > 0 {
		fmt.Fprint(w, "\nExample:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// flagName is how help and completion spell a flag: -c for one letter,
// --lang for a word, as curl and most tools do. The flag package takes
// both spellings of either.
func flagName(f *flag.Flag) string {
	if len(f.Name) == 1 {
		return "-" + f.Name
	}
	return "--" + f.Name
}

// takesValue reports whether f needs a value, that is, is not a bool flag.
func takesValue(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// writeFlags lists fs's flags as flag.PrintDefaults does, with the
// spelling of flagName.
func writeFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  " + flagName(f)
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch def := f.DefValue; {
		case def == "" || def == "0" || def == "false" || def == "0s":
		case isString(f):
			fmt.Fprintf(w, " (default %q)", def)
		default:
			fmt.Fprintf(w, " (default %s)", def)
		}
		fmt.Fprintln(w)
	})
}

func isString(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(string)
	return ok
}

// noArgs wraps a command that takes no arguments: one given is a usage
// error, as it is most likely a mistyped flag.
func noArgs(e env, run func() int) func([]string) int {
	return func(args []string) int {
		if len(args) > 0 {
			return e.usage(fmt.Sprintf("unexpected argument %q", args[0]))
		}
		return run()
	}
}

var checkCommand = &command{
	name:     "check",
	summary:  "validate a configuration and summarise it",
	synopsis: []string{"check [-c FILE]"},
	about: `Validates a configuration file and prints a summary of it, without starting anything.
An error names the file, the line and the key, and exits 1.`,
	examples: []string{"holdfast check -c holdfast.yaml"},
	values:   map[string]completion{"c": {files: true}},
	define: func(fs *flag.FlagSet, e env) func([]string) int {
		file := fs.String("c", "holdfast.yaml", "configuration `file`")
		return noArgs(e, func() int {
			cfg, err := config.Load(*file)
			if err != nil {
				fmt.Fprintln(e.stderr, err)
				return 1
			}
			fmt.Fprintf(e.stdout, "%s: ok\n%s", *file, config.Summary(cfg))
			return 0
		})
	},
}

// logLevels are the values of serve's --log-level.
func logLevels() []string { return []string{"debug", "info", "warn", "error"} }

var serveCommand = &command{
	name:     "serve",
	summary:  "run the gateway (SIGHUP reloads, SIGTERM drains and stops)",
	synopsis: []string{"serve [-c FILE] [--log-level LEVEL]"},
	about: `Runs the gateway with the configuration in FILE until it is stopped.
SIGHUP reloads the file (a broken one is rejected and the previous one keeps
serving); SIGTERM or Ctrl-C drains the requests in flight, then stops.
The event log is JSON on standard error.`,
	examples: []string{"holdfast serve -c /etc/holdfast/holdfast.yaml --log-level debug"},
	values: map[string]completion{
		"c":         {files: true},
		"log-level": {words: logLevels},
	},
	define: func(fs *flag.FlagSet, e env) func([]string) int {
		file := fs.String("c", "holdfast.yaml", "configuration `file`")
		level := fs.String("log-level", "info", "event log `level`: "+strings.Join(logLevels(), ", "))
		return noArgs(e, func() int {
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(*level)); err != nil {
				return e.usage(fmt.Sprintf("--log-level: %v", err))
			}
			return serve(*file, lv, e.stderr)
		})
	},
}

func serve(file string, lv slog.Level, stderr io.Writer) int {
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))
	if stop, err := cpuProfile(os.Getenv("HOLDFAST_CPUPROFILE")); err != nil {
		fmt.Fprintf(stderr, "holdfast serve: HOLDFAST_CPUPROFILE: %v\n", err)
		return 1
	} else {
		defer stop()
	}
	cfg, err := config.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: logger, Version: versionString()})
	if err != nil {
		fmt.Fprintf(stderr, "holdfast serve: %v\n", err)
		return 1
	}
	// Signals are caught before the listeners open: a SIGHUP sent as soon
	// as the service is up must reload it, not end it.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := g.Listen(); err != nil {
		fmt.Fprintf(stderr, "holdfast serve: %v\n", err)
		return 1
	}
	addrs := make([]string, 0, len(g.Addrs()))
	for _, a := range g.Addrs() {
		addrs = append(addrs, a.String())
	}
	args := []any{"listen", addrs, "config", file, "version", versionString()}
	if a := g.AdminAddr(); a != nil {
		args = append(args, "admin", a.String())
	}
	logger.Info("holdfast serving", args...)
	// Under systemd (Type=notify), say when the listeners are up, around
	// each reload, and when draining begins.
	sd := sdnotify.FromEnv()
	notify := func(state string) {
		if err := sd.Notify(state); err != nil {
			logger.Warn("cannot notify the service manager", "err", err)
		}
	}
	notify(sdnotify.Ready)
	for {
		select {
		case err := <-g.Errors():
			notify(sdnotify.Stopping)
			logger.Error("stopping: a listener failed", "err", err)
			shutdown(g, g.Config().Shutdown.DrainTimeout, logger)
			return 1
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				notify(sdnotify.Reloading())
				_, err := g.ReloadFile()
				notify(sdnotify.Ready)
				if err != nil {
					logger.Error("reload rejected: the previous configuration keeps serving", "config", file, "err", err)
					continue
				}
				logger.Info("configuration reloaded", "config", file)
				continue
			}
			notify(sdnotify.Stopping)
			dt := g.Config().Shutdown.DrainTimeout
			logger.Info("shutting down: draining requests in flight", "signal", sig.String(), "drain_timeout", dt.String())
			if err := shutdown(g, dt, logger); err != nil {
				return 1
			}
			return 0
		}
	}
}

func shutdown(g *gateway.Gateway, d time.Duration, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := g.Shutdown(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		logger.Warn("drain deadline reached: remaining connections closed", "err", err)
		return nil
	}
	logger.Info("stopped")
	return nil
}

var helpCommand = &command{
	name:     "help",
	summary:  "list the commands, or print one command's help",
	synopsis: []string{"help [COMMAND]"},
	about:    `Lists holdfast's commands, or prints the usage, flags and an example of one.`,
	examples: []string{"holdfast help convert"},
	args:     completion{words: commandNames},
	define: func(fs *flag.FlagSet, e env) func([]string) int {
		return func(args []string) int {
			switch len(args) {
			case 0:
				writeUsage(e.stdout)
				return 0
			case 1:
				c := lookup(args[0])
				if c == nil {
					fmt.Fprintf(e.stderr, "holdfast help: unknown command %q\n\n", args[0])
					writeUsage(e.stderr)
					return 2
				}
				cfs, _ := c.flags(e.streams)
				c.writeHelp(e.stdout, cfs)
				return 0
			}
			return e.usage("give one command at most")
		}
	},
}

// cpuProfile starts a CPU profile written to path until the returned stop
// is called, when path is set (HOLDFAST_CPUPROFILE): a profile of the
// running binary under real load, as bench/run.sh takes with PROFILE_DIR,
// and the input profile-guided optimisation would use.
func cpuProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
