package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// specExample is the reference configuration: every section, in the shape
// docs/configuration.md annotates it.
const specExample = `listen:
  - addr: ":8080"
  - addr: ":8443"
    tls: {cert: cert.pem, key: key.pem}      # HTTP/2 on by default here
admin:
  addr: "127.0.0.1:9901"                     # metrics, API, dashboard
  token_file: admin.token                    # required for anything that changes state
routes:
  - match: {host: api.example.com, path_prefix: /}
    upstream: api
upstreams:
  api:
    balance: least_conn                      # round_robin | least_conn | p2c | hash
    servers:
      - {url: "http://backend1:8080", weight: 2, max_fails: 3, fail_timeout: 30s}
      - {url: "http://backend2:8080", max_fails: 3, fail_timeout: 30s}
      - {url: "http://backend3:8080", backup: true}
    timeouts: {connect: 5s, send: 60s, read: 60s, idle: 30s}
    retry:                                   # nginx's proxy_next_upstream, made safe
      on: [error, timeout, http_502, http_503, http_504]
      tries: 3
      timeout: 10s                           # all tries together
      body_buffer: 1MiB                      # request bodies kept for replay
      non_idempotent: false
    health:
      path: /health
      interval: 5s
`

// writeConfig writes config as holdfast.yaml in a new directory, beside the
// files the reference example names (cert.pem, key.pem, admin.token), and returns
// its path. Load only checks that those files can be read, so their content
// is a placeholder.
func writeConfig(t testing.TB, config string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"cert.pem":    "-----BEGIN CERTIFICATE-----\n",
		"key.pem":     "-----BEGIN PRIVATE KEY-----\n",
		"admin.token": "s3cret\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "holdfast.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadSpecExample(t *testing.T) {
	path := writeConfig(t, specExample)
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(spec example) = %v", err)
	}
	dir := filepath.Dir(path)

	if c.File != path {
		t.Errorf("File = %q, want %q", c.File, path)
	}
	wantListen := []Listener{
		{Addr: ":8080", HTTP2: ptr(true)},
		{Addr: ":8443", HTTP2: ptr(true), TLS: &TLS{
			Cert: filepath.Join(dir, "cert.pem"),
			Key:  filepath.Join(dir, "key.pem"),
		}},
	}
	if !reflect.DeepEqual(c.Listen, wantListen) {
		t.Errorf("Listen = %+v, want %+v", c.Listen, wantListen)
	}
	wantAdmin := Admin{Addr: "127.0.0.1:9901", TokenFile: filepath.Join(dir, "admin.token")}
	if c.Admin != wantAdmin {
		t.Errorf("Admin = %+v, want %+v", c.Admin, wantAdmin)
	}
	wantRoutes := []Route{{
		Match:    Match{Host: "api.example.com", PathPrefix: "/"},
		Upstream: "api",
		Line:     9,
	}}
	if !reflect.DeepEqual(c.Routes, wantRoutes) {
		t.Errorf("Routes = %+v, want %+v", c.Routes, wantRoutes)
	}

	if len(c.Upstreams) != 1 {
		t.Fatalf("len(Upstreams) = %d, want 1", len(c.Upstreams))
	}
	want := &Upstream{
		Name:    "api",
		Balance: "least_conn",
		Hash:    "client_ip",
		Servers: []Server{
			{URL: "http://backend1:8080", Weight: 2, MaxFails: ptr(3), FailTimeout: 30 * time.Second, Line: 15},
			{URL: "http://backend2:8080", Weight: 1, MaxFails: ptr(3), FailTimeout: 30 * time.Second, Line: 16},
			{URL: "http://backend3:8080", Weight: 1, MaxFails: ptr(1), FailTimeout: 10 * time.Second, Backup: true, Line: 17},
		},
		Timeouts: Timeouts{Connect: 5 * time.Second, Send: 60 * time.Second, Read: 60 * time.Second, Idle: 30 * time.Second},
		Retry: Retry{
			On:         []string{"error", "timeout", "http_502", "http_503", "http_504"},
			Tries:      3,
			Timeout:    10 * time.Second,
			BodyBuffer: 1 << 20,
			Backoff:    10 * time.Millisecond,
			BackoffMax: 250 * time.Millisecond,
			Budget:     20,
			BudgetMin:  10,
		},
		Passive: Passive{
			FailOn:            []string{"error", "timeout", "http_502", "http_503", "http_504"},
			MaxEjectedPercent: 50,
			MaxEjectionTime:   300 * time.Second,
		},
		Health: Health{
			Path: "/health", Interval: 5 * time.Second, Timeout: 2 * time.Second,
			Method: "GET", Status: "200-399", Rise: 2, Fall: 3,
		},
		DNS:  DNS{Refresh: 30 * time.Second},
		Line: 12,
	}
	if got := c.Upstreams[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("Upstreams[0] =\n%+v\nwant\n%+v", got, want)
	}

	if c.TrustedProxies != nil || c.ExposeDetails {
		t.Errorf("TrustedProxies, ExposeDetails = %v, %v, want nil, false", c.TrustedProxies, c.ExposeDetails)
	}
	wantClient := ClientLimits{MaxHeaderBytes: 64 << 10, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 75 * time.Second,
		MaxHeaderCount: 100, BodyTimeout: 60 * time.Second, SendTimeout: 60 * time.Second, MaxConnections: 10000}
	if c.Client != wantClient {
		t.Errorf("Client = %+v, want %+v", c.Client, wantClient)
	}
	if c.AccessLog.Path != "stdout" || c.Shutdown.DrainTimeout != 30*time.Second {
		t.Errorf("AccessLog, Shutdown = %+v, %+v, want stdout, 30s", c.AccessLog, c.Shutdown)
	}
}

