package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/upstream"
)

const token = "s3cret-admin-token"

// drainCall is one call of fakeBackend.SetDrained.
type drainCall struct {
	pool, url string
	drained   bool
}

// fakeBackend stands in for the gateway: two pools held in memory, so that
// a test sees exactly what the API asked for (SetDrained records its calls
// and flips the server's state) without running a proxy. Reload and Ready
// answer what the test sets.
type fakeBackend struct {
	mu        sync.Mutex
	pools     []upstream.PoolStatus
	calls     []drainCall
	summary   string
	reloadErr error
	readyErr  error
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		pools: []upstream.PoolStatus{
			{Name: "api", Balance: "round_robin", Available: 2, Servers: []upstream.ServerStatus{
				{Index: 0, URL: "http://10.0.0.1:8080", State: upstream.Up, Available: true, Weight: 1, EffectiveWeight: 1, Addresses: []string{"10.0.0.1"}},
				{Index: 1, URL: "https://api-2.internal:443", State: upstream.Up, Available: true, Weight: 2, EffectiveWeight: 2, InFlight: 3, Addresses: []string{"10.0.0.2"}},
			}},
			{Name: "web", Balance: "least_conn", Available: 1, Servers: []upstream.ServerStatus{
				{Index: 0, URL: "http://10.0.0.3:80", State: upstream.Up, Available: true, Weight: 1, EffectiveWeight: 1, Addresses: []string{"10.0.0.3"}},
			}},
		},
		summary: "listen :8080 (http)\npool api: round_robin, 2 servers\n",
	}
}

func (f *fakeBackend) Pools() []upstream.PoolStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]upstream.PoolStatus, len(f.pools))
	for i, p := range f.pools {
		p.Servers = slices.Clone(p.Servers)
		out[i] = p
	}
	return out
}

func (f *fakeBackend) SetDrained(pool, url string, drained bool) (upstream.ServerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, drainCall{pool, url, drained})
	for _, p := range f.pools {
		for i, s := range p.Servers {
			if p.Name != pool || s.URL != url {
				continue
			}
			s.State, s.Available = upstream.Up, true
			if drained {
				s.State, s.Available = upstream.Draining, false
			}
			p.Servers[i] = s
			return s, nil
		}
	}
	return upstream.ServerStatus{}, fmt.Errorf("server %s of pool %s: %w", url, pool, ErrNotFound)
}

func (f *fakeBackend) Reload() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.summary, f.reloadErr
}

func (f *fakeBackend) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readyErr
}

func (f *fakeBackend) drainCalls() []drainCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

var _ Backend = (*fakeBackend)(nil)

// serve runs New(o) for the backend on a loopback server.
func serve(t *testing.T, b Backend, o Options) *httptest.Server {
	t.Helper()
	o.Backend = b
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	return srv
}

