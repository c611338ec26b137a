package benchkit

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stop asks a child process to shut down with SIGTERM and kills it if it
// has not exited within grace. done receives the result of the child's
// Wait; Stop takes it, so the caller must not wait on done itself
// afterwards.
func Stop(p *os.Process, done <-chan error, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
	select {
	case <-done:
	case <-time.After(grace):
		_ = p.Kill() //nolint:errcheck // it may have exited
		<-done
	}
}

// Memory reads a field of /proc/<pid>/status (VmRSS, VmHWM) in bytes; 0
// where there is no /proc.
func Memory(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64) //nolint:errcheck // 0 is "unknown"
			return kb << 10
		}
	}
	return 0
}

// ClockTick is the unit of the times in /proc (USER_HZ, 100 on Linux).
const ClockTick = 10 * time.Millisecond

// CPUTime is the CPU time (user and system) process pid has used so far;
// 0 where there is no /proc.
func CPUTime(pid int) time.Duration {
	return ProcCPU("/proc/" + strconv.Itoa(pid) + "/stat")
}

// ProcCPU reads utime + stime from a /proc/<pid>/stat file; 0 where the
// file is missing or not of that form.
func ProcCPU(file string) time.Duration {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count the
	// fields after its closing parenthesis (state is field 3; utime and
	// stime are 14 and 15).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * ClockTick
}
