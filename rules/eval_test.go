package rules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abe-stack/abe/schema"
)

const projectsYAML = `
roles:
  moderator: { permissions: [todos:moderate] }
collections:
  teams:
    fields:
      lead: { type: relation, collection: users }
  projects:
    fields:
      name:    { type: text }
      owner:   { type: relation, collection: users, required: true }
      members: { type: relation, collection: users, many: true }
      status:  { type: select, values: [draft, published, archived] }
      team:    { type: relation, collection: teams }
      secret:  { type: text, rules: { read: "auth != null && auth.id == record.owner", update: "has_role('moderator')" } }
    rules:
      read:   "true"
      create: "auth != null && record.owner == auth.id"
      update: "auth != null && before.owner == auth.id && !('owner' in changes) && (record.status == before.status || (before.status == 'draft' && record.status == 'published'))"
      delete: "get('teams', record.team).lead == auth.id"
  chain:
    fields:
      next: { type: relation, collection: chain }
    rules:
      read: "get('chain', get('chain', get('chain', get('chain', get('chain', get('chain', get('chain', get('chain', get('chain', get('chain', get('chain', record.next).next).next).next).next).next).next).next).next).next).next) != null"
`

// memLoader serves records from memory and counts loads.
type memLoader struct {
	records map[string]map[string]any
	loads   atomic.Int32
	fail    bool
}

func (m *memLoader) Load(_ context.Context, collection, id string) (map[string]any, error) {
	m.loads.Add(1)
	if m.fail {
		return nil, errors.New("database down")
	}
	return m.records[collection+"/"+id], nil
}

