// Command listrules measures what a list rule costs: it lists 50 records
// with a rule translated by abe's rules package, and the same 50 records
// with hand-written SQL and no rule, alternately, on tables of several
// sizes, and prints latencies, their ratio and the query plans.
//
//	go run ./bench/listrules -rows 10000,1000000
//
// It needs a PostgreSQL it may create a database in (-db, default the
// local 5432 server).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
)

const config = `
collections:
  projects:
    fields:
      name:    { type: text }
      owner:   { type: relation, collection: users, required: true }
      members: { type: relation, collection: users, many: true }
  todos:
    fields:
      title:   { type: text, required: true }
      owner:   { type: relation, collection: users, required: true }
      project: { type: relation, collection: projects, required: true }
    indexes:
      - { fields: [owner, created_at] }
      - { fields: [project, created_at] }
    rules:
      list: %q
`

const (
	ownerRule      = "record.owner == auth.id"
	membershipRule = "get('projects', record.project).owner == auth.id || auth.id in get('projects', record.project).members"
	// The bench user sees this many todos whatever the table size, so a
	// cost that grows with the table is the query's fault.
	visible = 400
)

func main() {
	rowsFlag := flag.String("rows", "10000,1000000", "table sizes to measure")
	dbURL := flag.String("db", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "server to create the bench database in")
	n := flag.Int("n", 300, "queries per measurement")
	flag.Parse()
	if err := run(context.Background(), *dbURL, *rowsFlag, *n); err != nil {
		fmt.Fprintln(os.Stderr, "listrules:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, admin, sizes string, n int) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range strings.Split(sizes, ",") {
		rows, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		db := "abe_bench_listrules_" + strconv.Itoa(rows)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return err
		}
		u := strings.Replace(admin, "/postgres?", "/"+db+"?", 1)
		if err := measure(ctx, u, rows, n); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			return err
		}
	}
	return nil
}

func measure(ctx context.Context, url string, rows, n int) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	cfg, err := schema.Parse("abe.yaml", []byte(fmt.Sprintf(config, ownerRule)), nil)
	if err != nil {
		return err
	}
	if _, err := abe.NewMigrator(cfg, "bench").Apply(ctx, pool, nil); err != nil {
		return err
	}
	start := time.Now()
	me, err := seed(ctx, pool, rows)
	if err != nil {
		return err
	}
	fmt.Printf("\n== %d todos (seeded in %s); the bench user sees %d of them\n", rows, time.Since(start).Round(time.Second), visible)

	for _, c := range []struct {
		name, rule, handwritten string
	}{
		{"owner rule", ownerRule, `SELECT t.* FROM public.todos t WHERE t.owner = $1 ORDER BY t.created_at DESC, t.id DESC LIMIT 50`},
		{"get() membership rule", membershipRule, `SELECT t.* FROM public.todos t WHERE t.project IN (SELECT p.id FROM public.projects p WHERE p.owner = $1 OR p.members @> ARRAY[$1]::uuid[]) ORDER BY t.created_at DESC, t.id DESC LIMIT 50`},
	} {
		cfg, err := schema.Parse("abe.yaml", []byte(fmt.Sprintf(config, c.rule)), nil)
		if err != nil {
			return err
		}
		eng, err := rules.Compile(cfg, nil)
		if err != nil {
			return err
		}
		// The rule is translated for each query, as a request would.
		ruled := func() (string, []any, error) {
			q := &rules.SQL{}
			pred, err := eng.ListPredicate("todos", &rules.SQLInput{Auth: &rules.Principal{ID: me}}, q)
			return "SELECT t.* FROM public.todos t WHERE " + pred + " ORDER BY t.created_at DESC, t.id DESC LIMIT 50", q.Args, err
		}
		hand := func() (string, []any, error) { return c.handwritten, []any{me}, nil }

		// Both must return the same records.
		a, err := ids(ctx, pool, ruled)
		if err != nil {
			return err
		}
		b, err := ids(ctx, pool, hand)
		if err != nil {
			return err
		}
		if !slices.Equal(a, b) || len(a) != 50 {
			return fmt.Errorf("%s: the rule returns %d records, the hand-written query %d, and they differ", c.name, len(a), len(b))
		}
		var tr, th []time.Duration
		for range 20 { // warm up
			if _, err := ids(ctx, pool, ruled); err != nil {
				return err
			}
			if _, err := ids(ctx, pool, hand); err != nil {
				return err
			}
		}
		for range n {
			d, err := timed(ctx, pool, ruled)
			if err != nil {
				return err
			}
			tr = append(tr, d)
			if d, err = timed(ctx, pool, hand); err != nil {
				return err
			}
			th = append(th, d)
		}
		mr, mh := median(tr), median(th)
		fmt.Printf("%-22s with the rule: median %8s p99 %8s | same list, hand-written, no rule: median %8s p99 %8s | ratio %.2f\n",
			c.name, mr, pct(tr, 99), mh, pct(th, 99), float64(mr)/float64(mh))
		sql, args, err := ruled()
		if err != nil {
			return err
		}
		plan, err := explain(ctx, pool, sql, args)
		if err != nil {
			return err
		}
		fmt.Printf("   plan with the rule:\n%s", plan)
	}
	return nil
}

