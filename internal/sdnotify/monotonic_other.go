//go:build !linux

package sdnotify

// monotonicUsec is unknown where there is no systemd to read it.
func monotonicUsec() (int64, bool) { return 0, false }
