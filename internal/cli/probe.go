package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/probe"
)

var probeCommand = &command{
	name:    "probe",
	summary: "why is this 502? time each phase of a request and name the cause",
	synopsis: []string{
		"probe [flags] URL [URL...]",
		"probe -c holdfast.yaml",
	},
	about: `Diagnoses a failing endpoint: times each phase of one request on a fresh
connection (DNS, connect, TLS, request, first byte, body), names the cause of
a failure and says what to check next. Reads the Proxy-Status of any RFC 9209
proxy in the response. Flags may come before or after the URLs.
With -c, checks every server of every pool of a configuration on its health path.

Exit status: 0 when every probe passed (a response below 500, or in the
health status range with -c), 1 otherwise, 2 on bad usage.`,
	examples: []string{
		"holdfast probe -H 'Host: api.example.com' http://127.0.0.1:8080/users",
		"holdfast probe --connect-to 127.0.0.1:9001 http://api.example.com/users",
		"holdfast probe --repeat 30 --rate 20 http://127.0.0.1:9003/",
	},
	interleaved: true,
	values:      map[string]completion{"c": {files: true}},
	define:      defineProbe,
}

// headerFlag collects repeated -H "Name: value" flags.
type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string { return "" }

func (f *headerFlag) Set(v string) error {
	name, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("want \"Name: value\", got %q", v)
	}
	f.h.Add(strings.TrimSpace(name), strings.TrimSpace(val))
	return nil
}

func defineProbe(fs *flag.FlagSet, e env) func([]string) int {
	hdr := &headerFlag{h: http.Header{}}
	fs.Var(hdr, "H", "request header `\"Name: value\"` (repeatable; \"Host: x\" sets the Host)")
	method := fs.String("X", "", "request `method` (default GET, or POST with -d)")
	data := fs.String("d", "", "request body (@file reads a file)")
	insecure := fs.Bool("k", false, "do not verify TLS certificates")
	timeout := fs.Duration("timeout", 10*time.Second, "time allowed for each probe")
	connectTo := fs.String("connect-to", "", "connect to `host:port` instead of the URL's host, keeping its Host header and TLS name")
	backend := fs.String("backend", "", "same as --connect-to")
	repeat := fs.Int("repeat", 0, "probe each URL `N` times and summarise (for intermittent failures)")
	duration := fs.Duration("duration", 0, "probe each URL for this long and summarise")
	rate := fs.Float64("rate", 0, "probes a second with --repeat or --duration (default: one after another)")
	cfgFile := fs.String("c", "", "check every server of every pool in this holdfast `config` on its health path")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	return func(urls []string) int {
		stdout, stderr := e.stdout, e.stderr
		if *backend != "" && *connectTo == "" {
			*connectTo = *backend
		}
		o := probe.Options{Method: *method, Header: hdr.h, Insecure: *insecure, Timeout: *timeout, ConnectTo: *connectTo}
		if *data != "" {
			b := []byte(*data)
			if strings.HasPrefix(*data, "@") {
				var err error
				if b, err = os.ReadFile((*data)[1:]); err != nil {
					fmt.Fprintf(stderr, "holdfast probe: -d: %v\n", err)
					return 2
				}
			}
			o.Body = b
		}

		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()

		if *cfgFile != "" {
			if len(urls) > 0 {
				return e.usage("give either -c or URLs, not both")
			}
			cfg, err := config.Load(*cfgFile)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 2
			}
			checks := probe.CheckConfig(ctx, cfg, o)
			ok := true
			for _, c := range checks {
				ok = ok && c.OK
			}
			if *asJSON {
				writeJSON(stdout, map[string]any{"ok": ok, "checks": checks})
			} else {
				probe.WriteChecks(stdout, checks)
			}
			return exitOK(ok)
		}
		if len(urls) == 0 {
			return e.usage("no URL to probe")
		}

		ok := true
		if *repeat > 0 || *duration > 0 {
			tty := isTerminalWriter(stdout)
			var sums []probe.Summary
			for _, u := range urls {
				lastLine := time.Now()
				ro := probe.RepeatOptions{Count: *repeat, Duration: *duration, Rate: *rate}
				if !*asJSON {
					ro.Progress = func(s probe.Summary) {
						switch {
						case tty:
							fmt.Fprintf(stdout, "\r\033[K%s", probe.ProgressLine(s))
						case time.Since(lastLine) >= time.Second:
							fmt.Fprintln(stdout, probe.ProgressLine(s))
							lastLine = time.Now()
						}
					}
				}
				s := probe.Repeat(ctx, u, o, ro)
				if tty && !*asJSON {
					fmt.Fprint(stdout, "\r\033[K")
				}
				ok = ok && s.Failed == 0 && s.Requests > 0
				sums = append(sums, s)
				if !*asJSON {
					probe.WriteSummary(stdout, s)
				}
			}
			if *asJSON {
				writeJSON(stdout, map[string]any{"ok": ok, "summaries": sums})
			}
			return exitOK(ok)
		}

		var results []probe.Result
		for i, u := range urls {
			r := probe.Probe(ctx, u, o)
			ok = ok && r.OK
			results = append(results, r)
			if !*asJSON {
				if i > 0 {
					fmt.Fprintln(stdout)
				}
				probe.WriteResult(stdout, r)
			}
		}
		if *asJSON {
			writeJSON(stdout, map[string]any{"ok": ok, "results": results})
		}
		return exitOK(ok)
	}
}

func exitOK(ok bool) int {
	if ok {
		return 0
	}
	return 1
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

var _ flag.Value = (*headerFlag)(nil)
