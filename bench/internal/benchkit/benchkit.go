// Package benchkit is what the load tools under bench/ share: the -db
// flag and the way a command starts and fails, the throwaway database a
// run creates and drops, stopping a child process, and reading a
// process's memory and CPU time from /proc.
//
// It holds only what the tools do the same way; what they measure and how
// they report it stays in each tool.
package benchkit

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// DBFlag defines the -db flag on fs, the server a bench creates its
// database on, into p.
func DBFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "db", cmp.Or(os.Getenv("ABE_BENCH_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"postgres:// URL of a server the bench may create a database on (default $ABE_BENCH_DATABASE_URL or the local 5432 server)")
}

// Main runs the tool's run under a context that ends on an interrupt or
// SIGTERM, so that the run's deferred clean-up (the database, the child
// processes) still happens. If run fails, Main prints the error after the
// tool's name on stderr and exits with status 1.
func Main(tool string, run func(context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, tool+":", err)
		os.Exit(1)
	}
}
