package rules

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// edgeYAML is a collection whose list and read rules are the same rule, so
// that a list (the rule as SQL) and a get or a realtime event (the read
// rule evaluated on the record) must show the same records. note and
// members are hidden from everyone but the owner, group from some.
const edgeYAML = `
collections:
  groups:
    fields:
      name:    { type: text }
      owner:   { type: relation, collection: users }
      level:   { type: integer }
    rules:
      read: "auth != null && record.owner == auth.id"
  edge:
    fields:
      title:   { type: text, required: true }
      note:    { type: text, rules: { read: "auth != null && record.owner == auth.id" } }
      count:   { type: integer }
      score:   { type: number }
      status:  { type: select, values: [open, closed, draft] }
      labels:  { type: select, many: true, values: [red, green, blue] }
      owner:   { type: relation, collection: users }
      members: { type: relation, collection: users, many: true, rules: { read: "auth != null && record.owner == auth.id" } }
      group:   { type: relation, collection: groups, rules: { read: "auth != null && (record.owner == auth.id || record.count == 1)" } }
      due:     { type: timestamp }
      meta:    { type: json }
      email:   { type: email }
    rules:
      list: %[1]q
      read: %[1]q
`

// edgeRules are rules over the values where SQL and CEL once disagreed,
// or could: integers near 2^53 and 2^63 against doubles, nulls under !=,
// in and computed values, lists with null, empty lists, relations ordered
// with strings, strings by case, timestamps with offsets, json null, in
// on json (lists, objects' keys, scalars), and
// related records loaded with get() and exists().
var edgeRules = []string{
	"record.count > 9007199254740992.0", "!(record.count > 9007199254740992.0)", "record.count >= 9007199254740994.0",
	"record.count <= 9007199254740992.0", "record.count >= 9223372036854775808.0", "record.count < -9223372036854775808.0",
	"record.count * 1024 > 9.3e18", "!(record.count * 1024 > 9.3e18)", "record.count + 1 != 0", "!(record.count + 1 == 0)",
	"record.count in [9007199254740992.0, 'x']", "record.count in [1, null]", "!(record.count in [1, null])",
	"record.score > 9007199254740992", "record.score != 1.5", "record.score < 1e308",
	"record.status in ['open', null]", "!(record.status in ['open', null])", "record.status in [null]", "!(record.status in [null])",
	"record.owner in [null, auth.id]", "!(record.owner in [null, auth.id])",
	"record.note != 'x'", "!(record.note == 'x')", "record.note in ['x', null]", "size(record.note) != 0", "!(size(record.note) == 0)",
	"!(size(record.note) in [0, 1])", "!(record.note + 'x' in record.labels)", "record.note + 'x' != record.title",
	"record.owner != auth.id", "!(record.owner == auth.id)", "record.email != auth.email", "auth.email != record.email",
	"record.owner > 'x'", "'x' < record.owner", "record.owner >= auth.id", "!(record.owner < '018f')",
	"record.title < 'a'", "record.title > 'z'", "record.title >= 'A'",
	"record.due == timestamp('2025-01-01T00:00:00Z')", "record.due < timestamp('2025-01-01T00:30:00+00:30')",
	"record.due + duration('1h') != request.time", "!(record.due + duration('1h') == request.time)",
	"record.due >= timestamp('2025-01-01T00:00:00.0000005Z')", "record.due < timestamp('2025-01-01T00:00:00.0000005Z')",
	"record.due != timestamp('2025-01-01T00:00:00.0000005Z')", "record.due in [timestamp('2025-01-01T00:00:00.0000005Z')]",
	"record.due + duration('500ns') > timestamp('2025-01-01T00:00:00Z')", "!(record.due + duration('1ns') == timestamp('2025-01-01T00:00:00Z'))",
	"record.due - duration('1500ns') <= timestamp('2024-12-31T23:59:59.9999985Z')", "record.due >= request.time",
	"record.meta == null", "record.meta != null",
	"auth.email in record.meta", "!(auth.email in record.meta)", "'a' in record.meta", "!('a' in record.meta)",
	"'null' in record.meta", "'' in record.meta", "auth.id == record.owner || auth.email in record.meta",
	"size(record.labels) == 0", "record.labels == []", "record.members == []", "auth.id in record.members", "!(auth.id in record.members)",
	"record.members != []", "!(record.members == [])", "size(record.members) == 0", "!(size(record.members) == 0)", "record.owner in record.members",
	"!(record.owner in record.members)", "!('x' in record.members)", "!(auth.id in record.members) || record.owner == null", "record.members == [auth.id]", "record.members != [auth.id]", "!(record.note.startsWith('a'))",
	"record.note == null", "record.note != null", "has(record.note)", "!has(record.note)", "has(record.members)",
	"get('groups', record.group).level > 9007199254740992.0", "!(get('groups', record.group).level > 9007199254740992.0)",
	"get('groups', record.group).name in ['a', null]", "!(get('groups', record.group).name in ['a', null])",
	"get('groups', record.group).name != 'a'", "size(get('groups', record.group).name) != 0",
	"exists('groups', record.group) && get('groups', record.group).owner != auth.id", "!exists('groups', record.group)",
	"!(get('groups', record.group).level > 0)", "record.group == null", "record.group != null", "record.group in [null]",
	"get('groups', record.group) == null || get('groups', record.group).owner in [null, auth.id]",
}

