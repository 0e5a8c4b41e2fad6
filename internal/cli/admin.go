package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/holdfast/holdfast/internal/admin"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/upstream"
)

// The commands below talk to a running gateway through its admin API
// (docs/admin.md). They share the flags that say where it listens.

const adminSynopsisFlags = "[-c FILE] [--admin ADDR] [--token-file FILE]"

const adminAbout = `

The admin API's address is --admin, or admin.addr of the configuration file
(-c); its token is read from --token-file, or admin.token_file of the
configuration. With --admin, the configuration is read only when -c is given,
so that its token is not sent to another address. See docs/admin.md.`

// adminValues complete the shared flags' values.
func adminValues() map[string]completion {
	return map[string]completion{"c": {files: true}, "token-file": {files: true}}
}

var statusCommand = &command{
	name:     "status",
	summary:  "show the state of every pool and server of a running gateway",
	synopsis: []string{"status " + adminSynopsisFlags + " [--json]"},
	about: `Shows every pool of a running gateway and the state of each of its servers:
up, slow_start, down, ejected or draining, its weight, the requests in flight,
its last failure, its active checks and its addresses.` + adminAbout,
	examples: []string{
		"holdfast status -c /etc/holdfast/holdfast.yaml",
		"holdfast status --admin 127.0.0.1:9901 --json",
	},
	values: adminValues(),
	define: func(fs *flag.FlagSet, e env) func([]string) int {
		af := defineAdminFlags(fs)
		asJSON := fs.Bool("json", false, "print the admin API's JSON as received")
		return noArgs(e, func() int {
			c, err := af.client()
			if err != nil {
				return adminFailed(e, "status", err)
			}
			body, err := c.call(http.MethodGet, "/api/v1/pools")
			if err != nil {
				return adminFailed(e, "status", err)
			}
			if *asJSON {
				_, _ = e.stdout.Write(body)
				return 0
			}
			var list admin.PoolList
			if err := json.Unmarshal(body, &list); err != nil {
				return adminFailed(e, "status", fmt.Errorf("the admin API at %s answered what is not a list of pools: %w", c.addr, err))
			}
			writeStatus(e.stdout, list.Pools, time.Now())
			return 0
		})
	},
}

var drainCommand = &command{
	name:     "drain",
	summary:  "take a server out of rotation; its requests in flight finish",
	synopsis: []string{"drain " + adminSynopsisFlags + " POOL SERVER"},
	about: `Drains a server of a running gateway: it takes no new requests, and those in
flight finish. SERVER is its index in the pool or its URL, as "holdfast status"
shows them. It stays drained until "holdfast enable", a reload that removes it,
or a restart.` + adminAbout,
	examples: []string{"holdfast drain -c holdfast.yaml api http://10.0.0.1:8080"},
	values:   adminValues(),
	define:   defineSetDrained("drain"),
}

var enableCommand = &command{
	name:     "enable",
	summary:  "put a drained server back in rotation",
	synopsis: []string{"enable " + adminSynopsisFlags + " POOL SERVER"},
	about: `Puts a drained server of a running gateway back in rotation. SERVER is its
index in the pool or its URL, as "holdfast status" shows them. Health checks
still decide whether it takes requests.` + adminAbout,
	examples: []string{"holdfast enable -c holdfast.yaml api 0"},
	values:   adminValues(),
	define:   defineSetDrained("enable"),
}

