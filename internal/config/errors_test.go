package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// wantErr is one expected problem: its position, its key, and words its
// message must contain.
type wantErr struct {
	line, col int
	key       string
	msg       string
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []wantErr
	}{
		{
			name: "unknown top-level key",
			src: `routes: [{upstream: api}]
upstreams: {api: {servers: [{url: "http://a:1"}]}}
upstream: {}
`,
			want: []wantErr{{3, 1, "", `unknown key "upstream" (did you mean "upstreams"? valid: listen, admin, routes, upstreams,`}},
		},
		{
			name: "unknown key in a route",
			src: `routes:
  - upstream: api
    strip: true
upstreams: {api: {servers: [{url: "http://a:1"}]}}
`,
			want: []wantErr{{3, 5, "routes[0]", `unknown key "strip" (valid: match, upstream, strip_prefix, non_idempotent, error_pages, rate_limits, cache)`}},
		},
		{
			name: "unknown key in a server",
			src: `routes: [{upstream: api}]
upstreams:
  api:
    servers:
      - url: http://a:1
        wieght: 2
`,
			want: []wantErr{{6, 9, "upstreams.api.servers[0]", `unknown key "wieght" (did you mean "weight"?`}},
		},
		{
			name: "unknown key in retry",
			src: `routes: [{upstream: api}]
upstreams:
  api:
    servers: [{url: "http://a:1"}]
    retry:
      tires: 5
`,
			want: []wantErr{{6, 7, "upstreams.api.retry", `unknown key "tires" (did you mean "tries"? valid: on, tries, timeout, same_server_on_timeout, body_buffer, non_idempotent, backoff, backoff_max, budget, budget_min)`}},
		},
		{
			name: "server key on the pool",
			src: `routes: [{upstream: api}]
upstreams:
  api:
    max_fails: 3
    servers: [{url: "http://a:1"}]
`,
			want: []wantErr{{4, 5, "upstreams.api", `max_fails is set on each server, under servers`}},
		},
		{
			name: "wrong types",
			src: `listen:
  - {addr: ":8080", http2: "yes"}
routes: [{upstream: api, strip_prefix: 1}]
upstreams:
  api:
    servers: [{url: "http://a:1", weight: two, fail_timeout: 5}]
    timeouts: {connect: 1d, read: [1s]}
    retry: {tries: 2.5, body_buffer: 1.5MiB, budget: lots, on: error}
    health: {path: /h, interval: -5s}
client: 7
expose_details: no
`,
			want: []wantErr{
				{2, 28, "listen[0].http2", "want true or false, got \"yes\""},
				{3, 40, "routes[0].strip_prefix", "want true or false"},
				{6, 43, "upstreams.api.servers[0].weight", `want a whole number, got "two"`},
				{6, 62, "upstreams.api.servers[0].fail_timeout", `want a duration like 5s or 250ms: duration "5" has no unit`},
				{7, 25, "upstreams.api.timeouts.connect", `want a duration like 5s or 250ms: invalid duration "1d"`},
				{7, 35, "upstreams.api.timeouts.read", "want a duration like 5s or 250ms, got a list"},
				{8, 20, "upstreams.api.retry.tries", "want a whole number"},
				{8, 38, "upstreams.api.retry.body_buffer", "want a size like 64KiB, 10MiB or 1024: size \"1.5MiB\" is not a whole number"},
				{8, 54, "upstreams.api.retry.budget", `want a percentage like 20 or "20%"`},
				{8, 64, "upstreams.api.retry.on", "want a list like [a, b], got \"error\""},
				{9, 34, "upstreams.api.health.interval", `duration "-5s" is negative`},
				{10, 9, "client", "want a mapping with keys max_header_bytes, max_body_bytes, read_header_timeout, idle_timeout"},
				{11, 17, "expose_details", "want true or false"},
			},
		},
		{
			name: "upstreams as a list",
			src: `routes: [{upstream: api}]
upstreams:
  - name: api
`,
			want: []wantErr{{3, 3, "upstreams", "not a list"}},
		},
		{
			name: "listener address and tls",
			src: `listen:
  - addr: "8080"
  - addr: ":99999"
  - addr: "bad host:80"
  - addr: ":8443"
    tls: {cert: nope.pem}
  - {}
admin: {addr: "localhost"}
routes: [{upstream: api}]
upstreams: {api: {servers: [{url: "http://a:1"}]}}
`,
			want: []wantErr{
				{2, 11, "listen[0].addr", `want host:port like ":8080"`},
				{3, 11, "listen[1].addr", `port "99999"`},
				{4, 11, "listen[2].addr", `host "bad host"`},
				{6, 5, "listen[3].tls.key", "required"},
				{6, 17, "listen[3].tls.cert", "cannot read certificate file"},
				{7, 5, "listen[4].addr", "required"},
				{8, 15, "admin.addr", "want host:port"},
			},
		},
		{
			name: "overlapping listeners",
			src: `listen:
  - addr: ":8080"
  - addr: "127.0.0.1:8080"
  - addr: "127.0.0.1:0"
  - addr: "127.0.0.1:0"
admin: {addr: "127.0.0.1:8080"}
routes: [{upstream: api}]
upstreams: {api: {servers: [{url: "http://a:1"}]}}
`,
			want: []wantErr{
				{3, 11, "listen[1].addr", "overlaps listen[0] (line 2)"},
				{6, 15, "admin.addr", "overlaps listen[0] (line 2)"},
			},
		},
		{
			name: "admin on the default listener",
			src: `admin: {addr: ":8080"}
routes: [{upstream: api}]
upstreams: {api: {servers: [{url: "http://a:1"}]}}
`,
			want: []wantErr{
				{1, 15, "admin.addr", ":8080 overlaps the default listen[0]: the admin listener needs its own address"},
				{1, 15, "admin.addr", ":8080 is not a loopback address: set admin.token_file too, or bind to 127.0.0.1"},
			},
		},
		{
			name: "routes",
			src: `routes:
  - match: {host: api.example.com, path_prefix: /v1}
    upstream: api
  - match: {host: API.example.com, path_prefix: /v1}
    upstream: api
  - match: {path_prefix: v2}
    upstream: apj
  - match: {host: "api.example.com:443"}
    upstream: api
  - match: {host: "bad_*.com"}
  - upstream: ""
upstreams: {api: {servers: [{url: "http://a:1"}]}}
`,
			want: []wantErr{
				{4, 12, "routes[1].match", "same host and path_prefix as routes[0] (line 2)"},
				{6, 26, "routes[2].match.path_prefix", "want a path starting with /"},
				{7, 15, "routes[2].upstream", `unknown upstream "apj" (did you mean "api"? defined: api)`},
				{8, 19, "routes[3].match.host", "has a port"},
				{10, 5, "routes[4].upstream", "required"},
				{10, 19, "routes[4].match.host", "want a host name"},
				{11, 15, "routes[5].upstream", "required"},
			},
		},
		{
			name: "no routes and no servers",
			src: `routes: []
upstreams:
  api: {}
  web:
    servers: [{url: "http://a:1", backup: true}]
`,
			want: []wantErr{
				{1, 9, "routes", "at least one route is required"},
				{3, 3, "upstreams.api.servers", "at least one server is required"},
				{5, 14, "upstreams.web.servers", "every server is a backup"},
			},
		},
		{
			name: "servers",
			src: `routes: [{upstream: api}]
upstreams:
  api:
    servers:
      - url: backend1:8080
      - url: ftp://b:21
      - url: http://b:8080/api
      - url: http://b:8080?x=1
      - url: http://B:8080/
      - url: http://b:8080
      - url: http://c
      - url: http://c:80
        weight: 0
        max_fails: -1
      - {}
      - url: http://d:0
`,
			want: []wantErr{
				{5, 14, "upstreams.api.servers[0].url", "want a URL with scheme and host"},
				{6, 14, "upstreams.api.servers[1].url", `scheme "ftp" is not supported`},
				{7, 14, "upstreams.api.servers[2].url", "cannot have a path"},
				{8, 14, "upstreams.api.servers[3].url", "cannot have a query"},
				{10, 14, "upstreams.api.servers[5].url", "already in this pool at upstreams.api.servers[4] (line 9)"},
				{12, 14, "upstreams.api.servers[7].url", "already in this pool at upstreams.api.servers[6] (line 11)"},
				{13, 17, "upstreams.api.servers[7].weight", "from 1 to 1000000, got 0"},
				{14, 20, "upstreams.api.servers[7].max_fails", "want 0 (never eject) or more, got -1"},
				{15, 9, "upstreams.api.servers[8].url", "required"},
				{16, 14, "upstreams.api.servers[9].url", `port "0" is not a number from 1 to 65535`},
			},
		},
		{
			name: "pool policies",
			src: `routes: [{upstream: api}]
upstreams:
  api:
    balance: least_con
    hash: header:X-User
    servers: [{url: "http://a:1"}]
  web:
    balance: hash
    hash: "ip"
    servers: [{url: "http://a:1"}]
  bad/name:
    servers: [{url: "http://a:1"}]
`,
			want: []wantErr{
				{4, 14, "upstreams.api.balance", `unknown policy "least_con" (did you mean "least_conn"? valid: round_robin, least_conn, p2c, hash)`},
				{5, 11, "upstreams.api.hash", "hash applies only to balance: hash"},
				{9, 11, "upstreams.web.hash", "want client_ip, header:NAME or cookie:NAME"},
				{11, 3, "upstreams.bad/name", `pool name "bad/name"`},
			},
		},
		{
			name: "retry, passive and health",
			src: `routes: [{upstream: api}]
upstreams:
  api:
    servers: [{url: "http://a:1"}]
    timeouts: {connect: 0s}
    retry:
      on: [error, http_500, error, timeuot]
      tries: 21
      backoff: 1s
      budget: 101
    passive:
      fail_on: [http_500, http_418]
      max_ejected_percent: "150%"
      max_ejection_time: 0
    health:
      path: health
      method: get
      status: 200-99
      body: "(["
      rise: 0
      fall: 0
`,
			want: []wantErr{
				{5, 25, "upstreams.api.timeouts.connect", "must be more than 0"},
				{7, 19, "upstreams.api.retry.on[1]", `unknown condition "http_500" (did you mean "http_502"?`},
				{7, 29, "upstreams.api.retry.on[2]", "error is listed twice"},
				{7, 36, "upstreams.api.retry.on[3]", `did you mean "timeout"?`},
				{8, 14, "upstreams.api.retry.tries", "from 1 (no retries) to 20, got 21"},
				{9, 16, "upstreams.api.retry.backoff", "1s is more than backoff_max (250ms by default)"},
				{10, 15, "upstreams.api.retry.budget", "out of range 0 to 100"},
				{12, 27, "upstreams.api.passive.fail_on[1]", `unknown condition "http_418"`},
				{13, 28, "upstreams.api.passive.max_ejected_percent", "out of range 0 to 100"},
				{14, 26, "upstreams.api.passive.max_ejection_time", "must be more than 0"},
				{16, 13, "upstreams.api.health.path", "want a path starting with /"},
				{17, 15, "upstreams.api.health.method", "want an HTTP method in capitals"},
				{18, 15, "upstreams.api.health.status", `want a status like "200" or a range like "200-399"`},
				{19, 13, "upstreams.api.health.body", "want a regular expression"},
				{20, 13, "upstreams.api.health.rise", "want 1 or more, got 0"},
				{21, 13, "upstreams.api.health.fall", "want 1 or more, got 0"},
			},
		},
		{
			name: "health, dns and discovery",
			src: `admin: {addr: "0.0.0.0:9901"}
routes: [{upstream: api}]
upstreams:
  api:
    servers: [{url: "http://a:1"}]
    health:
      host: "bad host"
      headers: {"Bad Name": x, Host: y, X-Ok: "a\r\nb", X-List: [a]}
      slow_start: -1s
      mandatory: true
    dns: {refresh: -1s}
  both:
    servers: [{url: "http://b:1"}]
    discover: {srv: _http._tcp.b.test}
  found:
    discover: {srv: "not a name", refresh: 0s, scheme: ftp, server: {max_fails: -1}}
`,
			want: []wantErr{
				{1, 15, "admin.addr", "0.0.0.0:9901 is not a loopback address: set admin.token_file too"},
				{7, 13, "upstreams.api.health.host", `want a host name or address, with an optional port, got "bad host"`},
				{8, 29, "upstreams.api.health.headers.Bad Name", `"Bad Name" is not a valid header name`},
				{8, 38, "upstreams.api.health.headers.Host", "set the Host header with health.host"},
				{8, 47, "upstreams.api.health.headers.X-Ok", "cannot hold CR, LF or NUL"},
				{8, 65, "upstreams.api.health.headers.X-List", "want a string, got a list"},
				{9, 19, "upstreams.api.health.slow_start", `duration "-1s" is negative`},
				{10, 18, "upstreams.api.health.mandatory", "mandatory needs active checks: set health.path"},
				{11, 20, "upstreams.api.dns.refresh", `duration "-1s" is negative`},
				{14, 15, "upstreams.both.discover", "servers and discover exclude each other"},
				{16, 21, "upstreams.found.discover.srv", `"not a name" is not a DNS name`},
				{16, 44, "upstreams.found.discover.refresh", "must be more than 0"},
				{16, 56, "upstreams.found.discover.scheme", `want http or https, got "ftp"`},
				{16, 81, "upstreams.found.discover.server.max_fails", "want 0 (never eject) or more, got -1"},
			},
		},
		{
			name: "overload and rate limits",
			src: `routes:
  - upstream: api
    rate_limits: [{key: cookie:x, rate: 10/d}, {rate: 0/s}, {key: "header:X-Key", rate: 5/m, burst: -1}, {key: route}]
upstreams:
  api:
    servers: [{url: "http://a:1", max_conns: -1}]
    breaker: {error_ratio: 1.5, min_requests: 0, open_for: 10s, max_open_for: 5s, half_open_requests: 0}
    queue: {size: 0, timeout: 0s}
    adaptive: {enabled: true, min_limit: 10, max_limit: 5}
rate_limit_store: {url: "http://x:1", instances: 0}
`,
			want: []wantErr{
				{3, 25, "routes[0].rate_limits[0].key", `want client_ip, route or header:NAME, got "cookie:x"`},
				{3, 41, "routes[0].rate_limits[0].rate", `like 100/s, got "10/d"`},
				{3, 55, "routes[0].rate_limits[1].rate", `at least 1, per s, m or h`},
				{3, 101, "routes[0].rate_limits[2].burst", "want 0 (the rate's number) up to 1000000000, got -1"},
				{3, 106, "routes[0].rate_limits[3].rate", "required: a rate like 100/s"},
				{6, 46, "upstreams.api.servers[0].max_conns", "want 0 (no cap) or more, got -1"},
				{7, 28, "upstreams.api.breaker.error_ratio", "want a fraction between 0 and 1"},
				{7, 47, "upstreams.api.breaker.min_requests", "want 1 or more, got 0"},
				{7, 79, "upstreams.api.breaker.max_open_for", "5s is less than open_for (10s)"},
				{7, 103, "upstreams.api.breaker.half_open_requests", "want 1 or more, got 0"},
				{8, 19, "upstreams.api.queue.size", "want 1 or more, got 0"},
				{8, 31, "upstreams.api.queue.timeout", "must be more than 0"},
				{9, 57, "upstreams.api.adaptive.max_limit", "5 is less than min_limit (10)"},
				{10, 25, "rate_limit_store.url", "want a Redis URL"},
				{10, 50, "rate_limit_store.instances", "want 1 or more, got 0"},
			},
		},
		{
			name: "top-level sections",
			src: `listen: []
admin: {token_file: missing.token}
routes: [{upstream: api}]
upstreams: {api: {servers: [{url: "http://a:1"}]}}
trusted_proxies: [10.0.0.0/33, fe80::1%eth0, 10.0.0.1]
client: {max_header_bytes: 0, max_body_bytes: -1, read_header_timeout: 0}
access_log: {path: "", buffer: 32MiB, flush: 0s}
shutdown: {drain_timeout: 0}
`,
			want: []wantErr{
				{1, 9, "listen", "at least one listener is required"},
				{2, 21, "admin.token_file", "cannot read token file"},
				{5, 19, "trusted_proxies[0]", "want an IP address or a CIDR"},
				{5, 32, "trusted_proxies[1]", "want an IP address or a CIDR"},
				{6, 28, "client.max_header_bytes", "must be more than 0"},
				{6, 47, "client.max_body_bytes", "size -1 is negative"},
				{6, 72, "client.read_header_timeout", "must be more than 0"},
				{7, 20, "access_log.path", "want stdout, stderr, off or a file path"},
				{7, 32, "access_log.buffer", "want a size from 0 (no buffer) to 16MiB, got 33554432 bytes"},
				{7, 46, "access_log.flush", "must be more than 0"},
				{8, 27, "shutdown.drain_timeout", "must be more than 0"},
			},
		},
		{
			name: "duplicate keys",
			src: `routes: [{upstream: api}]
upstreams:
  api: {servers: [{url: "http://a:1"}]}
  api: {servers: [{url: "http://b:1"}]}
routes: []
`,
			want: []wantErr{
				{4, 3, "upstreams", `duplicate key "api" (first at line 3)`},
				{5, 1, "", `duplicate key "routes" (first at line 1)`},
			},
		},
		{
			name: "yaml syntax",
			src: `routes: [{upstream: api}]
upstreams:
  api: {servers: [{url: "http://a:1"}
`,
			want: []wantErr{{0, 0, "", "invalid YAML: "}},
		},
		{
			name: "empty file",
			src:  "# nothing\n",
			want: []wantErr{{1, 1, "", "the file is empty"}},
		},
		{
			name: "two documents",
			src:  minimal + "---\nroutes: []\n",
			want: []wantErr{{7, 1, "", "a second YAML document"}},
		},
		{
			name: "not a mapping",
			src:  "- a\n- b\n",
			want: []wantErr{{1, 1, "", "want a mapping of settings"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.src)
			_, err := Load(path)
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load = %v, want *Errors", err)
			}
			if len(errs.List) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(errs.List), len(tt.want), err)
			}
			for i, w := range tt.want {
				if i >= len(errs.List) {
					break
				}
				e := errs.List[i]
				if e.File != path {
					t.Errorf("error %d: File = %q, want %q", i, e.File, path)
				}
				// yaml.v3 gives syntax errors a line of its own
				// reckoning: only check that there is one.
				if w.line == 0 && tt.name == "yaml syntax" {
					if e.Line == 0 {
						t.Errorf("error %d: syntax error without a line: %v", i, e)
					}
				} else if e.Line != w.line || e.Col != w.col {
					t.Errorf("error %d at %d:%d, want %d:%d: %v", i, e.Line, e.Col, w.line, w.col, e)
				}
				if e.Key != w.key {
					t.Errorf("error %d: Key = %q, want %q: %v", i, e.Key, w.key, e)
				}
				if !strings.Contains(e.Msg, w.msg) {
					t.Errorf("error %d: Msg = %q, want it to contain %q", i, e.Msg, w.msg)
				}
			}
			// One line per problem, each led by file:line.
			if lines := strings.Split(err.Error(), "\n"); len(lines) != len(errs.List) {
				t.Errorf("Error() has %d lines, want %d", len(lines), len(errs.List))
			}
		})
	}
}