// minimal is the smallest valid configuration: every other value is a
// default.
const minimal = `routes:
  - upstream: api
upstreams:
  api:
    servers:
      - url: http://127.0.0.1:9000
`

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "")
	if err != nil {
		t.Fatalf("Parse(minimal) = %v", err)
	}
	if want := []Listener{{Addr: ":8080", HTTP2: ptr(true)}}; !reflect.DeepEqual(c.Listen, want) {
		t.Errorf("Listen = %+v, want %+v", c.Listen, want)
	}
	if c.Routes[0].Match != (Match{PathPrefix: "/"}) || c.Routes[0].NonIdempotent != nil {
		t.Errorf("Routes[0] = %+v, want path_prefix / and non_idempotent unset", c.Routes[0])
	}
	u := c.Upstreams[0]
	var want Upstream
	setDefaults(&want)
	want.Name, want.Line = "api", 4
	want.Servers = []Server{{URL: "http://127.0.0.1:9000", Weight: 1, MaxFails: ptr(1), FailTimeout: 10 * time.Second, Line: 6}}
	if !reflect.DeepEqual(u, &want) {
		t.Errorf("Upstreams[0] =\n%+v\nwant\n%+v", u, &want)
	}
	// The list defaults of two pools are not shared: changing one must
	// not change the other.
	c2, _ := Parse([]byte(minimal), "")
	c2.Upstreams[0].Retry.On[0] = "changed"
	if c.Upstreams[0].Retry.On[0] != "error" {
		t.Error("pools share their default retry.on slice")
	}
}