var reloadCommand = &command{
	name:     "reload",
	summary:  "make a running gateway read its configuration file again",
	synopsis: []string{"reload " + adminSynopsisFlags},
	about: `Makes a running gateway read its configuration file again and put it in force,
as SIGHUP does, and prints the new configuration's summary. A file with
errors is rejected, its errors are printed, the previous configuration keeps
serving, and the exit status is 1.` + adminAbout,
	examples: []string{"holdfast reload -c /etc/holdfast/holdfast.yaml"},
	values:   adminValues(),
	define: func(fs *flag.FlagSet, e env) func([]string) int {
		af := defineAdminFlags(fs)
		return noArgs(e, func() int {
			c, err := af.client()
			if err != nil {
				return adminFailed(e, "reload", err)
			}
			body, err := c.call(http.MethodPost, "/api/v1/reload")
			if err != nil {
				return adminFailed(e, "reload", err)
			}
			var r admin.Reloaded
			if err := json.Unmarshal(body, &r); err != nil {
				return adminFailed(e, "reload", fmt.Errorf("reloaded, but the answer of %s does not parse: %w", c.addr, err))
			}
			fmt.Fprintln(e.stdout, "reloaded")
			if r.Summary != "" {
				fmt.Fprint(e.stdout, strings.TrimRight(r.Summary, "\n")+"\n")
			}
			return 0
		})
	},
}

// defineSetDrained defines drain or enable, which differ by their verb.
func defineSetDrained(verb string) func(fs *flag.FlagSet, e env) func([]string) int {
	return func(fs *flag.FlagSet, e env) func([]string) int {
		af := defineAdminFlags(fs)
		return func(args []string) int {
			if len(args) != 2 {
				return e.usage("give a POOL and a SERVER (its index or its URL)")
			}
			c, err := af.client()
			if err != nil {
				return adminFailed(e, verb, err)
			}
			pool := args[0]
			path := "/api/v1/pools/" + url.PathEscape(pool) + "/servers/" + url.PathEscape(args[1]) + "/" + verb
			body, err := c.call(http.MethodPost, path)
			if err != nil {
				return adminFailed(e, verb, err)
			}
			var s upstream.ServerStatus
			if err := json.Unmarshal(body, &s); err != nil {
				return adminFailed(e, verb, fmt.Errorf("done, but the answer of %s does not parse: %w", c.addr, err))
			}
			if verb == "drain" {
				fmt.Fprintf(e.stdout, "drained %s in pool %s (%s)\n", s.URL, pool, finishing(s.InFlight))
			} else {
				fmt.Fprintf(e.stdout, "enabled %s in pool %s (now %s)\n", s.URL, pool, s.State)
			}
			return 0
		}
	}
}

func finishing(n int64) string {
	switch n {
	case 0:
		return "no requests in flight"
	case 1:
		return "finishing 1 request in flight"
	}
	return fmt.Sprintf("finishing %d requests in flight", n)
}

// adminFailed prints err for command cmd on stderr, with the errors of a
// rejected configuration one per line, and returns 1.
func adminFailed(e env, cmd string, err error) int {
	fmt.Fprintf(e.stderr, "holdfast %s: %v\n", cmd, err)
	var p *admin.Problem
	if errors.As(err, &p) {
		for _, l := range p.Errors {
			fmt.Fprintln(e.stderr, l)
		}
	}
	return 1
}

// adminFlags are the flags that say where the admin API is.
type adminFlags struct {
	fs        *flag.FlagSet
	file      *string
	addr      *string
	tokenFile *string
}

func defineAdminFlags(fs *flag.FlagSet) *adminFlags {
	return &adminFlags{
		fs:        fs,
		file:      fs.String("c", "holdfast.yaml", "configuration `file` whose admin.addr and admin.token_file to use"),
		addr:      fs.String("admin", "", "the admin API's `address` (host:port), instead of admin.addr"),
		tokenFile: fs.String("token-file", "", "`file` holding the admin token, instead of admin.token_file"),
	}
}

