package testutil

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// FreeAddr returns a loopback address whose port is free now, for a
// server the test starts on it later (a listener it reloads, an upstream
// that comes back). The port was bound and released: on a busy machine
// another process could take it in between. For an address that must
// refuse connections, use DeadAddr.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("testutil: close: %v", err)
	}
	return addr
}

// Fault is a raw TCP server on loopback that misbehaves in one way. Its
// counters are safe to read while it runs.
type Fault struct {
	// Addr is the host:port it listens on.
	Addr string
	// Conns counts accepted connections.
	Conns atomic.Int64
	// Requests counts request heads read in full: a request the upstream
	// has seen and might have acted on.
	Requests atomic.Int64
}

// serveFault starts a Fault whose connections are handled by handle. handle
// runs in its own goroutine per connection; the connection is closed when
// handle returns (unless handle closed it) and at cleanup, whichever comes
// first, so a handle that blocks on the connection is released by cleanup.
func serveFault(t testing.TB, handle func(f *Fault, c *net.TCPConn, br *bufio.Reader)) *Fault {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: listen: %v", err)
	}
	f := &Fault{Addr: ln.Addr().String()}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  = map[net.Conn]struct{}{}
		closed bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // the listener was closed by cleanup
			}
			f.Conns.Add(1)
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				handle(f, c.(*net.TCPConn), bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return f
}

// readRequest reads one request head, counts it, and drains its body (so
// that closing the connection afterwards sends a FIN, not the RST Linux sends
// when unread data is left). It reports whether the peer sent anything: a
// head that is not HTTP (a TLS ClientHello, say) is not counted but still
// gets an answer, as it would from a real server on that port.
func readRequest(f *Fault, br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed)
	}
	f.Requests.Add(1)
	io.Copy(io.Discard, req.Body)
	return true
}

// reset closes c with an RST instead of a FIN: SO_LINGER with a zero
// timeout makes close abort the connection, as a crashing process does.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// Hang accepts connections and reads the request, then never answers,
// holding the connection open until cleanup: an upstream stuck in a deadlock
// or a long GC pause, which only a response timeout can detect.
func Hang(t testing.TB) *Fault {
	t.Helper()
	return serveFault(t, func(f *Fault, c *net.TCPConn, br *bufio.Reader) {
		readRequest(f, br)
		io.Copy(io.Discard, br) // returns when the client or cleanup closes
	})
}

// ResetAfterRequest reads the request head and then resets the connection,
// so that the client reads ECONNRESET: an upstream process that crashed
// while handling the request.
func ResetAfterRequest(t testing.TB) *Fault {
	t.Helper()
	return serveFault(t, func(f *Fault, c *net.TCPConn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		f.Requests.Add(1)
		reset(c)
	})
}

// CloseAfterRequest reads the request and then closes the connection cleanly
// (FIN) without a response, so that the client reads EOF: an upstream that
// gave up on the request, or closed a keep-alive connection just as it was
// reused.
func CloseAfterRequest(t testing.TB) *Fault {
	t.Helper()
	return serveFault(t, func(f *Fault, c *net.TCPConn, br *bufio.Reader) {
		readRequest(f, br)
	})
}

// GarbageResponse is what [Garbage] answers: an SSH banner, the classic
// sign of a proxy pointed at the wrong port.
const GarbageResponse = "SSH-2.0-OpenSSH_9.6\r\nnot http at all\r\n\r\n"

// Garbage reads the request and answers with [GarbageResponse], which is not
// HTTP, then closes: an upstream address that points at another service.
func Garbage(t testing.TB) *Fault {
	t.Helper()
	return Raw(t, GarbageResponse)
}

// Raw reads the request and answers with response, written verbatim, then
// closes: an upstream whose response is malformed in a way a test spells
// out byte by byte (a bad status line, a header without a colon, a body
// shorter than its Content-Length).
func Raw(t testing.TB, response string) *Fault {
	t.Helper()
	return serveFault(t, func(f *Fault, c *net.TCPConn, br *bufio.Reader) {
		if !readRequest(f, br) {
			return
		}
		io.WriteString(c, response)
	})
}

// EarlyAnswer answers every request on a kept-alive connection as soon as
// it has the head, before reading the body: a request with a body gets
// "401 Unauthorized" and the body "nope", one without gets 200 "ok". The
// body is then read and dropped, so that the connection stays in step for
// the next request: an upstream that refuses an upload on its headers
// alone, as an authenticating server does.
func EarlyAnswer(t testing.TB) *Fault {
	t.Helper()
	return serveFault(t, func(f *Fault, c *net.TCPConn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			f.Requests.Add(1)
			if req.ContentLength == 0 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope")
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
		}
	})
}

// BigHeader reads the request and answers 200 with one header, X-Big, whose
// value is n bytes long, then closes: an upstream whose cookies or debug
// headers outgrew the proxy's response header limit.
func BigHeader(t testing.TB, n int) *Fault {
	t.Helper()
	return serveFault(t, func(f *Fault, c *net.TCPConn, br *bufio.Reader) {
		if !readRequest(f, br) {
			return
		}
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\nX-Big: ")
		b.WriteString(strings.Repeat("a", n))
		b.WriteString("\r\n\r\nok")
		io.WriteString(c, b.String()) // may fail when the client gives up reading: fine
	})
}

// MidBodyLength and MidBodySent are the Content-Length [ResetMidBody]
// announces and the number of body bytes it sends before the reset.
const (
	MidBodyLength = 1000000
	MidBodySent   = 10
)

// ResetMidBody reads the request, sends a 200 header announcing
// Content-Length: [MidBodyLength], [MidBodySent] bytes of body, then resets
// the connection: an upstream that crashed while streaming a response,
// after the proxy had already sent the status to its client.
func ResetMidBody(t testing.TB) *Fault {
	t.Helper()
	return serveFault(t, func(f *Fault, c *net.TCPConn, br *bufio.Reader) {
		if !readRequest(f, br) {
			return
		}
		head := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(MidBodyLength) + "\r\n\r\n"
		if _, err := io.WriteString(c, head+strings.Repeat("x", MidBodySent)); err != nil {
			return
		}
		reset(c)
	})
}
