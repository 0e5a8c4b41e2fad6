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
	if lim.Cur >= need {
		return nil
	}
	want := lim
	want.Cur = need
	if want.Max < need {
		want.Max = need
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fmt.Errorf("the open-files limit is %d (hard %d) and cannot be raised to %d: %w (raise it with ulimit -n, or run as root)",
			lim.Cur, lim.Max, need, err)
	}
	return nil
}
