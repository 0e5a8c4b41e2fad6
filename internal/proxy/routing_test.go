package proxy

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
)

func TestRouterPrecedence(t *testing.T) {
	mk := func(host, prefix string) *route { return &route{name: host + prefix, host: host, prefix: prefix} }
	r := newRouter([]*route{
		mk("", "/"), mk("", "/api"),
		mk("*.example.com", "/"), mk("*.eu.example.com", "/"),
		mk("api.example.com", "/"), mk("api.example.com", "/v2"),
	})
	for _, tc := range []struct{ host, path, want string }{
		{"api.example.com", "/v2/users", "api.example.com/v2"},
		{"API.Example.COM:8443", "/v1", "api.example.com/"}, // case and port ignored
		{"shop.example.com", "/x", "*.example.com/"},
		{"a.eu.example.com", "/x", "*.eu.example.com/"}, // longest wildcard
		{"example.com", "/api/x", "/api"},               // the wildcard needs a label before
		{"other.test", "/apix", "/"},                    // whole segments only
	} {
		got := r.match(tc.host, tc.path)
		if got == nil || got.name != tc.want {
			t.Errorf("match(%s, %s) = %v, want %s", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestHashOnHeaderKeepsUsersOnOneServer(t *testing.T) {
	var backends []*testutil.Counting
	var urls []string
	for i := 0; i < 3; i++ {
		name := fmt.Sprint("b", i)
		b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		backends = append(backends, b)
		urls = append(urls, b.URL)
	}
	e := newEnv(t, poolConfig("balance: hash\nhash: header:X-User", urls...))
	servedBy := map[string]string{}
	for round := 0; round < 5; round++ {
		for u := 0; u < 30; u++ {
			user := fmt.Sprint("user-", u)
			r := e.do("GET", "/", "", "X-User", user)
			wantStatus(t, r, 200)
			if prev, ok := servedBy[user]; ok && prev != r.body {
				t.Fatalf("%s went to %s, then to %s", user, prev, r.body)
			}
			servedBy[user] = r.body
		}
	}
	for i, b := range backends {
		if b.Requests.Load() == 0 {
			t.Errorf("backend %d got no user out of 30", i)
		}
	}
}

func TestHashOnCookie(t *testing.T) {
	a := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") }))
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") }))
	e := newEnv(t, poolConfig("balance: hash\nhash: cookie:session", a.URL, b.URL))
	first := e.do("GET", "/", "", "Cookie", "session=s-42").body
	for i := 0; i < 10; i++ {
		if got := e.do("GET", "/", "", "Cookie", "session=s-42").body; got != first {
			t.Fatalf("the same session went to %s, then %s", first, got)
		}
	}
}

func TestRouteErrorPageTemplates(t *testing.T) {
	dir := t.TempDir()
	jsonTmpl := filepath.Join(dir, "err.json")
	htmlTmpl := filepath.Join(dir, "err.html")
	os.WriteFile(jsonTmpl, []byte(`{"oops":"{{.Cause}}","id":"{{.RequestID}}"}`), 0o644)
	os.WriteFile(htmlTmpl, []byte(`<p>Sorry: {{.Title}} ({{.Cause}})</p>`), 0o644)
	dead := testutil.DeadAddr(t)
	e := newEnv(t, fmt.Sprintf(`routes:
  - match: {path_prefix: /}
    upstream: p
    error_pages: {json: %q, html: %q}
upstreams:
  p:
    servers: [{url: "http://%s"}]
    retry: {tries: 1}
`, jsonTmpl, htmlTmpl, dead))
	r := e.do("GET", "/", "", "Accept", "application/json")
	wantStatus(t, r, 502)
	if !strings.HasPrefix(r.body, `{"oops":"connection_refused","id":"`) || r.header.Get("Proxy-Status") == "" {
		t.Errorf("JSON template not used: %q", r.body)
	}
	r = e.do("GET", "/", "", "Accept", "text/html")
	if r.body != "<p>Sorry: Bad Gateway (connection_refused)</p>" {
		t.Errorf("HTML template not used: %q", r.body)
	}
}
