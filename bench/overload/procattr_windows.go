package main

import "syscall"

// childAttr leaves a child in the harness's process group: Windows has no
// Setpgid, and the harness stops each child by its own PID.
func childAttr() *syscall.SysProcAttr { return nil }
