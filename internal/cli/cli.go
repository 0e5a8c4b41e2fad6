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
	"syscall"
	"time"

	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/gateway"
)

// Version is holdfast's version, set at build time with -ldflags.
var Version = "dev"

const usage = `holdfast keeps 502, 503 and 504 away from your users, and says why when one must be returned.

Usage:
  holdfast serve -c holdfast.yaml   run the gateway (SIGHUP reloads, SIGTERM drains and stops)
  holdfast check -c holdfast.yaml   validate a configuration and summarise it
  holdfast probe URL [URL...]       why is this 502? times each phase, names the cause
  holdfast probe -c holdfast.yaml   check every server of every pool on its health path
  holdfast convert [--lang L] [--no-retry] [-- curl ...]
                                    turn a curl command (or stdin) into resilient code
  holdfast demo [--duration 30s]    the gateway in front of misbehaving local backends, live
  holdfast version                  print the version

Run "holdfast COMMAND -h" for a command's flags.
`

// Main runs holdfast with args (without the program name) and returns the
// exit status: 0 success, 1 failure, 2 bad usage.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "demo":
		return demo(args[1:], stdout, stderr)
	case "probe":
		return probeCmd(args[1:], stdout, stderr)
	case "convert":
		return convertCmd(args[1:], os.Stdin, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "holdfast", Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "holdfast: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("holdfast "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	file := fs.String("c", "holdfast.yaml", "configuration `file`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n%s", *file, config.Summary(cfg))
	return 0
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", stderr)
	file := fs.String("c", "holdfast.yaml", "configuration `file`")
	level := fs.String("log-level", "info", "event log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "holdfast serve: -log-level: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "holdfast serve: %v\n", err)
		return 1
	}
	if err := g.Listen(); err != nil {
		fmt.Fprintf(stderr, "holdfast serve: %v\n", err)
		return 1
	}
	addrs := make([]string, 0, len(g.Addrs()))
	for _, a := range g.Addrs() {
		addrs = append(addrs, a.String())
	}
	logger.Info("holdfast serving", "listen", addrs, "config", *file, "version", Version)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-g.Errors():
			logger.Error("stopping: a listener failed", "err", err)
			shutdown(g, cfg.Shutdown.DrainTimeout, logger)
			return 1
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				next, err := config.Load(*file)
				if err == nil {
					err = g.Reload(next)
				}
				if err != nil {
					logger.Error("reload rejected: the previous configuration keeps serving", "config", *file, "err", err)
					continue
				}
				cfg = next
				logger.Info("configuration reloaded", "config", *file)
				continue
			}
			logger.Info("shutting down: draining requests in flight", "signal", sig.String(), "drain_timeout", cfg.Shutdown.DrainTimeout.String())
			if err := shutdown(g, cfg.Shutdown.DrainTimeout, logger); err != nil {
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