// given reports whether the flag name was set on the command line.
func (f *adminFlags) given(name string) bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// client returns a client for the admin API the flags name.
func (f *adminFlags) client() (*adminClient, error) {
	addr, tokenFile := *f.addr, *f.tokenFile
	if addr == "" || (tokenFile == "" && f.given("c")) {
		cfg, err := config.Load(*f.file)
		if err != nil {
			if addr == "" && errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w (give the configuration with -c FILE, or the address with --admin ADDR)", err)
			}
			return nil, err
		}
		if addr == "" {
			if addr = cfg.Admin.Addr; addr == "" {
				return nil, fmt.Errorf("no admin.addr in %s: set it, or pass --admin ADDR", *f.file)
			}
		}
		if tokenFile == "" {
			tokenFile = cfg.Admin.TokenFile
		}
	}
	base, err := adminBase(addr)
	if err != nil {
		return nil, err
	}
	c := &adminClient{
		base: base,
		addr: addr,
		// A plain client, never one that an environment proxy diverts:
		// the admin API is usually on loopback.
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}},
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		if c.token = strings.TrimSpace(string(b)); c.token == "" {
			return nil, fmt.Errorf("admin token: the token file %s is empty", tokenFile)
		}
	}
	return c, nil
}

// adminBase returns the base URL of the admin API at addr, a listening
// address as admin.addr writes it: one that binds every address (":9901",
// "0.0.0.0:9901", "[::]:9901") is reached on loopback. An http or https
// URL is taken as it is.
func adminBase(addr string) (string, error) {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		u, err := url.Parse(addr)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("admin address %q: want host:port like 127.0.0.1:9901, or an http URL", addr)
		}
		return strings.TrimSuffix(addr, "/"), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("admin address %q: want host:port like 127.0.0.1:9901", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// adminClient calls one admin API.
type adminClient struct {
	base  string // "http://127.0.0.1:9901"
	addr  string // as given, for messages
	token string // "" for none
	http  *http.Client
}

// maxAdminBody bounds what is read of an answer: the status of many pools.
const maxAdminBody = 64 << 20

// call sends method path and returns the body of a 2xx answer. Another
// status returns an *admin.Problem; an unreachable API says where it tried.
func (c *adminClient) call(method, path string) ([]byte, error) {
	defer c.http.CloseIdleConnections()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", c.addr, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the admin API at %s: %w (is holdfast serve running, with admin.addr set to it?)", c.addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminBody))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of the admin API at %s: %w", c.addr, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, nil
	}
	p := &admin.Problem{}
	if json.Unmarshal(body, p) != nil || p.Detail == "" {
		// Not the admin API's answer: perhaps another server at addr.
		snippet := strings.TrimSpace(string(body))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "..."
		}
		p = &admin.Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode),
			Detail: fmt.Sprintf("%s answered %s, which is not the admin API's answer: %q", c.addr, resp.Status, snippet)}
	}
	if resp.StatusCode == http.StatusUnauthorized && c.token == "" {
		p.Detail += " (no token was sent: pass --token-file FILE, or -c FILE with admin.token_file)"
	}
	return nil, p
}

// writeStatus writes pools as a table for a person, one block per pool.
// Columns that would say nothing for a pool (weights all 1, no active
// checks, no host names) are left out, to keep within 80 columns.
func writeStatus(w io.Writer, pools []upstream.PoolStatus, now time.Time) {
	if len(pools) == 0 {
		fmt.Fprintln(w, "no pools")
		return
	}
	for i, p := range pools {
		if i > 0 {
			fmt.Fprintln(w)
		}
		how := p.Balance
		if p.Discover != "" {
			how += ", SRV " + p.Discover
		}
		noun := "servers"
		if len(p.Servers) == 1 {
			noun = "server"
		}
		fmt.Fprintf(w, "pool %s (%s): %d of %d %s available\n", p.Name, how, p.Available, len(p.Servers), noun)
		if len(p.Servers) == 0 {
			continue
		}
		cols := statusColumns(p, now)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		row := func(cell func(c statusColumn) string) {
			cells := make([]string, len(cols))
			for i, c := range cols {
				cells[i] = cell(c)
			}
			fmt.Fprintf(tw, "  %s\n", strings.Join(cells, "\t"))
		}
		row(func(c statusColumn) string { return c.head })
		for _, s := range p.Servers {
			row(func(c statusColumn) string { return c.cell(s) })
		}
		_ = tw.Flush()
	}
}