// do sends method path (escaped as written) with the bearer token bearer
// ("" for none) and returns the response with its body read.
func do(t *testing.T, srv *httptest.Server, method, path, bearer string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// field returns the value at a dotted path of a decoded JSON document
// ("pools.1.servers.0.url"), or nil.
func field(doc any, path string) any {
	for key := range strings.SplitSeq(path, ".") {
		switch d := doc.(type) {
		case map[string]any:
			doc = d[key]
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(d) {
				return nil
			}
			doc = d[i]
		default:
			return nil
		}
	}
	return doc
}

func TestRoutes(t *testing.T) {
	escaped := url.PathEscape("http://10.0.0.1:8080")
	if escaped != "http:%2F%2F10.0.0.1:8080" {
		t.Fatalf("url.PathEscape = %q: the test's paths assume it escapes slashes", escaped)
	}
	reloadErr := errors.New("holdfast.yaml:3:7: upstreams.api.retry: unknown key \"tires\"\nholdfast.yaml:9:15: routes[0].upstream: unknown upstream \"apj\"")
	tests := []struct {
		name string
		opts Options // Backend is set by the test; Token defaults to token
		// noToken leaves Options.Token nil: no token configured.
		noToken bool
		setup   func(*fakeBackend) // nil: the backend as newFakeBackend makes it
		// wrap, when set, puts another Backend in front of the fake.
		wrap   func(*fakeBackend) Backend
		method string                // default GET
		path   string                // escaped as sent
		bearer string                // the token sent, "" for none
		status int                   // want
		allow  string                // want Allow, for a 405
		fields map[string]any        // want, at dotted paths of the body
		calls  []drainCall           // want SetDrained calls
		check  func(*testing.T, any) // more checks on the body, or nil
	}{
		{name: "healthz", path: "/healthz", status: 200, fields: map[string]any{"status": "ok"}},
		{name: "healthz needs no token for reads", opts: Options{TokenForReads: true}, path: "/healthz", status: 200, fields: map[string]any{"status": "ok"}},
		{name: "readyz ready", path: "/readyz", status: 200, fields: map[string]any{"status": "ready"}},
		{
			name: "readyz not ready", opts: Options{TokenForReads: true}, path: "/readyz",
			setup:  func(f *fakeBackend) { f.readyErr = errors.New("pool api has no server that takes requests") },
			status: 503, fields: map[string]any{"status": 503, "title": "Service Unavailable", "detail": "pool api has no server that takes requests"},
		},
		{
			name: "pools", path: "/api/v1/pools", status: 200,
			fields: map[string]any{"pools.0.name": "api", "pools.0.balance": "round_robin", "pools.0.servers.1.url": "https://api-2.internal:443", "pools.1.name": "web"},
			check: func(t *testing.T, doc any) {
				if ps, _ := field(doc, "pools").([]any); len(ps) != 2 {
					t.Errorf("pools = %v, want 2", ps)
				}
			},
		},
		{name: "pools with a token", path: "/api/v1/pools", bearer: token, status: 200, fields: map[string]any{"pools.0.name": "api"}},
		{name: "pools with a wrong token reads anyway", path: "/api/v1/pools", bearer: "nope", status: 200, fields: map[string]any{"pools.1.name": "web"}},
		{name: "pool", path: "/api/v1/pools/web", status: 200, fields: map[string]any{"name": "web", "available": 1, "servers.0.url": "http://10.0.0.3:80"}},
		{name: "no such pool", path: "/api/v1/pools/nope", status: 404, fields: map[string]any{"status": 404, "title": "Not Found", "detail": `no pool "nope" (pools: api, web)`}},
		{name: "server by index", path: "/api/v1/pools/api/servers/1", status: 200, fields: map[string]any{"index": 1, "url": "https://api-2.internal:443", "in_flight": 3, "state": "up"}},
		{name: "server by escaped URL", path: "/api/v1/pools/api/servers/" + escaped, status: 200, fields: map[string]any{"index": 0, "url": "http://10.0.0.1:8080"}},
		{name: "server by fully escaped URL", path: "/api/v1/pools/api/servers/http%3A%2F%2F10.0.0.1%3A8080", status: 200, fields: map[string]any{"index": 0}},
		{name: "server by URL without its default port", path: "/api/v1/pools/api/servers/" + url.PathEscape("HTTPS://API-2.internal/"), status: 200, fields: map[string]any{"index": 1}},
		{name: "server by URL of another pool", path: "/api/v1/pools/web/servers/" + escaped, status: 404, fields: map[string]any{"status": 404}},
		{name: "no such server index", path: "/api/v1/pools/api/servers/7", status: 404, fields: map[string]any{"detail": `no server "7" in pool "api": give its index or its URL, as GET /api/v1/pools/api lists them`}},
		{name: "server of no such pool", path: "/api/v1/pools/nope/servers/0", status: 404, fields: map[string]any{"status": 404}},
		{name: "unescaped URL is not a route", path: "/api/v1/pools/api/servers/http://10.0.0.1:8080", status: 404, fields: map[string]any{"status": 404}},
		{name: "unknown path", path: "/api/v2/pools", status: 404, fields: map[string]any{"status": 404, "type": "about:blank"}},
		{name: "empty pool name", path: "/api/v1/pools/", status: 404},
		{name: "unknown top-level path", path: "/nope", status: 404},

		{
			name: "drain by index", method: "POST", path: "/api/v1/pools/api/servers/0/drain", bearer: token, status: 200,
			fields: map[string]any{"url": "http://10.0.0.1:8080", "state": "draining", "available": false},
			calls:  []drainCall{{"api", "http://10.0.0.1:8080", true}},
		},
		{
			name: "drain by escaped URL", method: "POST", path: "/api/v1/pools/api/servers/" + url.PathEscape("https://api-2.internal") + "/drain", bearer: token, status: 200,
			fields: map[string]any{"index": 1, "state": "draining"},
			calls:  []drainCall{{"api", "https://api-2.internal:443", true}},
		},
		{
			name: "enable", method: "POST", path: "/api/v1/pools/web/servers/0/enable", bearer: token, status: 200,
			setup:  func(f *fakeBackend) { f.pools[1].Servers[0].State = upstream.Draining },
			fields: map[string]any{"state": "up", "available": true},
			calls:  []drainCall{{"web", "http://10.0.0.3:80", false}},
		},
		{name: "drain without a token", method: "POST", path: "/api/v1/pools/api/servers/0/drain", status: 401, fields: map[string]any{"status": 401, "title": "Unauthorized"}},
		{name: "drain with a wrong token", method: "POST", path: "/api/v1/pools/api/servers/0/drain", bearer: "s3cret-admin-tokeN", status: 401, fields: map[string]any{"status": 401}},
		{name: "drain with a longer token", method: "POST", path: "/api/v1/pools/api/servers/0/drain", bearer: token + "x", status: 401},
		{name: "drain with no token configured", opts: Options{Token: func() string { return "" }}, method: "POST", path: "/api/v1/pools/api/servers/0/drain", bearer: token, status: 403, fields: map[string]any{"status": 403, "title": "Forbidden"}},
		{name: "reload with a nil Token", noToken: true, method: "POST", path: "/api/v1/reload", bearer: token, status: 403},
		{name: "drain no such server", method: "POST", path: "/api/v1/pools/api/servers/9/drain", bearer: token, status: 404, fields: map[string]any{"status": 404}},
		{name: "drain no such pool without a token", method: "POST", path: "/api/v1/pools/nope/servers/0/drain", status: 401},
		{
			name: "drain of a server gone meanwhile", method: "POST", path: "/api/v1/pools/api/servers/0/drain", bearer: token, status: 404,
			wrap:  func(f *fakeBackend) Backend { return &goneBackend{f} },
			calls: []drainCall{{"api", "http://10.0.0.1:8080", true}},
		},
		{name: "GET on drain", path: "/api/v1/pools/api/servers/0/drain", bearer: token, status: 405, allow: "POST", fields: map[string]any{"status": 405, "title": "Method Not Allowed"}},
		{name: "GET on reload", path: "/api/v1/reload", status: 405, allow: "POST"},
		{name: "POST on pools", method: "POST", path: "/api/v1/pools", bearer: token, status: 405, allow: "GET, HEAD"},
		{name: "DELETE on a server", method: "DELETE", path: "/api/v1/pools/api/servers/0", bearer: token, status: 405, allow: "GET, HEAD"},
		{name: "POST on healthz", method: "POST", path: "/healthz", status: 405, allow: "GET, HEAD"},
		{name: "HEAD on healthz", method: "HEAD", path: "/healthz", status: 200},

		{
			name: "reload", method: "POST", path: "/api/v1/reload", bearer: token, status: 200,
			fields: map[string]any{"status": "reloaded", "summary": "listen :8080 (http)\npool api: round_robin, 2 servers\n"},
		},
		{
			name: "reload rejected", method: "POST", path: "/api/v1/reload", bearer: token, status: 400,
			setup: func(f *fakeBackend) { f.reloadErr = reloadErr },
			fields: map[string]any{
				"status":   400,
				"detail":   "the configuration was rejected: the previous configuration keeps serving",
				"errors.0": `holdfast.yaml:3:7: upstreams.api.retry: unknown key "tires"`,
				"errors.1": `holdfast.yaml:9:15: routes[0].upstream: unknown upstream "apj"`,
			},
			check: func(t *testing.T, doc any) {
				if es, _ := field(doc, "errors").([]any); len(es) != 2 {
					t.Errorf("errors = %v, want 2", es)
				}
			},
		},
		{name: "reload without a token", method: "POST", path: "/api/v1/reload", status: 401},

		{name: "reads need the token: pools", opts: Options{TokenForReads: true}, path: "/api/v1/pools", status: 401},
		{name: "reads need the token: wrong", opts: Options{TokenForReads: true}, path: "/api/v1/pools/api", bearer: "wrong", status: 401},
		{name: "reads need the token: given", opts: Options{TokenForReads: true}, path: "/api/v1/pools/api/servers/0", bearer: token, status: 200, fields: map[string]any{"index": 0}},
		{name: "reads need the token: no such pool", opts: Options{TokenForReads: true}, path: "/api/v1/pools/nope", status: 401},
		{name: "reads need a token none configured", opts: Options{TokenForReads: true, Token: func() string { return "" }}, path: "/api/v1/pools", bearer: token, status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBackend()
			if tt.setup != nil {
				tt.setup(b)
			}
			o := tt.opts
			if o.Token == nil && !tt.noToken {
				// The file's newline is not part of the token.
				o.Token = func() string { return token + "\n" }
			}
			var backend Backend = b
			if tt.wrap != nil {
				backend = tt.wrap(b)
			}
			srv := serve(t, backend, o)
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			resp, body := do(t, srv, method, tt.path, tt.bearer)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s: status %d, want %d\n%s", method, tt.path, resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			wantType := "application/json"
			if tt.status >= 400 {
				wantType = "application/problem+json"
			}
			if got := resp.Header.Get("Content-Type"); got != wantType {
				t.Errorf("Content-Type = %q, want %q", got, wantType)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			wantAuth := ""
			if tt.status == 401 {
				wantAuth = `Bearer realm="holdfast admin"`
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != wantAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, wantAuth)
			}
			if method == http.MethodHead {
				return
			}
			if !bytes.HasSuffix(body, []byte("}\n")) || !bytes.Contains(body, []byte("\n  \"")) {
				t.Errorf("body is not JSON indented by two spaces ending in a newline:\n%s", body)
			}
			var doc any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, body)
			}
			if tt.status >= 400 {
				for _, k := range []string{"type", "title", "status", "detail"} {
					if field(doc, k) == nil {
						t.Errorf("problem lacks %q:\n%s", k, body)
					}
				}
			}
			for path, want := range tt.fields {
				if got := field(doc, path); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v\n%s", path, got, want, body)
				}
			}
			if tt.check != nil {
				tt.check(t, doc)
			}
			if got := b.drainCalls(); !slices.Equal(got, tt.calls) {
				t.Errorf("SetDrained calls = %v, want %v", got, tt.calls)
			}
		})
	}
}