func engine(t testing.TB, src string) *Engine {
	t.Helper()
	e, err := Compile(mustConfig(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const (
	ann = "018f0000-0000-7000-8000-00000000000a"
	bob = "018f0000-0000-7000-8000-00000000000b"
)

func TestBeforeAndAfter(t *testing.T) {
	t.Parallel()
	e := engine(t, projectsYAML)
	ctx := context.Background()
	stored := map[string]any{"id": "p1", "owner": ann, "status": "draft", "members": []string{}}
	with := func(changes map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range stored {
			out[k] = v
		}
		for k, v := range changes {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		who     string
		changes map[string]any
		want    bool
	}{
		{"owner renames", ann, map[string]any{"name": "x"}, true},
		{"owner publishes a draft", ann, map[string]any{"status": "published"}, true},
		{"owner archives a draft", ann, map[string]any{"status": "archived"}, false},
		{"owner gives the project away", ann, map[string]any{"owner": bob}, false},
		{"someone else renames", bob, map[string]any{"name": "x"}, false},
	} {
		var changed []string
		for k := range tc.changes {
			changed = append(changed, k)
		}
		d, err := e.Allow(ctx, "projects", Update, &Input{Auth: &Principal{ID: tc.who}, Record: with(tc.changes), Before: stored, Changes: changed}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != tc.want {
			t.Errorf("%s: allowed=%v, want %v (%s)", tc.name, d.Allowed, tc.want, d.Reason)
		}
	}
}

func TestMissingAndPublicRules(t *testing.T) {
	t.Parallel()
	e := engine(t, projectsYAML)
	ctx := context.Background()
	rec := map[string]any{"id": "p1", "owner": ann}
	// projects has no list rule: only "*" may list.
	if d, _ := e.Allow(ctx, "projects", List, &Input{Auth: &Principal{ID: ann, Permissions: []string{"todos:moderate"}}, Record: rec}, nil); d.Allowed || !strings.Contains(d.Reason, "no list rule") {
		t.Errorf("no rule: %+v", d)
	}
	if d, _ := e.Allow(ctx, "projects", List, &Input{Auth: &Principal{ID: ann, Permissions: []string{"*"}}, Record: rec}, nil); !d.Allowed {
		t.Errorf("* without a rule: %+v", d)
	}
	if d, _ := e.Allow(ctx, "projects", Read, &Input{Record: rec}, nil); !d.Allowed {
		t.Errorf("a public read for an anonymous principal: %+v", d)
	}
	q := &SQL{}
	if p, _ := e.ListPredicate("projects", &SQLInput{Auth: &Principal{ID: ann}}, q); p != "FALSE" {
		t.Errorf("predicate without a rule: %s", p)
	}
}

func TestFieldRules(t *testing.T) {
	t.Parallel()
	e := engine(t, projectsYAML)
	ctx := context.Background()
	rec := map[string]any{"id": "p1", "owner": ann, "secret": "s"}
	for _, tc := range []struct {
		who    *Principal
		hidden string
	}{
		{&Principal{ID: ann}, ""},
		{&Principal{ID: bob}, "secret"},
		{nil, "secret"},
	} {
		hidden, err := e.HiddenFields(ctx, "projects", &Input{Auth: tc.who, Record: rec}, nil)
		if err != nil || strings.Join(hidden, ",") != tc.hidden {
			t.Errorf("%v: hidden %v %v, want %q", tc.who, hidden, err, tc.hidden)
		}
	}
	denied, err := e.DeniedUpdates(ctx, "projects", &Input{Auth: &Principal{ID: ann}, Record: rec, Before: rec, Changes: []string{"name", "secret"}}, nil)
	if err != nil || strings.Join(denied, ",") != "secret" {
		t.Errorf("denied %v %v", denied, err)
	}
	denied, _ = e.DeniedUpdates(ctx, "projects", &Input{Auth: &Principal{ID: ann, Roles: []string{"moderator"}}, Record: rec, Before: rec, Changes: []string{"secret"}}, nil)
	if len(denied) != 0 {
		t.Errorf("moderator denied %v", denied)
	}
}

func TestCascadeLoading(t *testing.T) {
	t.Parallel()
	e := engine(t, projectsYAML)
	ctx := context.Background()
	ld := &memLoader{records: map[string]map[string]any{"teams/t1": {"id": "t1", "lead": ann}}}
	loads := NewLoads(ctx, ld)
	rec := map[string]any{"id": "p1", "owner": bob, "team": "t1"}
	for range 3 {
		d, err := e.Allow(ctx, "projects", Delete, &Input{Auth: &Principal{ID: ann}, Record: rec}, loads)
		if err != nil || !d.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
	}
	if n := ld.loads.Load(); n != 1 {
		t.Errorf("loaded %d times, want once (memoised for the request)", n)
	}
	if d, _ := e.Allow(ctx, "projects", Delete, &Input{Auth: &Principal{ID: bob}, Record: rec}, loads); d.Allowed {
		t.Error("bob is not the lead")
	}
	// A missing related record denies.
	if d, _ := e.Allow(ctx, "projects", Delete, &Input{Auth: &Principal{ID: ann}, Record: map[string]any{"team": "t9"}}, loads); d.Allowed {
		t.Error("a missing team allowed the delete")
	}
	// A failing database is an error, not a denial.
	if _, err := e.Allow(ctx, "projects", Delete, &Input{Auth: &Principal{ID: ann}, Record: map[string]any{"team": "t2"}}, NewLoads(ctx, &memLoader{fail: true})); err == nil {
		t.Error("a load failure was swallowed")
	}

	// Eleven distinct loads are refused with a clear reason.
	chain := map[string]map[string]any{}
	for i := range 12 {
		chain[fmt.Sprintf("chain/c%d", i)] = map[string]any{"id": fmt.Sprintf("c%d", i), "next": fmt.Sprintf("c%d", i+1)}
	}
	d, err := e.Allow(ctx, "chain", Read, &Input{Record: map[string]any{"next": "c0"}}, NewLoads(ctx, &memLoader{records: chain}))
	if err != nil || d.Allowed || !strings.Contains(d.Reason, "more than 10 records") {
		t.Fatalf("11 loads: %+v %v", d, err)
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	e := engine(t, projectsYAML)
	for _, tc := range []struct {
		src, want string
		col       int
	}{
		{"status == 'draft' && name.startsWith('a')", "", 0},
		{"owner == auth.id", "", 0},
		{"statu == 'draft'", "undeclared reference", 1},
		{"status == 1", "no matching overload", 8},
		{"status", "not a bool", 0},
		{"name.matches('x')", "cannot run in the database", 0},
		{"(status == 'draft'", "Syntax error", 19},
		{strings.Repeat("a", MaxFilterLen+1), "longer than", 0},
		{"record.status == 'x'", "undeclared reference", 1},
	} {
		f, err := e.Filter("projects", tc.src)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.src, err)
			}
			continue
		}
		var fe *FilterError
		if !errors.As(err, &fe) || !strings.Contains(fe.Error(), tc.want) || fe.Column != tc.col {
			t.Errorf("%q: %v (column %d), want %q at %d", tc.src, err, colOf(fe), tc.want, tc.col)
		}
		_ = f
	}
	f, err := e.Filter("projects", "status == 'draft' && auth.id in members")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := f.Match(&Input{Auth: &Principal{ID: ann}, Record: map[string]any{"status": "draft", "members": []string{ann}}}, nil)
	if err != nil || !ok {
		t.Errorf("match: %v %v", ok, err)
	}
	if again, _ := e.Filter("projects", " status == 'draft' && auth.id in members "); again != f {
		t.Error("filters are not cached")
	}
}

func colOf(fe *FilterError) int {
	if fe == nil {
		return -1
	}
	return fe.Column
}

// FuzzFilter compiles arbitrary filters: they compile to SQL or are
// refused with a FilterError, and never panic.
func FuzzFilter(f *testing.F) {
	e := engine(f, projectsYAML)
	for _, seed := range []string{"status == 'draft'", "owner == auth.id || auth.id in members", "name.startsWith('%_')", "size(members) > 2",
		"get('teams', team).lead == auth.id", "!exists('teams', team)", "created_at < request.time - duration('1h')", "(((", "'\\x00'", "name + name == 'aa'"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		flt, err := e.Filter("projects", src)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) {
				t.Fatalf("%q: %T %v", src, err, err)
			}
			return
		}
		q := &SQL{}
		if _, err := flt.SQL(&SQLInput{Auth: &Principal{ID: ann}, Request: Request{Time: time.Now()}}, q); err != nil {
			t.Fatalf("%q compiled but does not translate: %v", src, err)
		}
		_, _ = flt.Match(&Input{Auth: &Principal{ID: ann}, Record: map[string]any{"name": "a", "members": []string{}}}, nil)
	})
}

// BenchmarkAllow evaluates a typical rule on one record (no get()).
func BenchmarkAllow(b *testing.B) {
	e := engine(b, `
collections:
  todos:
    fields:
      owner:   { type: relation, collection: users, required: true }
      members: { type: relation, collection: users, many: true }
      done:    { type: bool }
    rules:
      read: "auth != null && (record.owner == auth.id || auth.id in record.members) && !record.done"
`)
	ctx := context.Background()
	in := &Input{Auth: &Principal{ID: ann, Roles: []string{"user"}}, Record: map[string]any{"id": "x", "owner": bob, "members": []string{bob, ann}, "done": false}}
	b.ReportAllocs()
	for b.Loop() {
		d, err := e.Allow(ctx, "todos", Read, in, nil)
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

var _ = schema.UsersCollection
