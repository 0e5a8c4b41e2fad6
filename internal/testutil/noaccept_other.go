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
