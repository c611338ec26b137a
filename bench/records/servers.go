package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/bench/internal/benchkit"
)

// server is a server process the bench started.
type server struct {
	name  string
	url   string // http://host:port
	pprof string // host:port of its profiling endpoint, or ""
	cmd   *exec.Cmd
	// stdin is held open for the child's life: it stops when it closes.
	stdin io.WriteCloser
	done  chan error
}

// startServer runs this binary with a serve subcommand and waits for it
// to say where it listens.
func startServer(ctx context.Context, sub string, args ...string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", sub, err)
	}
	cmd := exec.Command(exe, append([]string{sub}, args...)...)
	cmd.Stderr = os.Stderr
	// The child stops when its stdin closes, so a bench that dies, even
	// by SIGKILL, leaves no server behind.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", sub, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", sub, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", sub, err)
	}
	s := &server{name: strings.TrimPrefix(sub, "serve-"), cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() { s.done <- cmd.Wait() }()
	timeout := time.After(time.Minute)
	for s.url == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				return nil, fmt.Errorf("%s exited before listening: %w", sub, <-s.done)
			}
			if addr, ok := strings.CutPrefix(line, "listening "); ok {
				s.url = "http://" + addr
			} else if addr, ok := strings.CutPrefix(line, "pprof "); ok {
				s.pprof = addr
			}
		case <-timeout:
			s.stop()
			return nil, fmt.Errorf("%s did not listen within a minute", sub)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	return s, nil
}

// stop asks the server to shut down, and kills it if it does not.
func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	benchkit.Stop(s.cmd.Process, s.done, 20*time.Second)
}

// memory reads a field of /proc/<pid>/status of the server (VmRSS,
// VmHWM) in bytes; 0 where there is no /proc.
func (s *server) memory(field string) int64 { return benchkit.Memory(s.cmd.Process.Pid, field) }

// cpuTime is the CPU time (user and system) the server has used so far;
// 0 where there is no /proc.
func (s *server) cpuTime() time.Duration { return benchkit.CPUTime(s.cmd.Process.Pid) }

// postgresCPU is the CPU time used so far by each process named
// postgres on the machine (the bench's backends, the server's own workers,
// and any other client's backends), by pid; nil where there is no /proc.
func postgresCPU() map[string]time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := map[string]time.Duration{}
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(b)) != "postgres" {
			continue
		}
		out[d.Name()] = benchkit.ProcCPU("/proc/" + d.Name() + "/stat")
	}
	return out
}

// postgresCPUSince is the CPU time the postgres processes used since
// before was taken: the growth of those alive at both ends, and the whole
// of those started since. What a process that exited in between used is
// lost.
func postgresCPUSince(before map[string]time.Duration) time.Duration {
	var sum time.Duration
	for pid, t := range postgresCPU() {
		sum += t - before[pid]
	}
	return sum
}

// machineCPU is the busy and total CPU time of the whole machine so far,
// from the first line of /proc/stat; zeros where there is none.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0
	}
	// user nice system idle iowait irq softirq steal ...; guest time is
	// already in user.
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += time.Duration(n) * benchkit.ClockTick
		if i != 3 && i != 4 { // idle, iowait
			busy += time.Duration(n) * benchkit.ClockTick
		}
	}
	return busy, total
}

// serveFlags are what both servers take.
type serveFlags struct {
	db, pprof string
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.db, "db", "", "database URL")
	fs.StringVar(&f.pprof, "pprof", "", "address for net/http/pprof, empty for none")
}

// listen opens the server's listener on a free port and the profiling
// endpoint, and tells the bench both addresses on stdout. The returned
// context ends when the bench closes stdin.
func (f *serveFlags) listen(ctx context.Context) (net.Listener, context.Context, error) {
	if f.pprof != "" {
		pl, err := net.Listen("tcp", f.pprof)
		if err != nil {
			return nil, nil, fmt.Errorf("pprof: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go http.Serve(pl, mux) //nolint:errcheck // ends with the process
		fmt.Printf("pprof %s\n", pl.Addr())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) //nolint:errcheck // EOF or error: the bench is gone
		cancel()
	}()
	return ln, ctx, nil
}

// serveAbe serves the bench application with abe.New, as `abe serve`
// does, logging to a file.
func serveAbe(ctx context.Context, args []string) error {
	var f serveFlags
	var logPath, level string
	fs := flag.NewFlagSet("serve-abe", flag.ContinueOnError)
	f.register(fs)
	fs.StringVar(&logPath, "log", "", "log file")
	fs.StringVar(&level, "log-level", "warn", "log level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer logFile.Close()
	cfg, err := loadConfig(f.db)
	if err != nil {
		return err
	}
	app, err := abe.New(ctx, cfg, &abe.Options{
		Logger:  slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: l})),
		Version: "bench",
	})
	if err != nil {
		return err
	}
	defer app.Close()
	ln, ctx, err := f.listen(ctx)
	if err != nil {
		return err
	}
	if err := app.Serve(ctx, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
