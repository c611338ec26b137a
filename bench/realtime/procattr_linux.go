package main

import "syscall"

// dieWithParent makes the kernel kill an abe process when the bench dies,
// even by SIGKILL, so no server outlives a run.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
