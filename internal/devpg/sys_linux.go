package devpg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// procAttr puts the child in its own process group, so that a Ctrl-C meant
// for abe does not reach it directly (abe shuts it down in order instead),
// and asks the kernel to SIGINT it (fast shutdown) if abe dies.
func procAttr(a *account) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGINT,
		Credential: credential(a),
	}
}

// looksLikePostgres reports whether pid runs a PostgreSQL server process.
// When /proc does not tell (permissions, hidepid), it answers yes: wrongly
// treating a live postmaster as gone would let two servers share a data
// directory.
func looksLikePostgres(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil || len(data) == 0 {
		return true
	}
	argv0, _, _ := bytes.Cut(data, []byte{0})
	name := filepath.Base(string(argv0))
	// Child processes rewrite their title to "postgres: checkpointer" etc.
	return name == "postgres" || name == "postmaster" || strings.HasPrefix(string(argv0), "postgres:")
}

// statFields returns the fields of /proc/PID/stat after the command name,
// which may itself contain spaces and parentheses.
func statFields(pid int) []string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(data[i+1:]))
}

func isZombie(pid int) bool {
	f := statFields(pid)
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

func childPIDs(parent int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// Fields after the name: state, ppid, ...
		if f := statFields(pid); len(f) > 1 && f[1] == strconv.Itoa(parent) {
			pids = append(pids, pid)
		}
	}
	return pids
}