// goneBackend lists the servers of its fakeBackend but, as if a reload
// removed them between the lookup and the change, answers SetDrained with
// ErrNotFound (after recording the call).
type goneBackend struct{ *fakeBackend }

func (g *goneBackend) SetDrained(pool, url string, drained bool) (upstream.ServerStatus, error) {
	g.fakeBackend.mu.Lock()
	g.calls = append(g.calls, drainCall{pool, url, drained})
	g.fakeBackend.mu.Unlock()
	return upstream.ServerStatus{}, fmt.Errorf("pool %s: %w", pool, ErrNotFound)
}

// TestDrainThenRead: a drained server reads back as draining, and enabling
// it brings it back.
func TestDrainThenRead(t *testing.T) {
	b := newFakeBackend()
	srv := serve(t, b, Options{Token: func() string { return token }})
	for _, step := range []struct {
		method, path, want string
	}{
		{"POST", "/api/v1/pools/api/servers/1/drain", "draining"},
		{"GET", "/api/v1/pools/api/servers/1", "draining"},
		{"POST", "/api/v1/pools/api/servers/1/enable", "up"},
		{"GET", "/api/v1/pools/api/servers/1", "up"},
	} {
		resp, body := do(t, srv, step.method, step.path, token)
		var s upstream.ServerStatus
		if err := json.Unmarshal(body, &s); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s %s: status %d, %v\n%s", step.method, step.path, resp.StatusCode, err, body)
		}
		if string(s.State) != step.want {
			t.Errorf("%s %s: state %q, want %q", step.method, step.path, s.State, step.want)
		}
	}
}

