//go:build !linux

package testutil

import "testing"

// NoAccept returns an address where a TCP connect never completes. It
// relies on Linux dropping SYNs for a listener whose accept queue is full;
// elsewhere it skips the test.
func NoAccept(t testing.TB) string {
	t.Helper()
	t.Skip("testutil: NoAccept needs Linux: other kernels answer a full accept queue differently")
	return ""
}

// DeadAddr returns a loopback address on which nothing listens, so that a
// dial is refused (RST in answer to SYN): the upstream that is down. Here
// it is FreeAddr's; on Linux the port stays bound until the test ends.
func DeadAddr(t testing.TB) string {
	t.Helper()
	return FreeAddr(t)
}
