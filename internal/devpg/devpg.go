// Package devpg runs a local PostgreSQL cluster from the system's server
// binaries: a persistent one for `abe dev` (data in .abe/pg next to the
// project configuration) and throwaway ones for tests (a temporary directory
// with durability switched off).
//
// The server runs as a child process rather than as a daemon, so its
// lifetime follows the caller's: Stop shuts it down, and on Linux the kernel
// asks it to shut down (SIGINT) when the caller dies without calling Stop.
// A later Start on the same directory stops any server a crashed caller left
// behind, or attaches to the server of a caller that is still running.
//
// Next to the data directory DIR, a cluster uses three files:
//
//	DIR.log    output of initdb and of the server, for the most recent start
//	DIR.owner  pid of the process that owns the running server
//	DIR.lock   serialises Start calls on DIR
//
// so for DIR .abe/pg they are .abe/pg.log, .abe/pg.owner and .abe/pg.lock.
// They live outside DIR because initdb insists on an empty directory.
//
// PostgreSQL refuses to run as root. When the caller is root, initdb and the
// server run as the system user postgres, or as abe-postgres (created when
// missing), and DIR is handed over to that user.
package devpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// superuser is the database superuser initdb creates; connections use
	// trust authentication, so no password is involved.
	superuser           = "postgres"
	defaultStartTimeout = 30 * time.Second
	// quitAfter and killAfter space out the escalation in Stop: SIGINT,
	// then SIGQUIT, then SIGKILL.
	quitAfter    = 10 * time.Second
	killAfter    = 5 * time.Second
	pollInterval = 50 * time.Millisecond
	pingTimeout  = 2 * time.Second
	// lockTimeout bounds the wait for another Start on the same directory,
	// which may be running initdb and then waiting for its server.
	lockTimeout  = 2 * time.Minute
	portAttempts = 5
	logTailLines = 20
	// maxSocketDirLen keeps "DIR/.s.PGSQL.65535" within the 104 bytes
	// (macOS; 108 on Linux) a unix socket path may have.
	maxSocketDirLen = 80
	socketDirPrefix = "abe-pg-"
	// duplicateDatabase is the SQLSTATE of CREATE DATABASE racing another.
	duplicateDatabase = "42P04"
)

// Options configure a cluster.
type Options struct {
	// Dir is the data directory (required). It is created if missing and
	// initialised if it holds no cluster. Relative paths are resolved
	// against the working directory.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one. When Start
	// attaches to a running server, that server's port wins.
	Port int
	// Database is created after start when it does not exist yet. The
	// postgres database always exists.
	Database string
	// Fast trades durability for speed, for tests: initdb --no-sync, and
	// fsync, synchronous_commit and full_page_writes off.
	Fast bool
	// Log receives short progress lines such as
	// "postgres: initialising .abe/pg (PostgreSQL 15) as user postgres".
	// nil discards them.
	Log io.Writer
	// StartTimeout bounds how long Start waits for the server to accept
	// connections. 0 means 30s.
	StartTimeout time.Duration
}

// Cluster is a running PostgreSQL server, started or attached to by Start.
// Its methods are safe for concurrent use.
type Cluster struct {
	dir      string
	port     int
	pid      int
	runAs    string
	logPath  string
	out      io.Writer
	attached bool

	// Set only when this Cluster started the server.
	proc      *process
	sockDir   string
	ownerPath string
	owner     string // content written to ownerPath

	stopOnce sync.Once
	stopErr  error
}

// Port returns the TCP port the server listens on at 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// PID returns the process id of the postmaster.
func (c *Cluster) PID() int { return c.pid }

// Dir returns the absolute data directory.
func (c *Cluster) Dir() string { return c.dir }

// LogPath returns the file holding the server's output (DIR.log).
func (c *Cluster) LogPath() string { return c.logPath }

// Attached reports whether Start found the server already running on behalf
// of another live process and attached to it; Stop then leaves it running.
func (c *Cluster) Attached() bool { return c.attached }

// RunAs returns the OS user the server runs as, or "" when it runs as the
// current user.
func (c *Cluster) RunAs() string { return c.runAs }

// Done returns a channel closed when the server process exits, for callers
// that want to notice a crash. It is nil, and so never ready, for an
// attached cluster, whose process is not ours to wait for.
func (c *Cluster) Done() <-chan struct{} {
	if c.proc == nil {
		return nil
	}
	return c.proc.done
}