// TestPresentZero checks that a key written as zero or empty keeps that
// value instead of taking the default.
func TestPresentZero(t *testing.T) {
	tests := []struct {
		name string
		pool string // YAML under upstreams.api, beside servers
		get  func(*Upstream) any
		want any
	}{
		{"retry.on absent", ``, func(u *Upstream) any { return u.Retry.On }, defaultConditions()},
		{"retry.on empty", "retry: {on: []}", func(u *Upstream) any { return u.Retry.On }, []string{}},
		{"retry.on null", "retry: {on: ~}", func(u *Upstream) any { return u.Retry.On }, defaultConditions()},
		{"passive.fail_on empty", "passive: {fail_on: []}", func(u *Upstream) any { return u.Passive.FailOn }, []string{}},
		{"body_buffer 0", "retry: {body_buffer: 0}", func(u *Upstream) any { return u.Retry.BodyBuffer }, int64(0)},
		{"backoff 0", "retry: {backoff: 0}", func(u *Upstream) any { return u.Retry.Backoff }, time.Duration(0)},
		{"budget 0", "retry: {budget: 0}", func(u *Upstream) any { return u.Retry.Budget }, 0.0},
		{"budget percent", `retry: {budget: "12.5%"}`, func(u *Upstream) any { return u.Retry.Budget }, 12.5},
		{"max_ejected_percent 0", "passive: {max_ejected_percent: 0}", func(u *Upstream) any { return u.Passive.MaxEjectedPercent }, 0.0},
		{"max_fails absent", "", func(u *Upstream) any { return *u.Servers[0].MaxFails }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "routes: [{upstream: api}]\nupstreams:\n  api:\n    servers: [{url: \"http://a:1\"}]\n    " + tt.pool + "\n"
			c, err := Parse([]byte(src), "")
			if err != nil {
				t.Fatalf("Parse = %v", err)
			}
			if got := tt.get(c.Upstreams[0]); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	c, err := Parse([]byte("routes: [{upstream: api}]\nupstreams: {api: {servers: [{url: \"http://a:1\", max_fails: 0}]}}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := *c.Upstreams[0].Servers[0].MaxFails; got != 0 {
		t.Errorf("max_fails: 0 gives %d, want 0", got)
	}
}

func TestUpstreamsKeepFileOrder(t *testing.T) {
	src := `routes: [{upstream: b}]
upstreams:
  zeta: {servers: [{url: "http://z:1"}]}
  b: {servers: [{url: "http://b:1"}]}
  alpha: {servers: [{url: "http://a:1"}]}
`
	c, err := Parse([]byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var lines []int
	for _, u := range c.Upstreams {
		names = append(names, u.Name)
		lines = append(lines, u.Line)
	}
	if !reflect.DeepEqual(names, []string{"zeta", "b", "alpha"}) || !reflect.DeepEqual(lines, []int{3, 4, 5}) {
		t.Errorf("names, lines = %v, %v, want [zeta b alpha], [3 4 5]", names, lines)
	}
}

func TestNormalisation(t *testing.T) {
	src := `routes:
  - {match: {host: API.Example.com}, upstream: api}
upstreams: {api: {servers: [{url: "http://a:1"}]}}
trusted_proxies: [10.0.0.1, 10.1.2.3/8, "::1", "::ffff:192.168.0.1", "2001:db8::1/32", 172.16.0.0/12]
access_log: {path: logs/access.log}
`
	path := writeConfig(t, src)
	if err := os.Mkdir(filepath.Join(filepath.Dir(path), "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1/32", "10.0.0.0/8", "::1/128", "192.168.0.1/32", "2001:db8::/32", "172.16.0.0/12"}
	if !reflect.DeepEqual(c.TrustedProxies, want) {
		t.Errorf("TrustedProxies = %v, want %v", c.TrustedProxies, want)
	}
	if got := c.Routes[0].Match.Host; got != "api.example.com" {
		t.Errorf("host = %q, want it in lower case", got)
	}
	if got, want := c.AccessLog.Path, filepath.Join(filepath.Dir(path), "logs", "access.log"); got != want {
		t.Errorf("AccessLog.Path = %q, want %q", got, want)
	}
}

func TestMergeKeysAndAnchors(t *testing.T) {
	src := `routes:
  - {upstream: a}
  - {match: {path_prefix: /b}, upstream: b}
upstreams:
  a: &pool
    balance: p2c
    timeouts: {connect: 1s}
    servers: [{url: "http://a:1"}]
  b:
    <<: *pool
    balance: hash
    hash: "header:X-User"
`
	c, err := Parse([]byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	b := c.Upstreams[1]
	if b.Balance != "hash" || b.Hash != "header:X-User" || b.Timeouts.Connect != time.Second || len(b.Servers) != 1 {
		t.Errorf("merged pool b = %+v", b)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestSummary(t *testing.T) {
	c, err := Load(writeConfig(t, specExample))
	if err != nil {
		t.Fatal(err)
	}
	got := Summary(c)
	want := `listen :8080 (http), :8443 (https, h2)
admin 127.0.0.1:9901 (token for changes)
route api.example.com/ -> api
pool api: least_conn, 2 servers + 1 backup, tries 3, connect 5s, read 1m, idle 30s, health GET /health every 5s (rise 2, fall 3)
`
	if got != want {
		t.Errorf("Summary =\n%s\nwant\n%s", got, want)
	}
	if n := strings.Count(got, "\n"); n > 10 {
		t.Errorf("Summary has %d lines, want a few", n)
	}
}

// TestExampleFileLoads keeps the commented sample configuration at the
// root of the repository valid.
func TestExampleFileLoads(t *testing.T) {
	c, err := Load("../../holdfast.example.yaml")
	if err != nil {
		t.Fatalf("holdfast.example.yaml: %v", err)
	}
	if len(c.Routes) == 0 || len(c.Upstreams) == 0 {
		t.Errorf("holdfast.example.yaml has %d routes and %d pools", len(c.Routes), len(c.Upstreams))
	}
}
