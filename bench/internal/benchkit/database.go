package benchkit

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database is the throwaway database of a run.
type Database struct {
	// Name is abe_bench_<tool>_<pid>: a run never meets another's
	// database, and a leftover one tells which tool left it.
	Name string
	// URL connects to the database itself.
	URL string
	// admin is the URL the database was created from; it drops it.
	admin string
	tool  string
}

// CreateDatabase creates the database of a run of tool on the server of
// admin, a postgres:// URL (the -db flag).
func CreateDatabase(ctx context.Context, tool, admin string) (*Database, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("-db must be a postgres:// URL, got %q", admin)
	}
	d := &Database{admin: admin, tool: tool, Name: "abe_bench_" + tool + "_" + strconv.Itoa(os.Getpid())}
	u.Path = "/" + d.Name
	d.URL = u.String()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", u.Host, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+d.Name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", d.Name, err)
	}
	return d, nil
}

// Drop drops the database; it is meant to be deferred. It goes on when
// ctx is cancelled, because an interrupted run must still leave no
// database behind, and it reports a failure on stderr after the tool's
// name, because a deferred call has no caller to return it to.
func (d *Database) Drop(ctx context.Context) {
	if err := d.drop(context.WithoutCancel(ctx)); err != nil {
		fmt.Fprintln(os.Stderr, d.tool+":", err)
	}
}

func (d *Database) drop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", d.Name, err)
	}
	defer conn.Close(ctx)
	// A plain DROP fails while any session is connected; FORCE ends those
	// that remain, such as a killed child's.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.Name, err)
	}
	return nil
}
