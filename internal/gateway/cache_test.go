package gateway

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// cacheConfig is one cached route to origin, without retries, and an
// admin listener whose token is "tok".
func cacheConfig(t *testing.T, origin, extra string) string {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`listen: [{addr: "127.0.0.1:0"}]
admin: {addr: "127.0.0.1:0", token_file: %q}
routes:
  - upstream: origin
    cache: {enabled: true%s}
upstreams:
  origin:
    retry: {tries: 1}
    servers: [{url: %q, max_fails: 0}]
`, tokenFile, extra, origin)
}

func getWith(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestCacheHitAndPurge: a fresh stored response answers without the
// origin, with Cache-Status and Age; a purge through the admin API sends
// the next request to the origin again.
func TestCacheHitAndPurge(t *testing.T) {
	t.Parallel()
	origin := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "v1 "+r.URL.Path)
	}))
	g, addr := start(t, cacheConfig(t, origin.URL, ""))
	resp, body := getWith(t, "http://"+addr+"/a?x=1", nil)
	if body != "v1 /a" || !strings.Contains(resp.Header.Get("Cache-Status"), "fwd=uri-miss") || !strings.Contains(resp.Header.Get("Cache-Status"), "stored") {
		t.Fatalf("first: %q, Cache-Status %q", body, resp.Header.Get("Cache-Status"))
	}
	time.Sleep(1100 * time.Millisecond)
	resp, body = getWith(t, "http://"+addr+"/a?x=1", nil)
	if body != "v1 /a" || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "holdfast; hit") || resp.Header.Get("Age") == "" || resp.Header.Get("Age") == "0" {
		t.Errorf("second: %q, Cache-Status %q, Age %q", body, resp.Header.Get("Cache-Status"), resp.Header.Get("Age"))
	}
	if n := origin.Requests.Load(); n != 1 {
		t.Errorf("origin got %d requests, want 1", n)
	}
	// Another query string is another key.
	getWith(t, "http://"+addr+"/a?x=2", nil)
	if n := origin.Requests.Load(); n != 2 {
		t.Errorf("a different query: origin got %d requests, want 2", n)
	}
	req, _ := http.NewRequest("POST", "http://"+g.AdminAddr().String()+"/api/v1/cache/purge?url=http://"+addr+"/a&prefix=true", nil)
	req.Header.Set("Authorization", "Bearer tok")
	presp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(presp.Body)
	presp.Body.Close()
	if presp.StatusCode != 200 || !strings.Contains(string(pb), `"purged": 2`) {
		t.Fatalf("purge: %d %s", presp.StatusCode, pb)
	}
	getWith(t, "http://"+addr+"/a?x=1", nil)
	if n := origin.Requests.Load(); n != 3 {
		t.Errorf("after the purge: origin got %d requests, want 3", n)
	}
}

// TestCacheStaleOnError: with the origin gone, a stale stored response is
// served (200, Cache-Status fwd=stale with the cause, Proxy-Status naming
// the failure) instead of a 502; one with must-revalidate is not (504).
func TestCacheStaleOnError(t *testing.T) {
	t.Parallel()
	origin, kill := testutil.KillableBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/strict" {
			w.Header().Set("Cache-Control", "max-age=1, must-revalidate")
		} else {
			w.Header().Set("Cache-Control", "max-age=1, stale-if-error=60")
		}
		io.WriteString(w, "fresh "+r.URL.Path)
	}))
	_, addr := start(t, cacheConfig(t, origin.URL, ""))
	getWith(t, "http://"+addr+"/page", nil)
	getWith(t, "http://"+addr+"/strict", nil)
	time.Sleep(1100 * time.Millisecond)
	kill()
	resp, body := getWith(t, "http://"+addr+"/page", nil)
	cs, ps := resp.Header.Get("Cache-Status"), resp.Header.Get("Proxy-Status")
	if resp.StatusCode != 200 || body != "fresh /page" || !strings.Contains(cs, "fwd=stale") ||
		!strings.Contains(cs, `detail="connection_refused"`) || !strings.Contains(ps, "error=connection_refused") {
		t.Errorf("origin down: %d %q, Cache-Status %q, Proxy-Status %q: want the stale 200", resp.StatusCode, body, cs, ps)
	}
	resp, _ = getWith(t, "http://"+addr+"/strict", nil)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("must-revalidate with the origin down: %d, want 504", resp.StatusCode)
	}
}

