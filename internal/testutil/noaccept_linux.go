package testutil

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// NoAccept returns a loopback address where a TCP connect never completes,
// so that a dial ends in a connect timeout: the upstream behind a firewall
// that drops SYNs, or a host that is gone. Loopback cannot drop packets, but
// Linux drops a SYN when the listener's accept queue is full: NoAccept makes
// a socket that listens with a backlog of 0 and never accepts, and fills its
// queue with connections it keeps open until cleanup. A later dial then
// waits until its own timeout (the SYN is retransmitted after 1s, 3s, ...).
//
// Each dial to the address costs the dialer its full timeout, so keep those
// timeouts short (a few hundred milliseconds).
func NoAccept(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("testutil: socket: %v", err)
	}
	// A file owns fd from here on, so that closing it is idempotent.
	lf := os.NewFile(uintptr(fd), "noaccept")
	var filled []net.Conn
	t.Cleanup(func() {
		for _, c := range filled {
			c.Close()
		}
		lf.Close()
	})
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("testutil: bind: %v", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatalf("testutil: listen: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("testutil: getsockname: %v", err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()

	// A dial on loopback completes in microseconds while the queue has room,
	// so a dial that takes this long means the queue is full and the SYN
	// was dropped. With backlog 0 one connection fills it; the loop does not
	// depend on that kernel detail.
	const probe = 200 * time.Millisecond
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, probe)
		if err == nil {
			filled = append(filled, c)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return addr
		}
		t.Fatalf("testutil: filling the accept queue of %s: %v", addr, err)
	}
	t.Skipf("testutil: NoAccept: the accept queue of %s did not fill after %d connections; this kernel does not drop SYNs on a full queue", addr, len(filled))
	return ""
}
