// Package redistest gives tests a real Redis.
//
// URL returns a server shared by the test binary: ABE_TEST_REDIS_URL when
// set (to a URL, or to "throwaway" to skip the next step); else the Redis on
// 127.0.0.1:6379 when it answers PING; else a throwaway redis-server started
// once and stopped by Main. Tests on a shared server see each other's keys,
// so they must use unique ones (include t.Name()).
//
// Start runs a dedicated throwaway redis-server for one test, for tests that
// need to stop it. Packages that use redistest call Main from TestMain. See
// docs/testing.md.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// EnvURL names the variable that points the harness at a server. Set to
// Throwaway, it makes the harness start a server of its own even when one
// answers on 127.0.0.1:6379.
const EnvURL = "ABE_TEST_REDIS_URL"

// Throwaway is the value of EnvURL that asks for a server of its own.
const Throwaway = "throwaway"

const (
	localURL = "redis://127.0.0.1:6379/0"
	// startTimeout bounds how long a fresh redis-server may take to answer.
	startTimeout = 20 * time.Second
	installHint  = "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server), " +
		"or point the tests at a server with " + EnvURL
)

// shared is the one shared server of this test binary. A test harness is
// the one place a process-wide value is right: every test shares it.
var shared struct {
	once sync.Once
	url  string
	srv  *server
	err  error
}

// Main runs the tests of a package, stops the shared server the harness
// may have started, runs cleanups, and fails the run when goroutines leak.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	StopShared()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "redistest: goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// StopShared stops the shared server if the harness started one. Packages
// whose TestMain is another harness's Main pass it there as a cleanup.
func StopShared() {
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "redistest: stop the shared server:", err)
		}
		shared.srv = nil
	}
}

// URL returns the redis:// URL of the server shared by the test binary,
// starting one if needed.
func URL(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() { shared.url, shared.err = findServer() })
	if shared.err != nil {
		t.Fatalf("redistest: no Redis to test against: %v", shared.err)
	}
	return shared.url
}

// New returns a client on the shared server, closed when the test ends.
func New(t testing.TB) *redis.Client {
	t.Helper()
	return Client(t, URL(t))
}

// Client returns a client on the server at url, closed when the test ends.
func Client(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() }) //nolint:errcheck // closing a client only fails when it is closed already
	return c
}

// Start runs a dedicated redis-server for the test and returns its URL and
// a function that stops it, so a test can see Redis go away. The server is
// stopped at the test's cleanup too; stop may be called more than once.
func Start(t testing.TB) (url string, stop func()) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	srv, err := startServer(ctx, dir)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	stop = func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	}
	t.Cleanup(stop)
	return srv.URL, stop
}

// Restartable runs a dedicated redis-server for the test, like Start,
// and returns a function that restarts it on the same port, so a test
// can see Redis go away and come back. Clients reconnect to the same URL.
func Restartable(t testing.TB) (url string, restart func()) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	srv, err := startServer(ctx, dir)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		_ = srv.Stop() //nolint:errcheck // cleanup
	})
	restart = func() {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if err := srv.Stop(); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		next, err := startOnce(ctx, srv.bin, dir, srv.port)
		if err != nil {
			t.Fatalf("redistest: restart on port %d: %v", srv.port, err)
		}
		srv = next
	}
	return srv.URL, restart
}

func findServer() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	u := os.Getenv(EnvURL)
	if u != "" && u != Throwaway {
		if err := ping(ctx, u); err != nil {
			return "", fmt.Errorf("%s=%s does not answer: %w", EnvURL, u, err)
		}
		return u, nil
	}
	if u != Throwaway && ping(ctx, localURL) == nil {
		return localURL, nil
	}
	dir, err := os.MkdirTemp("", "abe-redistest-")
	if err != nil {
		return "", fmt.Errorf("make a directory for redis-server: %w", err)
	}
	srv, err := startServer(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	srv.removeDir = true
	shared.srv = srv
	return srv.URL, nil
}

// server is a redis-server process started by the harness.
type server struct {
	URL       string
	port      int
	bin       string
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the process has been reaped
	dir       string
	removeDir bool
	stopOnce  sync.Once
	stopErr   error
}

// startServer starts redis-server on a free port of 127.0.0.1, with dir as
// its working directory and persistence off, and returns once it answers
// PING. Stop must be called to end it.
func startServer(ctx context.Context, dir string) (*server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/redis-server"); statErr != nil {
			return nil, errors.New(installHint)
		}
		bin = "/usr/bin/redis-server"
	}
	// Another process may take the port between our probe and the server's
	// bind; the server then exits and we try another port.
	var lastErr error
	for range 5 {
		srv, err := startOnce(ctx, bin, dir, 0)
		if err == nil {
			return srv, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// startOnce starts redis-server on port, or a free one when port is 0.
func startOnce(ctx context.Context, bin, dir string, port int) (*server, error) {
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	logPath := dir + "/redis-" + strconv.Itoa(port) + ".log"
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", logPath,
	)
	// Should the test binary die without cleaning up, the kernel ends the
	// server with it instead of leaving it running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	srv := &server{
		URL:    "redis://127.0.0.1:" + strconv.Itoa(port) + "/0",
		port:   port,
		bin:    bin,
		cmd:    cmd,
		exited: make(chan struct{}),
		dir:    dir,
	}
	go func() {
		_ = cmd.Wait() //nolint:errcheck // a stopped server exits with a signal; Stop reports what matters
		close(srv.exited)
	}()
	if err := srv.await(ctx); err != nil {
		_ = srv.Stop() //nolint:errcheck // the start error is the one to report
		return nil, fmt.Errorf("redis-server on port %d: %w%s", port, err, logTail(logPath))
	}
	return srv, nil
}

// await pings the server until it answers, it exits, or ctx ends.
func (s *server) await(ctx context.Context) error {
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := ping(pctx, s.URL)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return errors.New("exited before it answered")
		case <-ctx.Done():
			return fmt.Errorf("no answer to PING: %w", err)
		case <-retry.C:
		}
	}
}

// Stop ends the server and waits for it to exit.
func (s *server) Stop() error {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited already
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill() //nolint:errcheck // it may have exited in the meantime
			<-s.exited
			s.stopErr = errors.New("redis-server ignored SIGTERM for 10s and was killed")
		}
		if s.removeDir {
			os.RemoveAll(s.dir)
		}
	})
	return s.stopErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func ping(ctx context.Context, url string) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.DialTimeout = 2 * time.Second
	c := redis.NewClient(opts)
	defer c.Close()
	return c.Ping(ctx).Err()
}

// logTail returns the end of the server's log, to explain a failed start.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + strings.TrimSpace(string(b))
}
