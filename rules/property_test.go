package rules

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is a collection with a field of every kind, and groups that
// records point at, for get().
const fixtureYAML = `
roles:
  admin: { permissions: ["*"] }
  reader: { permissions: ["fixture:read"] }
collections:
  groups:
    fields:
      name:    { type: text }
      owner:   { type: relation, collection: users }
      members: { type: relation, collection: users, many: true }
      level:   { type: integer }
      parent:  { type: relation, collection: groups }
    rules:
      read: "auth != null && (record.owner == auth.id || auth.id in record.members || record.level < 2)"
  fixture:
    fields:
      title:   { type: text, required: true }
      note:    { type: text, rules: { read: "auth != null && (record.owner == auth.id || record.count > 3)" } }
      count:   { type: integer }
      score:   { type: number }
      done:    { type: bool }
      status:  { type: select, values: [open, closed, draft] }
      labels:  { type: select, many: true, values: [red, green, blue] }
      owner:   { type: relation, collection: users }
      owner2:  { type: relation, collection: users }
      members: { type: relation, collection: users, many: true }
      group:   { type: relation, collection: groups }
      due:     { type: timestamp }
      meta:    { type: json }
      email:   { type: email }
    rules:
      list: %q
`

// corpus are list rules whose SQL and in-memory answers must agree.
var corpus = []string{
	"true", "false", "auth != null", "auth == null",
	"record.owner == auth.id", "record.owner != auth.id",
	"auth.id in record.members", "!(auth.id in record.members)",
	"record.owner == auth.id || auth.id in record.members",
	"record.title == 'alpha'", "record.title != 'alpha'",
	"record.note == null", "record.note != null", "has(record.note)", "!has(record.note)",
	"record.count > 5", "record.count >= 5 && record.count < 10", "!(record.count > 5)",
	"record.score < 0.5", "record.score + 1.0 > 2.0", "record.count * 2 == 10",
	"record.count / 2 == 2", "record.count % 3 == 1", "-record.count < -3",
	"record.done", "!record.done", "record.done == true", "record.done != false",
	"record.status == 'open'", "record.status in ['open', 'closed']", "!(record.status in ['open'])",
	"'red' in record.labels", "!('red' in record.labels)", "size(record.labels) == 2", "record.labels.size() == 0",
	"size(record.title) > 3", "record.title.startsWith('al')", "record.title.endsWith('a')",
	"record.title.contains('ph')", "!record.title.contains('ph')", "record.note.startsWith('n')",
	"record.title.startsWith('%')", "record.title.contains('_')",
	"record.created_at < request.time", "record.due > timestamp('2025-01-01T00:00:00Z')",
	"record.due < request.time - duration('24h')",
	"has_role('admin')", "has_role('admin') || record.owner == auth.id", "has_permission('fixture:read')",
	"auth.verified && record.owner == auth.id",
	"get('groups', record.group).owner == auth.id",
	"auth.id in get('groups', record.group).members",
	"get('groups', record.group).owner == auth.id || auth.id in get('groups', record.group).members",
	"!(get('groups', record.group).owner == auth.id)",
	"exists('groups', record.group)", "!exists('groups', record.group)",
	"get('groups', record.group).level > 2", "!(get('groups', record.group).level > 2)",
	"get('groups', get('groups', record.group).parent).owner == auth.id",
	"get('groups', record.group) == null", "get('groups', record.group) != null",
	"record.group == null || get('groups', record.group).level < 3",
	"record.title == record.note", "record.title != record.note", "record.owner == record.owner2",
	"record.meta == null", "record.meta != null", "record.email.endsWith('@example.test')",
	"record.id == auth.id", "record.count == 5", "record.count < record.score",
	"get('users', record.owner).email_verified", "record.title < 'm'", "record.title >= 'B'",
	"size(record.members) > 0 && record.owner != auth.id", "record.version > 0",
	"'x' + record.title == 'xalpha'",
	"record.owner in [auth.id, '00000000-0000-0000-0000-000000000000']", "record.group in []",
	"record.owner == 'not-a-uuid'", "record.owner != 'NOT-A-UUID'",
	"!(record.done && record.count > 1) || record.note == null",
	"(record.owner == auth.id && has_role('reader')) || (auth.id in record.members && !record.done)",
	// Hostile numbers: compared exactly with integers, nothing ordered
	// with NaN, and arithmetic that overflows is CEL's error, never a
	// failed query.
	"record.count >= 1.5", "record.count < 1.5", "record.count > -2.5", "!(record.count <= 2.5)", "1.5 < record.count",
	"record.count < 1e300", "record.count > 1e19", "record.count < -9.3e18", "record.count >= 9.3e18", "!(record.count < 1e300)",
	"record.count < 1.0/0.0", "record.count < double('NaN')", "!(record.count < double('NaN'))", "record.score >= double('NaN')",
	"!(record.score >= double('NaN'))", "record.score < 1.0/0.0", "record.count in [1, 2.5]",
	"record.count * 9223372036854775807 > 0", "record.count + 9223372036854775807 > 0", "-(record.count - 9223372036854775807 - 1) > 0",
	"record.score * 1e300 * 1e300 > 1.0", "record.score * 1e-300 * 1e-300 == 0.0", "record.score / 1e-300 > 0.0",
	"record.count / 0 == 1", "record.due + duration('2000000h') > request.time", "record.due - duration('2000000h') < request.time",
}

