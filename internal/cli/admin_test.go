package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/admin"
	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/upstream"
)

const adminToken = "cli-test-token"

// gatewayFake stands in for a running gateway behind the real admin
// handler, so that the commands are tested against the API's true answers
// without a proxy: a pool of three servers in various states, and a
// reload that fails when reloadErr is set.
type gatewayFake struct {
	mu        sync.Mutex
	pools     []upstream.PoolStatus
	drained   []string // "pool url drained" for each SetDrained
	reloadErr error
}

func newGatewayFake(now time.Time) *gatewayFake {
	return &gatewayFake{pools: []upstream.PoolStatus{
		{Name: "api", Balance: "round_robin", Available: 2, Servers: []upstream.ServerStatus{
			{Index: 0, URL: "http://127.0.0.1:8081", State: upstream.Up, Available: true, Weight: 1, EffectiveWeight: 1,
				Active: &upstream.ActiveStatus{ConsecutivePasses: 4, LastResult: "pass"}, Addresses: []string{"127.0.0.1"}},
			{Index: 1, URL: "http://127.0.0.1:8082", State: upstream.SlowStart, Available: true, Weight: 1, EffectiveWeight: 0.4, InFlight: 2,
				LastFailure: &upstream.Failure{Cause: "upstream_status", Source: "passive", At: now.Add(-12 * time.Second)},
				Active:      &upstream.ActiveStatus{ConsecutivePasses: 2, LastResult: "pass"}, Addresses: []string{"127.0.0.1"}},
			{Index: 2, URL: "http://127.0.0.1:8083", State: upstream.Down, Weight: 1, EffectiveWeight: 1,
				LastFailure: &upstream.Failure{Cause: "connection_refused", Source: "active", At: now.Add(-3 * time.Second)},
				Active:      &upstream.ActiveStatus{ConsecutiveFailures: 3, LastResult: "fail"}, Addresses: []string{"127.0.0.1"}},
		}},
	}}
}

func (f *gatewayFake) Pools() []upstream.PoolStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]upstream.PoolStatus, len(f.pools))
	for i, p := range f.pools {
		p.Servers = append([]upstream.ServerStatus(nil), p.Servers...)
		out[i] = p
	}
	return out
}

func (f *gatewayFake) SetDrained(pool, url string, drained bool) (upstream.ServerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drained = append(f.drained, fmt.Sprintf("%s %s %v", pool, url, drained))
	for _, p := range f.pools {
		for i := range p.Servers {
			if s := &p.Servers[i]; p.Name == pool && s.URL == url {
				s.State = upstream.Up
				if drained {
					s.State = upstream.Draining
				}
				return *s, nil
			}
		}
	}
	return upstream.ServerStatus{}, fmt.Errorf("%s in %s: %w", url, pool, admin.ErrNotFound)
}

func (f *gatewayFake) Reload() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "listen :8080 (http)\npool api: round_robin, 3 servers\n", f.reloadErr
}

func (f *gatewayFake) Ready() error { return nil }

func (f *gatewayFake) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.drained...)
}

// adminServer runs the admin API for a fresh gatewayFake on loopback and
// returns its address, a file holding its token, and the fake.
func adminServer(t *testing.T) (addr, tokenFile string, fake *gatewayFake) {
	t.Helper()
	fake = newGatewayFake(time.Now())
	srv := httptest.NewServer(admin.New(admin.Options{Backend: fake, Token: func() string { return adminToken }}))
	t.Cleanup(srv.Close)
	tokenFile = filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.Listener.Addr().String(), tokenFile, fake
}

