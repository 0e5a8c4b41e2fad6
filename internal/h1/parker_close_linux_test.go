package h1

import (
	"net/http"
	"testing"
	"time"
)

// TestCloseDuringParkerSweep: Server.Close stops the parker only after it
// has released s.mu, so a sweep closing parked connections whose idle
// timeout has passed (which untracks them under s.mu) cannot deadlock with
// it. The test forces the interleaving: it holds s.mu while the sweep
// unparks the expired connections, and lets Close wait for s.mu too.
func TestCloseDuringParkerSweep(t *testing.T) {
	old, oldSocket := keepGoroutineUpTo, parkAsSocket
	keepGoroutineUpTo, parkAsSocket = -1, false // parked whole: their close untracks them
	t.Cleanup(func() { keepGoroutineUpTo, parkAsSocket = old, oldSocket })

	srv, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		func(s *Server) { s.IdleTimeout = 1200 * time.Millisecond })
	const n = 50
	for i := 0; i < n; i++ {
		c := dial(t, addr)
		c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	waitUntil(t, "the connections did not park", 5*time.Second, func() bool { return parkedCount(srv) == n })

	// Hold s.mu (as a Close that has just taken it would) while Close is
	// started, then while the parker's sweep unparks the expired
	// connections: the loop then waits for s.mu in c.close() of the first
	// of them, behind Close.
	srv.mu.Lock()
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for parkedCount(srv) != 0 {
		if time.Now().After(deadline) {
			srv.mu.Unlock()
			t.Fatal("the parker never swept the expired connections")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the loop is now in c.close(), waiting for s.mu
	srv.mu.Unlock()                   // Close, the first waiter, takes it

	select {
	case <-closed:
		return
	case <-time.After(3 * time.Second):
		t.Errorf("Server.Close deadlocked: it holds s.mu waiting for the parker's loop, which waits for s.mu to untrack an expired connection")
	}

	// Break the deadlock so that the test binary can go on: keep the loop
	// from ending, release s.mu for it, let it untrack what it closes,
	// then take s.mu back for Close's deferred Unlock and let the loop end.
	srv.park.mu.Lock()
	srv.mu.Unlock()
	deadline = time.Now().Add(5 * time.Second)
	for srv.nconns.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	srv.mu.Lock()
	srv.park.mu.Unlock()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("could not break the deadlock")
	}
}
