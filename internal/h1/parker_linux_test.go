package h1

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// parkedCount reports how many connections wait in the server's epoll set,
// whole or as their socket.
func parkedCount(s *Server) int {
	s.park.mu.Lock()
	defer s.park.mu.Unlock()
	return len(s.park.conns) + len(s.park.dorm)
}

// startHelloServer serves "hello PATH" with an idle timeout of a minute.
func startHelloServer(t *testing.T) (*Server, string) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello " + r.URL.Path))
	})
	return startServer(t, h, func(s *Server) { s.IdleTimeout = time.Minute })
}

// setParkAfter sets parkAfter for the test.
func setParkAfter(t *testing.T, d time.Duration) {
	old := parkAfter
	parkAfter = d
	t.Cleanup(func() { parkAfter = old })
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestParkedConnections: beyond keepGoroutineUpTo connections, an idle
// keep-alive connection waits in the server's epoll set with no goroutine
// of its own; its next request is served as before, a client that closes
// it is forgotten, the idle timeout closes it, and Shutdown closes the
// parked ones at once.
func TestParkedConnections(t *testing.T) {
	old := keepGoroutineUpTo
	keepGoroutineUpTo = -1 // park every idle connection
	t.Cleanup(func() { keepGoroutineUpTo = old })

	srv, addr := startHelloServer(t)
	const n = 40
	conns := make([]*rawConn, n)
	before := runtime.NumGoroutine()
	for i := range conns {
		conns[i] = dial(t, addr)
		conns[i].write("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := conns[i].response("GET"); resp.StatusCode != 200 || body != "hello /first" {
			t.Fatalf("first request: %d %q", resp.StatusCode, body)
		}
	}
	waitUntil(t, "not every idle connection parked", 5*time.Second, func() bool { return parkedCount(srv) == n })
	if grown := runtime.NumGoroutine() - before; grown > 5 {
		t.Errorf("%d more goroutines with %d parked connections, want about none", grown, n)
	}

	// Every parked connection serves its next request, pipelined ones too.
	for i, c := range conns {
		if i%2 == 0 {
			c.write("GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
		} else {
			c.write("GET /second HTTP/1.1\r\nHost: x\r\n\r\nGET /third HTTP/1.1\r\nHost: x\r\n\r\n")
		}
	}
	for i, c := range conns {
		if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "hello /second" {
			t.Fatalf("conn %d, second request: %d %q", i, resp.StatusCode, body)
		}
		if i%2 == 1 {
			if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "hello /third" {
				t.Fatalf("conn %d, third request: %d %q", i, resp.StatusCode, body)
			}
		}
	}
	waitUntil(t, "the connections did not park again", 5*time.Second, func() bool { return parkedCount(srv) == n })

	// A client that closes a parked connection: the server forgets it.
	for _, c := range conns[:10] {
		c.Close()
	}
	waitUntil(t, "closed connections still tracked", 5*time.Second, func() bool {
		return connCount(srv) == n-10 && parkedCount(srv) == n-10
	})

	shutdownParked(t, srv, conns[10:])
}

// shutdownParked checks that Shutdown closes the parked connections conns
// at once and returns, leaving none open.
func shutdownParked(t *testing.T, srv *Server, conns []*rawConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with only parked connections", d)
	}
	for _, c := range conns {
		c.expectClosed(2 * time.Second)
	}
	if connCount(srv) != 0 || parkedCount(srv) != 0 {
		t.Errorf("after Shutdown: %d tracked, %d parked", connCount(srv), parkedCount(srv))
	}
}

// TestParkedIdleTimeout: a connection idle for parkAfter is parked, and
// the idle timeout then closes it (within the parker's one-second sweep).
func TestParkedIdleTimeout(t *testing.T) {
	old := keepGoroutineUpTo
	keepGoroutineUpTo = -1
	t.Cleanup(func() { keepGoroutineUpTo = old })
	const idle = 1500 * time.Millisecond
	srv, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		func(s *Server) { s.IdleTimeout = idle })
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	answered := time.Now()
	waitUntil(t, "the connection did not park", 3*time.Second, func() bool { return parkedCount(srv) == 1 })
	if d := time.Since(answered); d < parkAfter-100*time.Millisecond {
		t.Errorf("parked %v after its answer, want after parkAfter (%v)", d, parkAfter)
	}
	c.expectClosed(4 * time.Second)
	if d := time.Since(answered); d < idle-100*time.Millisecond || d > idle+1500*time.Millisecond {
		t.Errorf("closed %v after its answer, want the idle timeout (%v) plus at most the one-second sweep", d, idle)
	}
	waitUntil(t, "the timed-out connection is still tracked", 2*time.Second, func() bool {
		return connCount(srv) == 0 && parkedCount(srv) == 0
	})
}

// TestFewIdleConnectionsParked: with few connections open, the goroutine
// that served a request waits for the next one, but only for parkAfter:
// a connection idle longer is parked like the others, and the goroutines
// that waited for it end. Its next request is served as before.
func TestFewIdleConnectionsParked(t *testing.T) {
	setParkAfter(t, 100*time.Millisecond)
	srv, addr := startHelloServer(t)
	const n = 3
	before := runtime.NumGoroutine()
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dial(t, addr)
	}
	for round, path := range []string{"/first", "/second"} {
		for i, c := range conns {
			c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "hello "+path {
				t.Fatalf("round %d, conn %d: %d %q", round, i, resp.StatusCode, body)
			}
		}
		waitUntil(t, "the idle connections did not park", 5*time.Second, func() bool { return parkedCount(srv) == n })
		// Each waited on two goroutines (the one that served and its
		// read); parked, it has none.
		waitUntil(t, "goroutines left behind by parked connections", 5*time.Second, func() bool {
			return runtime.NumGoroutine()-before <= 2
		})
	}
}

