package schema

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testSystem stands for the system migrations in planner tests: a live
// catalog built by asLive has them all applied.
var testSystem = []Migration{{Component: "core", Version: 1, Name: "test", SQL: "SELECT 1"}}

// asLive turns a desired catalog into what ReadCatalog returns once it is
// applied: no SQL, defaults seen through their comments. The apply tests
// check that the two agree against real Postgres.
func asLive(c *Catalog) *Catalog {
	out := &Catalog{Schema: c.Schema, Tables: map[string]*Table{}, Triggers: map[string]*Trigger{}, Applied: map[string]AppliedMigration{}}
	for _, m := range testSystem {
		out.Applied[m.Key()] = AppliedMigration{Component: m.Component, Version: m.Version, Checksum: m.Checksum()}
	}
	strip := func(objs map[string]*Object) map[string]*Object {
		res := map[string]*Object{}
		for k, o := range objs {
			res[k] = &Object{Name: o.Name, Table: o.Table, Hash: o.Hash, ForeignKey: o.ForeignKey}
		}
		return res
	}
	for name, t := range c.Tables {
		lt := &Table{Name: name, Managed: true, Constraints: strip(t.Constraints), Indexes: strip(t.Indexes)}
		for _, col := range t.Columns {
			lt.Columns = append(lt.Columns, &Column{Name: col.Name, Type: col.Type, NotNull: col.NotNull, Default: col.Default, HasDefault: col.Default != ""})
		}
		out.Tables[name] = lt
	}
	out.Triggers = strip(c.Triggers)
	return out
}

func mustParse(t *testing.T, path string) *Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(path, data, nil)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return cfg
}

// TestPlanGolden plans, for each directory under testdata/plan, the
// change from old.yaml (as a live catalog) to new.yaml, and compares the
// plan with plan.golden.
func TestPlanGolden(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob("testdata/plan/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			old, want := mustParse(t, filepath.Join(dir, "old.yaml")), mustParse(t, filepath.Join(dir, "new.yaml"))
			plan, err := Diff(Desired(want), asLive(Desired(old)), testSystem)
			if err != nil {
				t.Fatal(err)
			}
			got := plan.String()
			golden := filepath.Join(dir, "plan.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantText, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./schema -run TestPlanGolden -update)", err)
			}
			if diff := cmp.Diff(string(wantText), got); diff != "" {
				t.Errorf("plan differs from %s (-want +got):\n%s", golden, diff)
			}
			// Applying the plan must leave nothing to do.
			again, err := Diff(Desired(want), asLive(Desired(want)), testSystem)
			if err != nil || !again.Empty() {
				t.Errorf("plan against its own result is not empty: %v\n%s", err, again)
			}
		})
	}
}

func TestPlanRefusesUnmanagedTable(t *testing.T) {
	t.Parallel()
	want := Desired(mustParse(t, "testdata/plan/add_column/new.yaml"))
	live := asLive(want)
	live.Tables["notes"].Managed = false
	_, err := Diff(want, live, testSystem)
	if err == nil {
		t.Fatal("planning over a table abe did not create succeeded")
	}
	ce, ok := err.(*ConflictError)
	if !ok || len(ce.Problems) != 1 {
		t.Fatalf("got %v, want one conflict", err)
	}
}

func TestPlanLeavesUnmanagedObjectsAlone(t *testing.T) {
	t.Parallel()
	want := Desired(mustParse(t, "testdata/plan/indexes/old.yaml"))
	live := asLive(want)
	// Tables, indexes and constraints made by hand carry no abe comment,
	// so ReadCatalog leaves them out of managed tables' objects, and an
	// unmanaged table is never dropped.
	live.Tables["legacy"] = &Table{Name: "legacy", Constraints: map[string]*Object{}, Indexes: map[string]*Object{}}
	plan, err := Diff(want, live, testSystem)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Empty() {
		t.Fatalf("plan touches unmanaged objects:\n%s", plan)
	}
}

func TestPlanSystemMigrationsFirst(t *testing.T) {
	t.Parallel()
	want := Desired(mustParse(t, "testdata/plan/add_column/new.yaml"))
	live := &Catalog{Schema: "public", Tables: map[string]*Table{}, Triggers: map[string]*Trigger{}, Applied: map[string]AppliedMigration{}}
	system := []Migration{{Component: "core", Version: 1, SQL: "a"}, {Component: "auth", Version: 1, SQL: "b"}}
	live.Applied["core/1"] = AppliedMigration{Component: "core", Version: 1}
	plan, err := Diff(want, live, system)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Steps[0].Kind != StepSystem || plan.Steps[0].Migration.Component != "auth" || plan.Steps[1].Kind == StepSystem {
		t.Fatalf("want exactly the pending auth migration first, got:\n%s", plan)
	}
}
