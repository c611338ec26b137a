package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// StepKind names what a migration step does.
type StepKind string

// The kinds of step a plan may hold, in the order a plan runs them.
const (
	StepSystem         StepKind = "system"
	StepRenameTable    StepKind = "rename_table"
	StepCreateTable    StepKind = "create_table"
	StepRenameColumn   StepKind = "rename_column"
	StepAddColumn      StepKind = "add_column"
	StepDropTrigger    StepKind = "drop_trigger"
	StepDropIndex      StepKind = "drop_index"
	StepDropConstraint StepKind = "drop_constraint"
	StepAlterType      StepKind = "alter_type"
	StepSetDefault     StepKind = "set_default"
	StepDropDefault    StepKind = "drop_default"
	StepSetNotNull     StepKind = "set_not_null"
	StepDropNotNull    StepKind = "drop_not_null"
	StepAddConstraint  StepKind = "add_constraint"
	StepCreateIndex    StepKind = "create_index"
	StepCreateTrigger  StepKind = "create_trigger"
	StepDropColumn     StepKind = "drop_column"
	StepDropTable      StepKind = "drop_table"
)

// Step is one change to the database, with the statements that make it.
type Step struct {
	Kind    StepKind `json:"kind"`
	Summary string   `json:"summary"`
	SQL     []string `json:"sql"`
	// Destructive steps can lose data; apply refuses them unless allowed.
	Destructive bool `json:"destructive,omitempty"`
	// Warning says when a step may fail on existing data, and what to do.
	Warning string `json:"warning,omitempty"`
	// Migration is set for system steps.
	Migration *Migration `json:"-"`
}

// Plan is the ordered list of steps that brings a database to a model.
type Plan struct {
	Steps []Step
}

// Empty reports whether the database already matches.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// Destructive lists the steps that can lose data.
func (p *Plan) Destructive() []Step {
	var out []Step
	for _, s := range p.Steps {
		if s.Destructive {
			out = append(out, s)
		}
	}
	return out
}