// TestLogNeverHoldsToken: every state-changing call is logged with its
// route, pool, server, outcome and remote address, and the token never
// appears in the log, whether it was right or wrong.
func TestLogNeverHoldsToken(t *testing.T) {
	var logs testutil.LogBuffer
	b := newFakeBackend()
	b.reloadErr = errors.New("holdfast.yaml:1:1: listen: bad")
	wrong := "wrong-" + token
	srv := serve(t, b, Options{
		Token:  func() string { return token },
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	calls := []struct {
		path, bearer string
		status       int
	}{
		{"/api/v1/pools/api/servers/0/drain", token, 200},
		{"/api/v1/pools/api/servers/0/enable", wrong, 401},
		{"/api/v1/pools/api/servers/0/enable", "", 401},
		{"/api/v1/reload", token, 400},
	}
	for _, c := range calls {
		if resp, body := do(t, srv, "POST", c.path, c.bearer); resp.StatusCode != c.status {
			t.Fatalf("POST %s: status %d, want %d\n%s", c.path, resp.StatusCode, c.status, body)
		}
	}
	do(t, srv, "GET", "/api/v1/pools", token) // reads are not logged
	srv.Close()

	out := logs.String()
	if strings.Contains(out, token) || strings.Contains(out, "s3cret") {
		t.Errorf("the log holds the token:\n%s", out)
	}
	var records []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		records = append(records, rec)
	}
	if len(records) != len(calls) {
		t.Fatalf("%d log records, want %d (one per POST):\n%s", len(records), len(calls), out)
	}
	first := records[0]
	for k, want := range map[string]any{
		"level": "INFO", "msg": "admin call", "route": "/api/v1/pools/{pool}/servers/{server}/drain",
		"pool": "api", "server": "0", "status": 200, "outcome": "drained",
	} {
		if fmt.Sprint(first[k]) != fmt.Sprint(want) {
			t.Errorf("log %s = %v, want %v", k, first[k], want)
		}
	}
	if remote, _ := first["remote"].(string); !strings.HasPrefix(remote, "127.0.0.1:") {
		t.Errorf("log remote = %q, want the client's loopback address", remote)
	}
	if got := fmt.Sprint(records[1]["status"]); got != "401" {
		t.Errorf("refused call logged with status %s, want 401", got)
	}
	if got := fmt.Sprint(field(records[3], "errors.0")); got != "holdfast.yaml:1:1: listen: bad" {
		t.Errorf("rejected reload logged errors.0 = %s", got)
	}
}

// TestBearer: the scheme is case-insensitive; anything else is no token.
func TestBearer(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc ", "abc", true},
		{"Bearer ", "", false},
		{"Bearer", "", false},
		{"Basic YWxhZGRpbjpvcGVuc2VzYW1l", "", false},
		{"", "", false},
		{"abc", "", false},
	}
	for _, tt := range tests {
		got, ok := bearer(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("bearer(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestServerOf: a server is named by its index or its URL, however the
// URL spells its scheme's default port or the case of its host.
func TestServerOf(t *testing.T) {
	pool := upstream.PoolStatus{Name: "p", Servers: []upstream.ServerStatus{
		{Index: 0, URL: "http://10.0.0.1:8080"},
		{Index: 1, URL: "https://Backend.example:443"},
		{Index: 2, URL: "http://[2001:db8::1]:80"},
		{Index: 3, URL: "http://plain.example"},
	}}
	tests := []struct {
		ref  string
		want int // -1: none
	}{
		{"0", 0},
		{"3", 3},
		{"03", 3},
		{"4", -1},
		{"-1", -1},
		{"http://10.0.0.1:8080", 0},
		{"http://10.0.0.1:8080/", 0},
		{"HTTP://10.0.0.1:8080", 0},
		{"http://10.0.0.1", -1},
		{"https://10.0.0.1:8080", -1},
		{"https://backend.example", 1},
		{"https://BACKEND.example:443/", 1},
		{"http://backend.example:443", -1},
		{"http://[2001:db8::1]", 2},
		{"http://[2001:DB8::1]:80", 2},
		{"http://plain.example:80", 3},
		{"plain.example", -1},
		{"", -1},
		{"ftp://10.0.0.1:8080", -1},
	}
	for _, tt := range tests {
		s, ok := serverOf(pool, tt.ref)
		got := -1
		if ok {
			got = s.Index
		}
		if got != tt.want {
			t.Errorf("serverOf(%q) = server %d, want %d", tt.ref, got, tt.want)
		}
	}
}

// TestNewNilBackend: a Handler without a Backend is a programming error,
// caught at New rather than at the first call.
func TestNewNilBackend(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New without a Backend did not panic")
		}
	}()
	New(Options{})
}

// FuzzPath: whatever the path, the handler answers JSON that is not
// cached, with one of the API's statuses, and never panics.
func FuzzPath(f *testing.F) {
	for _, p := range []string{
		"/healthz", "/api/v1/pools", "/api/v1/pools/api/servers/0/drain",
		"/api/v1/pools/api/servers/http:%2F%2F10.0.0.1:8080", "/api/v1/pools/%zz", "//", "/api/v1/pools/api/servers/%2F/enable",
	} {
		f.Add("GET", p)
		f.Add("POST", p)
	}
	h := New(Options{Backend: newFakeBackend(), Token: func() string { return token }})
	f.Fuzz(func(t *testing.T, method, path string) {
		u, err := url.Parse(path)
		if err != nil || method == "" || strings.ContainsAny(method, " \t\r\n") {
			return
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Method, r.URL = method, u
		r.Host = "127.0.0.1:9901" // a loopback host: the routes, not the rebinding check
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 401, 404, 405, 503:
		default:
			t.Errorf("%s %q: status %d", method, path, w.Code)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %q: no Cache-Control: no-store", method, path)
		}
		ct := w.Header().Get("Content-Type")
		if w.Code == 200 && (strings.HasPrefix(ct, "text/") || ct == "") {
			return // the dashboard's page and files (HEAD has no body)
		}
		if !strings.HasPrefix(ct, "application/") || !strings.HasSuffix(ct, "json") {
			t.Errorf("%s %q: Content-Type %q", method, path, ct)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Errorf("%s %q: body is not JSON: %s", method, path, w.Body.Bytes())
		}
	})
}
