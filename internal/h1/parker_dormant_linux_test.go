package h1

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// slots counts the connections a slotListener has handed out and not yet
// seen closed, as the gateway's connection limit does.
type slots struct {
	open   atomic.Int64
	writes atomic.Int64 // writes through the wrappers
}

// slotListener wraps each accepted connection in a slotConn.
type slotListener struct {
	net.Listener
	s *slots
}

func (l slotListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.open.Add(1)
	return &slotConn{Conn: c, s: l.s}, nil
}

// slotConn holds its slot until it is closed, however often.
type slotConn struct {
	net.Conn
	s      *slots
	closed atomic.Bool
}

func (c *slotConn) Write(p []byte) (int, error) {
	c.s.writes.Add(1)
	return c.Conn.Write(p)
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.s.open.Add(-1)
	}
	return err
}

func (c *slotConn) NetConn() net.Conn      { return c.Conn }
func (c *slotConn) SetNetConn(nc net.Conn) { c.Conn = nc }
func (c *slotConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

// parkSoon parks every idle connection after a few milliseconds, for the
// test's length.
func parkSoon(t *testing.T) {
	oldUpTo, oldAfter := keepGoroutineUpTo, parkAfter
	keepGoroutineUpTo, parkAfter = -1, 20*time.Millisecond
	t.Cleanup(func() { keepGoroutineUpTo, parkAfter = oldUpTo, oldAfter })
}

func startSlotServer(t *testing.T, h http.Handler, configure ...func(*Server)) (*Server, string, *slots) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &slots{}
	srv, addr := serveListener(t, slotListener{Listener: ln, s: s}, h, configure...)
	return srv, addr, s
}

// echoPeer answers with the request's path and the client's address as
// the server saw it.
var echoPeer = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte(r.URL.Path + " from " + r.RemoteAddr))
})

// TestDormantConnections: an idle connection is parked as its socket
// alone: the connection it was is let go, and its wrapper (a listener's
// connection count) keeps its slot. Its next request, pipelined ones too,
// is served through the same wrapper over a connection made again from
// the socket, with the same client address; a client that closes a
// parked connection gives its slot back, and Shutdown closes the rest at
// once.
func TestDormantConnections(t *testing.T) {
	parkSoon(t)
	srv, addr, sl := startSlotServer(t, echoPeer, func(s *Server) { s.IdleTimeout = time.Minute })
	const n = 20
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dial(t, addr)
	}
	for round := range 3 {
		for i, c := range conns {
			path := fmt.Sprintf("/c%d/r%d", i, round)
			if i%2 == 1 && round > 0 {
				c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\nGET " + path + "/again HTTP/1.1\r\nHost: x\r\n\r\n")
			} else {
				c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			}
			want := path + " from " + c.LocalAddr().String()
			if resp, body := c.response("GET"); resp.StatusCode != 200 || body != want {
				t.Fatalf("round %d, conn %d: %d %q, want %q", round, i, resp.StatusCode, body, want)
			}
			if i%2 == 1 && round > 0 {
				want = path + "/again from " + c.LocalAddr().String()
				if resp, body := c.response("GET"); resp.StatusCode != 200 || body != want {
					t.Fatalf("round %d, conn %d, pipelined: %d %q, want %q", round, i, resp.StatusCode, body, want)
				}
			}
		}
		waitUntil(t, "the idle connections were not parked as their sockets", 5*time.Second, func() bool {
			return srv.park.dormantCount() == n
		})
		if got := sl.open.Load(); got != n {
			t.Fatalf("round %d: %d slots taken with %d parked connections, want %d", round, got, n, n)
		}
		if tracked := connCount(srv) - srv.park.dormantCount(); tracked != 0 {
			t.Errorf("round %d: the server still tracks %d conns of parked connections", round, tracked)
		}
	}
	// Every response went through the wrapper, revived connections' too.
	if got, want := sl.writes.Load(), int64(n*3+n/2*2); got < want {
		t.Errorf("%d writes through the wrappers, want at least one per response (%d)", got, want)
	}

	// A client that closes a parked connection: its slot comes back.
	for _, c := range conns[:5] {
		c.Close()
	}
	waitUntil(t, "closed parked connections kept their slots", 5*time.Second, func() bool {
		return sl.open.Load() == n-5 && connCount(srv) == n-5
	})

	shutdownParked(t, srv, conns[5:])
	if got := sl.open.Load(); got != 0 {
		t.Errorf("after Shutdown: %d slots still taken", got)
	}
	if got := srv.nconns.Load(); got != 0 {
		t.Errorf("after Shutdown: the server counts %d connections", got)
	}
}

