package h1

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestChunkedFramingExcessRefused guards against a client that keeps the
// server reading framing without data: one-byte chunks with long
// extensions. The body read fails once the framing outweighs the data by
// 16 KiB, and the connection closes; ordinary chunks pass.
func TestChunkedFramingExcessRefused(t *testing.T) {
	got := make(chan string, 2)
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%d %v", len(b), err)
		w.WriteHeader(http.StatusNoContent)
	}))

	var ok strings.Builder
	for i := 0; i < 300; i++ {
		ok.WriteString("40;name=value\r\n" + strings.Repeat("d", 64) + "\r\n")
	}
	c := dial(t, addr)
	c.write("POST /fine HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + ok.String() + "0\r\n\r\n")
	if resp, _ := c.response("POST"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("ordinary chunks: status %d", resp.StatusCode)
	}
	if s := <-got; s != fmt.Sprint(300*64, " <nil>") {
		t.Fatalf("ordinary chunks: handler read %s", s)
	}

	var bad strings.Builder
	ext := ";" + strings.Repeat("e", 200)
	for i := 0; i < 200; i++ {
		bad.WriteString("1" + ext + "\r\nd\r\n")
	}
	c2 := dial(t, addr)
	c2.write("POST /excess HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + bad.String() + "0\r\n\r\n")
	select {
	case s := <-got:
		if !strings.Contains(s, errChunkExcess.Error()) {
			t.Fatalf("framing-heavy body: handler read %s, want the excess error", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler never finished reading the framing-heavy body")
	}
	if resp, _ := c2.response("POST"); !resp.Close {
		t.Errorf("answer after a refused body does not say Connection: close")
	}
	c2.expectClosed(5 * time.Second)
}