// seed makes 1000 users, projects of about 100 todos each, and rows todos;
// the bench user owns `visible` todos and, through two projects it owns
// and two it is a member of, sees `visible` todos by membership.
func seed(ctx context.Context, pool *pgxpool.Pool, rows int) (string, error) {
	steps := []string{
		`INSERT INTO abe.users (email) SELECT 'u' || i || '@bench.test' FROM generate_series(1, 1000) i`,
		`CREATE TEMP TABLE u AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM abe.users`,
	}
	for _, s := range steps {
		if _, err := pool.Exec(ctx, s); err != nil {
			return "", err
		}
	}
	var me string
	if err := pool.QueryRow(ctx, `SELECT id::text FROM abe.users WHERE email = 'u1@bench.test'`).Scan(&me); err != nil {
		return "", err
	}
	projects := max(rows/100, 4)
	perProject := visible / 4
	tx, err := pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after commit, a no-op
	for _, s := range []string{
		// Projects 1-2 are the bench user's, 3-4 list it as a member; the
		// rest belong to others.
		`INSERT INTO public.projects (name, owner, members)
		 SELECT 'p' || i,
		   CASE WHEN i <= 2 THEN $1::uuid ELSE (SELECT id FROM abe.users WHERE email = 'u' || (2 + i % 999) || '@bench.test') END,
		   CASE WHEN i IN (3, 4) THEN ARRAY[$1::uuid] ELSE '{}' END
		 FROM generate_series(1, $2::int) i`,
	} {
		if _, err := tx.Exec(ctx, s, me, projects); err != nil {
			return "", err
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE p AS SELECT id, row_number() OVER (ORDER BY name COLLATE "C") AS n FROM public.projects`); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE others AS SELECT id, row_number() OVER () AS n FROM abe.users WHERE id <> $1`, me); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `CREATE UNIQUE INDEX ON p (n); CREATE UNIQUE INDEX ON others (n); ANALYZE p; ANALYZE others`); err != nil {
		return "", err
	}
	// The visible projects get exactly perProject todos each; the others
	// share the rest. The bench user owns the first `visible` todos.
	_, err = tx.Exec(ctx, `
INSERT INTO public.todos (title, owner, project, created_at)
SELECT 'todo ' || i,
  CASE WHEN i <= $3 THEN $1::uuid ELSE (SELECT id FROM others WHERE n = 1 + i % 999) END,
  CASE WHEN i <= 4 * $4 THEN (SELECT id FROM p WHERE n = 1 + (i - 1) / $4)
       ELSE (SELECT id FROM p WHERE n = 5 + i % greatest($5 - 4, 1)) END,
  now() - make_interval(secs => (i::bigint * 7919) % 10000000)
FROM generate_series(1, $2::int) i`, me, rows, visible, perProject, projects)
	if err != nil {
		return "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", err
	}
	_, err = pool.Exec(ctx, `ANALYZE`)
	return me, err
}

func ids(ctx context.Context, pool *pgxpool.Pool, q func() (string, []any, error)) ([]string, error) {
	sql, args, err := q()
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, "SELECT id::text FROM ("+sql+") x", args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func timed(ctx context.Context, pool *pgxpool.Pool, q func() (string, []any, error)) (time.Duration, error) {
	start := time.Now()
	sql, args, err := q()
	if err != nil {
		return 0, err
	}
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
	}
	rows.Close()
	return time.Since(start), rows.Err()
}

func explain(ctx context.Context, pool *pgxpool.Pool, sql string, args []any) (string, error) {
	rows, err := pool.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "+sql, args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("     " + l + "\n")
	}
	return b.String(), nil
}

func median(d []time.Duration) time.Duration { return pct(d, 50) }

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Microsecond)
}
