package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestAdminEndToEnd runs "holdfast serve" with an admin listener and
// active checks in front of two loopback backends, and steers it with the
// real "holdfast status", "drain", "enable" and "reload" processes.
func TestAdminEndToEnd(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	var aServed, bServed atomic.Int64
	backend := func(name string, served *atomic.Int64, checked *atomic.Bool) *testutil.Counting {
		return testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				if checked != nil && !checked.Load() {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				return
			}
			served.Add(1)
			io.WriteString(w, name)
		}))
	}
	a := backend("a", &aServed, nil)
	b := backend("b", &bServed, &healthy)
	c := backend("c", new(atomic.Int64), nil)

	dir := t.TempDir()
	token := "s3cret-token-for-the-test"
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen, admin := freeAddr(t), freeAddr(t)
	file := filepath.Join(dir, "holdfast.yaml")
	write := func(urls ...string) {
		var s strings.Builder
		fmt.Fprintf(&s, `listen: [{addr: %q}]
admin: {addr: %q, token_file: admin.token}
access_log: {path: "off"}
routes: [{upstream: api}]
upstreams:
  api:
    retry: {tries: 1}
    health: {path: /health, interval: 100ms, timeout: 100ms, rise: 1, fall: 2}
    servers:
`, listen, admin)
		for _, u := range urls {
			fmt.Fprintf(&s, "      - {url: %q, max_fails: 0}\n", u)
		}
		if err := os.WriteFile(file, []byte(s.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(a.URL, b.URL)
	p := startServe(t, file, listen)
	run := func(args ...string) (int, string, string) { return runBinary(t, binary, args...) }

	// Reading.
	waitFor(t, "ready", func() bool { code, _, _ := get("http://" + admin + "/readyz"); return code == 200 })
	if code, body, _ := get("http://" + admin + "/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("healthz: %d %s", code, body)
	}
	code, out, errOut := run("status", "-c", file)
	if code != 0 || !strings.Contains(out, "pool api (round_robin): 2 of 2 servers available") || !strings.Contains(out, b.URL) {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("holdfast status:\n%s", out)

	// A server failing its checks shows down, with its cause.
	healthy.Store(false)
	waitFor(t, "b down", func() bool {
		_, out, _ := run("status", "--json", "-c", file)
		return strings.Contains(out, `"state": "down"`)
	})
	code, out, _ = run("status", "-c", file)
	if code != 0 || !strings.Contains(out, "1 of 2 servers available") || !strings.Contains(out, "upstream_status") {
		t.Errorf("status with b down:\n%s", out)
	}
	if code, body, _ := get("http://" + admin + "/readyz"); code != 200 {
		t.Errorf("readyz with one server of two down: %d %s", code, body)
	}
	healthy.Store(true)
	waitFor(t, "b up", func() bool { _, out, _ := run("status", "-c", file); return strings.Contains(out, "2 of 2") })

	// Drain b: it takes no new requests and keeps being checked.
	code, out, errOut = run("drain", "-c", file, "api", "1")
	if code != 0 || !strings.Contains(out, "drained "+b.URL+" in pool api") {
		t.Fatalf("drain: exit %d\n%s%s", code, out, errOut)
	}
	before := bServed.Load()
	for i := 0; i < 20; i++ {
		if code, body, err := get("http://" + listen + "/"); err != nil || code != 200 || body != "a" {
			t.Fatalf("request %d with b drained: %d %q %v", i, code, body, err)
		}
	}
	if n := bServed.Load() - before; n != 0 {
		t.Errorf("drained b got %d requests", n)
	}

	// A reload that adds c keeps b drained.
	write(a.URL, b.URL, c.URL)
	code, out, errOut = run("reload", "-c", file)
	if code != 0 || !strings.Contains(out, "reloaded") || !strings.Contains(out, "3 servers") {
		t.Fatalf("reload: exit %d\n%s%s", code, out, errOut)
	}
	var pools struct {
		Pools []struct {
			Servers []struct {
				URL   string `json:"url"`
				State string `json:"state"`
			} `json:"servers"`
		} `json:"pools"`
	}
	_, out, _ = run("status", "--json", "-c", file)
	if err := json.Unmarshal([]byte(out), &pools); err != nil || len(pools.Pools) != 1 || len(pools.Pools[0].Servers) != 3 {
		t.Fatalf("status --json after reload: %v\n%s", err, out)
	}
	if s := pools.Pools[0].Servers[1]; s.URL != b.URL || s.State != "draining" {
		t.Errorf("b after the reload: %+v, want still draining", s)
	}

	// A broken file is rejected with its file:line errors; the old
	// configuration keeps serving.
	if err := os.WriteFile(file, []byte("routes: [{upstream: nope}]\nupstreams: {api: {servers: [{url: \"http://a:1\", weight: 0}]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run("reload", "--admin", admin, "--token-file", filepath.Join(dir, "admin.token"))
	if code != 1 || !strings.Contains(errOut, "holdfast.yaml:2") || !strings.Contains(errOut, "weight") {
		t.Errorf("reload of a broken file: exit %d, stderr:\n%s", code, errOut)
	}
	if code, _, err := get("http://" + listen + "/"); err != nil || code != 200 {
		t.Errorf("after a rejected reload: %d %v", code, err)
	}

	// Enable b again; a wrong token changes nothing.
	bad := filepath.Join(dir, "wrong.token")
	os.WriteFile(bad, []byte("wrong-token-4711\n"), 0o600)
	code, _, errOut = run("enable", "--admin", admin, "--token-file", bad, "api", b.URL)
	if code != 1 || !strings.Contains(errOut, "wrong bearer token") {
		t.Errorf("enable with a wrong token: exit %d, %s", code, errOut)
	}
	code, out, errOut = run("enable", "--admin", admin, "--token-file", filepath.Join(dir, "admin.token"), "api", b.URL)
	if code != 0 || !strings.Contains(out, "enabled "+b.URL) {
		t.Errorf("enable: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, "b serving again", func() bool { _, body, _ := get("http://" + listen + "/"); return body == "b" })

	// The token never reaches the log.
	p.signal(t, os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("holdfast did not stop")
	}
	if strings.Contains(p.stderr.String(), token) || strings.Contains(p.stderr.String(), "wrong-token-4711") {
		t.Error("a token appears in the event log")
	}
	if !strings.Contains(p.stderr.String(), `"admin":"`+admin+`"`) {
		t.Errorf("the start line does not name the admin listener:\n%s", p.stderr.String())
	}
}
