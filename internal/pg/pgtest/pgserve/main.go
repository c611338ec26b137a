// Command pgserve runs a throwaway PostgreSQL cluster from the system's
// binaries for tests outside Go (the SDK's), the way the pgtest harness
// does for Go tests: it prints the cluster's postgres:// URL on one line,
// serves until its standard input closes or it is signalled, then stops
// the cluster and removes its files.
//
//	url=$(go run ./internal/pg/pgtest/pgserve < fifo)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/abe-stack/abe/internal/devpg"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pgserve:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "abe-pgserve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// As root the cluster runs as an unprivileged user, who must be able
	// to enter the directory; MkdirTemp makes it 0700.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	cluster, err := devpg.Start(ctx, devpg.Options{Dir: dir + "/data", Fast: true})
	if err != nil {
		return fmt.Errorf("start a throwaway cluster: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cluster.Stop(sctx); err != nil {
			fmt.Fprintln(os.Stderr, "pgserve: stop the cluster:", err)
		}
	}()
	fmt.Println(cluster.URL("postgres"))
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) //nolint:errcheck // any end of input ends the server
		close(stdinClosed)
	}()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	case <-cluster.Done():
		return fmt.Errorf("the cluster stopped on its own; see %s", cluster.LogPath())
	}
	return nil
}
