package schema

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe/internal/pg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testUsers stands in for the auth component's users table, which
// relations to "users" need; schema cannot import auth.
var testUsers = Migration{Component: "test", Version: 1, Name: "users", SQL: `
CREATE TABLE abe.users (id uuid PRIMARY KEY DEFAULT abe.uuid_v7(), email text NOT NULL);`}

func systemMigrations() []Migration { return append(CoreMigrations(), testUsers) }

// newDB returns a pool on a fresh database with the system migrations
// applied, cloned from a template built once.
func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	sys := systemMigrations()
	key := "schema-test"
	for _, m := range sys {
		key += "/" + m.Key() + ":" + m.Checksum()
	}
	return pgtest.New(t, &pgtest.Options{Template: key, Setup: func(ctx context.Context, url string) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		_, err = (&Migrator{Config: &Config{Database: Database{Schema: "public"}}, System: sys}).Apply(ctx, pool, nil)
		return err
	}})
}

func migrator(cfg *Config) *Migrator { return &Migrator{Config: cfg, System: systemMigrations()} }

// migrationRows counts the plans recorded in abe.migrations; the template
// already holds one, for the system migrations.
func migrationRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM abe.migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func applyFile(t *testing.T, pool *pgxpool.Pool, path string, destructive bool) *Config {
	t.Helper()
	cfg := mustParse(t, path)
	if _, err := migrator(cfg).Apply(context.Background(), pool, &ApplyOpts{AllowDestructive: destructive}); err != nil {
		t.Fatalf("apply %s: %v", path, err)
	}
	return cfg
}

// assertMatches checks that the live catalog is exactly what the planner
// assumes an applied configuration looks like, and that nothing is left to
// plan.
func assertMatches(t *testing.T, pool *pgxpool.Pool, cfg *Config) {
	t.Helper()
	ctx := context.Background()
	live, err := ReadCatalog(ctx, pool, cfg.Database.Schema)
	if err != nil {
		t.Fatal(err)
	}
	want := asLive(Desired(cfg))
	opts := cmp.Options{cmpopts.IgnoreFields(Catalog{}, "Applied"), cmpopts.EquateEmpty()}
	if diff := cmp.Diff(want, live, opts); diff != "" {
		t.Errorf("live catalog differs from the applied configuration (-want +got):\n%s", diff)
	}
	plan, err := migrator(cfg).Plan(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Empty() {
		t.Errorf("plan after apply is not empty:\n%s", plan)
	}
}

// TestApplyGolden runs every planner golden case against real Postgres:
// apply old.yaml, then new.yaml, and check the catalog after each.
func TestApplyGolden(t *testing.T) {
	t.Parallel()
	dirs, _ := filepath.Glob("testdata/plan/*")
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			pool := newDB(t)
			old := applyFile(t, pool, filepath.Join(dir, "old.yaml"), false)
			assertMatches(t, pool, old)
			want := applyFile(t, pool, filepath.Join(dir, "new.yaml"), true)
			assertMatches(t, pool, want)
		})
	}
}

func TestApplyExampleThenNothingToDo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	data, err := os.ReadFile("../examples/todo/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("abe.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := migrator(cfg)
	before := migrationRows(t, pool)
	plan, err := m.Apply(ctx, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Empty() {
		t.Fatal("first apply did nothing")
	}
	assertMatches(t, pool, cfg)

	again, err := m.Apply(ctx, pool, nil)
	if err != nil || !again.Empty() {
		t.Fatalf("second apply: %v, %d steps", err, len(again.Steps))
	}
	if n := migrationRows(t, pool); n != before+1 {
		t.Fatalf("abe.migrations has %d rows, want %d: a no-op apply records nothing", n, before+1)
	}
	st, err := m.Status(ctx, pool, 10)
	if err != nil || len(st.Applied) != before+1 || !st.Pending.Empty() || st.Applied[0].Checksum != plan.Checksum() {
		t.Fatalf("status: %+v, %v", st, err)
	}
}

func TestApplyConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	cfg := mustParse(t, "testdata/plan/create_table/new.yaml")
	const n = 4
	before := migrationRows(t, pool)
	var wg sync.WaitGroup
	applied := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			plan, err := migrator(cfg).Apply(ctx, pool, nil)
			errs[i] = err
			if plan != nil {
				applied[i] = len(plan.Steps)
			}
		})
	}
	wg.Wait()
	ran := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("apply %d: %v", i, errs[i])
		}
		if applied[i] > 0 {
			ran++
		}
	}
	if ran != 1 {
		t.Fatalf("%d applies ran steps, want exactly 1 (the others wait and find nothing to do)", ran)
	}
	if rows := migrationRows(t, pool); rows != before+1 {
		t.Fatalf("abe.migrations has %d rows, want %d", rows, before+1)
	}
	assertMatches(t, pool, cfg)
}

