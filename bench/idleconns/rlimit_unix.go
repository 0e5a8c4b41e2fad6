//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// raiseNoFile makes the soft RLIMIT_NOFILE at least need, raising the hard
// limit too when it is lower (which only root may do).
func raiseNoFile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if uint64(lim.Cur) >= need {
		return nil
	}
	want := lim
	setLimit(&want.Cur, need)
	if uint64(want.Max) < need {
		setLimit(&want.Max, need)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fmt.Errorf("the open-files limit is %d (hard %d) and cannot be raised to %d: %w (raise it with ulimit -n, or run as root)",
			lim.Cur, lim.Max, need, err)
	}
	return nil
}

// setLimit stores v in a field of syscall.Rlimit, which is uint64 on Linux
// and int64 on the BSDs.
func setLimit[T int64 | uint64](f *T, v uint64) { *f = T(v) }
