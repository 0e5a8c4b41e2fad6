package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestDashboardInBrowser runs "holdfast serve" with an admin listener in
// front of a healthy backend and two refusing addresses, opens the
// dashboard in a real headless Chromium, and checks what a person sees
// there: the refusing server's state and cause, the error total rising with
// failing traffic, a failed request's attempts, and a drain that goes
// through the page's token prompt. With HOLDFAST_UPDATE_SCREENSHOT=1 it
// writes the page as docs/dashboard.png.
func TestDashboardInBrowser(t *testing.T) {
	browser := chromiumPath(t)

	healthy := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	refusing := "http://" + testutil.DeadAddr(t) // in pool api, next to healthy
	gone := "http://" + testutil.DeadAddr(t)     // pool legacy's only server
	dir := t.TempDir()
	token := "dashboard-test-token-0123456789"
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen, admin := freeAddr(t), freeAddr(t)
	// retry.tries 1 lets every failure reach the client. The refusing
	// server of api is ejected by its first failure and stays out for the
	// whole test (fail_timeout 60s); legacy's only server fails its checks
	// and is down, so that each request to /legacy/ fails at once.
	cfg := fmt.Sprintf(`listen: [{addr: %q}]
admin: {addr: %q, token_file: admin.token}
access_log: {path: "off"}
routes:
  - {match: {path_prefix: /legacy/}, upstream: legacy}
  - {upstream: api}
upstreams:
  api:
    retry: {tries: 1}
    servers:
      - {url: %q}
      - {url: %q, fail_timeout: 60s}
  legacy:
    retry: {tries: 1}
    health: {path: /, interval: 200ms, timeout: 200ms}
    servers:
      - {url: %q}
`, listen, admin, healthy.URL, refusing, gone)
	file := filepath.Join(dir, "holdfast.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startServe(t, file, listen)
	send := func(path string, n int) {
		t.Helper()
		for i := range n {
			if _, _, err := get(fmt.Sprintf("http://%s%s?n=%d", listen, path, i)); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
	}
	send("/api/items", 40)
	send("/legacy/report", 5)
	// A client's path holds markup: the page must show it as text.
	send("/legacy/%3Cimg%20src=x%20onerror=document.title='xss'%3E", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	page := openBrowser(ctx, t, browser, 1280, 900)
	if err := chromedp.Do(page, chromedp.Navigate("http://"+admin+"/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	apiRow := func(url string) string { return fmt.Sprintf(`tr.server[data-pool="api"][data-server=%q]`, url) }

	// The refusing server: not up, with its cause.
	state := waitText(page, t, apiRow(refusing)+" .state", func(s string) bool { return s != "" && s != "up" })
	if state != "ejected" {
		t.Errorf("the refusing server's state reads %q, want ejected", state)
	}
	waitText(page, t, apiRow(refusing)+" .last-failure .cause", textIs("connection_refused"))
	waitText(page, t, apiRow(healthy.URL)+" .state", textIs("up"))
	waitText(page, t, `tr.server[data-pool="legacy"] .state`, textIs("down"))

	// The error total rises with failing traffic.
	before, err := strconv.Atoi(waitText(page, t, "#errors-total", func(s string) bool {
		n, err := strconv.Atoi(s)
		return err == nil && n > 0
	}))
	if err != nil {
		t.Fatal(err)
	}
	send("/legacy/report", 10)
	waitText(page, t, "#errors-total", func(s string) bool {
		n, err := strconv.Atoi(s)
		return err == nil && n >= before+10
	})
	waitText(page, t, `#causes tr[data-cause="destination_unavailable"] .count`, func(s string) bool { return s != "" && s != "0" })

	// A failed request of pool api opens its attempt ledger.
	failure := `#failures-body tr.failure[data-pool="api"]`
	if err := chromedp.Do(page, chromedp.Click(chromedp.CSS(failure))); err != nil {
		t.Fatalf("click a failed request: %v", err)
	}
	ledger := waitText(page, t, failure+" + tr.ledger-row table.ledger", func(s string) bool {
		return strings.Contains(s, refusing) && strings.Contains(s, "connection_refused")
	})
	t.Logf("the ledger reads: %s", ledger)

	// The path with markup is text: the page made no element of it.
	if !evaluate[bool](page, t, `[...document.querySelectorAll("#failures-body .path")].some((e) => e.textContent.includes("<img src=x"))`) {
		t.Error("the failed request whose path holds markup is not listed with its path as text")
	}
	if n := evaluate[int](page, t, `document.querySelectorAll("#failures-body img").length`); n != 0 || evaluate[string](page, t, `document.title`) == "xss" {
		t.Errorf("a path from a client became markup: %d img elements", n)
	}

	// Drain the healthy server: the page asks for the token, says when it
	// is wrong, and drains with the right one.
	drain := apiRow(healthy.URL) + " button.drain"
	if err := chromedp.Do(page,
		chromedp.Click(chromedp.CSS(drain)),
		chromedp.WaitVisible(chromedp.ID("token-dialog")),
		chromedp.SendKeys(chromedp.ID("token-input"), "not-the-token"),
		chromedp.Click(chromedp.ID("token-submit")),
	); err != nil {
		t.Fatalf("drain with a wrong token: %v", err)
	}
	waitText(page, t, "#token-reason", textHas("wrong bearer token"))
	if err := chromedp.Do(page,
		chromedp.WaitVisible(chromedp.ID("token-dialog")),
		chromedp.SendKeys(chromedp.ID("token-input"), token),
		chromedp.Click(chromedp.ID("token-submit")),
	); err != nil {
		t.Fatalf("drain with the token: %v", err)
	}
	waitText(page, t, "#notice", textHas("Drained "+healthy.URL))
	waitText(page, t, apiRow(healthy.URL)+" .state", textIs("draining"))
	waitText(page, t, apiRow(healthy.URL)+" button", textIs("Enable"))
	if got := serverState(t, admin, "api", healthy.URL); got != "draining" {
		t.Errorf("GET /api/v1/pools: the healthy server is %q after the drain, want draining", got)
	}
	if !evaluate[bool](page, t, fmt.Sprintf(`sessionStorage.getItem("holdfast.admin.token") === %q && localStorage.length === 0`, token)) {
		t.Error("the token is not kept in sessionStorage only")
	}

	// At 800 pixels, nothing but the tables' own boxes scrolls sideways.
	if err := chromedp.Do(page, chromedp.EmulateViewport(800, 900)); err != nil {
		t.Fatal(err)
	}
	if w := evaluate[int](page, t, `document.documentElement.scrollWidth`); w > 800 {
		t.Errorf("at 800 pixels the page is %d wide", w)
	}
	if err := chromedp.Do(page, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	if os.Getenv("HOLDFAST_UPDATE_SCREENSHOT") == "1" {
		if err := chromedp.Do(page,
			chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)`),
		); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(page, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		out := filepath.Join("..", "..", "docs", "dashboard.png")
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(png))
	}
}

// chromiumPath returns the browser to run, or skips the test (fails it
// with HOLDFAST_REQUIRE_TOOLS=1) when there is none.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("HOLDFAST_REQUIRE_TOOLS") == "1" {
		t.Fatal("chromium not found, and HOLDFAST_REQUIRE_TOOLS=1: apt-get install chromium")
	}
	t.Skip("chromium not found: apt-get install chromium")
	return ""
}

// openBrowser starts a headless browser of width by height pixels and
// returns the context of its tab. The browser stops at cleanup, and the
// test fails if the page threw an exception or broke its
// Content-Security-Policy. The failed loads of the page's own calls (a 401
// for a wrong token) are the page's business and do not count.
func openBrowser(ctx context.Context, t *testing.T, path string, width, height int) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(width, height),
	)
	tab, cancelTab := chromedp.NewContext(alloc)
	var (
		mu       sync.Mutex
		problems []string
		wg       sync.WaitGroup
	)
	if err := chromedp.Do(tab); err != nil { // starts the browser
		cancelTab()
		cancelAlloc()
		t.Fatalf("start %s: %v", path, err)
	}
	messages := chromedp.Console(tab)
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	})
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // stops the browser and waits for it
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("the page's console: %s", p)
		}
	})
	return tab
}

// waitText waits for the text of the first element matching the CSS
// selector sel to satisfy ok, as the page updates, and returns it.
func waitText(page context.Context, t *testing.T, sel string, ok func(string) bool) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? e.textContent.trim() : "\u0000none"; })()`, q)
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for {
		s, err := chromedp.Run(page, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		got = s
		if got != "\x00none" && ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got == "\x00none" {
		t.Fatalf("no element %s on the page", sel)
	}
	t.Fatalf("%s reads %q, and did not change to what the test waits for", sel, got)
	return ""
}

func textIs(want string) func(string) bool { return func(s string) bool { return s == want } }

func textHas(want string) func(string) bool {
	return func(s string) bool { return strings.Contains(s, want) }
}

// evaluate returns the value of a JavaScript expression in the page.
func evaluate[T any](page context.Context, t *testing.T, expr string) T {
	t.Helper()
	v, err := chromedp.Run(page, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// serverState returns the state of the server url of pool as the admin
// API reports it.
func serverState(t *testing.T, admin, pool, url string) string {
	t.Helper()
	code, body, err := get("http://" + admin + "/api/v1/pools")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/v1/pools: %d %v\n%s", code, err, body)
	}
	var list struct {
		Pools []struct {
			Name    string `json:"name"`
			Servers []struct {
				URL   string `json:"url"`
				State string `json:"state"`
			} `json:"servers"`
		} `json:"pools"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /api/v1/pools: %v\n%s", err, body)
	}
	for _, p := range list.Pools {
		for _, s := range p.Servers {
			if p.Name == pool && s.URL == url {
				return s.State
			}
		}
	}
	t.Fatalf("GET /api/v1/pools has no server %s in pool %s:\n%s", url, pool, body)
	return ""
}