func TestApplyRefusesDestructive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	old := applyFile(t, pool, "testdata/plan/drop_column/old.yaml", false)
	want := mustParse(t, "testdata/plan/drop_column/new.yaml")
	_, err := migrator(want).Apply(ctx, pool, nil)
	var de *DestructiveError
	if !errors.As(err, &de) || len(de.Steps) != 1 || !strings.Contains(err.Error(), "--allow-destructive") {
		t.Fatalf("got %v, want a DestructiveError naming the drop", err)
	}
	assertMatches(t, pool, old) // nothing changed, not even the index drop
}

func TestApplyFailureRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	old := applyFile(t, pool, "testdata/plan/add_column/old.yaml", false)
	before := migrationRows(t, pool)
	if _, err := pool.Exec(ctx, `INSERT INTO notes (title) VALUES ('a')`); err != nil {
		t.Fatal(err)
	}
	// new.yaml adds a required field without a default: it cannot be
	// added to a table with records.
	_, err := migrator(mustParse(t, "testdata/plan/add_column/new.yaml")).Apply(ctx, pool, nil)
	var se *StepError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "nothing was applied") || !strings.Contains(err.Error(), "default") {
		t.Fatalf("got %v, want a StepError that says how to fix it", err)
	}
	assertMatches(t, pool, old)
	if n := migrationRows(t, pool); n != before {
		t.Fatalf("abe.migrations has %d rows, want %d: the failed apply records nothing", n, before)
	}
}

func TestRenamesKeepData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct{ dir, query string }{
		{"rename_column", "SELECT heading FROM notes"},
		{"rename_table", "SELECT title FROM memos"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			t.Parallel()
			pool := newDB(t)
			applyFile(t, pool, "testdata/plan/"+tc.dir+"/old.yaml", false)
			if _, err := pool.Exec(ctx, `INSERT INTO notes (title) VALUES ('kept')`); err != nil {
				t.Fatal(err)
			}
			applyFile(t, pool, "testdata/plan/"+tc.dir+"/new.yaml", false) // a rename is not destructive
			var got string
			if err := pool.QueryRow(ctx, tc.query).Scan(&got); err != nil || got != "kept" {
				t.Fatalf("after rename: %q, %v", got, err)
			}
		})
	}
}

func TestNotNullBackfillsDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	applyFile(t, pool, "testdata/plan/not_null/old.yaml", false)
	if _, err := pool.Exec(ctx, `INSERT INTO items (a, b, c) VALUES ('x', 'y', NULL)`); err != nil {
		t.Fatal(err)
	}
	applyFile(t, pool, "testdata/plan/not_null/new.yaml", false)
	var c bool
	var version int64
	if err := pool.QueryRow(ctx, `SELECT c, version FROM items`).Scan(&c, &version); err != nil || c || version != 2 {
		t.Fatalf("c=%v version=%d err=%v; want the default filled in and the version bumped", c, version, err)
	}
}

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestConstraintsEnforced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	applyFile(t, pool, "testdata/plan/create_table/new.yaml", false)
	for _, tc := range []struct {
		name, insert, code string
	}{
		{"ok", `INSERT INTO things (title) VALUES ('fine')`, ""},
		{"required", `INSERT INTO things (score) VALUES (1)`, "23502"},
		{"too long", `INSERT INTO things (title) VALUES (repeat('x', 81))`, "23514"},
		{"too short", `INSERT INTO things (title) VALUES ('')`, "23514"},
		{"pattern", `INSERT INTO things (title) VALUES ('<b>')`, "23514"},
		{"range", `INSERT INTO things (title, score) VALUES ('t', 2)`, "23514"},
		{"select", `INSERT INTO things (title, status) VALUES ('t', 'gone')`, "23514"},
		{"many select", `INSERT INTO things (title, labels) VALUES ('t', '{red,blue}')`, "23514"},
		{"items", `INSERT INTO things (title, files) VALUES ('t', '{a,b,c,d}')`, "23514"},
		{"email", `INSERT INTO things (title, contact) VALUES ('t', 'not an email')`, "23514"},
		{"url", `INSERT INTO things (title, homepage) VALUES ('t', 'ftp://x')`, "23514"},
		{"relation", `INSERT INTO things (title, owner) VALUES ('t', '018f0000-0000-7000-8000-000000000000')`, "23503"},
	} {
		_, err := pool.Exec(ctx, tc.insert)
		if got := pgCode(err); got != tc.code {
			t.Errorf("%s: got SQLSTATE %q (%v), want %q", tc.name, got, err, tc.code)
		}
	}
	var status string
	var labels []string
	var meta map[string]any
	var active bool
	if err := pool.QueryRow(ctx, `SELECT status, labels, meta, active FROM things WHERE title = 'fine'`).Scan(&status, &labels, &meta, &active); err != nil {
		t.Fatal(err)
	}
	if status != "draft" || len(labels) != 1 || labels[0] != "red" || meta["b"] != "it's" || !active {
		t.Errorf("defaults: status=%q labels=%v meta=%v active=%v", status, labels, meta, active)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO things (title, contact) VALUES ('a', 'x@y.z')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO things (title, contact) VALUES ('b', 'x@y.z')`); pgCode(err) != "23505" {
		t.Errorf("unique: got %v", err)
	}
}

func TestManyRelations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	applyFile(t, pool, "testdata/plan/create_table/old.yaml", false)
	cfg := mustParseString(t, `
collections:
  teams:
    fields:
      members:  { type: relation, collection: users, many: true }
      leads:    { type: relation, collection: users, many: true, required: true, on_delete: restrict }
  squads:
    fields:
      teams:    { type: relation, collection: teams, many: true, on_delete: cascade }
`)
	if _, err := migrator(cfg).Apply(ctx, pool, nil); err != nil {
		t.Fatal(err)
	}
	user := func(email string) string {
		var id string
		if err := pool.QueryRow(ctx, `INSERT INTO abe.users (email) VALUES ($1) RETURNING id`, email).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	ann, bob, cid := user("ann@x"), user("bob@x"), user("cid@x")
	missing := "018f0000-0000-7000-8000-000000000000"

	if _, err := pool.Exec(ctx, `INSERT INTO teams (members, leads) VALUES ($1, $2)`, []string{ann, missing}, []string{ann}); pgCode(err) != "23503" {
		t.Fatalf("a member that does not exist: got %v, want foreign_key_violation", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO teams (members, leads) VALUES ($1, '{}')`, []string{ann}); pgCode(err) != "23514" {
		t.Fatalf("a required many-relation left empty: got %v, want check_violation", err)
	}
	var team string
	if err := pool.QueryRow(ctx, `INSERT INTO teams (members, leads) VALUES ($1, $2) RETURNING id`, []string{ann, bob}, []string{cid}).Scan(&team); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE teams SET members = members || $1::uuid`, missing); pgCode(err) != "23503" {
		t.Fatalf("adding a missing member: got %v", err)
	}

	// set_null (the default for an optional relation) removes the id and
	// counts as a write.
	if _, err := pool.Exec(ctx, `DELETE FROM abe.users WHERE id = $1`, ann); err != nil {
		t.Fatal(err)
	}
	var members []string
	var version int64
	if err := pool.QueryRow(ctx, `SELECT members, version FROM teams WHERE id = $1`, team).Scan(&members, &version); err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0] != bob || version != 2 {
		t.Fatalf("after deleting a member: members=%v version=%d", members, version)
	}
	// restrict refuses to delete a lead.
	if _, err := pool.Exec(ctx, `DELETE FROM abe.users WHERE id = $1`, cid); pgCode(err) != "23503" {
		t.Fatalf("deleting a lead: got %v, want foreign_key_violation", err)
	}
	// cascade deletes the squads that list a deleted team.
	if _, err := pool.Exec(ctx, `INSERT INTO squads (teams) VALUES ($1)`, []string{team}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM teams WHERE id = $1`, team); err != nil {
		t.Fatal(err)
	}
	var squads int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM squads`).Scan(&squads); err != nil || squads != 0 {
		t.Fatalf("squads left after cascade: %d, %v", squads, err)
	}
}

func mustParseString(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse("abe.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestUUIDv7(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	rows, err := pool.Query(ctx, `SELECT abe.uuid_v7()::text FROM generate_series(1, 200)`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if id[14] != '7' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("%s is not a version 7, RFC 9562 variant UUID", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		// The first 48 bits are milliseconds, so ids never go backwards.
		if i > 0 && id[:13] < ids[i-1][:13] {
			t.Fatalf("%s sorts before the earlier %s", id, ids[i-1])
		}
	}
}

func TestReadCatalogIgnoresOtherSchemas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	cfg := mustParseString(t, "database: { schema: app }\ncollections:\n  notes: { fields: { title: { type: text } } }\n")
	if _, err := pool.Exec(ctx, `CREATE SCHEMA app; CREATE TABLE public.notes (x int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := migrator(cfg).Apply(ctx, pool, nil); err != nil {
		t.Fatal(err)
	}
	assertMatches(t, pool, cfg)
}
