package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/abe-stack/abe/bench/internal/benchkit"
)

// filesReserve is how many open files a process keeps for what is not a
// measured socket: its listener, the database pool, the broker, logs.
const filesReserve = 100

// raiseFileLimit sets this process's open-files limit to the hard limit
// and returns it. Go raises its own soft limit at start-up but hands
// children the original one; setting it explicitly makes the abe
// processes inherit the raised limit too.
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("read the open-files limit: %w", err)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("raise the open-files limit to %d: %w", l.Max, err)
	}
	return l.Cur, nil
}

// buildAbe builds the abe command into dir, so that what is measured is
// the binary users run.
func buildAbe(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "abe")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/abe-stack/abe/cmd/abe")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build abe (go build ./cmd/abe): %w\n%s", err, out)
	}
	return bin, nil
}

// secret signs the run's tokens; it dies with the database.
const secret = "abe-bench-realtime-throwaway-signing-key-0123456789"

// appConfig is the application under test: the todo example's
// collections and rules (members of a project read its todos through a
// get() of the project; a field only its owner reads), with what a load
// test needs on top: no rate limits, tokens that outlive the run, and no
// limit on sockets. %s are the listen address, the database URL, the
// broker, the redis URL and further realtime settings.
const appConfig = `
server:
  listen: %s
  rate_limit: { disabled: true }
database:
  url: %q
  max_conns: 10
auth:
  secret: %q
  access_token_ttl: 24h
realtime:
  broker: %s
  redis_url: %q
  max_connections: 0
%sroles:
  admin:     { permissions: ["*"] }
  moderator: { permissions: ["todos:moderate"] }
  user:      { permissions: [], default: true }
collections:
  projects:
    fields:
      name:    { type: text, required: true, max: 200 }
      owner:   { type: relation, collection: users, required: true }
      members: { type: relation, collection: users, many: true }
    rules:
      list:   "auth != null && (record.owner == auth.id || auth.id in record.members)"
      read:   "auth != null && (record.owner == auth.id || auth.id in record.members)"
      create: "auth != null && record.owner == auth.id"
      update: "auth != null && before.owner == auth.id && !('owner' in changes)"
      delete: "auth != null && record.owner == auth.id"
  todos:
    fields:
      project: { type: relation, collection: projects, required: true, on_delete: cascade }
      title:   { type: text, required: true, min: 1, max: 500 }
      done:    { type: bool, default: false }
      tags:    { type: json }
      note:    { type: text, rules: { read: "auth.id == get('projects', record.project).owner" } }
    indexes:
      - { fields: [project, created_at] }
    rules:
      list:   "auth != null && (get('projects', record.project).owner == auth.id || auth.id in get('projects', record.project).members)"
      read:   "auth != null && (get('projects', record.project).owner == auth.id || auth.id in get('projects', record.project).members)"
      create: "auth != null && exists('projects', record.project) && (get('projects', record.project).owner == auth.id || auth.id in get('projects', record.project).members)"
      update: "auth != null && (get('projects', record.project).owner == auth.id || auth.id in get('projects', record.project).members)"
      delete: "auth != null && (get('projects', record.project).owner == auth.id || has_role('moderator'))"
    realtime: true
`

// node is an `abe serve` process.
type node struct {
	name    string
	url     string // http://127.0.0.1:port
	cmd     *exec.Cmd
	logPath string
	done    chan error
	stopped bool
}

// writeConfig writes the abe.yaml of a node on a free port.
func (l *lab) writeConfig(name, broker string) (path, listen string, err error) {
	port, err := freePort()
	if err != nil {
		return "", "", err
	}
	listen = "127.0.0.1:" + strconv.Itoa(port)
	path = filepath.Join(l.tmp, name+".yaml")
	extra := ""
	if l.o.sendQueue > 0 {
		extra = fmt.Sprintf("  send_queue: %d\n", l.o.sendQueue)
	}
	text := fmt.Sprintf(appConfig, listen, l.db.URL, secret, broker, l.o.redis, extra)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, listen, nil
}

