//go:build !unix

package h1

import "errors"

// rawReadSupported reports whether the wait for a request can read the
// socket itself through syscall.RawConn; elsewhere it reads through the
// connection, holding a buffer while it waits.
const rawReadSupported = false

func sysRead(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
