package devpg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a child started by spawn.
type process struct {
	pid  int
	done chan struct{} // closed once the child has been reaped
	err  error         // result of exec.Cmd.Wait; read it only after done is closed
}

// spawn starts cmd and reaps it in the background.
//
// The parent-death signal (Pdeathsig) fires when the thread that forked the
// child exits, not when the process does, and the Go runtime retires threads
// whose goroutine exits while locked to them. Forking and waiting from one
// locked goroutine pins the forking thread for exactly the child's lifetime,
// so the signal fires only when abe itself dies.
func spawn(cmd *exec.Cmd) (*process, error) {
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// exitedNow reports whether the channel is closed, without blocking.
func exitedNow(exited <-chan struct{}) bool {
	select {
	case <-exited:
		return true
	default:
		return false
	}
}

// terminate shuts a postmaster down: SIGINT (fast shutdown: roll back open
// transactions, checkpoint, exit), then SIGQUIT (immediate shutdown, crash
// recovery on next start) after quitAfter, then SIGKILL for it and its
// children after killAfter more. When ctx ends first it skips straight to
// SIGKILL, since leaving a server behind is worse than an unclean shutdown.
// exited must be closed once the process is gone.
func terminate(ctx context.Context, pid int, exited <-chan struct{}) error {
	if exitedNow(exited) {
		return nil
	}
	if err := signalPID(pid, syscall.SIGINT); err != nil {
		return fmt.Errorf("stopping postgres (pid %d): %w", pid, err)
	}
	if waitExit(ctx, exited, quitAfter) {
		return nil
	}
	if ctx.Err() == nil {
		if err := signalPID(pid, syscall.SIGQUIT); err != nil {
			return fmt.Errorf("stopping postgres (pid %d) with SIGQUIT: %w", pid, err)
		}
		if waitExit(ctx, exited, killAfter) {
			return nil
		}
	}
	killTree(pid)
	if !waitExit(context.Background(), exited, killAfter) {
		return fmt.Errorf("postgres (pid %d) did not exit even after SIGKILL", pid)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres (pid %d) was killed because stopping it was cut short: %w", pid, err)
	}
	return nil
}

// waitExit waits up to d for exited to close; false when d passes or ctx ends
// first.
func waitExit(ctx context.Context, exited <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-exited:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return exitedNow(exited)
	}
}

// watchExit returns a channel closed once pid is gone, for processes that
// are not our children and so cannot be waited for. Closing stop ends the
// watch.
func watchExit(pid int, stop <-chan struct{}) <-chan struct{} {
	exited := make(chan struct{})
	go func() {
		t := time.NewTicker(pollInterval)
		defer t.Stop()
		for processAlive(pid) {
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
		close(exited)
	}()
	return exited
}

// postmasterInfo is what abe needs from DIR/postmaster.pid.
type postmasterInfo struct {
	pid  int
	port int // 0 when the file does not record it (yet)
}

// readPostmasterPID reads dir/postmaster.pid; ok is false when it does not
// exist. The postmaster creates the file before writing to it, so an empty
// or short file is re-read for a moment before giving up.
func readPostmasterPID(ctx context.Context, dir string) (info postmasterInfo, ok bool, err error) {
	path := filepath.Join(dir, "postmaster.pid")
	deadline := time.Now().Add(time.Second)
	for {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return postmasterInfo{}, false, nil
		}
		if err != nil {
			return postmasterInfo{}, false, fmt.Errorf("reading %s: %w", path, err)
		}
		lines := strings.Split(string(data), "\n")
		pid, pidErr := strconv.Atoi(strings.TrimSpace(lines[0]))
		// Line 4 holds the port (see PostgreSQL's pidfile.h).
		if pidErr == nil && pid > 0 && len(lines) >= 4 {
			port, _ := strconv.Atoi(strings.TrimSpace(lines[3]))
			return postmasterInfo{pid: pid, port: port}, true, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if pidErr == nil && pid > 0 {
				return postmasterInfo{pid: pid}, true, nil
			}
			return postmasterInfo{}, false, fmt.Errorf("%s does not start with a process id: if no server is running on this directory, remove the file", path)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollInterval):
		}
	}
}

// ownerContent is what Start writes to the owner file: the owning process
// first (that is what other Start calls check), then the postmaster, so that
// Stop removes the file only while it still describes its own server, then
// the socket directory, so that the next Start can remove it when the owner
// died without calling Stop.
func ownerContent(postmasterPID int, sockDir string) string {
	return fmt.Sprintf("%d\n%d\n%s\n", os.Getpid(), postmasterPID, sockDir)
}

// ownerRecord is a parsed owner file.
type ownerRecord struct {
	pid     int // 0 when there is no usable owner file
	sockDir string
}

func readOwner(path string) ownerRecord {
	data, err := os.ReadFile(path)
	if err != nil {
		return ownerRecord{}
	}
	lines := strings.Split(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return ownerRecord{}
	}
	rec := ownerRecord{pid: pid}
	if len(lines) > 2 {
		rec.sockDir = strings.TrimSpace(lines[2])
	}
	return rec
}

// writeFileAtomic replaces path so that readers never see a partial file.
func writeFileAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// removeOwnerFile removes path if it still holds content.
func removeOwnerFile(path, content string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if string(data) != content {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// logTail returns the last lines written to path from offset on, indented
// for inclusion in an error message.
func logTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	// Bound the read: a server stuck in a crash loop can write a lot.
	const maxTail = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > maxTail {
		if _, err := f.Seek(-maxTail, io.SeekEnd); err != nil {
			return ""
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxTail)
	for sc.Scan() {
		if line := strings.TrimRight(sc.Text(), " \t\r"); line != "" {
			lines = append(lines, line)
		}
	}
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n    " + strings.Join(lines, "\n    ")
}
