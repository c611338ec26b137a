package pg

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/internal/pg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db":            "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db":                        "postgres://u@h/db",
		"postgres://h/db?password=secret&x=1":      "postgres://h/db?password=xxxxx&x=1",
		"host=h user=u password=secret dbname=app": "host=h user=u password=xxxxx dbname=app",
		"postgres://u:p%40ss@h/db?sslmode=disable": "postgres://u:xxxxx@h/db?sslmode=disable",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	admin := pgtest.ServerURL(t)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/abe_no_such_database"
	missingDB := u.String()

	for _, tc := range []struct{ url, want string }{
		{"postgres://u:hunter2@" + closed + "/db", "is PostgreSQL running"},
		{"postgres://u:hunter2@h:notaport/db", "invalid database URL"},
		{missingDB, "create it"},
	} {
		_, err := Connect(ctx, Config{URL: tc.url})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Connect(%s): %v, want %q and no password", Redact(tc.url), err, tc.want)
		}
	}
	pool, err := Connect(ctx, Config{URL: admin, MaxConns: 2, AppName: "abe-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var app string
	if err := pool.QueryRow(ctx, "SHOW application_name").Scan(&app); err != nil || app != "abe-test" {
		t.Errorf("application_name %q %v", app, err)
	}
}

func TestInTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t, nil)
	if _, err := pool.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if err := InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO t VALUES (2)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var sum int
	if err := pool.QueryRow(ctx, "SELECT coalesce(sum(x), 0) FROM t").Scan(&sum); err != nil || sum != 2 {
		t.Fatalf("sum %d %v: the failed transaction was not rolled back", sum, err)
	}
}
