package main

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h), which the
// syscall package does not name.
const ipBindAddressNoPort = 24

// bindNoPort lets a socket bound to a source address take its port at
// connect time, where the port only has to be unique for the destination,
// instead of at bind time, where it must be unique for the address.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
