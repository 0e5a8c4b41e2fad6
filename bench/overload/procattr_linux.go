package main

import "syscall"

// childAttr puts a child in its own process group, and has the kernel kill
// it should the harness die without stopping it (SIGKILL, kill -9).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
