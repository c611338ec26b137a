package pgtest

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { Main(m) }

// setups counts how often the template's Setup ran in this binary.
var setups atomic.Int32

func templateOpts(name string) *Options {
	return &Options{Template: name, Setup: func(ctx context.Context, url string) error {
		setups.Add(1)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE TABLE seeded (x int); INSERT INTO seeded VALUES (42)")
		return err
	}}
}

// TestIsolatedClones checks that parallel tests get their own databases
// cloned from one template.
func TestIsolatedClones(t *testing.T) {
	t.Parallel()
	// Unique per run so this binary builds it (and counts the build).
	opts := templateOpts("pgtest-self-test-" + pgx.Identifier{t.Name()}.Sanitize() + "-" + randomSuffix(t))
	for i := range 4 {
		t.Run("clone", func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := New(t, opts)
			var x int
			if err := pool.QueryRow(ctx, "SELECT x FROM seeded").Scan(&x); err != nil || x != 42 {
				t.Fatalf("template content: %d %v", x, err)
			}
			if _, err := pool.Exec(ctx, "INSERT INTO seeded VALUES ($1)", i); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM seeded").Scan(&n); err != nil || n != 2 {
				t.Fatalf("a clone sees %d rows: clones are not isolated", n)
			}
		})
	}
	t.Cleanup(func() {
		if n := setups.Load(); n != 1 {
			t.Errorf("Setup ran %d times, want once", n)
		}
		dropTemplate(t, opts.Template)
	})
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	var s string
	pool, err := pgxpool.New(context.Background(), ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.QueryRow(context.Background(), "SELECT md5(random()::text)").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func dropTemplate(t *testing.T, name string) {
	conn, err := pgx.Connect(context.Background(), ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{TemplateName(name)}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Error(err)
	}
}

func TestDatabaseDroppedAtCleanup(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("inner", func(t *testing.T) {
		pool := New(t, nil)
		if err := pool.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	conn, err := pgx.Connect(context.Background(), ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		t.Fatalf("database %s still exists after its test (%v)", name, err)
	}
}
