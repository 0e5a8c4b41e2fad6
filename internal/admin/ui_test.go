package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/admin/ui"
)

// TestDashboardFiles: the page and its assets are served with their types
// and the page's security headers, need no token even where reads do, and
// an asset that does not exist is a 404 problem like any unknown path.
func TestDashboardFiles(t *testing.T) {
	srv := serve(t, newFakeBackend(), Options{Token: func() string { return token }, TokenForReads: true})
	tests := []struct {
		method, path string
		status       int
		ctype        string // want, with its parameters
		contains     string // in the body
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `src="/ui/app.js"`},
		{"GET", "/", 200, "text/html; charset=utf-8", `href="/ui/style.css"`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/ui/app.js", 200, "text/javascript; charset=utf-8", "/api/v1/pools"},
		{"GET", "/ui/style.css", 200, "text/css; charset=utf-8", ".state-up"},
		{"GET", "/ui/nope.js", 404, "application/problem+json", "no such path"},
		{"GET", "/ui/", 404, "application/problem+json", "no such path"},
		{"GET", "/index.html", 404, "application/problem+json", "no such path"},
		{"GET", "/ui/..%2Fui.go", 404, "application/problem+json", "no such path"},
		{"POST", "/", 405, "application/problem+json", "use GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := do(t, srv, tt.method, tt.path, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s = %d, want %d\n%s", tt.method, tt.path, resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("%s %s: Content-Type = %q, want %q", tt.method, tt.path, got, tt.ctype)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("%s %s: body does not contain %q:\n%.300s", tt.method, tt.path, tt.contains, body)
			}
			if tt.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD %s: %d bytes of body, want none", tt.path, len(body))
			}
			for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s %s: %s = %q, want %q", tt.method, tt.path, k, got, want)
				}
			}
			if tt.status != 200 {
				return
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != ui.Policy {
				t.Errorf("%s %s: Content-Security-Policy = %q, want %q", tt.method, tt.path, got, ui.Policy)
			}
			if resp.Header.Get("WWW-Authenticate") != "" {
				t.Errorf("%s %s asks for a token", tt.method, tt.path)
			}
		})
	}

	// The data behind the page still needs the token on this listener.
	if resp, _ := do(t, srv, "GET", "/api/v1/pools", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/pools without the token = %d, want 401", resp.StatusCode)
	}
}

// TestDashboardPolicy: the policy allows nothing but the page's own files
// and API, and no inline script; the page holds no inline script or style
// that the policy would block.
func TestDashboardPolicy(t *testing.T) {
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(ui.Policy, want) {
			t.Errorf("Policy = %q, want it to contain %q", ui.Policy, want)
		}
	}
	if strings.Contains(ui.Policy, "unsafe-") {
		t.Errorf("Policy = %q: it allows unsafe sources", ui.Policy)
	}
	srv := serve(t, newFakeBackend(), Options{})
	_, page := do(t, srv, "GET", "/", "")
	html := string(page)
	for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " onload=", "http://", "https://"} {
		if strings.Contains(html, bad) {
			t.Errorf("the page contains %q: the policy blocks inline code, and the page loads nothing from elsewhere", bad)
		}
	}
	_, js := do(t, srv, "GET", "/ui/app.js", "")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(string(js), bad) {
			t.Errorf("app.js uses %s: strings from the API must reach the page as text", bad)
		}
	}
}