// TestRulesEdgeCases stores records built from the edge values and checks
// each rule of edgeRules as a list (its SQL) and as a read (CEL on the
// record as the engine reads it, with get() loading from the database):
// a record one allows and the other refuses would be shown by one path and
// hidden by the other. The same expressions as filters, which see the note
// only where its rule allows and groups only where theirs does, must give
// the same records as SQL and as Match.
func TestRulesEdgeCases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := mustConfig(t, fmt.Sprintf(edgeYAML, "true"))
	pool := migrated(t, ctx, base)
	var users []string
	for i := range 2 {
		var id string
		if err := pool.QueryRow(ctx, `INSERT INTO abe.users (email) VALUES ($1) RETURNING id::text`, fmt.Sprintf("e%d@example.test", i)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		users = append(users, id)
	}
	var groups []string
	for _, g := range []struct {
		name, owner any
		level       any
	}{{nil, users[0], int64(9007199254740993)}, {"a", users[1], nil}, {"", nil, int64(9007199254740992)}} {
		var id string
		if err := pool.QueryRow(ctx, `INSERT INTO groups (name, owner, level) VALUES ($1, $2, $3) RETURNING id::text`, g.name, g.owner, g.level).Scan(&id); err != nil {
			t.Fatal(err)
		}
		groups = append(groups, id)
	}
	counts := []any{int64(9007199254740993), int64(9007199254740992), int64(9007199254740995), int64(math.MaxInt64), int64(math.MinInt64), nil, int64(-1), int64(1)}
	scores := []any{9007199254740993.0, 1.5, nil, math.MaxFloat64, math.Copysign(0, -1)}
	statuses := []any{nil, "open", "draft"}
	notes := []any{nil, "", "x", "a"}
	labels := [][]string{{}, {"red"}, {"red", "blue"}}
	owners := []any{nil, users[0], users[1]}
	members := [][]string{{}, {users[0]}}
	groupRefs := []any{nil, groups[0], groups[1], groups[2]}
	dues := []any{nil, "2025-01-01T01:00:00+01:00", "2024-12-31T23:59:59.999999-00:30", "2025-01-01T00:00:00Z"}
	metas := []any{nil, "null", `{"a": 9007199254740993}`, `[]`, `["e0@example.test", 1]`, `{"e0@example.test": null}`,
		`"e0@example.test"`, `"a"`, `[["a"]]`, `["a", null]`, `["E0@example.test", ""]`, `1`, `{"b": "a"}`}
	titles := []string{"Z", "a", "é", "", "A"}
	emails := []any{nil, "e0@example.test", "E0@example.test"}
	const n = 120
	for i := range n {
		_, err := pool.Exec(ctx, `INSERT INTO edge (title, note, count, score, status, labels, owner, members, "group", due, meta, email)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::timestamptz, $11::jsonb, $12)`,
			titles[i%len(titles)], notes[i%len(notes)], counts[i%len(counts)], scores[i%len(scores)], statuses[i%len(statuses)],
			labels[i%len(labels)], owners[i%len(owners)], members[i%len(members)], groupRefs[(i/3)%len(groupRefs)],
			dues[(i/2)%len(dues)], metas[(i/5)%len(metas)], emails[(i/7)%len(emails)])
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	cols := []string{"id"}
	for _, f := range base.Collection("edge").Fields {
		cols = append(cols, f.Name)
	}
	rows, err := pool.Query(ctx, selectRecord(`"public"."edge"`, cols, base.Collection("edge")))
	if err != nil {
		t.Fatal(err)
	}
	records, err := collect(rows)
	if err != nil || len(records) != n {
		t.Fatalf("read back: %v (%d records)", err, len(records))
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 500, time.UTC)
	principals := []*Principal{nil, {ID: users[0], Email: "e0@example.test"}, {ID: users[1]}}
	loader := &dbLoader{pool: pool, cfg: base}
	baseEngine, err := Compile(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range edgeRules {
		eng, err := Compile(mustConfig(t, fmt.Sprintf(edgeYAML, rule)), nil)
		if err != nil {
			t.Errorf("%s: %v", rule, err)
			continue
		}
		// The same expression as a filter (has() needs a field selection,
		// which filters do not have).
		var flt *Filter
		if !strings.Contains(rule, "has(") {
			flt, err = baseEngine.Filter("edge", strings.ReplaceAll(rule, "record.", ""))
		}
		if err != nil {
			t.Errorf("filter of %s: %v", rule, err)
			continue
		}
		for pi, p := range principals {
			in := &SQLInput{Auth: p, Request: Request{Time: now}}
			q := &SQL{}
			pred, err := eng.ListPredicate("edge", in, q)
			if err != nil {
				t.Errorf("%s: translate: %v", rule, err)
				break
			}
			listed := selectIDs(t, ctx, pool, pred, q)
			fq := &SQL{}
			fpred := "TRUE"
			if flt != nil {
				if fpred, err = flt.SQL(in, fq); err != nil {
					t.Fatal(err)
				}
			}
			filtered := selectIDs(t, ctx, pool, fpred, fq)
			var read, matched []string
			loads := NewLoads(ctx, loader)
			for _, rec := range records {
				input := &Input{Auth: p, Record: rec, Request: Request{Time: now}}
				d, err := eng.Allow(ctx, "edge", Read, input, loads)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					read = append(read, rec["id"].(string))
				}
				ok := true
				if flt != nil {
					if ok, err = flt.Match(input, loads); err != nil {
						t.Fatal(err)
					}
				}
				if ok {
					matched = append(matched, rec["id"].(string))
				}
			}
			sort.Strings(read)
			sort.Strings(matched)
			if !slices.Equal(listed, read) {
				t.Errorf("rule %q, principal %d: the list shows %d records, the read rule allows %d\nSQL: %s %v\nonly listed: %v\nonly read: %v",
					rule, pi, len(listed), len(read), pred, q.Args, describe(records, diff(listed, read)), describe(records, diff(read, listed)))
			}
			if !slices.Equal(filtered, matched) {
				t.Errorf("filter of %q, principal %d: SQL selects %d records, Match %d\nSQL: %s %v\nonly SQL: %v\nonly Match: %v",
					rule, pi, len(filtered), len(matched), fpred, fq.Args, describe(records, diff(filtered, matched)), describe(records, diff(matched, filtered)))
			}
		}
	}
}

func selectIDs(t *testing.T, ctx context.Context, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, pred string, q *SQL) []string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT t.id::text FROM "public"."edge" t WHERE `+pred, q.Args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, pred)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	return ids
}

// describe shows the records of ids, for a failure.
func describe(records []map[string]any, ids []string) []string {
	var out []string
	for _, id := range ids {
		for _, r := range records {
			if r["id"] == id {
				out = append(out, fmt.Sprintf("%v", r))
			}
		}
	}
	return out
}
