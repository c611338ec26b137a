package main

import (
	"errors"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/schema"
)

type serveOpts struct {
	migrate          bool
	allowDestructive bool
	logLevel         string
}

func newServeCmd(g *globalOpts) *cobra.Command {
	o := &serveOpts{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the API in production",
		Long: `Serve the REST API on server.listen with JSON logs on stderr. abe serve needs
database.url and auth.secret, and refuses to start on a database whose
schema differs from abe.yaml unless --migrate is given. SIGTERM or Ctrl-C
stops accepting connections and lets in-flight requests finish within
server.shutdown_timeout.`,
		Example: `  DATABASE_URL=postgres://abe@db/app ABE_AUTH_SECRET=$(cat secret) abe serve
  abe serve --config /etc/abe/abe.yaml --migrate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.migrate, "migrate", false, "apply pending migrations before serving")
	cmd.Flags().BoolVar(&o.allowDestructive, "allow-destructive", false, "with --migrate, also run steps that can lose data")
	cmd.Flags().StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runServe(cmd *cobra.Command, g *globalOpts, o *serveOpts) error {
	cfg, err := schema.Load(g.config)
	if err != nil {
		return err
	}
	if cfg.Auth.Secret == "" {
		return errors.New("auth.secret is empty: abe serve needs a signing key of at least 32 characters; generate one with `openssl rand -base64 48` and set ABE_AUTH_SECRET (abe dev makes one for you)")
	}
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, true)
	if err != nil {
		return err
	}
	app, err := abe.New(cmd.Context(), cfg, &abe.Options{
		Logger: log, Version: abeVersion(),
		Migrate: o.migrate, AllowDestructive: o.allowDestructive, MigrateProgress: cmd.ErrOrStderr(),
	})
	if err != nil {
		return err
	}
	defer app.Close()
	return app.Run(cmd.Context())
}

func newLogger(w io.Writer, level string, asJSON bool) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, errors.New("invalid --log-level " + level + ": use debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: l}
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