// TestDormantIdleTimeout: a connection parked as its socket is closed when
// its idle timeout passes (by the parker's sweep), and its slot given back.
func TestDormantIdleTimeout(t *testing.T) {
	parkSoon(t)
	const idle = 1200 * time.Millisecond
	srv, addr, sl := startSlotServer(t, echoPeer, func(s *Server) { s.IdleTimeout = idle })
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	answered := time.Now()
	waitUntil(t, "the connection was not parked as its socket", 3*time.Second, func() bool { return srv.park.dormantCount() == 1 })
	c.expectClosed(idle + 3*time.Second)
	if d := time.Since(answered); d < idle-100*time.Millisecond {
		t.Errorf("closed %v after its response, before the idle timeout (%v)", d, idle)
	}
	waitUntil(t, "the slot of the closed connection was not given back", 3*time.Second, func() bool {
		return sl.open.Load() == 0 && srv.nconns.Load() == 0
	})
}

// TestDormantCloseReleasesAll: Server.Close closes the connections parked
// as their sockets, and gives their slots back.
func TestDormantCloseReleasesAll(t *testing.T) {
	parkSoon(t)
	srv, addr, sl := startSlotServer(t, echoPeer, func(s *Server) { s.IdleTimeout = time.Minute })
	conns := make([]*rawConn, 10)
	for i := range conns {
		conns[i] = dial(t, addr)
		conns[i].write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, _ := conns[i].response("GET"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	waitUntil(t, "the connections were not parked as their sockets", 5*time.Second, func() bool {
		return srv.park.dormantCount() == len(conns)
	})
	srv.Close()
	for _, c := range conns {
		c.expectClosed(2 * time.Second)
	}
	if got := sl.open.Load(); got != 0 {
		t.Errorf("after Close: %d slots still taken", got)
	}
}

// TestDormantConnectionsKeepTheirClients: connections parked as their
// sockets and made again, many times over, while others open and close
// (so that descriptor numbers are reused all along), each get their own
// answers and nobody else's.
func TestDormantConnectionsKeepTheirClients(t *testing.T) {
	parkSoon(t)
	srv, addr, _ := startSlotServer(t, echoPeer, func(s *Server) { s.IdleTimeout = time.Minute })
	const workers, rounds = 16, 12
	// Whether connections were parked as their sockets meanwhile.
	var parked atomic.Bool
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if srv.park.dormantCount() > 0 {
					parked.Store(true)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			c := dial(t, addr)
			defer c.Close()
			for r := range rounds {
				// A short-lived connection in between takes and frees a
				// descriptor number.
				if r%3 == w%3 {
					other, err := net.Dial("tcp", addr)
					if err != nil {
						errs <- err
						return
					}
					other.Close()
				}
				path := fmt.Sprintf("/w%d/r%d", w, r)
				if _, err := fmt.Fprintf(c.Conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
					errs <- err
					return
				}
				resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
				if err != nil {
					errs <- fmt.Errorf("worker %d, round %d: %v", w, r, err)
					return
				}
				body := make([]byte, resp.ContentLength)
				if _, err := io.ReadFull(resp.Body, body); err != nil {
					errs <- err
					return
				}
				if want := path + " from " + c.LocalAddr().String(); string(body) != want {
					errs <- fmt.Errorf("worker %d, round %d: got %q, want %q", w, r, body, want)
					return
				}
				// Idle long enough to be parked, mostly.
				time.Sleep(time.Duration(20+(w*7+r*13)%40) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-watched
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !parked.Load() {
		t.Error("no connection was ever parked as its socket")
	}
}

// TestDeadlinesAfterTheHandlerReachNothing: a goroutine the handler left
// behind that sets the connection's deadlines after the handler returned
// gets an error, and neither the connection's next request nor its
// parking (which swaps the wrapper's connection) is touched.
func TestDeadlinesAfterTheHandlerReachNothing(t *testing.T) {
	parkSoon(t)
	late := make(chan *http.ResponseController, 1)
	srv, addr, _ := startSlotServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/leave" {
			late <- http.NewResponseController(w)
		}
		w.Write([]byte("hello " + r.URL.Path))
	}), func(s *Server) { s.IdleTimeout = time.Minute })
	c := dial(t, addr)
	c.write("GET /leave HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "hello /leave" {
		t.Fatalf("first: %d %q", resp.StatusCode, body)
	}
	rc := <-late
	// Calls racing with the parking, then after it.
	for i := range 200 {
		past := time.Now().Add(-time.Second)
		if err := rc.SetReadDeadline(past); err == nil {
			t.Fatalf("call %d: SetReadDeadline after the handler returned succeeded", i)
		}
		if err := rc.SetWriteDeadline(past); err == nil {
			t.Fatalf("call %d: SetWriteDeadline after the handler returned succeeded", i)
		}
		if i == 100 {
			waitUntil(t, "the connection was not parked", 5*time.Second, func() bool { return srv.park.dormantCount() == 1 })
		}
	}
	c.write("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "hello /next" {
		t.Fatalf("next: %d %q", resp.StatusCode, body)
	}
}

// TestDormantRevivedOutOfDescriptors: making a parked connection again
// takes a spare descriptor for a moment; when the process has none, the
// server tries again, as accept does, and the request is answered once
// one is free, instead of the connection being closed with it unread.
func TestDormantRevivedOutOfDescriptors(t *testing.T) {
	parkSoon(t)
	srv, addr, _ := startSlotServer(t, echoPeer, func(s *Server) { s.IdleTimeout = time.Minute })
	c := dial(t, addr)
	c.write("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	waitUntil(t, "the connection was not parked as its socket", 5*time.Second, func() bool { return srv.park.dormantCount() == 1 })

	// Take every descriptor number below a lowered limit.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var fillers []int
	release := func() {
		for _, fd := range fillers {
			syscall.Close(fd)
		}
		fillers = nil
	}
	defer release()
	restore := func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Errorf("restoring the open-files limit: %v", err)
		}
	}
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EMFILE && len(fillers) > 0 {
			break // the last numbers were taken already
		}
		if err != nil {
			t.Fatal(err)
		}
		fillers = append(fillers, fd)
		if len(fillers) == 1 {
			// The limit sits just above the first free number: every
			// number below it is taken once the holes are filled.
			low := lim
			low.Cur = uint64(fd) + 64
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
				t.Skipf("cannot lower the open-files limit: %v", err)
			}
			defer restore()
		}
		if uint64(fd) >= uint64(fillers[0])+63 {
			break
		}
	}
	if _, err := syscall.Dup(0); err != syscall.EMFILE {
		t.Fatalf("a descriptor is still free under the lowered limit (%v)", err)
	}
	c.write("GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(150 * time.Millisecond) // the first tries fail
	release()
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "/second from "+c.LocalAddr().String() {
		t.Fatalf("after descriptors came free: %d %q", resp.StatusCode, body)
	}
}

// TestDeadlinesNotBehindContinue: the deadline methods do not wait for
// the lock a 100 Continue holds while it writes, so that a write deadline
// can still cut such a write that a client stalls.
func TestDeadlinesNotBehindContinue(t *testing.T) {
	errs := make(chan string, 1)
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := w.(*response).c
		c.wmu.Lock() // as writeContinue holds it, blocked in its write
		done := make(chan error, 1)
		go func() { done <- http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Second)) }()
		select {
		case err := <-done:
			if err != nil {
				errs <- err.Error()
			}
		case <-time.After(2 * time.Second):
			errs <- "SetWriteDeadline waited for the 100 Continue's lock"
		}
		c.wmu.Unlock()
		w.Write([]byte("ok"))
	}))
	c := dial(t, addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	select {
	case e := <-errs:
		t.Error(e)
	default:
	}
}
