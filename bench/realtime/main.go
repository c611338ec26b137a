// Command realtime load-tests abe's WebSocket subscriptions: it runs the
// real abe binary (`abe serve`, built from ./cmd/abe) as separate
// processes and opens real WebSocket clients against them from its own
// process, then measures what issue 6 sets targets for:
//
//	hold            many authenticated, subscribed sockets on one node: its memory
//	fanout          one write at a time delivered to many subscribers of a collection
//	single          one subscriber, writes one after the other
//	cross-redis     subscriber on one node, writes on another, broker redis
//	cross-postgres  the same with broker postgres
//
// Run it under the lock the benches share on this machine:
//
//	flock /tmp/abe-bench.lock go run ./bench/realtime
//	go run ./bench/realtime -hold 2000 -fanout 1000 -scenarios hold,fanout
//
// It creates a throwaway database on the server of -db (default
// $ABE_BENCH_DATABASE_URL, else the local 5432 server), seeds it, and
// drops it at the end. See bench/README.md for the method and the figures.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/abe-stack/abe/bench/internal/benchkit"
)

// scenarioList is every scenario, in the order they run.
const scenarioList = "hold,fanout,single,cross-redis,cross-postgres"

// options are the flags of a run.
type options struct {
	db, redis string
	// abe is a prebuilt abe binary; empty builds ./cmd/abe.
	abe  string
	hold int
	// holdAsked is -hold before the open-files limit capped it.
	holdAsked    int
	fanout       int
	fanoutWrites int
	singleWrites int
	crossWrites  int
	users        int
	sourceIPs    int
	// settle is how long the server is left alone before a
	// measurement: to collect the garbage of a phase, to measure what it
	// spends when idle.
	settle    time.Duration
	sendQueue int
	// goMemLimit is GOMEMLIMIT for the nodes; empty leaves it unset.
	goMemLimit string
	perf       string
	scenarios  []string
	logLevel   string
	out        io.Writer
}

func (o options) wants(s string) bool { return slices.Contains(o.scenarios, s) }

func main() {
	serveCeilingFromEnv()
	o := options{out: os.Stdout}
	var scenarios string
	benchkit.DBFlag(flag.CommandLine, &o.db)
	flag.StringVar(&o.redis, "redis", cmp.Or(os.Getenv("ABE_BENCH_REDIS_URL"), "redis://127.0.0.1:6379/0"),
		"redis:// URL for the redis broker (default $ABE_BENCH_REDIS_URL or the local 6379 server)")
	flag.StringVar(&o.abe, "abe", "", "a prebuilt abe binary to run instead of building ./cmd/abe")
	flag.IntVar(&o.hold, "hold", 20000, "sockets the hold scenario opens on one node (capped by the open-files limit)")
	flag.IntVar(&o.fanout, "fanout", 10000, "subscribers of the fanout scenario (at most -hold when both run)")
	flag.IntVar(&o.fanoutWrites, "fanout-writes", 20, "writes of the fanout scenario, each delivered before the next")
	flag.IntVar(&o.singleWrites, "single-writes", 300, "writes of the single-subscriber scenario")
	flag.IntVar(&o.crossWrites, "cross-writes", 300, "writes of each cross-node scenario")
	flag.IntVar(&o.users, "users", 100, "accounts the sockets authenticate as, round robin")
	flag.IntVar(&o.sourceIPs, "source-ips", 4, "loopback addresses (127.0.0.1, .2, ...) the sockets come from, so they do not share one range of ephemeral ports")
	flag.DurationVar(&o.settle, "settle", time.Second, "quiet time before each measurement (three times that before the hold's memory is read)")
	flag.IntVar(&o.sendQueue, "send-queue", 0, "realtime.send_queue of the nodes; 0 leaves abe's default")
	flag.StringVar(&o.goMemLimit, "gomemlimit", "", "GOMEMLIMIT of the nodes (e.g. 800MiB); empty leaves the Go runtime's default")
	flag.StringVar(&o.perf, "perf", "", "directory to write a CPU profile of the node during the fanout to (perf record; needs perf)")
	flag.StringVar(&scenarios, "scenarios", scenarioList, "scenarios to run")
	flag.StringVar(&o.logLevel, "log-level", "warn", "abe's log level; logs go to files in a temporary directory")
	flag.Parse()
	o.scenarios = strings.Split(scenarios, ",")

	benchkit.Main("realtime", func(ctx context.Context) error {
		_, err := run(ctx, o)
		return err
	})
}