// TestCacheUseStale: use_stale serves a stale response that has no
// stale-if-error of its own, when the origin answers 503.
func TestCacheUseStale(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	origin := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=1")
		io.WriteString(w, "good")
	}))
	_, addr := start(t, cacheConfig(t, origin.URL, ", use_stale: [http_503]"))
	getWith(t, "http://"+addr+"/", nil)
	time.Sleep(1100 * time.Millisecond)
	down.Store(true)
	resp, body := getWith(t, "http://"+addr+"/", nil)
	if resp.StatusCode != 200 || body != "good" || !strings.Contains(resp.Header.Get("Cache-Status"), "fwd-status=503") {
		t.Errorf("origin answering 503: %d %q, Cache-Status %q", resp.StatusCode, body, resp.Header.Get("Cache-Status"))
	}
}

// TestCacheCollapsing: 100 concurrent requests for a cold key reach the
// origin once.
func TestCacheCollapsing(t *testing.T) {
	t.Parallel()
	origin := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "slow")
	}))
	_, addr := start(t, cacheConfig(t, origin.URL, ""))
	var wg sync.WaitGroup
	var bad atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	for i := 0; i < 100; i++ {
		wg.Go(func() {
			resp, err := client.Get("http://" + addr + "/cold")
			if err != nil {
				bad.Add(1)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "slow" {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if n := origin.Requests.Load(); n != 1 || bad.Load() != 0 {
		t.Errorf("100 concurrent misses: origin got %d requests (want 1), %d bad answers", n, bad.Load())
	}
}

// TestCachePoisoning: headers the key does not hold cannot put one
// response under another URL, and a private or Set-Cookie response is not
// shared.
func TestCachePoisoning(t *testing.T) {
	t.Parallel()
	origin := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		switch {
		case r.Header.Get("X-Original-Url") != "":
			io.WriteString(w, "POISON via X-Original-URL")
		case r.Header.Get("X-Forwarded-Host") != "" && r.Header.Get("X-Forwarded-Host") != r.Host:
			io.WriteString(w, "POISON via X-Forwarded-Host "+r.Header.Get("X-Forwarded-Host"))
		case r.URL.Path == "/me":
			w.Header().Set("Cache-Control", "private, max-age=60")
			io.WriteString(w, "user "+r.Header.Get("Authorization"))
		default:
			io.WriteString(w, "clean")
		}
	}))
	_, addr := start(t, cacheConfig(t, origin.URL, ""))
	getWith(t, "http://"+addr+"/home", map[string]string{"X-Original-URL": "/admin"})
	getWith(t, "http://"+addr+"/home2", map[string]string{"X-Forwarded-Host": "evil.example"})
	if _, body := getWith(t, "http://"+addr+"/home", nil); body != "clean" {
		t.Errorf("after an X-Original-URL request, /home = %q", body)
	}
	if _, body := getWith(t, "http://"+addr+"/home2", nil); body != "clean" {
		t.Errorf("after an X-Forwarded-Host request, /home2 = %q", body)
	}
	getWith(t, "http://"+addr+"/me", map[string]string{"Authorization": "Bearer alice"})
	if _, body := getWith(t, "http://"+addr+"/me", map[string]string{"Authorization": "Bearer bob"}); body != "user Bearer bob" {
		t.Errorf("bob got %q: a private response was shared", body)
	}
}

// TestCacheStaleWhileRevalidate: within stale-while-revalidate, the stale
// response is served at once and refreshed in the background, once.
func TestCacheStaleWhileRevalidate(t *testing.T) {
	t.Parallel()
	var version atomic.Int64
	origin := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if version.Load() > 0 {
			time.Sleep(time.Second) // the refresh is slow: nobody may wait for it
		}
		w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=60")
		fmt.Fprintf(w, "v%d", version.Add(1))
	}))
	_, addr := start(t, cacheConfig(t, origin.URL, ""))
	getWith(t, "http://"+addr+"/swr", nil)
	time.Sleep(1100 * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Go(func() {
			began := time.Now()
			resp, body := getWith(t, "http://"+addr+"/swr", nil)
			if body != "v1" || time.Since(began) > 800*time.Millisecond || !strings.Contains(resp.Header.Get("Cache-Status"), "stale-while-revalidate") {
				t.Errorf("stale request: %q after %s, Cache-Status %q: want v1 at once", body, time.Since(began), resp.Header.Get("Cache-Status"))
			}
		})
	}
	wg.Wait()
	time.Sleep(1300 * time.Millisecond)
	if n := origin.Requests.Load(); n != 2 {
		t.Errorf("origin got %d requests, want 2 (the first, one background refresh)", n)
	}
	if _, body := getWith(t, "http://"+addr+"/swr", nil); body != "v2" {
		t.Errorf("after the refresh: %q, want v2", body)
	}
}

