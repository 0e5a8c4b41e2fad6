//go:build unix

package h1

import "syscall"

// rawReadSupported reports whether the wait for a request can read the
// socket itself through syscall.RawConn (see conn.readOnce).
const rawReadSupported = true

func sysRead(fd uintptr, b []byte) (int, error) { return syscall.Read(int(fd), b) }
