package h1

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestShutdownDoesNotWaitForHijackedConn: a hijacked connection belongs to
// the hijacker from the hijack on (as with net/http): Shutdown does not wait
// for it, nor for the handler that runs its tunnel.
func TestShutdownDoesNotWaitForHijackedConn(t *testing.T) {
	release := make(chan struct{})
	hijacked := make(chan struct{})
	srv, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer nc.Close()
		close(hijacked)
		<-release // the tunnel runs
	}))
	defer close(release)
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-hijacked
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v: it waits for a hijacked connection's handler", err)
	}
}