// statusColumn is a column of the status table.
type statusColumn struct {
	head string
	cell func(upstream.ServerStatus) string
}

// statusColumns returns the columns of pool p's table.
func statusColumns(p upstream.PoolStatus, now time.Time) []statusColumn {
	var weights, checks, names bool
	for _, s := range p.Servers {
		weights = weights || s.Weight != 1 || s.EffectiveWeight < float64(s.Weight)
		checks = checks || s.Active != nil
		names = names || s.DNS != nil
	}
	cols := []statusColumn{
		{"#", func(s upstream.ServerStatus) string { return strconv.Itoa(s.Index) }},
		{"SERVER", func(s upstream.ServerStatus) string { return s.URL }},
		{"STATE", func(s upstream.ServerStatus) string { return stateCell(s, now) }},
	}
	if weights {
		cols = append(cols, statusColumn{"WEIGHT", weightCell})
	}
	cols = append(cols,
		statusColumn{"IN FLIGHT", func(s upstream.ServerStatus) string { return strconv.FormatInt(s.InFlight, 10) }},
		statusColumn{"LAST FAILURE", func(s upstream.ServerStatus) string { return failureCell(s.LastFailure, now) }},
	)
	if checks {
		cols = append(cols, statusColumn{"CHECKS", checksCell})
	}
	if names {
		cols = append(cols, statusColumn{"ADDRESSES", func(s upstream.ServerStatus) string { return addressesCell(s, now) }})
	}
	return cols
}

func stateCell(s upstream.ServerStatus, now time.Time) string {
	st := string(s.State)
	if s.State == upstream.Ejected && s.Passive.EjectedUntil.After(now) {
		// Rounded up: "0s left" would read as already back.
		left := s.Passive.EjectedUntil.Sub(now)
		st += " (" + ((left + time.Second - 1) / time.Second * time.Second).String() + " left)"
	}
	if s.Backup {
		st += ", backup"
	}
	return st
}

// weightCell is the weight, as "effective/configured" during a slow start.
func weightCell(s upstream.ServerStatus) string {
	if s.EffectiveWeight >= float64(s.Weight) {
		return strconv.Itoa(s.Weight)
	}
	eff := strconv.FormatFloat(s.EffectiveWeight, 'f', 1, 64)
	return strings.TrimSuffix(eff, ".0") + "/" + strconv.Itoa(s.Weight)
}

func failureCell(f *upstream.Failure, now time.Time) string {
	if f == nil {
		return "-"
	}
	if f.At.IsZero() {
		return f.Cause
	}
	return f.Cause + " " + ago(now.Sub(f.At))
}

func checksCell(s upstream.ServerStatus) string {
	a := s.Active
	switch {
	case a == nil:
		return "-"
	case a.AwaitingFirst:
		return "awaiting the first"
	case a.ConsecutiveFailures > 0:
		return fmt.Sprintf("%d %s in a row", a.ConsecutiveFailures, plural(a.ConsecutiveFailures, "fail", "fails"))
	case s.State == upstream.Down && a.ConsecutivePasses > 0:
		return fmt.Sprintf("%d %s in a row", a.ConsecutivePasses, plural(a.ConsecutivePasses, "pass", "passes"))
	case a.LastResult == "pass":
		return "ok"
	}
	return "-"
}

func addressesCell(s upstream.ServerStatus, now time.Time) string {
	cell := strings.Join(s.Addresses, ",")
	if cell == "" {
		cell = "-"
	}
	if s.DNS != nil && s.DNS.Error != nil {
		cell += " (" + failureCell(s.DNS.Error, now) + ")"
	}
	return cell
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ago says how long ago something happened, in its largest whole unit.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", max(int(d/time.Second), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}