// URL returns a connection URL for database ("" means postgres), such as
// postgres://postgres@127.0.0.1:54321/app?sslmode=disable.
func (c *Cluster) URL(database string) string {
	if database == "" {
		database = "postgres"
	}
	return databaseURL(c.port, database)
}

func databaseURL(port int, database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Stop shuts the server down: SIGINT (fast shutdown), then SIGQUIT after
// 10s, then SIGKILL after 5s more; when ctx ends first it kills the server
// at once, so pass a live context (say, a timeout), not the one whose
// cancellation prompted the shutdown. It then removes the socket directory
// and the owner file. Stop is idempotent, safe to call concurrently, and does
// nothing for an attached cluster.
func (c *Cluster) Stop(ctx context.Context) error {
	if c.attached {
		return nil
	}
	c.stopOnce.Do(func() {
		wasRunning := !exitedNow(c.proc.done)
		c.stopErr = c.halt(ctx)
		switch {
		case c.stopErr != nil:
		case wasRunning:
			fmt.Fprintf(c.out, "postgres: stopped\n")
		default:
			fmt.Fprintf(c.out, "postgres: server had already exited (%v); see %s\n", exitStatus(c.proc.err), c.logPath)
		}
	})
	return c.stopErr
}

// halt stops the process this Cluster started and removes what Start
// created for it.
func (c *Cluster) halt(ctx context.Context) error {
	err := terminate(ctx, c.pid, c.proc.done)
	if rmErr := os.RemoveAll(c.sockDir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("removing socket directory: %w", rmErr))
	}
	if c.owner != "" {
		err = errors.Join(err, removeOwnerFile(c.ownerPath, c.owner))
	}
	return err
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Start finds the binaries, initialises Dir when it holds no cluster, stops
// a stale postmaster left by a crashed run, starts postgres as a child
// process and waits until it accepts connections. If a server another live
// process started is already running on Dir, Start attaches to it instead
// (see Cluster.Attached). On error no server process started by Start is
// left running.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := platformSupported(); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("starting postgres: no data directory given (Options.Dir is empty)")
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("starting postgres: port %d is out of range (use 1-65535, or 0 to pick a free one)", opts.Port)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving data directory %s: %w", opts.Dir, err)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	out := opts.Log
	if out == nil {
		out = io.Discard
	}
	s := &starter{opts: opts, dir: dir, display: filepath.Clean(opts.Dir), out: out}
	return s.start(ctx)
}

// starter holds what Start works out along the way.
type starter struct {
	opts    Options
	dir     string // absolute
	display string // as the caller wrote it, for messages
	out     io.Writer
	bin     string
	version string   // major version of the binaries
	runAs   *account // nil: run as the current user
	logFile *os.File
}

func (s *starter) logf(format string, args ...any) {
	fmt.Fprintf(s.out, "postgres: "+format+"\n", args...)
}

func (s *starter) start(ctx context.Context) (*Cluster, error) {
	var err error
	if s.bin, err = FindBinaries(); err != nil {
		return nil, err
	}
	if s.version, err = serverVersion(ctx, s.bin); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		if s.runAs, err = ensureAccount(ctx); err != nil {
			return nil, err
		}
		s.logf("running as user %s because abe runs as root", s.runAs.name)
	}
	// Parents get the usual 0755 so that the server user can pass through
	// them; only the data directory itself is private.
	if err := os.MkdirAll(filepath.Dir(s.dir), 0o755); err != nil {
		return nil, fmt.Errorf("creating the parent of data directory %s: %w", s.display, err)
	}
	if err := os.Mkdir(s.dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("creating data directory %s: %w", s.display, err)
	}
	if s.runAs != nil {
		if err := checkTraversable(s.dir, s.runAs); err != nil {
			return nil, err
		}
	}
	unlock, err := lockFile(ctx, s.dir+".lock", lockTimeout)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if c, err := s.handleRunning(ctx); c != nil || err != nil {
		return c, err
	}

	logPath := s.dir + ".log"
	s.logFile, err = os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening server log %s: %w", logPath, err)
	}
	// The children hold their own descriptors; ours is only for them to
	// inherit.
	defer s.logFile.Close()

	if err := s.prepareDir(ctx); err != nil {
		return nil, err
	}
	return s.launch(ctx)
}

