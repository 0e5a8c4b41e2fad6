package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// upPair returns an upConn over a loopback TCP connection with its probe
// set up, as the pool makes them, and the peer's end.
func upPair(t *testing.T) (*upConn, *idleProbe, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	uc := &upConn{Conn: c, now: time.Now}
	probe := new(idleProbe)
	probe.init(c)
	if !probe.canWait() {
		t.Fatal("a TCP connection on Linux offers no RawConn")
	}
	return uc, probe, peer
}

// TestWriteWaitWaitsForTheAnswer: a write that goes out whole also waits
// for the answer; the attempt is in PhaseWait from the write on; the
// answer is then there to read, untouched.
func TestWriteWaitWaitsForTheAnswer(t *testing.T) {
	uc, probe, peer := upPair(t)
	go func() {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "hello" {
			return
		}
		time.Sleep(50 * time.Millisecond)
		peer.Write([]byte("answer"))
	}()
	tr := new(attemptTrace)
	tr.set(cause.PhaseWrite)
	n, waited, err := uc.writeWait(probe, []byte("hello"), func() { tr.set(cause.PhaseWait) })
	if n != 5 || !waited || err != nil {
		t.Fatalf("writeWait = %d, waited %v, %v; want 5, true, nil", n, waited, err)
	}
	if cause.Phase(tr.phase.Load()) != cause.PhaseWait || uc.Written() != 5 {
		t.Fatalf("phase %v, written %d: want the wait phase and 5 bytes", cause.Phase(tr.phase.Load()), uc.Written())
	}
	uc.SetReadDeadline(time.Now().Add(time.Millisecond)) // no waiting left to do
	buf := make([]byte, 16)
	m, err := uc.Read(buf)
	if err != nil || string(buf[:m]) != "answer" {
		t.Fatalf("read after the wait: %q, %v", buf[:m], err)
	}
}

// TestWriteWaitDeadline: the read deadline set before the write bounds the
// wait, and the read that follows reports the timeout.
func TestWriteWaitDeadline(t *testing.T) {
	uc, probe, peer := upPair(t)
	go io.Copy(io.Discard, peer) // reads, never answers
	uc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	_, waited, err := uc.writeWait(probe, []byte("GET / HTTP/1.1\r\n\r\n"), func() {})
	if !waited || err != nil {
		t.Fatalf("writeWait: waited %v, %v", waited, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the wait outlived its deadline: %v", d)
	}
	if _, err := uc.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after a wait past its deadline: %v, want a timeout", err)
	}
}

// TestWriteWaitFullBuffer: when the socket's buffer cannot take all of a
// write, what did not go is written as a plain write writes it (waiting
// for room), nothing is waited for, and the peer reads every byte in
// order.
func TestWriteWaitFullBuffer(t *testing.T) {
	uc, probe, peer := upPair(t)
	// Small fixed buffers (no autotuning), filled while the peer reads
	// nothing.
	uc.Conn.(*net.TCPConn).SetWriteBuffer(4096)
	peer.(*net.TCPConn).SetReadBuffer(4096)
	var sent bytes.Buffer
	chunk := bytes.Repeat([]byte("f"), 64<<10)
	for {
		uc.Conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := uc.Conn.Write(chunk)
		sent.Write(chunk[:n])
		if err != nil {
			break
		}
	}
	uc.Conn.SetWriteDeadline(time.Time{})
	last := bytes.Repeat([]byte("0123456789abcdef"), 1<<10) // 16 KiB, a write buffer's worth
	sent.Write(last)
	received := make(chan []byte, 1)
	uc.SetReadDeadline(time.Now().Add(10 * time.Second)) // should it wait after all
	go func() {
		time.Sleep(100 * time.Millisecond)
		b := make([]byte, sent.Len())
		io.ReadFull(peer, b)
		received <- b
	}()
	// Told of a complete write only: were it told early, the rest would
	// be written from a buffer already reused (scribbled over here).
	scribble := func() { copy(last, bytes.Repeat([]byte("X"), len(last))) }
	n, waited, err := uc.writeWait(probe, last, scribble)
	if n != len(last) || waited || err != nil {
		t.Fatalf("writeWait into a full buffer = %d, waited %v, %v; want %d, false, nil", n, waited, err, len(last))
	}
	if got := <-received; !bytes.Equal(got, sent.Bytes()) {
		t.Fatalf("the peer read %d bytes that differ from the %d sent", len(got), sent.Len())
	}
	if uc.Written() != int64(len(last)) {
		t.Fatalf("written %d, want %d (the fill went around the counter)", uc.Written(), len(last))
	}
}

// TestWriteWaitClosedOrKilled: on a closed or killed connection nothing
// is written, and the error is the one a write gives.
func TestWriteWaitClosedOrKilled(t *testing.T) {
	uc, probe, _ := upPair(t)
	uc.kill()
	if n, waited, err := uc.writeWait(probe, []byte("x"), func() {}); n != 0 || waited || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writeWait on a killed connection = %d, %v, %v; want 0, false, a deadline error", n, waited, err)
	}
	uc, probe, _ = upPair(t)
	uc.Close()
	if n, waited, err := uc.writeWait(probe, []byte("x"), func() {}); n != 0 || waited || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("writeWait on a closed connection = %d, %v, %v; want 0, false, net.ErrClosed", n, waited, err)
	}
}

// TestLearnedIdleLimitIsTheUpstreams: a pooled connection taken long after
// the upstream closed it teaches the upstream's idle timeout (when the FIN
// came), not the gap between the two requests.
func TestLearnedIdleLimitIsTheUpstreams(t *testing.T) {
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	backend.Config.IdleTimeout = 30 * time.Millisecond
	backend.Start()
	t.Cleanup(backend.Close)
	e := newEnv(t, poolConfig("", backend.URL))

	wantStatus(t, e.do("GET", "/", ""), 200)
	time.Sleep(500 * time.Millisecond) // the backend closes after 30ms
	wantStatus(t, e.do("GET", "/", ""), 200)

	s := e.h.pools["p"].Servers[0]
	if n := s.State.StaleRetiredCount(); n != 1 {
		t.Fatalf("%d pooled connections retired at reuse, want 1 (the one the backend closed)", n)
	}
	// Learnt from the 500ms gap, the limit would be 375ms. From the FIN,
	// it is 30ms less the margin, plus however late the backend's timer
	// fired on a loaded machine.
	lim := s.State.IdleLimit(time.Now())
	if lim <= 0 || lim > 200*time.Millisecond {
		t.Errorf("learned idle limit %v, want the backend's 30ms less the margin (0 < limit <= 200ms)", lim)
	}
	t.Logf("learned idle limit: %v", lim)
}
