// Package pgtest gives every test its own Postgres database, cloned from a
// template that is migrated once per server, so tests run in parallel
// against real Postgres without seeing each other's data.
//
// The server is, in order: ABE_TEST_DATABASE_URL when set (to a URL, or to
// "throwaway" to skip the next step); else the
// PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) when it
// answers; else a throwaway cluster made from the system's binaries in a
// temporary directory, stopped when the test binary ends. Packages that use
// pgtest call Main from TestMain. See docs/testing.md.
package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/abe-stack/abe/internal/devpg"
)

// EnvURL names the variable that points the harness at a server. Set to
// Throwaway, it makes the harness start a cluster of its own even when a
// server answers on 127.0.0.1:5432.
const EnvURL = "ABE_TEST_DATABASE_URL"

// Throwaway is the value of EnvURL that asks for a cluster of its own.
const Throwaway = "throwaway"

const localURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// server is the one Postgres of this test binary. A test harness is the one
// place a process-wide value is right: every test shares the server.
var server struct {
	once    sync.Once
	url     string // admin URL: a database we may CREATE DATABASE from
	cluster *devpg.Cluster
	err     error
	seq     atomic.Int64
	tmpDir  string
	stale   sync.Once
}

// Main runs the tests of a package, stops the cluster the harness may have
// started, runs cleanups, and fails the run when goroutines leak.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	if server.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := server.cluster.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stop cluster:", err)
		}
		cancel()
		os.RemoveAll(server.tmpDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// ServerURL returns the admin URL of the test server, starting one if
// needed.
func ServerURL(t testing.TB) string {
	t.Helper()
	server.once.Do(func() { server.url, server.err = findServer() })
	if server.err != nil {
		t.Fatalf("pgtest: no PostgreSQL to test against: %v", server.err)
	}
	return server.url
}

func findServer() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
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
	dir, err := os.MkdirTemp("", "abe-pgtest-")
	if err != nil {
		return "", err
	}
	// As root the cluster runs as an unprivileged user, who must be able to
	// enter the directory; MkdirTemp makes it 0700.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	cluster, err := devpg.Start(ctx, devpg.Options{Dir: dir + "/data", Fast: true})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("start a throwaway cluster: %w", err)
	}
	server.cluster, server.tmpDir = cluster, dir
	return cluster.URL("postgres"), nil
}

func ping(ctx context.Context, u string) error {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return err
	}
	cfg.ConnectTimeout = 2 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// Options choose the template a test database is cloned from.
type Options struct {
	// Template names the template. Tests with the same name share it, on
	// this server, across runs: include a hash of everything Setup depends
	// on, so a change makes a new template.
	Template string
	// Setup prepares the template database at url, once. It must close its
	// connections before it returns.
	Setup func(ctx context.Context, url string) error
}

// NewURL creates a database for the test, cloned from the template in opts
// (or empty when opts is nil), drops it when the test ends, and returns its
// URL.
func NewURL(t testing.TB, opts *Options) string {
	t.Helper()
	admin := ServerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", admin, err)
	}
	defer conn.Close(ctx)

	template := ""
	if opts != nil && opts.Setup != nil {
		if template, err = ensureTemplate(ctx, conn, admin, opts); err != nil {
			t.Fatalf("pgtest: template %q: %v", opts.Template, err)
		}
	}
	dropStale(ctx, conn)
	name := fmt.Sprintf("abe_t_%d_%d", os.Getpid(), server.seq.Add(1))
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// New is NewURL with a pool on the new database, closed when the test
// ends.
func New(t testing.TB, opts *Options) *pgxpool.Pool {
	t.Helper()
	u := NewURL(t, opts)
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgtest: open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TemplateName derives a template's database name from its options name.
func TemplateName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "abe_tpl_" + hex.EncodeToString(sum[:8])
}

// ensureTemplate builds the template once per server. Test binaries run in
// parallel, so building happens under an advisory lock, into a scratch
// database that is renamed only when complete.
func ensureTemplate(ctx context.Context, conn *pgx.Conn, admin string, opts *Options) (string, error) {
	name := TemplateName(opts.Template)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	lock := int64(binaryKey(name))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
		return "", err
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lock) //nolint:errcheck // the session ends soon anyway
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		return name, err
	}
	building := fmt.Sprintf("%s_b%d", name, os.Getpid())
	q := pgx.Identifier{building}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+q); err != nil {
		return "", err
	}
	if err := opts.Setup(ctx, withDatabase(admin, building)); err != nil {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)") //nolint:errcheck // best effort
		return "", fmt.Errorf("setup: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+q+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("finish template (did Setup leave a connection open?): %w", err)
	}
	return name, nil
}

func binaryKey(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	var k uint64
	for _, b := range sum[:8] {
		k = k<<8 | uint64(b)
	}
	return k >> 1 // keep it positive as an int64
}

var staleRE = regexp.MustCompile(`^abe_(?:t_(\d+)_\d+|tpl_[0-9a-f]+_b(\d+))$`)

// dropStale drops the databases of test binaries that died before their
// cleanup ran, once per binary.
func dropStale(ctx context.Context, conn *pgx.Conn) {
	server.stale.Do(func() {
		rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE 'abe\\_%'")
		if err != nil {
			return
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return
		}
		for _, n := range names {
			m := staleRE.FindStringSubmatch(n)
			if m == nil {
				continue
			}
			pid, _ := strconv.Atoi(m[1] + m[2])
			if pid == os.Getpid() || alive(pid) {
				continue
			}
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)") //nolint:errcheck // best effort
		}
	})
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// withDatabase returns the admin URL pointed at another database.
func withDatabase(admin, db string) string {
	u, err := url.Parse(admin)
	if err != nil || u.Scheme == "" {
		return admin + " dbname=" + db
	}
	u.Path = "/" + db
	return u.String()
}
