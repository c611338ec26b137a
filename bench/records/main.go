// Command records load-tests the records API: abe with rules, auth and
// its whole middleware stack, against a ceiling, a minimal net/http + pgx
// server that runs the same SQL on the same table with no rules and no
// tokens. The two run as separate processes and are measured alternately,
// one operation at a time, so that only ratios taken in one run are
// reported.
//
//	go run ./bench/records                      # 6 rounds of 10 s per operation and server
//	go run ./bench/records -duration 5s -rounds 5 -cpuprofile /tmp/prof
//
// It creates a throwaway database on the server of -db (default
// $ABE_BENCH_DATABASE_URL, else the local 5432 server), seeds it, and
// drops it at the end. See bench/README.md for the method and the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/abe-stack/abe/bench/internal/benchkit"
)

// options are the flags of a run.
type options struct {
	db         string
	conns      int
	duration   time.Duration
	warmup     time.Duration
	rounds     int
	users      int
	perUser    int
	ops        []string
	logLevel   string
	cpuProfile string
	out        io.Writer
}

func main() {
	// The servers are this same binary, started again with a subcommand,
	// so that each has a process (and a resident set) of its own.
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		if err := child(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "records %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
		return
	}
	o := options{out: os.Stdout}
	var ops string
	benchkit.DBFlag(flag.CommandLine, &o.db)
	flag.IntVar(&o.conns, "conns", 64, "concurrent keep-alive connections, each acting as a distinct user")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of one measured phase (one operation on one server)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load per operation and server before the first round")
	flag.IntVar(&o.rounds, "rounds", 6, "rounds; each measures every operation on both servers, abe first in odd rounds and the ceiling first in even ones (keep it even: which goes first matters)")
	flag.IntVar(&o.users, "users", 1000, "accounts to seed")
	flag.IntVar(&o.perUser, "todos-per-user", 100, "todos to seed per account")
	flag.StringVar(&ops, "ops", opList, "operations to measure")
	flag.StringVar(&o.logLevel, "log-level", "warn", "abe's log level; logs go to a file in a temporary directory (info logs every request)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "directory to write CPU profiles of both servers to, taken during the first round (they slow that round down)")
	flag.Parse()
	o.ops = strings.Split(ops, ",")

	benchkit.Main("records", func(ctx context.Context) error {
		_, err := run(ctx, o)
		return err
	})
}

// child runs one of the servers the bench starts.
func child(name string, args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch name {
	case "serve-abe":
		return serveAbe(ctx, args)
	case "serve-ceiling":
		return serveCeiling(ctx, args)
	}
	return fmt.Errorf("unknown subcommand %q: the bench starts serve-abe and serve-ceiling itself; run it with flags only", name)
}

func run(ctx context.Context, o options) (results, error) {
	for _, op := range o.ops {
		if opByName(op) == nil {
			return nil, fmt.Errorf("-ops: unknown operation %q; choose from %s", op, opList)
		}
	}
	if o.rounds < 1 || o.duration <= 0 || o.conns < 1 {
		return nil, fmt.Errorf("-rounds, -duration and -conns must be positive (got %d, %s, %d)", o.rounds, o.duration, o.conns)
	}
	if o.conns > o.users {
		return nil, fmt.Errorf("-conns %d needs at least as many -users (%d): each connection acts as a distinct user", o.conns, o.users)
	}
	tmp, err := os.MkdirTemp("", "abe-bench-records-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	db, err := benchkit.CreateDatabase(ctx, "records", o.db)
	if err != nil {
		return nil, err
	}
	defer db.Drop(ctx)
	fmt.Fprintf(o.out, "database %s; seeding %d users x %d todos\n", db.Name, o.users, o.perUser)
	start := time.Now()
	users, err := seed(ctx, db.URL, o.users, o.perUser, o.conns)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.out, "seeded in %s\n", time.Since(start).Round(100*time.Millisecond))

	// The users log in to an abe process of their own: Argon2id takes 19
	// MiB per hash, and the measured process's memory is to show the
	// records load only. Tokens outlive the process that issued them.
	logFile := filepath.Join(tmp, "abe.log")
	loginSrv, err := startServer(ctx, "serve-abe", "-db", db.URL, "-log", filepath.Join(tmp, "login.log"), "-log-level", o.logLevel)
	if err != nil {
		return nil, err
	}
	err = login(ctx, loginSrv.url, users)
	loginHWM := loginSrv.memory("VmHWM")
	loginSrv.stop()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.out, "%d users logged in (VmHWM of the abe process that served the logins: %s)\n", len(users), mib(loginHWM))

	abeSrv, err := startServer(ctx, "serve-abe", "-db", db.URL, "-log", logFile, "-log-level", o.logLevel, "-pprof", pprofFlag(o))
	if err != nil {
		return nil, err
	}
	defer abeSrv.stop()
	ceilSrv, err := startServer(ctx, "serve-ceiling", "-db", db.URL, "-pprof", pprofFlag(o))
	if err != nil {
		return nil, err
	}
	defer ceilSrv.stop()
	if err := printSQL(o.out, users[0].id); err != nil {
		return nil, err
	}
	stats, err := openStats(ctx, db.URL)
	if err != nil {
		return nil, err
	}
	defer stats.close(context.WithoutCancel(ctx))
	b := &bench{o: o, users: users, servers: [2]*server{abeSrv, ceilSrv}, stats: stats}
	res, err := b.run(ctx)
	if err != nil {
		return nil, err
	}
	report(o, res, abeSrv, ceilSrv)
	if o.logLevel != "" {
		if st, err := os.Stat(logFile); err == nil {
			fmt.Fprintf(o.out, "\nabe logged %d bytes at level %s\n", st.Size(), o.logLevel)
		}
	}
	return res, nil
}

func pprofFlag(o options) string {
	if o.cpuProfile == "" {
		return ""
	}
	return "127.0.0.1:0"
}
