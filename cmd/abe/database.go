package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe/internal/devpg"
	"github.com/abe-stack/abe/internal/pg"
	"github.com/abe-stack/abe/schema"
)

// devDatabase is the database `abe dev` creates in its local cluster.
const devDatabase = "abe"

// devClusterDir is where `abe dev` keeps the local cluster of a project.
func devClusterDir(cfg *schema.Config) string {
	return filepath.Join(cfg.Dir(), ".abe", "pg")
}

// localDatabase points an empty database.url at the project's local
// cluster, starting it when needed. The returned stop function stops a
// cluster this call started.
func localDatabase(ctx context.Context, cfg *schema.Config, log io.Writer) (stop func(), err error) {
	if cfg.Database.URL != "" {
		return func() {}, nil
	}
	dir := devClusterDir(cfg)
	cluster, err := devpg.Start(ctx, devpg.Options{Dir: dir, Database: devDatabase, Log: log})
	if err != nil {
		return nil, fmt.Errorf("database.url is empty, so abe uses a local cluster in %s, which failed: %w", dir, err)
	}
	cfg.Database.URL = cluster.URL(devDatabase)
	fmt.Fprintf(log, "postgres: %s (data in %s)\n", cluster.URL(devDatabase), dir)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cluster.Stop(ctx); err != nil {
			fmt.Fprintf(log, "postgres: stop: %v\n", err)
		}
	}, nil
}

// openPool connects to the configured database, or to the local cluster
// when database.url is empty.
func openPool(ctx context.Context, cfg *schema.Config, log io.Writer) (*pgxpool.Pool, func(), error) {
	stopCluster, err := localDatabase(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	pool, err := pg.Connect(ctx, pg.Config{URL: cfg.Database.URL, MaxConns: 4, AppName: "abe migrate"})
	if err != nil {
		stopCluster()
		return nil, nil, err
	}
	return pool, func() { pool.Close(); stopCluster() }, nil
}