// handleRunning deals with what an earlier run left on the directory: it
// attaches to a running server whose owner is alive, stops one whose owner
// is gone, and removes the leftovers of an owner that died without calling
// Stop. It returns a nil Cluster when Start should go on to start a server.
func (s *starter) handleRunning(ctx context.Context) (*Cluster, error) {
	ownerPath := s.dir + ".owner"
	owner := readOwner(ownerPath)
	ownerAlive := owner.pid > 0 && processAlive(owner.pid)

	info, ok, err := readPostmasterPID(ctx, s.dir)
	if err != nil {
		return nil, err
	}
	switch {
	case !ok || !processAlive(info.pid):
		// Nothing runs; postgres replaces a lock file whose process is gone.
	case !looksLikePostgres(info.pid):
		// The pid has been reused by an unrelated process, which postgres
		// would take for a running server and refuse to start.
		path := filepath.Join(s.dir, "postmaster.pid")
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale %s: %w", path, err)
		}
	case ownerAlive:
		return s.attach(ctx, info, owner.pid)
	default:
		s.logf("stopping the server (pid %d) a crashed run left in %s", info.pid, s.display)
		stop := make(chan struct{})
		defer close(stop)
		if err := terminate(ctx, info.pid, watchExit(info.pid, stop)); err != nil {
			return nil, fmt.Errorf("stopping the stale server in %s: %w", s.display, err)
		}
	}

	if owner.pid > 0 && !ownerAlive {
		// Only directories that look like ours: the file is plain text
		// anyone with write access to the project could have edited.
		if d := owner.sockDir; filepath.IsAbs(d) && strings.HasPrefix(filepath.Base(d), socketDirPrefix) {
			_ = os.RemoveAll(d)
		}
		if err := os.Remove(ownerPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale owner file %s: %w", ownerPath, err)
		}
	}
	return nil, nil
}

func (s *starter) attach(ctx context.Context, info postmasterInfo, owner int) (*Cluster, error) {
	if info.port == 0 {
		return nil, fmt.Errorf("a server (pid %d) started by process %d is running in %s, but its postmaster.pid records no port: stop process %d or set DATABASE_URL",
			info.pid, owner, s.display, owner)
	}
	s.logf("using the server already running in %s on port %d (pid %d, started by process %d)", s.display, info.port, info.pid, owner)
	stop := make(chan struct{})
	defer close(stop)
	if err := waitReady(ctx, info.port, s.dir, watchExit(info.pid, stop), s.opts.StartTimeout); err != nil {
		return nil, fmt.Errorf("the server in %s (pid %d, port %d, started by process %d) does not accept connections: %w",
			s.display, info.pid, info.port, owner, err)
	}
	if err := ensureDatabase(ctx, info.port, s.opts.Database); err != nil {
		return nil, err
	}
	c := &Cluster{
		dir:      s.dir,
		port:     info.port,
		pid:      info.pid,
		logPath:  s.dir + ".log",
		out:      s.out,
		attached: true,
	}
	if s.runAs != nil {
		c.runAs = s.runAs.name
	}
	return c, nil
}

// prepareDir makes the directory usable by the server user and initialises
// it when it holds no cluster.
func (s *starter) prepareDir(ctx context.Context) error {
	versionFile := filepath.Join(s.dir, "PG_VERSION")
	data, err := os.ReadFile(versionFile)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", versionFile, err)
	}

	if s.runAs != nil {
		if err := chownTree(s.dir, s.runAs); err != nil {
			return err
		}
	} else if exists {
		if err := checkOwnedByUs(s.dir, s.display); err != nil {
			return err
		}
	}

	if exists {
		if have := strings.TrimSpace(string(data)); have != s.version {
			return fmt.Errorf("%s holds a PostgreSQL %s cluster but the server binaries in %s are PostgreSQL %s: install PostgreSQL %s, or remove %s to start afresh (its data will be lost)",
				s.display, have, s.bin, s.version, have, s.display)
		}
		return nil
	}

	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("reading data directory %s: %w", s.display, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty but holds no PostgreSQL cluster (it has no PG_VERSION): empty or remove it, or choose another data directory", s.display)
	}
	return s.initdb(ctx)
}

// checkOwnedByUs catches a directory a root run handed to the server user,
// for which postgres would only say "Permission denied".
func checkOwnedByUs(dir, display string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("checking data directory %s: %w", display, err)
	}
	uid, _, ok := fileOwner(fi)
	if !ok || int(uid) == os.Geteuid() {
		return nil
	}
	owner := strconv.FormatUint(uint64(uid), 10)
	if u, err := lookupUID(owner); err == nil {
		owner = u
	}
	return fmt.Errorf("data directory %s belongs to user %s, not to you (a run as root hands it to the postgres user): run abe as %s, or take it over with `sudo chown -R $(id -un) %s`",
		display, owner, owner, display)
}

