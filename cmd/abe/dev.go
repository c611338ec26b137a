package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/schema"
)

type devOpts struct {
	allowDestructive bool
	logLevel         string
}

func newDevCmd(g *globalOpts) *cobra.Command {
	o := &devOpts{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Serve the API for development, with a local database",
		Long: `Serve the API like 'abe serve', set up for a developer's machine:

  - with no database.url (and no DATABASE_URL), abe runs a local PostgreSQL
    cluster in .abe/pg next to abe.yaml, made from the system's PostgreSQL
    binaries, and stops it when abe stops;
  - with no auth.secret, abe makes one and keeps it in .abe/secret;
  - pending migrations are applied at start (steps that can lose data only
    with --allow-destructive);
  - logs are human-readable text.`,
		Example: `  abe dev
  abe dev --config examples/todo/abe.yaml
  DATABASE_URL=postgres://postgres@localhost/app abe dev`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.allowDestructive, "allow-destructive", false, "apply migration steps that can lose data")
	cmd.Flags().StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runDev(cmd *cobra.Command, g *globalOpts, o *devOpts) error {
	// One writer for the log, migrations and the reloader's messages.
	stderr := &syncWriter{w: cmd.ErrOrStderr()}
	cfg, err := schema.Load(g.config)
	if err != nil {
		return err
	}
	if cfg.Auth.Secret == "" {
		if cfg.Auth.Secret, err = devSecret(filepath.Join(cfg.Dir(), ".abe", "secret"), stderr); err != nil {
			return err
		}
	}
	log, err := newLogger(stderr, o.logLevel, false)
	if err != nil {
		return err
	}
	// Listen first: a busy port is the whole story, told before a
	// cluster starts or a service logs anything.
	ln, err := abe.Listen(cfg.Server.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	stopCluster, err := localDatabase(cmd.Context(), cfg, stderr)
	if err != nil {
		return err
	}
	defer stopCluster()
	app, err := abe.New(cmd.Context(), cfg, &abe.Options{
		Logger: log, Version: abeVersion(), Dev: true,
		Migrate: true, AllowDestructive: o.allowDestructive, MigrateProgress: stderr, Console: stderr,
	})
	if err != nil {
		return err
	}
	defer app.Close()
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	out := stderr
	go watchFile(ctx, g.config, watchEvery, func() { reloadDev(ctx, app, g.config, out) })
	fmt.Fprintf(out, "abe dev: serving %s on http://%s (Ctrl-C stops); saving the file reloads it\n", g.config, ln.Addr())
	return app.Serve(ctx, ln)
}

// watchEvery is how often abe dev looks at abe.yaml: often enough that a
// save takes effect at once, seldom enough to cost nothing.
const watchEvery = 200 * time.Millisecond

// watchFile calls changed whenever the content of path changes, until ctx
// ends. It compares contents, not times: editors that replace the file,
// and clocks that do not move, are both seen.
func watchFile(ctx context.Context, path string, every time.Duration, changed func()) {
	sum := func() [32]byte {
		b, err := os.ReadFile(path)
		if err != nil {
			return [32]byte{}
		}
		return sha256.Sum256(b)
	}
	last := sum()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now := sum(); now != last {
			last = now
			changed()
		}
	}
}

// reloadDev loads the file again and makes it the running model, or says
// why not and keeps the running one.
func reloadDev(ctx context.Context, app *abe.App, path string, out io.Writer) {
	cfg, err := schema.Load(path)
	if err != nil {
		fmt.Fprintf(out, "abe dev: %s has problems; still serving the previous version:\n", path)
		printError(out, err)
		return
	}
	res, err := app.Reload(ctx, cfg, out)
	if err != nil {
		fmt.Fprintf(out, "abe dev: could not reload %s; still serving the previous version:\n", path)
		printError(out, err)
		return
	}
	switch len(res.Applied) {
	case 0:
		fmt.Fprintf(out, "abe dev: reloaded %s (the database already matched)\n", path)
	default:
		fmt.Fprintf(out, "abe dev: reloaded %s; the database changed:\n", path)
		for _, st := range res.Applied {
			fmt.Fprintf(out, "  + %s\n", st.Summary)
		}
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintf(out, "abe dev: %d steps can lose data and were not applied:\n", len(res.Skipped))
		for _, st := range res.Skipped {
			fmt.Fprintf(out, "  - %s\n", st.Summary)
		}
		fmt.Fprintf(out, "  apply them with: abe migrate apply --allow-destructive --config %s\n", path)
	}
}

// syncWriter serialises the writes of the server's log and the reloader.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// devSecret reads the development signing key, making one on first use.
func devSecret(path string, log io.Writer) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= schema.MinSecretLen {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read development secret: %w", err)
	}
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make development secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("make development secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("make development secret: %w", err)
	}
	fmt.Fprintf(log, "auth: no auth.secret set; made a development secret in %s\n", path)
	return secret, nil
}