func TestErrorsAs(t *testing.T) {
	src := "routes: [{upstream: api}]\nupstreams: {api: {servers: [{url: \"http://a:1\"}]}}\nlisten: [{addr: \":1\", tls: {cert: c.pem, key: k.pem}}]\n"
	_, err := Parse([]byte(src), "x.yaml")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *Error) = false", err)
	}
	if e.Key != "listen[0].tls.cert" || e.Line != 3 {
		t.Errorf("first error = %+v, want listen[0].tls.cert on line 3", e)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
	if got, wantPrefix := e.Error(), "x.yaml:3:"; !strings.HasPrefix(got, wantPrefix) {
		t.Errorf("Error() = %q, want prefix %q", got, wantPrefix)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "h.yaml", Line: 14, Col: 7, Key: "upstreams.api.retry", Msg: "bad"}, "h.yaml:14:7: upstreams.api.retry: bad"},
		{Error{File: "h.yaml", Line: 3, Msg: "bad"}, "h.yaml:3: bad"},
		{Error{Line: 3, Col: 1, Key: "k", Msg: "bad"}, "3:1: k: bad"},
		{Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"on", "tries", "timeout", "body_buffer", "non_idempotent", "backoff", "backoff_max", "budget", "budget_min"}
	tests := []struct{ got, want string }{
		{"tires", "tries"},
		{"Tries", "tries"},
		{"timout", "timeout"},
		{"bodybuffer", "body_buffer"},
		{"backof", "backoff"},
		{"of", "on"},
		{"xyz", ""},
		{"", ""},
		{"retries", "tries"},
	}
	for _, tt := range tests {
		if got := suggest(tt.got, keys); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.got, got, tt.want)
		}
	}
}

// TestAliasBomb checks that merge keys that merge mappings that merge
// mappings (10^8 entries from a few lines) are bounded rather than expanded.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x0: &x0 {balance: p2c}\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "x%d: &x%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*x%d, ", i-1), 10), ", "))
	}
	b.WriteString("routes: [{upstream: api}]\nupstreams:\n  api: *x8\n")
	_, err := Parse([]byte(b.String()), "")
	if err == nil || !strings.Contains(err.Error(), "too large once its aliases are expanded") {
		t.Fatalf("Parse(alias bomb) = %v, want an error about its size", err)
	}
}
