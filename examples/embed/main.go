// Command embed is a Go program that embeds abe and changes what it does
// without forking it: a blog whose posts get a slug from their title, whose
// writes are accepted in office hours only, each of whose writes leaves an
// audit row in the same transaction, with a route that finds a post by its
// slug and a job that publishes posts when their time comes. See README.md
// and docs/hooks.md.
//
//	DATABASE_URL=postgres://... ABE_AUTH_SECRET=... go run ./examples/embed -config examples/embed/abe.yaml -migrate
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/schema"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// run serves the blog until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("embed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "abe.yaml", "the abe.yaml of the blog")
	migrate := fs.Bool("migrate", false, "apply pending migrations at start")
	tz := fs.String("office-tz", "UTC", "the time zone of the office hours (an IANA name)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	office, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("-office-tz: %w", err)
	}
	cfg, err := schema.Load(*config)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	b, err := newBlog(ctx, cfg, &abe.Options{Logger: log, Migrate: *migrate}, time.Now, office)
	if err != nil {
		return err
	}
	defer b.app.Close()
	return b.app.Run(ctx)
}