func (s *starter) initdb(ctx context.Context) error {
	who := ""
	if s.runAs != nil {
		who = " as user " + s.runAs.name
	}
	s.logf("initialising %s (PostgreSQL %s)%s", s.display, s.version, who)

	offset, err := s.logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("writing server log: %w", err)
	}
	args := []string{"-D", s.dir, "-U", superuser, "-A", "trust", "-E", "UTF8", "--no-locale"}
	if s.opts.Fast {
		args = append(args, "--no-sync")
	}
	cmd := s.command("initdb", args...)
	p, err := spawn(cmd)
	if err != nil {
		return fmt.Errorf("initdb in %s: %w", s.display, err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		// initdb cleans up after itself on SIGINT, which terminate sends
		// first; clearDir covers the escalation to SIGKILL.
		_ = terminate(context.Background(), p.pid, p.done)
		s.clearDir()
		return fmt.Errorf("initdb in %s: %w", s.display, ctx.Err())
	}
	if p.err != nil {
		// The directory was empty before, so nothing of value is lost, and
		// a half-made cluster would only block the next attempt.
		s.clearDir()
		return fmt.Errorf("initdb in %s: %w; last lines of %s:%s", s.display, p.err, s.logFile.Name(), logTail(s.logFile.Name(), offset))
	}
	return nil
}

// clearDir empties the data directory after a failed initdb. Errors are
// ignored: the caller is already reporting the failure that matters.
func (s *starter) clearDir() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(s.dir, e.Name()))
	}
}

// command prepares a server binary to run as the server user, with its
// output going to the log file.
func (s *starter) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = serverEnv()
	cmd.Stdout = s.logFile
	cmd.Stderr = s.logFile
	cmd.SysProcAttr = procAttr(s.runAs)
	return cmd
}

// serverEnv is the caller's environment with untranslated messages, so that
// logs are greppable (Start looks for "Address already in use") and match
// what users search the web for.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LC_ALL=") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

// portInUseError marks a start that failed because another program took the
// port between freePort and the server binding it.
type portInUseError struct{ err error }

func (e *portInUseError) Error() string { return e.err.Error() }
func (e *portInUseError) Unwrap() error { return e.err }

