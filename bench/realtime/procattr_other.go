//go:build !linux

package main

import "syscall"

// dieWithParent has no portable equivalent: elsewhere a killed bench may
// leave its abe processes running.
func dieWithParent() *syscall.SysProcAttr { return nil }
