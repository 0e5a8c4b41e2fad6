package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestRejectedReloadKeepsAccessLog: a reload that fails late (a listener
// cannot bind) must leave the access log in force, not schedule it closed.
func TestRejectedReloadKeepsAccessLog(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	dir := t.TempDir()
	logA, logB := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer busy.Close()
	cfgA := oneRoute("127.0.0.1:0", "access_log: {path: "+logA+"}\n", b.URL)
	g, err := New(parse(t, cfgA), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Listen(); err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	addr := g.Addrs()[0].String()
	// The new file moves the access log and adds a listener whose port is taken.
	cfgB := "listen:\n  - addr: \"" + addr + "\"\n  - addr: \"" + busy.Addr().String() + "\"\naccess_log: {path: " + logB + "}\n" +
		strings.SplitN(cfgA, "routes:", 2)[0][len("listen:\n  - addr: \"127.0.0.1:0\"\n"):] + "routes:" + strings.SplitN(cfgA, "routes:", 2)[1]
	cfgB = strings.Replace(cfgB, "access_log: {path: "+logA+"}\n", "", 1)
	if err := g.Reload(parse(t, cfgB)); err == nil {
		t.Fatal("reload with a taken port succeeded")
	} else {
		t.Logf("reload rejected: %v", err)
	}
	g.mu.Lock()
	name := g.logFile.Name()
	g.mu.Unlock()
	t.Logf("gateway's log file after the rejected reload: %s (handler still writes to %s)", name, logA)
	if name != logA {
		t.Errorf("rejected reload swapped the access log file to %s; %s (still in use) is closed in a minute", name, logA)
	}
	// The log in force still takes lines.
	before, _ := os.ReadFile(logA)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	after, _ := os.ReadFile(logA)
	if len(after) <= len(before) {
		t.Error("no access log line written after a rejected reload")
	}
}
