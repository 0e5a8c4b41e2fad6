package h1

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestContinueNeverInsideTheResponse: the first read of a body whose client
// sent "Expect: 100-continue" writes "100 Continue", possibly on another
// goroutine than the handler's (net/http's Transport reads bodies on its
// own) while the handler writes its answer. The 100 is written before the
// final head begins or not at all, never inside the response (run with
// -race: no data race on the connection's writer either).
func TestContinueNeverInsideTheResponse(t *testing.T) {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	chunk := strings.Repeat("r", 1000)
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := make(chan struct{})
		wg.Add(1)
		go func() { // the Transport's writer
			defer wg.Done()
			<-start
			io.Copy(io.Discard, r.Body)
		}()
		close(start) // both now write to the connection: the reader its 100, this its answer
		for i := 0; i < 20; i++ {
			w.Write([]byte(chunk))
			http.NewResponseController(w).Flush()
		}
		wg.Wait()
	}))
	c := dial(t, addr)
	c.write("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
	br := bufio.NewReader(c.Conn)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	if resp.StatusCode == 100 {
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the final response: %v", err)
		}
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != strings.Repeat(chunk, 20) {
		t.Fatalf("final response %d: %d bytes, %v; the 100 Continue was written into it", resp.StatusCode, len(body), err)
	}
}