type fixtureData struct {
	users  []string
	groups []string
	ids    []string
}

func seed(t *testing.T, ctx context.Context, pool *pgxpool.Pool, rng *rand.Rand) fixtureData {
	t.Helper()
	var d fixtureData
	for i := range 4 {
		var id string
		if err := pool.QueryRow(ctx, `INSERT INTO abe.users (email, email_verified) VALUES ($1, $2) RETURNING id`, fmt.Sprintf("u%d@example.test", i), i%2 == 0).Scan(&id); err != nil {
			t.Fatal(err)
		}
		d.users = append(d.users, id)
	}
	pickUser := func() any {
		if rng.IntN(5) == 0 {
			return nil
		}
		return d.users[rng.IntN(len(d.users))]
	}
	someUsers := func() []string {
		out := []string{}
		for _, u := range d.users {
			if rng.IntN(3) == 0 {
				out = append(out, u)
			}
		}
		return out
	}
	maybe := func(v any) any {
		if rng.IntN(4) == 0 {
			return nil
		}
		return v
	}
	for i := range 8 {
		var parent any
		if len(d.groups) > 0 && rng.IntN(2) == 0 {
			parent = d.groups[rng.IntN(len(d.groups))]
		}
		var id string
		err := pool.QueryRow(ctx, `INSERT INTO groups (name, owner, members, level, parent) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			fmt.Sprintf("g%d", i), pickUser(), someUsers(), maybe(int64(rng.IntN(5))), parent).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		d.groups = append(d.groups, id)
	}
	titles := []string{"alpha", "beta", "gamma", "Alpha", "", "phi", "m", "zeta", "a%b", "x_y", "Z"}
	notes := []string{"note", "n", "alpha", "", "phi"}
	statuses := []string{"open", "closed", "draft"}
	labels := []string{"red", "green", "blue"}
	metas := []string{"null", `{}`, `[1]`, `"s"`, `{"a": 1}`}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 300 {
		ls := []string{}
		for _, l := range labels {
			if rng.IntN(2) == 0 {
				ls = append(ls, l)
			}
		}
		var group any
		if rng.IntN(4) > 0 {
			group = d.groups[rng.IntN(len(d.groups))]
		}
		var meta any
		if rng.IntN(3) > 0 {
			meta = metas[rng.IntN(len(metas))]
		}
		var id string
		err := pool.QueryRow(ctx, `INSERT INTO fixture (title, note, count, score, done, status, labels, owner, owner2, members, "group", due, meta, email, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15) RETURNING id`,
			titles[rng.IntN(len(titles))], maybe(notes[rng.IntN(len(notes))]), maybe(int64(rng.IntN(20)-5)), maybe(rng.Float64()*3),
			maybe(rng.IntN(2) == 0), maybe(statuses[rng.IntN(len(statuses))]), ls, pickUser(), pickUser(), someUsers(), group,
			maybe(base.Add(time.Duration(rng.IntN(96)-48)*time.Hour)), meta, maybe([]string{"a@example.test", "b@other.test"}[rng.IntN(2)]),
			base.Add(time.Duration(rng.IntN(48)-24)*time.Hour)).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		d.ids = append(d.ids, id)
	}
	return d
}

// dbLoader reads records for get() the way the records API will.
type dbLoader struct {
	pool *pgxpool.Pool
	cfg  *schema.Config
}

func (l *dbLoader) Load(ctx context.Context, collection, id string) (map[string]any, error) {
	if !canonicalUUID(id) {
		return nil, nil
	}
	table := schema.TableName("public", collection)
	cols := []string{"id"}
	if collection == schema.UsersCollection {
		cols = append(cols, "email", "name", "email_verified")
	} else {
		for _, f := range l.cfg.Collection(collection).Fields {
			cols = append(cols, f.Name)
		}
	}
	rows, err := l.pool.Query(ctx, selectRecord(table, cols, l.cfg.Collection(collection))+" WHERE t.id = $1", id)
	if err != nil {
		return nil, err
	}
	recs, err := collect(rows)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return recs[0], nil
}

// selectRecord selects columns as the Go values rules expect: uuids as
// text.
func selectRecord(table string, cols []string, c *schema.Collection) string {
	var sel []string
	for _, name := range append(cols, "version", "created_at", "updated_at") {
		expr := "t." + pgx.Identifier{name}.Sanitize()
		typ := "uuid"
		if c != nil && c.Field(name) != nil {
			typ = schema.ColumnType(c.Field(name))
		} else if name != "id" {
			typ = ""
		}
		switch typ {
		case "uuid":
			expr += "::text"
		case "uuid[]":
			expr += "::text[]"
		}
		sel = append(sel, expr+" AS "+pgx.Identifier{name}.Sanitize())
	}
	return "SELECT " + strings.Join(sel, ", ") + " FROM " + table + " t"
}

func collect(rows pgx.Rows) ([]map[string]any, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (map[string]any, error) {
		vals, err := row.Values()
		if err != nil {
			return nil, err
		}
		m := map[string]any{}
		for i, fd := range row.FieldDescriptions() {
			v := vals[i]
			switch x := v.(type) {
			case []any:
				strs := make([]string, 0, len(x))
				for _, it := range x {
					strs = append(strs, fmt.Sprint(it))
				}
				v = strs
			case int32:
				v = int64(x)
			}
			m[fd.Name] = v
		}
		return m, nil
	})
}

// TestSQLMatchesEvaluation runs every rule of the corpus both ways over
// random records and principals: the records the SQL predicate selects
// must be exactly those the CEL evaluation allows.
func TestSQLMatchesEvaluation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t, nil)
	base := mustConfig(t, fmt.Sprintf(fixtureYAML, "true"))
	sys := append(schema.CoreMigrations(), schema.Migration{Component: "test", Version: 1, Name: "users", SQL: `
CREATE TABLE abe.users (id uuid PRIMARY KEY DEFAULT abe.uuid_v7(), email text NOT NULL, name text NOT NULL DEFAULT '',
  email_verified boolean NOT NULL DEFAULT false, version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());`})
	if _, err := (&schema.Migrator{Config: base, System: sys}).Apply(ctx, pool, nil); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := seed(t, ctx, pool, rng)

	cols := []string{"id"}
	for _, f := range base.Collection("fixture").Fields {
		cols = append(cols, f.Name)
	}
	rows, err := pool.Query(ctx, selectRecord(`"public"."fixture"`, cols, base.Collection("fixture")))
	if err != nil {
		t.Fatal(err)
	}
	records, err := collect(rows)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	principals := []*Principal{
		nil,
		{ID: data.users[0], Roles: []string{"admin"}, Permissions: []string{"*"}, Verified: true},
		{ID: data.users[1], Roles: []string{"reader"}, Permissions: []string{"fixture:read"}},
		{ID: data.users[2], Roles: []string{}, Verified: true},
		{ID: data.users[3], Roles: []string{"reader"}, Permissions: []string{"fixture:read"}, Verified: true},
	}
	if len(corpus) < 50 {
		t.Fatalf("the corpus has %d rules; keep at least 50", len(corpus))
	}
	loader := &dbLoader{pool: pool, cfg: base}
	baseEngine, err := Compile(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range corpus {
		// The same expression as a client filter, over field names.
		// (has() needs a field selection, which filters do not have.)
		filterSrc := strings.ReplaceAll(rule, "record.", "")
		var flt *Filter
		if !strings.Contains(filterSrc, "has(") {
			flt, err = baseEngine.Filter("fixture", filterSrc)
			switch {
			case err != nil && strings.Contains(err.Error(), "only the id and name of an account"):
				flt = nil // what a filter may not read of an account
			case err != nil:
				t.Errorf("filter %q: %v", filterSrc, err)
			}
		}
		// A filter sees what the caller may read: groups through their
		// read rule, the note through its field rule. Where it sees what
		// the rule sees, both select the same records; everywhere, its SQL
		// and its evaluation on one record (realtime) agree.
		sameAsRule := !strings.Contains(filterSrc, "groups") && !strings.Contains(filterSrc, "note")
		cfg := mustConfig(t, fmt.Sprintf(fixtureYAML, rule))
		eng, err := Compile(cfg, nil)
		if err != nil {
			t.Errorf("%s: %v", rule, err)
			continue
		}
		for pi, p := range principals {
			q := &SQL{}
			pred, err := eng.ListPredicate("fixture", &SQLInput{Auth: p, Request: Request{Time: now}}, q)
			if err != nil {
				t.Errorf("%s: translate: %v", rule, err)
				break
			}
			rows, err := pool.Query(ctx, `SELECT t.id::text FROM "public"."fixture" t WHERE `+pred, q.Args...)
			if err != nil {
				t.Errorf("%s: %v\n%s", rule, err, pred)
				break
			}
			fromSQL, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			var fromCEL []string
			loads := NewLoads(ctx, loader)
			for _, rec := range records {
				d, err := eng.Allow(ctx, "fixture", List, &Input{Auth: p, Record: rec, Request: Request{Time: now}}, loads)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					fromCEL = append(fromCEL, rec["id"].(string))
				}
			}
			sort.Strings(fromSQL)
			sort.Strings(fromCEL)
			if !slices.Equal(fromSQL, fromCEL) {
				t.Errorf("%q, principal %d: SQL selects %d records, CEL allows %d\nSQL: %s\nonly in SQL: %v\nonly in CEL: %v",
					rule, pi, len(fromSQL), len(fromCEL), pred, diff(fromSQL, fromCEL), diff(fromCEL, fromSQL))
			}
			if flt == nil {
				continue
			}
			fq := &SQL{}
			fpred, err := flt.SQL(&SQLInput{Auth: p, Request: Request{Time: now}}, fq)
			if err != nil {
				t.Fatal(err)
			}
			rows, err = pool.Query(ctx, `SELECT t.id::text FROM "public"."fixture" t WHERE `+fpred, fq.Args...)
			if err != nil {
				t.Fatalf("filter %s: %v", fpred, err)
			}
			fromFilter, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			var matched []string
			for _, rec := range records {
				ok, err := flt.Match(&Input{Auth: p, Record: rec, Request: Request{Time: now}}, loads)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					matched = append(matched, rec["id"].(string))
				}
			}
			sort.Strings(fromFilter)
			sort.Strings(matched)
			if !slices.Equal(fromFilter, matched) || (sameAsRule && !slices.Equal(matched, fromCEL)) {
				t.Errorf("filter %q, principal %d: SQL %d, Match %d, rule %d\nSQL: %s", filterSrc, pi, len(fromFilter), len(matched), len(fromCEL), fpred)
			}
		}
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	if len(out) > 3 {
		out = append(out[:3], "...")
	}
	return out
}

func mustConfig(t testing.TB, src string) *schema.Config {
	t.Helper()
	cfg, err := schema.Parse("abe.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