// TestCacheInvalidation: a POST to a URL removes its stored response; a
// GET carrying X-Original-URL (bypassing the cache) does not.
func TestCacheInvalidation(t *testing.T) {
	t.Parallel()
	origin := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, r.Method)
	}))
	_, addr := start(t, cacheConfig(t, origin.URL, ""))
	getWith(t, "http://"+addr+"/item", nil)
	getWith(t, "http://"+addr+"/item", map[string]string{"X-Original-URL": "/other"})
	getWith(t, "http://"+addr+"/item", nil)
	if n := origin.Requests.Load(); n != 2 {
		t.Fatalf("origin got %d requests, want 2 (the first GET, the bypassing one)", n)
	}
	resp, err := http.Post("http://"+addr+"/item", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	getWith(t, "http://"+addr+"/item", nil)
	if n := origin.Requests.Load(); n != 4 {
		t.Errorf("after the POST: origin got %d requests, want 4 (the stored response was removed)", n)
	}
}

// TestCacheHitHasItsOwnRequestID: the response a cache hit serves carries
// the hit's own X-Request-Id, not the one the stored response's first
// client got, and no Via element added for that client (what is stored
// is checked directly by TestStoredHeaderIsTheUpstreams in
// internal/proxy).
func TestCacheHitHasItsOwnRequestID(t *testing.T) {
	t.Parallel()
	origin := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "v1")
	}))
	_, addr := start(t, cacheConfig(t, origin.URL, ""))
	first, _ := getWith(t, "http://"+addr+"/id", map[string]string{"X-Request-Id": "first-client"})
	if got := first.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "first-client" {
		t.Fatalf("miss: X-Request-Id %q, want [first-client]", got)
	}
	for _, id := range []string{"second-client", ""} {
		resp, body := getWith(t, "http://"+addr+"/id", map[string]string{"X-Request-Id": id})
		if body != "v1" || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "holdfast; hit") {
			t.Fatalf("client %q: %q, Cache-Status %q: want a hit", id, body, resp.Header.Get("Cache-Status"))
		}
		got := resp.Header.Values("X-Request-Id")
		if len(got) != 1 || got[0] == "first-client" || id != "" && got[0] != id {
			t.Errorf("hit for client %q: X-Request-Id %q", id, got)
		}
		if via := resp.Header.Values("Via"); strings.Count(strings.Join(via, ","), "holdfast") > 1 {
			t.Errorf("hit for client %q: Via %q, want at most one holdfast element", id, via)
		}
	}
	if n := origin.Requests.Load(); n != 1 {
		t.Errorf("origin got %d requests, want 1", n)
	}
}
