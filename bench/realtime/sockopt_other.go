//go:build !linux

package main

import "syscall"

// bindNoPort is Linux's; elsewhere the kernel picks ports at bind time.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