// TestManyWaitingParkAtOnce: once maxWaiting connections wait for their
// next request in goroutines of their own, a connection that has answered
// its first request is parked (as its socket) after parkSoonAfter rather
// than parkAfter, so that a burst of connections does not leave a
// goroutine per connection behind. A connection that has served more
// waits parkAfter as before: parking after every request would cost a
// busy one about twenty system calls each time.
func TestManyWaitingParkAtOnce(t *testing.T) {
	oldUpTo, oldMax, oldAfter, oldSoon := keepGoroutineUpTo, maxWaiting, parkAfter, parkSoonAfter
	keepGoroutineUpTo, maxWaiting, parkAfter, parkSoonAfter = -1, 0, time.Hour, 10*time.Millisecond
	t.Cleanup(func() { keepGoroutineUpTo, maxWaiting, parkAfter, parkSoonAfter = oldUpTo, oldMax, oldAfter, oldSoon })
	srv, addr := startHelloServer(t)
	const n = 20
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dial(t, addr)
	}
	request := func(path string) {
		t.Helper()
		for i, c := range conns {
			c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "hello "+path {
				t.Fatalf("%s, conn %d: %d %q", path, i, resp.StatusCode, body)
			}
		}
	}
	request("/first")
	// parkAfter is an hour: only parking soon gets them there.
	waitUntil(t, "the connections did not park soon after their first request", 5*time.Second, func() bool {
		return srv.park.dormantCount() == n
	})
	if w := srv.waiting.Load(); w != 0 {
		t.Errorf("%d connections counted as waiting in a goroutine, all are parked", w)
	}
	request("/second")
	time.Sleep(20 * parkSoonAfter)
	if p := parkedCount(srv); p != 0 {
		t.Errorf("%d connections parked soon after their second request", p)
	}
	if w := srv.waiting.Load(); w != n {
		t.Errorf("%d connections counted as waiting in a goroutine, want %d", w, n)
	}
	request("/third")
}

// TestSilentConnectionsDoNotCountAsWaiting: connections that have not sent
// a request yet do not count among those waiting for their next one, so
// that a client holding silent connections cannot make every other
// connection park after each request.
func TestSilentConnectionsDoNotCountAsWaiting(t *testing.T) {
	oldUpTo, oldMax, oldAfter, oldSoon := keepGoroutineUpTo, maxWaiting, parkAfter, parkSoonAfter
	keepGoroutineUpTo, maxWaiting, parkAfter, parkSoonAfter = -1, 3, time.Hour, 10*time.Millisecond
	t.Cleanup(func() { keepGoroutineUpTo, maxWaiting, parkAfter, parkSoonAfter = oldUpTo, oldMax, oldAfter, oldSoon })
	srv, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		func(s *Server) { s.IdleTimeout = time.Minute })
	for range 6 {
		dial(t, addr) // silent
	}
	waitUntil(t, "the silent connections were not accepted", 5*time.Second, func() bool { return connCount(srv) == 6 })
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	time.Sleep(10 * parkSoonAfter)
	if p := parkedCount(srv); p != 0 {
		t.Errorf("%d connections parked: the silent ones made the busy one park soon", p)
	}
	if w := srv.waiting.Load(); w != 1 {
		t.Errorf("%d connections counted as waiting for their next request, want 1", w)
	}
}

// TestParkerWaitsInThePoller: the parker's goroutine waits for events in
// the runtime's poller ("IO wait"), not in a blocking epoll_wait
// ("syscall"), which would hold a thread and, until the runtime took it
// back, a P: with GOMAXPROCS=1 every other goroutine would stall behind
// it each time the parker began to wait.
func TestParkerWaitsInThePoller(t *testing.T) {
	setParkAfter(t, 50*time.Millisecond)
	srv, addr := startHelloServer(t)
	c := dial(t, addr)
	for round := range 2 {
		c.write("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "hello /x" {
			t.Fatalf("round %d: %d %q", round, resp.StatusCode, body)
		}
		waitUntil(t, "the idle connection did not park", 5*time.Second, func() bool { return parkedCount(srv) == 1 })
		// The loop looks at the set for a moment after each event; a
		// blocking wait is in the system call all the time.
		waitUntil(t, "the parker's goroutine waits in a system call", 2*time.Second, func() bool {
			return goroutineState("(*parker).loop(") == "IO wait"
		})
	}
	// Past a sweep (once a second, at the wait's deadline), it waits in
	// the poller again: the deadline was moved on, or every later wait
	// would end at once and the loop would spin.
	time.Sleep(1200 * time.Millisecond)
	waitUntil(t, "after a sweep, the parker's goroutine does not wait in the poller", 2*time.Second, func() bool {
		return goroutineState("(*parker).loop(") == "IO wait"
	})
	if parkedCount(srv) != 1 {
		t.Fatalf("after a sweep, %d connections parked, want 1 (the idle timeout is a minute)", parkedCount(srv))
	}
}

// goroutineState returns the state of the first goroutine whose stack
// holds fn (a function name with its opening parenthesis, so that "created
// by" lines do not match), as a goroutine dump gives it ("IO wait",
// "syscall", ...), or "" if none does.
func goroutineState(fn string) string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, fn) {
			continue
		}
		// "goroutine 7 [IO wait, 2 minutes]:"
		_, rest, _ := strings.Cut(g, "[")
		state, _, _ := strings.Cut(rest, "]")
		state, _, _ = strings.Cut(state, ",")
		return state
	}
	return ""
}