func (s *starter) launch(ctx context.Context) (*Cluster, error) {
	auto := s.opts.Port == 0
	port := s.opts.Port
	for attempt := 1; ; attempt++ {
		if auto {
			var err error
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		c, err := s.launchOnce(ctx, port, auto)
		var inUse *portInUseError
		if err == nil || !errors.As(err, &inUse) || attempt >= portAttempts {
			return c, err
		}
		s.logf("port %d was taken before the server could use it; trying another", port)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
	}
	return port, nil
}

func (s *starter) launchOnce(ctx context.Context, port int, autoPort bool) (*Cluster, error) {
	offset, err := s.logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("writing server log: %w", err)
	}
	sockDir, err := makeSocketDir(s.runAs)
	if err != nil {
		return nil, err
	}
	args := []string{"-D", s.dir, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1", "-k", sockDir}
	if s.opts.Fast {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := s.command("postgres", args...)
	p, err := spawn(cmd)
	if err != nil {
		_ = os.RemoveAll(sockDir)
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	c := &Cluster{
		dir:       s.dir,
		port:      port,
		pid:       p.pid,
		logPath:   s.logFile.Name(),
		out:       s.out,
		proc:      p,
		sockDir:   sockDir,
		ownerPath: s.dir + ".owner",
	}
	if s.runAs != nil {
		c.runAs = s.runAs.name
	}
	s.logf("starting PostgreSQL %s on 127.0.0.1:%d (data %s, log %s.log)", s.version, port, s.display, s.display)

	if err := waitReady(ctx, port, s.dir, p.done, s.opts.StartTimeout); err != nil {
		exited := exitedNow(p.done)
		_ = c.halt(context.Background())
		tail := logTail(c.logPath, offset)
		switch {
		case exited && strings.Contains(tail, "Address already in use"):
			if autoPort {
				return nil, &portInUseError{fmt.Errorf("postgres could not listen on 127.0.0.1:%d, which another program took after it was found free; last lines of %s:%s",
					port, c.logPath, tail)}
			}
			return nil, fmt.Errorf("postgres could not listen on 127.0.0.1:%d because another program uses it: choose another port, or 0 to pick a free one; last lines of %s:%s",
				port, c.logPath, tail)
		case exited:
			return nil, fmt.Errorf("postgres exited during startup (%s); last lines of %s:%s", exitStatus(p.err), c.logPath, tail)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("starting postgres in %s: %w", s.display, ctx.Err())
		default:
			return nil, fmt.Errorf("postgres did not accept connections on port %d: %w; last lines of %s:%s", port, err, c.logPath, tail)
		}
	}

	c.owner = ownerContent(p.pid, sockDir)
	if err := writeFileAtomic(c.ownerPath, c.owner); err != nil {
		return nil, errors.Join(err, c.halt(context.Background()))
	}
	if err := ensureDatabase(ctx, port, s.opts.Database); err != nil {
		return nil, errors.Join(err, c.halt(context.Background()))
	}
	s.logf("ready on port %d", port)
	return c, nil
}

// makeSocketDir creates a fresh, short directory for the server's unix
// socket: the data directory's path may be too long for a socket address,
// and /var/run/postgresql may be missing or belong to another server.
func makeSocketDir(a *account) (string, error) {
	var errs []error
	for _, parent := range []string{os.TempDir(), "/tmp"} {
		dir, err := os.MkdirTemp(parent, socketDirPrefix+"*")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(dir) > maxSocketDirLen {
			errs = append(errs, fmt.Errorf("%s is too long for a unix socket path", dir))
			_ = os.Remove(dir)
			continue
		}
		if a != nil {
			if err := checkTraversable(dir, a); err != nil {
				errs = append(errs, err)
				_ = os.Remove(dir)
				continue
			}
			if err := os.Chown(dir, int(a.uid), int(a.gid)); err != nil {
				_ = os.Remove(dir)
				return "", fmt.Errorf("handing socket directory %s to user %s: %w", dir, a.name, err)
			}
		}
		return dir, nil
	}
	return "", fmt.Errorf("creating a socket directory for postgres: %w", errors.Join(errs...))
}

// waitReady polls until the server on port, serving dataDir, accepts
// connections. It gives up when exited closes, ctx ends or timeout passes.
func waitReady(ctx context.Context, port int, dataDir string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	// Abort a connection attempt when the server exits: something else may
	// hold the port and accept without ever answering.
	pingCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-pingCtx.Done():
		}
	}()
	for {
		lastErr := ping(pingCtx, port, dataDir)
		if lastErr == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not ready after %s: %w", timeout, lastErr)
		case <-tick.C:
		}
	}
}

// ping connects to the server on port and checks that it serves dataDir:
// with a fixed port, another server may answer there while ours is still
// failing to bind.
func ping(ctx context.Context, port int, dataDir string) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	conn, err := pgconn.Connect(ctx, databaseURL(port, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, "SHOW data_directory").ReadAll()
	if err != nil {
		return err
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return errors.New("SHOW data_directory returned no row")
	}
	served := string(res[0].Rows[0][0])
	if served == dataDir {
		return nil
	}
	a, errA := os.Stat(served)
	b, errB := os.Stat(dataDir)
	if errA == nil && errB == nil && os.SameFile(a, b) {
		return nil
	}
	return fmt.Errorf("port %d is served by another server (data directory %s)", port, served)
}

// ensureDatabase creates database unless it exists already.
func ensureDatabase(ctx context.Context, port int, database string) error {
	if database == "" || database == "postgres" {
		return nil
	}
	conn, err := pgconn.Connect(ctx, databaseURL(port, "postgres"))
	if err != nil {
		return fmt.Errorf("connecting to create database %q: %w", database, err)
	}
	defer conn.Close(ctx)
	// Checking first keeps an "already exists" ERROR out of the server log
	// on every restart of a persistent cluster.
	res := conn.ExecParams(ctx, "SELECT 1 FROM pg_database WHERE datname = $1", [][]byte{[]byte(database)}, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("checking whether database %q exists: %w", database, res.Err)
	}
	if len(res.Rows) > 0 {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{database}.Sanitize()).ReadAll()
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == duplicateDatabase) {
		return fmt.Errorf("creating database %q: %w", database, err)
	}
	return nil
}