// Checksum identifies the plan by its statements.
func (p *Plan) Checksum() string {
	h := sha256.New()
	for _, s := range p.Steps {
		for _, q := range s.SQL {
			h.Write([]byte(q))
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// String renders the plan for people; see Format.
func (p *Plan) String() string {
	var b strings.Builder
	p.Format(&b, false)
	return b.String()
}

// Format writes one numbered line per step with its SQL indented below.
// The SQL of system migrations is long and always the same, so it is shown
// only when verbose.
func (p *Plan) Format(w io.Writer, verbose bool) {
	if p.Empty() {
		fmt.Fprintln(w, "Nothing to do: the database matches the configuration.")
		return
	}
	for i, s := range p.Steps {
		mark := ""
		if s.Destructive {
			mark = "  [destructive]"
		}
		fmt.Fprintf(w, "%d. %s%s\n", i+1, s.Summary, mark)
		if s.Warning != "" {
			fmt.Fprintf(w, "   warning: %s\n", s.Warning)
		}
		if s.Kind == StepSystem && !verbose {
			fmt.Fprintln(w, "     (system tables; --verbose shows the SQL)")
			continue
		}
		for _, q := range s.SQL {
			for _, line := range strings.Split(strings.TrimSpace(q), "\n") {
				fmt.Fprintf(w, "     %s\n", line)
			}
		}
	}
}

// ConflictError reports live objects that block a plan.
type ConflictError struct {
	Problems []string
}

func (e *ConflictError) Error() string {
	return "the database has objects abe does not manage in the way:\n  " + strings.Join(e.Problems, "\n  ")
}

// Diff plans the steps that turn live into want. system lists every
// system migration in order; those missing from live.Applied are planned
// first.
func Diff(want, live *Catalog, system []Migration) (*Plan, error) {
	d := &differ{want: want, live: live, byKind: map[StepKind][]Step{}, renames: map[string]string{}}
	for i := range system {
		m := &system[i]
		if _, ok := live.Applied[m.Key()]; !ok {
			d.add(Step{Kind: StepSystem, Summary: fmt.Sprintf("system: %s %d, %s", m.Component, m.Version, m.Name), SQL: []string{m.SQL}, Migration: m})
		}
	}
	d.tables()
	d.triggers()
	if len(d.conflicts) > 0 {
		return nil, &ConflictError{Problems: d.conflicts}
	}
	plan := &Plan{}
	for _, k := range stepOrder {
		plan.Steps = append(plan.Steps, d.byKind[k]...)
	}
	return plan, nil
}

var stepOrder = []StepKind{
	StepSystem, StepRenameTable, StepCreateTable, StepRenameColumn, StepAddColumn,
	StepDropTrigger, StepDropIndex, StepDropConstraint,
	StepAlterType, StepDropDefault, StepSetDefault, StepDropNotNull, StepSetNotNull,
	StepAddConstraint, StepCreateIndex, StepCreateTrigger, StepDropColumn, StepDropTable,
}

type differ struct {
	want, live *Catalog
	byKind     map[StepKind][]Step
	conflicts  []string
	// renames maps the qualified old name of a renamed table to the new.
	renames map[string]string
}

func (d *differ) add(s Step) { d.byKind[s.Kind] = append(d.byKind[s.Kind], s) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (d *differ) tables() {
	s := d.want.Schema
	renamedAway := map[string]bool{}
	// Declaration order keeps create statements readable; Desired has no
	// order of its own, so sort by name.
	for _, name := range sortedKeys(d.want.Tables) {
		want := d.want.Tables[name]
		live := d.live.table(name)
		if live == nil && want.RenamedFrom != "" {
			if old := d.live.table(want.RenamedFrom); old != nil && old.Managed {
				d.add(Step{Kind: StepRenameTable, Summary: fmt.Sprintf("rename table %s to %s", want.RenamedFrom, name),
					SQL: []string{fmt.Sprintf("ALTER TABLE %s RENAME TO %s", qualify(s, want.RenamedFrom), ident(name))}})
				renamedAway[want.RenamedFrom] = true
				d.renames[qualify(s, want.RenamedFrom)] = qualify(s, name)
				live = renamedTable(old, name, s)
			}
		}
		switch {
		case live == nil:
			d.createTable(want)
		case !live.Managed:
			d.conflicts = append(d.conflicts, fmt.Sprintf(
				"table %s exists but abe did not create it: rename or drop it, or let abe manage it with COMMENT ON TABLE %s IS '%s'",
				qualify(s, name), qualify(s, name), tableComment))
		default:
			d.alterTable(want, live)
		}
	}
	for _, name := range sortedKeys(d.live.Tables) {
		live := d.live.Tables[name]
		if !live.Managed || d.want.Tables[name] != nil || renamedAway[name] {
			continue
		}
		d.add(Step{Kind: StepDropTable, Summary: fmt.Sprintf("drop table %s and all its records", name),
			SQL: []string{"DROP TABLE " + qualify(s, name)}, Destructive: true})
		// Foreign keys go first, so dropped tables that point at each other
		// can be dropped in any order.
		for _, c := range sortedKeys(live.Constraints) {
			if o := live.Constraints[c]; o.ForeignKey {
				d.dropConstraint(o)
			}
		}
	}
}

// renamedTable is a live table as it will look after ALTER TABLE RENAME:
// its columns stay, and its objects keep their old names, which no longer
// match and so are recreated under the new ones.
func renamedTable(old *Table, name, schemaName string) *Table {
	t := *old
	t.Name = name
	t.Constraints = map[string]*Object{}
	t.Indexes = map[string]*Object{}
	for k, o := range old.Constraints {
		c := *o
		c.Table = qualify(schemaName, name)
		t.Constraints[k] = &c
	}
	for k, o := range old.Indexes {
		c := *o
		t.Indexes[k] = &c
	}
	return &t
}

func columnSQL(c *Column) string {
	sql := ident(c.Name) + " " + c.Type
	if c.NotNull {
		sql += " NOT NULL"
	}
	if c.Default != "" {
		sql += " DEFAULT " + c.Default
	}
	return sql
}

func commentColumnSQL(table string, c *Column) string {
	comment := "NULL"
	if c.Default != "" {
		comment = QuoteLiteral(commentPrefix + "default=" + c.Default)
	}
	return fmt.Sprintf("COMMENT ON COLUMN %s.%s IS %s", table, ident(c.Name), comment)
}

func (d *differ) createTable(t *Table) {
	qt := qualify(d.want.Schema, t.Name)
	var cols []string
	for _, c := range t.Columns {
		line := "  " + columnSQL(c)
		if c.Name == "id" {
			line += " PRIMARY KEY"
		}
		cols = append(cols, line)
	}
	sql := []string{
		fmt.Sprintf("CREATE TABLE %s (\n%s\n)", qt, strings.Join(cols, ",\n")),
		fmt.Sprintf("COMMENT ON TABLE %s IS %s", qt, QuoteLiteral(tableComment)),
	}
	for _, c := range t.Columns {
		if c.Default != "" {
			sql = append(sql, commentColumnSQL(qt, c))
		}
	}
	d.add(Step{Kind: StepCreateTable, Summary: fmt.Sprintf("create table %s (%d fields)", t.Name, len(t.Columns)-len(SystemFields)), SQL: sql})
	for _, name := range sortedKeys(t.Constraints) {
		d.addConstraint(t.Constraints[name])
	}
	for _, name := range sortedKeys(t.Indexes) {
		d.createIndex(t.Indexes[name])
	}
}

func (d *differ) alterTable(want, live *Table) {
	qt := qualify(d.want.Schema, want.Name)
	// Columns whose type changes drop and recreate the objects over them,
	// since a check written for the old type may not hold for the new one.
	retyped := map[string]bool{}
	for _, wc := range want.Columns {
		lc := live.column(wc.Name)
		if lc == nil && wc.RenamedFrom != "" && live.column(wc.RenamedFrom) != nil && want.column(wc.RenamedFrom) == nil {
			old := live.column(wc.RenamedFrom)
			d.add(Step{Kind: StepRenameColumn, Summary: fmt.Sprintf("rename column %s.%s to %s", want.Name, wc.RenamedFrom, wc.Name),
				SQL: []string{fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", qt, ident(wc.RenamedFrom), ident(wc.Name))}})
			moved := *old
			moved.Name = wc.Name
			lc = &moved
		}
		if lc == nil {
			d.addColumn(qt, want.Name, wc)
			continue
		}
		if lc.Type != wc.Type {
			retyped[wc.Name] = true
		}
		d.alterColumn(qt, want.Name, wc, lc)
	}
	for _, lc := range live.Columns {
		if want.column(lc.Name) != nil || renamedTo(want, lc.Name) {
			continue
		}
		d.add(Step{Kind: StepDropColumn, Summary: fmt.Sprintf("drop column %s.%s and its values", want.Name, lc.Name),
			SQL: []string{fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", qt, ident(lc.Name))}, Destructive: true})
	}
	for _, name := range sortedKeys(live.Constraints) {
		lo := live.Constraints[name]
		if wo := want.Constraints[name]; wo == nil || wo.Hash != lo.Hash || retyped[wo.Column] {
			d.dropConstraint(lo)
		}
	}
	for _, name := range sortedKeys(want.Constraints) {
		wo := want.Constraints[name]
		if lo := live.Constraints[name]; lo == nil || lo.Hash != wo.Hash || retyped[wo.Column] {
			d.addConstraint(wo)
		}
	}
	for _, name := range sortedKeys(live.Indexes) {
		lo := live.Indexes[name]
		if wo := want.Indexes[name]; wo == nil || wo.Hash != lo.Hash || retyped[wo.Column] {
			d.add(Step{Kind: StepDropIndex, Summary: fmt.Sprintf("drop index %s", name),
				SQL: []string{"DROP INDEX " + qualify(d.want.Schema, name)}})
		}
	}
	for _, name := range sortedKeys(want.Indexes) {
		wo := want.Indexes[name]
		if lo := live.Indexes[name]; lo == nil || lo.Hash != wo.Hash || retyped[wo.Column] {
			d.createIndex(wo)
		}
	}
}

func renamedTo(want *Table, old string) bool {
	for _, c := range want.Columns {
		if c.RenamedFrom == old {
			return true
		}
	}
	return false
}

func (d *differ) addColumn(qt, table string, c *Column) {
	step := Step{Kind: StepAddColumn, Summary: fmt.Sprintf("add column %s.%s (%s)", table, c.Name, c.Type),
		SQL: []string{fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", qt, columnSQL(c))}}
	if c.Default != "" {
		step.SQL = append(step.SQL, commentColumnSQL(qt, c))
	}
	if c.NotNull && c.Default == "" {
		step.Warning = fmt.Sprintf("fails if %s has records: give the field a default, or add it optional first and make it required later", table)
	}
	d.add(step)
}

func (d *differ) alterColumn(qt, table string, want, live *Column) {
	col := ident(want.Name)
	name := table + "." + want.Name
	typeChanged := live.Type != want.Type
	if typeChanged {
		using, safe := conversion(live.Type, want.Type, col)
		step := Step{Kind: StepAlterType, Summary: fmt.Sprintf("change type of %s from %s to %s", name, live.Type, want.Type)}
		if live.HasDefault {
			step.SQL = append(step.SQL, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", qt, col))
		}
		step.SQL = append(step.SQL, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s", qt, col, want.Type, using))
		if !safe {
			step.Destructive = true
			step.Warning = "values that do not convert make the migration fail, and narrowing can lose precision or items"
		}
		d.add(step)
	}
	switch {
	case want.Default == "" && (live.HasDefault || live.Default != "") && !(typeChanged && live.HasDefault):
		d.add(Step{Kind: StepDropDefault, Summary: "drop default of " + name,
			SQL: []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", qt, col), commentColumnSQL(qt, want)}})
	case want.Default != "" && (typeChanged || !live.HasDefault || live.Default != want.Default):
		d.add(Step{Kind: StepSetDefault, Summary: fmt.Sprintf("set default of %s to %s", name, want.Default),
			SQL: []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", qt, col, want.Default), commentColumnSQL(qt, want)}})
	}
	switch {
	case want.NotNull && !live.NotNull:
		step := Step{Kind: StepSetNotNull, Summary: "make " + name + " required"}
		if want.Default != "" {
			step.Summary = "make " + name + " not null, giving records without one its default"
			// Existing records get the default rather than blocking the
			// change; they count as written, so their version moves on.
			step.SQL = append(step.SQL, fmt.Sprintf("UPDATE %s SET %s = %s, version = version + 1, updated_at = now() WHERE %s IS NULL", qt, col, want.Default, col))
		} else {
			step.Warning = fmt.Sprintf("fails if a record of %s has no %s: fill them in first, or give the field a default", table, want.Name)
		}
		step.SQL = append(step.SQL, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", qt, col))
		d.add(step)
	case !want.NotNull && live.NotNull:
		d.add(Step{Kind: StepDropNotNull, Summary: "make " + name + " optional",
			SQL: []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", qt, col)}})
	}
}

// conversion returns the USING expression that converts a column and
// whether the conversion keeps every value.
func conversion(from, to, col string) (using string, safe bool) {
	switch {
	case from+"[]" == to:
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN '{}' ELSE ARRAY[%s] END", col, col), true
	case from == to+"[]":
		return col + "[1]", false
	}
	widening := map[string][]string{
		pgBigint:      {pgDouble, pgText},
		pgDouble:      {pgText},
		pgBool:        {pgText},
		pgUUID:        {pgText},
		pgTimestamptz: {pgText},
		pgJSONB:       {pgText},
		"text[]":      {pgJSONB},
		"uuid[]":      {"text[]", pgJSONB},
	}
	using = col + "::" + to
	if from == "text[]" || from == "uuid[]" {
		if to == pgJSONB {
			using = "to_jsonb(" + col + ")"
		}
	}
	return using, slices.Contains(widening[from], to)
}

func (d *differ) addConstraint(o *Object) {
	d.add(Step{Kind: StepAddConstraint, Summary: "add constraint " + o.Name,
		SQL: []string{o.SQL, fmt.Sprintf("COMMENT ON CONSTRAINT %s ON %s IS %s", ident(o.Name), o.Table, QuoteLiteral(commentPrefix+o.Hash))}})
}

func (d *differ) dropConstraint(o *Object) {
	d.add(Step{Kind: StepDropConstraint, Summary: "drop constraint " + o.Name,
		SQL: []string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", o.Table, ident(o.Name))}})
}

func (d *differ) createIndex(o *Object) {
	d.add(Step{Kind: StepCreateIndex, Summary: "create index " + o.Name,
		SQL: []string{o.SQL, fmt.Sprintf("COMMENT ON INDEX %s IS %s", qualify(d.want.Schema, o.Name), QuoteLiteral(commentPrefix+o.Hash))}})
}

func (d *differ) triggers() {
	live := map[string]*Trigger{}
	for _, lt := range d.live.Triggers {
		if renamed, ok := d.renames[lt.Table]; ok {
			moved := *lt
			moved.Table = renamed
			lt = &moved
		}
		live[triggerKey(lt)] = lt
	}
	for _, key := range sortedKeys(live) {
		lt := live[key]
		if wt := d.want.Triggers[key]; wt == nil || wt.Hash != lt.Hash {
			if d.tableDropped(lt.Table) {
				continue
			}
			d.add(Step{Kind: StepDropTrigger, Summary: "drop trigger " + lt.Name,
				SQL: []string{fmt.Sprintf("DROP TRIGGER %s ON %s", ident(lt.Name), lt.Table)}})
		}
	}
	for _, key := range sortedKeys(d.want.Triggers) {
		wt := d.want.Triggers[key]
		if lt := live[key]; lt == nil || lt.Hash != wt.Hash {
			d.add(Step{Kind: StepCreateTrigger, Summary: "create trigger " + wt.Name,
				SQL: []string{wt.SQL, fmt.Sprintf("COMMENT ON TRIGGER %s ON %s IS %s", ident(wt.Name), wt.Table, QuoteLiteral(commentPrefix+wt.Hash))}})
		}
	}
}

// tableDropped reports whether the plan drops the table (whose triggers go
// with it).
func (d *differ) tableDropped(qualified string) bool {
	for _, s := range d.byKind[StepDropTable] {
		if s.SQL[0] == "DROP TABLE "+qualified {
			return true
		}
	}
	return false
}
