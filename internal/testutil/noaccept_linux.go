package testutil

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// NoAccept returns a loopback address where a TCP connect never completes,
// so that a dial ends in a connect timeout: the upstream behind a firewall
// that drops SYNs, or a host that is gone. Loopback cannot drop packets, but
// Linux drops a SYN when the listener's accept queue is full: NoAccept makes
// a socket that listens with a backlog of 0 and never accepts, and fills its
// queue with a connection it keeps open until cleanup. A later dial then
// waits until its own timeout (the SYN is retransmitted after 1s, 3s, ...).
// The address holds no further state: any number of dials may share it.
//
// Each dial to the address costs the dialer its full timeout, so keep those
// timeouts short (a few hundred milliseconds).
func NoAccept(t testing.TB) string {
	t.Helper()
	fd, addr := boundLoopback(t, "noaccept")
	var filled []net.Conn
	t.Cleanup(func() {
		// Before the socket's own cleanup, registered earlier.
		for _, c := range filled {
			c.Close()
		}
	})
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatalf("testutil: listen: %v", err)
	}

	// Fill the queue one connection at a time, reading its length from the
	// kernel rather than timing dials, so that a slow machine cannot
	// mistake a late dial for a dropped SYN.
	for range 16 {
		n, limit, err := acceptQueue(fd)
		if err != nil {
			t.Fatalf("testutil: NoAccept: %v", err)
		}
		if n > limit {
			return addr // full: the next SYN is dropped
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("testutil: NoAccept: filling the accept queue of %s: %v", addr, err)
		}
		filled = append(filled, c)
		// The server side queues the connection when it handles the
		// client's ACK, which may come just after the dial returns.
		for wait := time.Now().Add(5 * time.Second); ; {
			m, _, err := acceptQueue(fd)
			if err != nil {
				t.Fatalf("testutil: NoAccept: %v", err)
			}
			if m > n {
				break
			}
			if time.Now().After(wait) {
				t.Skipf("testutil: NoAccept: a connection to %s never reached the accept queue", addr)
			}
			time.Sleep(time.Millisecond)
		}
	}
	t.Skipf("testutil: NoAccept: the accept queue of %s did not fill after %d connections; this kernel does not drop SYNs on a full queue", addr, len(filled))
	return ""
}

// acceptQueue returns the length of a listening socket's accept queue and
// its limit, which Linux reports in TCP_INFO as tcpi_unacked and
// tcpi_sacked. The queue is full, and a SYN is dropped, when n > limit.
func acceptQueue(fd int) (n, limit uint32, err error) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, 0, fmt.Errorf("getsockopt TCP_INFO: %w", err)
	}
	return info.Unacked, info.Sacked, nil
}

// DeadAddr returns a loopback address on which nothing listens, so that a
// dial is refused (RST in answer to SYN): the upstream that is down. Its
// port stays bound, by a socket that never listens, until the test ends,
// so that no other listener on a busy machine (a test running in
// parallel) can be given it in the meantime.
func DeadAddr(t testing.TB) string {
	t.Helper()
	_, addr := boundLoopback(t, "deadaddr")
	return addr
}

// boundLoopback returns a TCP socket bound to a free port of 127.0.0.1,
// not listening, and its address. The socket is closed when the test
// ends.
func boundLoopback(t testing.TB, name string) (fd int, addr string) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("testutil: socket: %v", err)
	}
	// A file owns fd from here on, so that closing it is idempotent.
	f := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("testutil: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("testutil: getsockname: %v", err)
	}
	return fd, (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
}