func TestStatusCommand(t *testing.T) {
	addr, tokenFile, _ := adminServer(t)
	code, out, errOut := runCLI("status", "--admin", addr, "--token-file", tokenFile)
	if code != 0 || errOut != "" {
		t.Fatalf("status: exit %d, stderr %q", code, errOut)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^pool api \(round_robin\): 2 of 3 servers available$`),
		regexp.MustCompile(`(?m)^  #  SERVER +STATE +WEIGHT +IN FLIGHT +LAST FAILURE +CHECKS$`),
		regexp.MustCompile(`(?m)^  0  http://127\.0\.0\.1:8081 +up +1 +0 +- +ok$`),
		regexp.MustCompile(`(?m)^  1  http://127\.0\.0\.1:8082 +slow_start +0\.4/1 +2 +upstream_status 1[23]s ago +ok$`),
		regexp.MustCompile(`(?m)^  2  http://127\.0\.0\.1:8083 +down +1 +0 +connection_refused [34]s ago +3 fails in a row$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("status output does not match %s:\n%s", want, out)
		}
	}

	code, out, errOut = runCLI("status", "--admin", addr, "--json")
	if code != 0 || errOut != "" {
		t.Fatalf("status --json: exit %d, stderr %q", code, errOut)
	}
	var list admin.PoolList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("status --json is not the API's JSON: %v\n%s", err, out)
	}
	if len(list.Pools) != 1 || len(list.Pools[0].Servers) != 3 || list.Pools[0].Servers[1].State != upstream.SlowStart {
		t.Errorf("status --json = %+v", list)
	}
	if !strings.HasPrefix(out, "{\n  \"pools\": [") {
		t.Errorf("status --json does not print the API's indented JSON as received:\n%s", out)
	}
}

// TestWriteStatus: the table, exactly, for a fixed time.
func TestWriteStatus(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	withNames := upstream.PoolStatus{Name: "search", Balance: "least_conn", Discover: "_http._tcp.search.internal", Available: 1, Servers: []upstream.ServerStatus{
		{Index: 0, URL: "http://search-a.internal:9200", State: upstream.Ejected, Weight: 2, EffectiveWeight: 2,
			Passive:     upstream.PassiveStatus{EjectedUntil: now.Add(25 * time.Second)},
			LastFailure: &upstream.Failure{Cause: "connection_timeout", At: now.Add(-5 * time.Minute)},
			Addresses:   []string{"10.0.1.7"}, DNS: &upstream.DNSStatus{Name: "search-a.internal"}},
		{Index: 1, URL: "http://search-b.internal:9200", State: upstream.Draining, Backup: true, Weight: 1, EffectiveWeight: 1, InFlight: 1,
			Addresses: []string{"10.0.1.8", "10.0.1.9"},
			DNS:       &upstream.DNSStatus{Name: "search-b.internal", Error: &upstream.Failure{Cause: "dns_timeout", At: now.Add(-3 * time.Hour)}}},
	}}
	tests := []struct {
		name  string
		pools []upstream.PoolStatus
		want  string
	}{
		{"none", nil, "no pools\n"},
		{"empty pool", []upstream.PoolStatus{{Name: "api", Balance: "round_robin"}}, "pool api (round_robin): 0 of 0 servers available\n"},
		{"plain", []upstream.PoolStatus{{Name: "web", Balance: "round_robin", Available: 1, Servers: []upstream.ServerStatus{
			{Index: 0, URL: "http://10.0.0.3:80", State: upstream.Up, Weight: 1, EffectiveWeight: 1, Addresses: []string{"10.0.0.3"}},
		}}}, `pool web (round_robin): 1 of 1 server available
  #  SERVER              STATE  IN FLIGHT  LAST FAILURE
  0  http://10.0.0.3:80  up     0          -
`},
		{"host names, ejected, backup", []upstream.PoolStatus{withNames}, `pool search (least_conn, SRV _http._tcp.search.internal): 1 of 2 servers available
  #  SERVER                         STATE               WEIGHT  IN FLIGHT  LAST FAILURE               ADDRESSES
  0  http://search-a.internal:9200  ejected (25s left)  2       0          connection_timeout 5m ago  10.0.1.7
  1  http://search-b.internal:9200  draining, backup    1       1          -                          10.0.1.8,10.0.1.9 (dns_timeout 3h ago)
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			writeStatus(&b, tt.pools, now)
			if b.String() != tt.want {
				t.Errorf("writeStatus =\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestDrainEnableCommands(t *testing.T) {
	addr, tokenFile, fake := adminServer(t)
	tests := []struct {
		args     []string
		code     int
		out, err string // want stdout exactly, stderr containing err
	}{
		{[]string{"drain", "api", "1"}, 0, "drained http://127.0.0.1:8082 in pool api (finishing 2 requests in flight)\n", ""},
		{[]string{"enable", "api", "http://127.0.0.1:8082"}, 0, "enabled http://127.0.0.1:8082 in pool api (now up)\n", ""},
		{[]string{"drain", "api", "http://127.0.0.1:8081/"}, 0, "drained http://127.0.0.1:8081 in pool api (no requests in flight)\n", ""},
		{[]string{"drain", "api", "9"}, 1, "", `holdfast drain: no server "9" in pool "api"`},
		{[]string{"enable", "nope", "0"}, 1, "", `holdfast enable: no pool "nope" (pools: api)`},
	}
	for _, tt := range tests {
		args := append([]string{tt.args[0], "--admin", addr, "--token-file", tokenFile}, tt.args[1:]...)
		code, out, errOut := runCLI(args...)
		if code != tt.code || out != tt.out || !strings.Contains(errOut, tt.err) || (tt.err == "") != (errOut == "") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q", tt.args, code, out, errOut, tt.code, tt.out, tt.err)
		}
	}
	want := []string{"api http://127.0.0.1:8082 true", "api http://127.0.0.1:8082 false", "api http://127.0.0.1:8081 true"}
	if got := fake.calls(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("SetDrained calls = %q, want %q", got, want)
	}
}

func TestReloadCommand(t *testing.T) {
	addr, tokenFile, fake := adminServer(t)
	code, out, errOut := runCLI("reload", "--admin", addr, "--token-file", tokenFile)
	if code != 0 || errOut != "" || out != "reloaded\nlisten :8080 (http)\npool api: round_robin, 3 servers\n" {
		t.Errorf("reload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	fake.mu.Lock()
	fake.reloadErr = errors.New("holdfast.yaml:3:7: upstreams.api.retry: unknown key \"tires\"\nholdfast.yaml:9:15: routes[0].upstream: unknown upstream \"apj\"")
	fake.mu.Unlock()
	code, out, errOut = runCLI("reload", "--admin", addr, "--token-file", tokenFile)
	want := `holdfast reload: the configuration was rejected: the previous configuration keeps serving
holdfast.yaml:3:7: upstreams.api.retry: unknown key "tires"
holdfast.yaml:9:15: routes[0].upstream: unknown upstream "apj"
`
	if code != 1 || out != "" || errOut != want {
		t.Errorf("reload rejected: exit %d, stdout %q, stderr\n%s\nwant exit 1 and\n%s", code, out, errOut, want)
	}
}

// TestAdminCommandFailures: a refused token, a missing one, an address
// nobody listens on, and bad usage.
func TestAdminCommandFailures(t *testing.T) {
	addr, _, fake := adminServer(t)
	wrong := filepath.Join(t.TempDir(), "wrong.token")
	if err := os.WriteFile(wrong, []byte("not-the-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.token")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dead := testutil.DeadAddr(t)
	tests := []struct {
		args []string
		code int
		err  []string // want in stderr
	}{
		{[]string{"drain", "--admin", addr, "--token-file", wrong, "api", "0"}, 1,
			[]string{"holdfast drain: wrong bearer token"}},
		{[]string{"reload", "--admin", addr}, 1,
			[]string{"holdfast reload: missing bearer token", "no token was sent: pass --token-file FILE"}},
		{[]string{"reload", "--admin", addr, "--token-file", empty}, 1,
			[]string{"holdfast reload: admin token: the token file " + empty + " is empty"}},
		{[]string{"status", "--admin", dead}, 1,
			[]string{"holdfast status: cannot reach the admin API at " + dead + ": ", "connection refused", "holdfast serve", "admin.addr"}},
		{[]string{"status", "--admin", "9901"}, 1,
			[]string{`holdfast status: admin address "9901": want host:port`}},
		{[]string{"status", "-c", filepath.Join(t.TempDir(), "none.yaml")}, 1,
			[]string{"holdfast status: load config: ", "no such file", "--admin ADDR"}},
		{[]string{"drain", "--admin", addr, "api"}, 2,
			[]string{"holdfast drain: give a POOL and a SERVER", "Usage: holdfast drain"}},
		{[]string{"enable", "--admin", addr, "api", "0", "1"}, 2,
			[]string{"Usage: holdfast enable"}},
		{[]string{"reload", "--admin", addr, "now"}, 2,
			[]string{`holdfast reload: unexpected argument "now"`, "Usage: holdfast reload"}},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(tt.args...)
		if code != tt.code || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want %d and nothing", tt.args, code, out, tt.code)
		}
		for _, w := range tt.err {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tt.args, w, errOut)
			}
		}
	}
	if got := fake.calls(); len(got) != 0 {
		t.Errorf("SetDrained called %q, want no call", got)
	}
}

// TestAdminFromConfig: without --admin, the address and the token come
// from the configuration file's admin keys.
func TestAdminFromConfig(t *testing.T) {
	addr, _, fake := adminServer(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("admin.token", adminToken+"\n")
	const rest = "routes: [{upstream: api}]\nupstreams: {api: {servers: [{url: \"http://127.0.0.1:1\"}]}}\n"
	withAdmin := write("holdfast.yaml", fmt.Sprintf("admin: {addr: %q, token_file: admin.token}\n", addr)+rest)
	without := write("plain.yaml", rest)

	if code, out, errOut := runCLI("status", "-c", withAdmin); code != 0 || !strings.Contains(out, "pool api (round_robin): 2 of 3 servers available") {
		t.Errorf("status -c: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut := runCLI("drain", "-c", withAdmin, "api", "0")
	if code != 0 || out != "drained http://127.0.0.1:8081 in pool api (no requests in flight)\n" {
		t.Errorf("drain -c: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := fake.calls(); len(got) != 1 {
		t.Errorf("SetDrained calls = %q, want one", got)
	}
	// -c with --admin still takes the token from the file.
	if code, _, errOut := runCLI("reload", "-c", withAdmin, "--admin", addr); code != 0 {
		t.Errorf("reload -c --admin: exit %d, stderr %q", code, errOut)
	}

	code, out, errOut = runCLI("status", "-c", without)
	if want := "holdfast status: no admin.addr in " + without + ": set it, or pass --admin ADDR\n"; code != 1 || out != "" || errOut != want {
		t.Errorf("status without admin.addr: exit %d, stdout %q, stderr %q; want 1, %q", code, out, errOut, want)
	}
}

func TestAdminBase(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{":9901", "http://127.0.0.1:9901"},
		{"0.0.0.0:9901", "http://127.0.0.1:9901"},
		{"[::]:9901", "http://[::1]:9901"},
		{"127.0.0.1:9901", "http://127.0.0.1:9901"},
		{"[::1]:9901", "http://[::1]:9901"},
		{"localhost:9901", "http://localhost:9901"},
		{"10.0.0.5:9901", "http://10.0.0.5:9901"},
		{"https://admin.example:9443/", "https://admin.example:9443"},
		{"9901", ""},
		{"http://", ""},
	}
	for _, tt := range tests {
		got, err := adminBase(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("adminBase(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