// freePort asks the kernel for a port nobody listens on. Another process
// may take it before abe does; that fails the start, loudly.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is this process's environment without what would override the
// generated abe.yaml (ABE_<SECTION>_<KEY> variables, DATABASE_URL).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		// The Go runtime's settings are the bench's to choose, too.
		if strings.HasPrefix(kv, "ABE_") || strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "GOGC=") ||
			strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "GODEBUG=") || strings.HasPrefix(kv, "GOMAXPROCS=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// abeCommand runs the abe binary to completion.
func (l *lab) abeCommand(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, l.bin, args...)
	cmd.Env = childEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("abe %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// startNode runs `abe serve` with a generated configuration and waits
// until it answers /readyz.
func (l *lab) startNode(ctx context.Context, name, broker string) (*node, error) {
	cfgPath, listen, err := l.writeConfig(name, broker)
	if err != nil {
		return nil, err
	}
	n := &node{name: name, url: "http://" + listen, logPath: filepath.Join(l.tmp, name+".log"), done: make(chan error, 1)}
	logFile, err := os.Create(n.logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logFile.Close() // the child has its own descriptor
	n.cmd = exec.Command(l.bin, "serve", "--config", cfgPath, "--log-level", l.o.logLevel)
	// abe's /metrics has no Go runtime figures; the collector's trace
	// in the log tells the live heap and the goroutine stacks.
	n.cmd.Env = append(childEnv(), "GODEBUG=gctrace=1")
	if l.o.goMemLimit != "" {
		n.cmd.Env = append(n.cmd.Env, "GOMEMLIMIT="+l.o.goMemLimit)
	}
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	n.cmd.SysProcAttr = dieWithParent()
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	l.nodes = append(l.nodes, n)
	if err := n.waitReady(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// waitReady waits until the node answers /readyz.
func (n *node) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := client.Get(n.url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the status matters
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-n.done:
			n.stopped = true
			return fmt.Errorf("%s exited before it was ready (%v):\n%s", n.name, err, n.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready within a minute:\n%s", n.name, n.logTail())
		}
	}
}

// stop asks the node to shut down, and kills it if it does not.
func (n *node) stop() {
	if n.stopped {
		return
	}
	n.stopped = true
	benchkit.Stop(n.cmd.Process, n.done, 30*time.Second)
}

func (l *lab) stopAll() {
	for _, n := range l.nodes {
		n.stop()
	}
}

// logTail is the end of the node's log, for errors.
func (n *node) logTail() string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// gcTrace is what the Go runtime's collector last reported (GODEBUG=gctrace=1).
type gcTrace struct {
	cycles int
	// live is the heap marked live by the last collection, stacks the
	// goroutine stacks it scanned, both in bytes.
	live, stacks int64
}

// lastGC reads the last collector trace line of the node's log, which
// looks like "gc 12 @3.2s 1%: ... ms cpu, 450->460->230 MB, 460 MB goal,
// 40 MB stacks, 0 MB globals, 2 P".
func (n *node) lastGC() (gcTrace, bool) {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return gcTrace{}, false
	}
	var t gcTrace
	found := false
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "gc ") {
			continue
		}
		var g gcTrace
		ok := true
		for part := range strings.SplitSeq(line, ", ") {
			switch {
			case strings.HasSuffix(part, " MB") && strings.Contains(part, "->"):
				heap := strings.Split(strings.TrimSuffix(part, " MB"), "->")
				v, err := strconv.ParseInt(heap[len(heap)-1], 10, 64)
				ok = ok && err == nil
				g.live = v << 20
			case strings.HasSuffix(part, " MB stacks"):
				v, err := strconv.ParseInt(strings.TrimSuffix(part, " MB stacks"), 10, 64)
				ok = ok && err == nil
				g.stacks = v << 20
			}
		}
		if ok {
			t.live, t.stacks = g.live, g.stacks
			t.cycles++
			found = true
		}
	}
	return t, found
}

func (n *node) memory(field string) int64 { return benchkit.Memory(n.cmd.Process.Pid, field) }

func (n *node) cpuTime() time.Duration { return benchkit.CPUTime(n.cmd.Process.Pid) }

// metric reads one unlabelled sample from the node's /metrics.
func (n *node) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s /metrics: %w", n.name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s /metrics: %w", n.name, err)
	}
	return 0, fmt.Errorf("%s /metrics has no %s", n.name, name)
}

// waitConnections waits until the node counts want open sockets, so a
// measurement does not start while closes are still being processed.
func (n *node) waitConnections(ctx context.Context, want int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		v, err := n.metric(ctx, "abe_realtime_connections")
		if err != nil {
			return err
		}
		if int(v) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s holds %d sockets a minute later, want %d", n.name, int(v), want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startPerf samples the node's stacks with perf record until stop is
// called, into dir/<name>.perf.data; `perf report -i` reads it.
func startPerf(dir, name string, n *node) (stop func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("-perf: %w", err)
	}
	out := filepath.Join(dir, name+".perf.data")
	cmd := exec.Command("perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-p", strconv.Itoa(n.cmd.Process.Pid), "-o", out)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("-perf: start perf record: %w", err)
	}
	// perf needs a moment to attach before the first write.
	time.Sleep(500 * time.Millisecond)
	return func() {
		_ = cmd.Process.Signal(os.Interrupt) //nolint:errcheck // it may have failed already
		// perf ends by the interrupt it was sent once it has written
		// its file; only other failures are worth telling.
		var exit *exec.ExitError
		if err := cmd.Wait(); err != nil && (!errors.As(err, &exit) || exit.ExitCode() != -1) {
			fmt.Fprintf(os.Stderr, "perf record: %v\n%s", err, log.String())
		}
	}, nil
}
