package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain fails the package when a connection or server goroutine of the
// package outlives the tests: every test must leave nothing running.
//
// H1_PARK_ALL=1 runs every test with all idle connections parked (see
// parker), as a server with more than keepGoroutineUpTo connections does.
func TestMain(m *testing.M) {
	if os.Getenv("H1_PARK_ALL") == "1" {
		keepGoroutineUpTo = -1
	}
	code := m.Run()
	if code == 0 {
		if leaked := waitForPackageGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines of package h1 still running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitForPackageGoroutines waits until no goroutine runs code of the
// package outside its tests, and returns the stacks of those left.
func waitForPackageGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "internal/h1.(*conn)") || strings.Contains(g, "internal/h1.(*Server)") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(left, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startServer serves h on a new loopback listener until the test ends;
// then it closes the server and checks that Serve returned and that every
// connection was let go.
func startServer(t testing.TB, h http.Handler, configure ...func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveListener(t, ln, h, configure...)
}

// serveListener is startServer on a listener of the test's own.
func serveListener(t testing.TB, ln net.Listener, h http.Handler, configure ...func(*Server)) (*Server, string) {
	t.Helper()
	srv := &Server{Handler: h}
	for _, f := range configure {
		f(srv)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
		waitNoConns(t, srv)
	})
	return srv, ln.Addr().String()
}

// connCount reports how many connections the server has open: those it
// tracks, and those parked as their socket.
func connCount(srv *Server) int {
	srv.mu.Lock()
	n := len(srv.conns)
	srv.mu.Unlock()
	return n + srv.park.dormantCount()
}

func waitNoConns(t testing.TB, srv *Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for connCount(srv) > 0 {
		if time.Now().After(deadline) {
			t.Errorf("%d connections still tracked by the server", connCount(srv))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawConn is a client connection that writes raw bytes and reads raw
// responses, bounded by an overall deadline.
type rawConn struct {
	t testing.TB
	net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, Conn: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// response reads one response to a request with the given method and its
// whole body.
func (c *rawConn) response(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading the response to %s: %v", method, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading the body of the response to %s: %v", method, err)
	}
	return resp, string(body)
}

// head reads a response head as raw lines, without their CRLF, up to the
// empty line.
func (c *rawConn) head() []string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading a response head: %v (read %q)", err, lines)
		}
		if !strings.HasSuffix(line, "\r\n") {
			c.t.Fatalf("response line %q does not end in CRLF", line)
		}
		line = strings.TrimSuffix(line, "\r\n")
		if line == "" {
			return lines
		}
		lines = append(lines, line)
	}
}

// expectClosed checks that the server closes the connection within d
// without sending anything more.
func (c *rawConn) expectClosed(d time.Duration) {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := c.br.ReadByte()
	switch {
	case err == nil:
		rest, _ := io.ReadAll(io.LimitReader(c.br, 200))
		c.t.Fatalf("the connection is still open: read %q", append([]byte{b}, rest...))
	case isTimeoutErr(err):
		c.t.Fatalf("the connection is still open after %v", d)
	case err != io.EOF && !isResetErr(err):
		c.t.Fatalf("waiting for the connection to close: %v", err)
	}
}

// expectNothing checks that the server sends nothing for d and keeps the
// connection open.
func (c *rawConn) expectNothing(d time.Duration) {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.br.Peek(1); !isTimeoutErr(err) {
		n := c.br.Buffered()
		got, _ := c.br.Peek(n)
		c.t.Fatalf("got %q, %v; want nothing for %v", got, err, d)
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isResetErr(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// hasLine reports whether lines holds one equal to want, ignoring the case
// of the field name.
func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		wk, wv, _ := strings.Cut(want, ":")
		if ok && strings.EqualFold(k, wk) && strings.TrimSpace(v) == strings.TrimSpace(wv) {
			return true
		}
	}
	return false
}

// fieldOf returns the value of the first line of lines for field name.
func fieldOf(lines []string, name string) (string, bool) {
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// memConn is a net.Conn that reads a fixed byte string, in reads of at most
// step bytes (0: unbounded), and discards what is written to it.
type memConn struct {
	r    *bytes.Reader
	step int
	out  bytes.Buffer
}

func newMemConn(s string, step int) *memConn {
	return &memConn{r: bytes.NewReader([]byte(s)), step: step}
}

func (m *memConn) Read(p []byte) (int, error) {
	if m.step > 0 && len(p) > m.step {
		p = p[:m.step]
	}
	return m.r.Read(p)
}
func (m *memConn) Write(p []byte) (int, error)        { return m.out.Write(p) }
func (m *memConn) Close() error                       { return nil }
func (m *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (m *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 12345} }
func (m *memConn) SetDeadline(t time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(t time.Time) error { return nil }

// readHeadFrom runs the server's head reader over s as a connection's
// bytes, as they arrive in reads of at most step bytes, and returns the
// head it delimits and the bytes left after it.
func readHeadFrom(s string, step int, srv *Server) (string, string, error) {
	if srv == nil {
		srv = &Server{}
	}
	mc := newMemConn(s, step)
	c := &conn{srv: srv, nc: mc, buf: make([]byte, bufSize)}
	head, err := c.readHead(false)
	rest := string(c.buf[c.r:c.w])
	tail, _ := io.ReadAll(mc.r)
	return head, rest + string(tail), err
}

// recorder collects what a handler saw, safely across goroutines.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.seen = append(r.seen, s)
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}