// results are what a run measured.
type results struct {
	hold       *holdResult
	deliveries []*delivery // fanout, single, cross-*, in that order
}

func (o *options) check() error {
	for _, s := range o.scenarios {
		if !slices.Contains(strings.Split(scenarioList, ","), s) {
			return fmt.Errorf("-scenarios: unknown scenario %q; choose from %s", s, scenarioList)
		}
	}
	if o.users < 2 {
		return fmt.Errorf("-users %d: need at least 2 (one writes, the others subscribe)", o.users)
	}
	if o.sourceIPs < 1 || o.sourceIPs > 250 {
		return fmt.Errorf("-source-ips %d: choose 1 to 250", o.sourceIPs)
	}
	for _, f := range []struct {
		scenario, flag string
		n              int
	}{
		{"hold", "-hold", o.hold}, {"fanout", "-fanout", o.fanout}, {"fanout", "-fanout-writes", o.fanoutWrites},
		{"single", "-single-writes", o.singleWrites}, {"cross-redis", "-cross-writes", o.crossWrites}, {"cross-postgres", "-cross-writes", o.crossWrites},
	} {
		if o.wants(f.scenario) && f.n < 1 {
			return fmt.Errorf("%s %d: the %s scenario needs at least 1", f.flag, f.n, f.scenario)
		}
	}
	if o.wants("hold") && o.wants("fanout") && o.fanout > o.hold {
		return fmt.Errorf("-fanout %d exceeds -hold %d: the fanout keeps sockets of the hold open", o.fanout, o.hold)
	}
	// Every socket is a file on both ends: this process and the server
	// each need one per socket, and the hard limit cannot be raised
	// without CAP_SYS_RESOURCE.
	o.holdAsked = o.hold
	limit, err := raiseFileLimit()
	if err != nil {
		return err
	}
	most := int(min(limit, 1<<30)) - filesReserve
	for _, n := range []*int{&o.hold, &o.fanout} {
		if *n > most {
			fmt.Fprintf(o.out, "open-files limit %d: %d sockets asked for, %d possible (a process keeps %d files for other uses); measuring with %d\n",
				limit, *n, most, filesReserve, most)
			*n = most
		}
	}
	return nil
}

func run(ctx context.Context, o options) (*results, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "abe-bench-realtime-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	bin := o.abe
	if bin == "" {
		start := time.Now()
		if bin, err = buildAbe(ctx, tmp); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.out, "built abe in %s\n", time.Since(start).Round(100*time.Millisecond))
	}
	db, err := benchkit.CreateDatabase(ctx, "realtime", o.db)
	if err != nil {
		return nil, err
	}
	defer db.Drop(ctx)
	l := &lab{o: o, bin: bin, tmp: tmp, db: db}
	defer l.stopAll()
	fmt.Fprintf(o.out, "database %s\n", db.Name)
	if err := l.prepare(ctx); err != nil {
		return nil, err
	}
	if l.commits, err = watchCommits(ctx, db.URL, "todos"); err != nil {
		return nil, err
	}
	defer l.commits.stop()
	res := &results{}
	if err := l.singleNode(ctx, res); err != nil {
		return nil, err
	}
	for _, broker := range []string{"redis", "postgres"} {
		if !o.wants("cross-" + broker) {
			continue
		}
		d, err := l.crossNode(ctx, broker)
		if err != nil {
			return nil, err
		}
		res.deliveries = append(res.deliveries, d)
	}
	report(o.out, res)
	return res, nil
}
