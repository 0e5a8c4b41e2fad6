package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestAccessLogBufferWrittenOnReloadAndShutdown: with access_log.buffer,
// lines wait in memory (the flush interval here is an hour), and none is
// lost: a reload writes what the old log held, and shutdown what the new
// one holds.
func TestAccessLogBufferWrittenOnReloadAndShutdown(t *testing.T) {
	b := testutil.Backend(t, nil)
	path := filepath.Join(t.TempDir(), "access.log")
	yaml := oneRoute("127.0.0.1:0", "access_log: {path: "+path+", buffer: 64KiB, flush: 1h}\n", b.URL)
	g, err := New(parse(t, yaml), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Listen(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + g.Addrs()[0].String() + "/"
	get := func() {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	lines := func() int {
		data, _ := os.ReadFile(path)
		return strings.Count(string(data), "\n")
	}
	for range 3 {
		get()
	}
	if n := lines(); n != 0 {
		t.Fatalf("%d lines written before any flush, want 0 (buffered)", n)
	}
	if err := g.Reload(parse(t, yaml)); err != nil {
		t.Fatal(err)
	}
	if n := lines(); n != 3 {
		t.Fatalf("%d lines after a reload, want the 3 the old log held", n)
	}
	get()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := lines(); n != 4 {
		t.Fatalf("%d lines after shutdown, want 4", n)
	}
}
