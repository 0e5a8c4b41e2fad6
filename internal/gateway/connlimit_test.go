package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// keptConn opens a client connection, plain or TLS, and makes one request
// on it, leaving it idle and kept alive. It returns nil if the gateway
// closed the connection instead of answering.
func keptConn(t *testing.T, addr string, tc *tls.Config) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		c = tls.Client(c, tc)
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		c.Close()
		return nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.SetDeadline(time.Time{})
	return c
}

// wantRefused checks that a new connection is closed at once: a read ends
// quickly with EOF (or a reset), not with the read deadline.
func wantRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("a connection over client.max_connections was left open (read: %v)", err)
	}
	t.Logf("over the cap: closed after %v (%v)", time.Since(start).Round(time.Millisecond), err)
}

// waitKept retries keptConn until a slot is free or 2s have passed.
func waitKept(t *testing.T, addr string, tc *tls.Config) net.Conn {
	t.Helper()
	end := time.Now().Add(2 * time.Second)
	for {
		if c := keptConn(t, addr, tc); c != nil {
			return c
		}
		if time.Now().After(end) {
			t.Fatal("no slot came free")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const refusedMsg = "client connections refused: client.max_connections reached"

func TestMaxConnections(t *testing.T) {
	be := testutil.Backend(t, nil)
	cert, key, pool := writeCert(t)
	tc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}}
	// Two listeners, plain and TLS, share the cap.
	yaml := func(max int) string {
		return fmt.Sprintf("listen:\n  - addr: \"127.0.0.1:0\"\n  - addr: \"127.0.0.1:0\"\n    tls: {cert: %q, key: %q}\nclient: {max_connections: %d}\nroutes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    servers:\n      - {url: %q}\n",
			cert, key, max, be.URL)
	}
	events := new(slowLog)
	g, plain, _ := startLogged(t, yaml(5), events)
	addrs := g.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("listening on %v", addrs)
	}
	secure := addrs[1].String()

	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < 5; i++ {
		a, cfg := plain, (*tls.Config)(nil)
		if i >= 3 {
			a, cfg = secure, tc
		}
		c := keptConn(t, a, cfg)
		if c == nil {
			t.Fatalf("connection %d refused under the cap", i+1)
		}
		open = append(open, c)
	}
	wantRefused(t, plain)
	wantRefused(t, secure)
	if n := g.RefusedConnections(); n < 2 {
		t.Errorf("RefusedConnections() = %d, want 2 or more", n)
	}
	if m := events.waitLine("msg", refusedMsg, time.Second); m == nil {
		t.Errorf("no warning logged; event log: %v", events.lines())
	} else if m["level"] != "WARN" || m["refused"] == nil {
		t.Errorf("warning %v", m)
	}

	// Closing one (TLS: the count is taken below TLS) frees a slot.
	open[4].Close()
	open[4] = waitKept(t, plain, nil)
	wantRefused(t, plain)

	// A reload that raises the cap takes effect for new connections; the
	// ones open stay counted.
	if err := g.Reload(parse(t, yaml(7))); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		c := keptConn(t, plain, nil)
		if c == nil {
			t.Fatalf("connection %d refused after the cap was raised to 7", 6+i)
		}
		open = append(open, c)
	}
	wantRefused(t, plain)

	// Lowering it leaves the connections open serving; new ones wait
	// until enough have closed.
	if err := g.Reload(parse(t, yaml(3))); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(open[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	open[0].SetReadDeadline(time.Now().Add(3 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(open[0]), nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("an open connection after the cap was lowered: %v %v", resp, err)
	}
	wantRefused(t, plain)

	// Every refusal is in the log, on lines a second apart at least: the
	// last ones a second after the line before.
	for i := 0; i < 3; i++ {
		wantRefused(t, plain)
	}
	// The count is read again each time: the last refusal is counted
	// just after its connection is closed, which the client may see first.
	var total uint64
	var summed float64
	for end := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		total = g.RefusedConnections()
		summed = 0
		var last time.Time
		for _, m := range events.lines() {
			if m["msg"] != refusedMsg {
				continue
			}
			summed += m["refused"].(float64)
			at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(m["time"]))
			if d := at.Sub(last); d < 950*time.Millisecond {
				t.Fatalf("two refusal lines %v apart", d)
			}
			last = at
		}
		if summed == float64(total) || time.Now().After(end) {
			break
		}
	}
	if summed != float64(total) {
		t.Errorf("the log counts %v refusals, RefusedConnections() %d", summed, total)
	}
	t.Logf("refused in all: %d", g.RefusedConnections())
}

// A WebSocket tunnel holds its slot until it closes (net/http no longer
// tracks a hijacked connection), and is bound by neither client timeout.
func TestMaxConnectionsCountsTunnels(t *testing.T) {
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			io.WriteString(w, "ok")
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(conn, line)
		}
	}))
	_, addr, _ := startLogged(t, oneRoute("127.0.0.1:0", "client: {max_connections: 1, send_timeout: 200ms, body_timeout: 200ms}\n", be.URL), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for _, msg := range []string{"hello\n", "after a pause longer than both timeouts\n"} {
		time.Sleep(500 * time.Millisecond)
		io.WriteString(c, msg)
		if line, err := br.ReadString('\n'); err != nil || line != msg {
			t.Fatalf("echo through the tunnel: %q, %v", line, err)
		}
	}
	wantRefused(t, addr)
	c.Close()
	waitKept(t, addr, nil).Close()
}

// Close gives the slot back once, however often it is called (net/http, TLS
// and a tunnel may each close the same connection).
func TestLimitConnReleasesOnce(t *testing.T) {
	l := newConnLimit(2, slog.New(slog.DiscardHandler))
	a, b := net.Pipe()
	defer b.Close()
	first, second, third := l.acquire(), l.acquire(), l.acquire()
	if !first || !second || third {
		t.Fatal("the cap of 2 does not hold")
	}
	c := &limitConn{Conn: a, lim: l}
	for i := 0; i < 3; i++ {
		c.Close()
	}
	if n := l.open.Load(); n != 1 {
		t.Errorf("%d open after one of two closed three times", n)
	}
}

// TestMaxConnectionsHoldsParked: an idle plain connection parked by the
// HTTP/1.1 server after a second keeps its slot while it is parked as its
// socket alone, is served through the same slot when its next request
// comes, and gives the slot back when the client closes it while parked.
func TestMaxConnectionsHoldsParked(t *testing.T) {
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	g, addr, _ := startLogged(t, oneRoute("127.0.0.1:0", "client: {max_connections: 2}\n", be.URL), nil)
	a, b := keptConn(t, addr, nil), keptConn(t, addr, nil)
	if a == nil || b == nil {
		t.Fatal("the first two connections were refused")
	}
	defer a.Close()
	defer b.Close()
	time.Sleep(1500 * time.Millisecond) // idle for longer than the server waits before parking
	if n := g.conns.open.Load(); n != 2 {
		t.Fatalf("%d slots taken with two parked connections, want 2", n)
	}
	wantRefused(t, addr)
	for i, c := range []net.Conn{a, b} {
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("conn %d, after parking: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "ok /again" {
			t.Fatalf("conn %d, after parking: %d %q", i, resp.StatusCode, body)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	a.Close()
	waitKept(t, addr, nil).Close()
	if n := g.RefusedConnections(); n == 0 {
		t.Error("no connection was counted as refused")
	}
}
