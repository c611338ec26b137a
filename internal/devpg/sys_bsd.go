//go:build unix && !linux

package devpg

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// procAttr puts the child in its own process group, so that a Ctrl-C meant
// for abe does not reach it directly. These systems have no parent-death
// signal: a postmaster outlives a killed abe, and the next Start stops it.
func procAttr(a *account) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: credential(a)}
}

// psField asks ps for one column about pid; ok is false when ps fails.
func psField(pid int, column string) (string, bool) {
	out, err := exec.Command("ps", "-o", column+"=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}

// looksLikePostgres reports whether pid runs a PostgreSQL server process,
// answering yes when ps cannot tell (see the Linux version for why).
func looksLikePostgres(pid int) bool {
	cmd, ok := psField(pid, "command")
	if !ok || cmd == "" {
		return !ok
	}
	if strings.HasPrefix(cmd, "postgres:") {
		return true
	}
	name := filepath.Base(strings.Fields(cmd)[0])
	return name == "postgres" || name == "postmaster"
}

func isZombie(pid int) bool {
	state, ok := psField(pid, "stat")
	return ok && strings.HasPrefix(state, "Z")
}

// childPIDs is not needed for correctness here: postmaster children notice
// their parent's death and exit on their own.
func childPIDs(int) []int { return nil }
