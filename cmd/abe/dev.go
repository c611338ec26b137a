package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
	stderr := cmd.ErrOrStderr()
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
	fmt.Fprintf(stderr, "abe dev: serving %s on http://%s (Ctrl-C stops)\n", g.config, cfg.Server.Listen)
	return app.Run(cmd.Context())
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
