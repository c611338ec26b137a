package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// tableComment marks a table as a collection abe manages.
const tableComment = commentPrefix + "collection"

// UsersTable is the qualified name of the built-in accounts table that
// relations to "users" point at.
const UsersTable = `"abe"."users"`

// Postgres types of the field types.
const (
	pgText        = "text"
	pgDouble      = "double precision"
	pgBigint      = "bigint"
	pgBool        = "boolean"
	pgTimestamptz = "timestamp with time zone"
	pgJSONB       = "jsonb"
	pgUUID        = "uuid"
)

// ColumnType is the Postgres type that stores a field.
func ColumnType(f *Field) string {
	var t string
	switch f.Type {
	case Number:
		t = pgDouble
	case Integer:
		t = pgBigint
	case Bool:
		t = pgBool
	case Timestamp:
		t = pgTimestamptz
	case JSON:
		t = pgJSONB
	case Relation:
		t = pgUUID
	default: // text, email, url, select, file
		t = pgText
	}
	if f.Many {
		t += "[]"
	}
	return t
}

// TableName is the qualified, quoted name of a collection's table.
func TableName(schemaName, collection string) string {
	if collection == UsersCollection {
		return UsersTable
	}
	return qualify(schemaName, collection)
}

func qualify(schemaName, table string) string {
	return pgx.Identifier{schemaName, table}.Sanitize()
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// QuoteLiteral renders s as a SQL string literal. Migrations run with
// standard_conforming_strings on, so only quotes need doubling.
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// objectName joins parts into an identifier Postgres will not truncate:
// names longer than 63 bytes keep a readable prefix and a hash of the whole.
func objectName(parts ...string) string {
	name := strings.Join(parts, "_")
	if len(name) <= maxIdentLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxIdentLen-9] + "_" + hex.EncodeToString(sum[:4])
}

func hashOf(sql string) string {
	sum := sha256.Sum256([]byte(sql))
	return hex.EncodeToString(sum[:8])
}

// TableTrigger is a trigger a component puts on every collection table,
// such as the change log's.
type TableTrigger struct {
	// Suffix names it: <table>_<suffix>.
	Suffix string
	// When is the timing and events, e.g. "AFTER INSERT OR UPDATE OR DELETE".
	When string
	// Function is called FOR EACH ROW with the collection name as argument.
	Function string
	// OnFields, when set, puts the trigger only on collections with fields
	// of this type: their names are passed after the collection name, and
	// replace {fields} in When (for UPDATE OF).
	OnFields FieldType
}

// DesiredWith is Desired plus the triggers components put on every
// collection table.
func DesiredWith(cfg *Config, triggers []TableTrigger) *Catalog {
	cat := Desired(cfg)
	for _, col := range cfg.Collections {
		qt := qualify(cfg.Database.Schema, col.Name)
		for _, tt := range triggers {
			name := objectName(col.Name, tt.Suffix)
			when, args := tt.When, []string{QuoteLiteral(col.Name)}
			if tt.OnFields != "" {
				var cols []string
				for _, f := range col.Fields {
					if f.Type == tt.OnFields {
						cols = append(cols, ident(f.Name))
						args = append(args, QuoteLiteral(f.Name))
					}
				}
				if len(cols) == 0 {
					continue
				}
				when = strings.ReplaceAll(when, "{fields}", strings.Join(cols, ", "))
			}
			sql := fmt.Sprintf("CREATE TRIGGER %s %s ON %s FOR EACH ROW EXECUTE FUNCTION %s(%s)", ident(name), when, qt, tt.Function, strings.Join(args, ", "))
			tr := &Trigger{Name: name, Table: qt, SQL: sql, Hash: hashOf(sql)}
			cat.Triggers[triggerKey(tr)] = tr
		}
	}
	return cat
}

// Desired is the catalog that cfg asks for.
func Desired(cfg *Config) *Catalog {
	cat := &Catalog{Schema: cfg.Database.Schema, Tables: map[string]*Table{}, Triggers: map[string]*Trigger{}, Applied: map[string]AppliedMigration{}}
	for _, col := range cfg.Collections {
		cat.Tables[col.Name] = desiredTable(cfg, col, cat)
	}
	return cat
}

func desiredTable(cfg *Config, col *Collection, cat *Catalog) *Table {
	s := cfg.Database.Schema
	qt := qualify(s, col.Name)
	t := &Table{Name: col.Name, Managed: true, RenamedFrom: col.RenamedFrom, Constraints: map[string]*Object{}, Indexes: map[string]*Object{}}
	t.Columns = []*Column{
		{Name: "id", Type: pgUUID, NotNull: true, Default: "abe.uuid_v7()"},
		{Name: "version", Type: pgBigint, NotNull: true, Default: "1"},
		{Name: "created_at", Type: pgTimestamptz, NotNull: true, Default: "now()"},
		{Name: "updated_at", Type: pgTimestamptz, NotNull: true, Default: "now()"},
	}
	addCheck := func(f *Field, kind, expr string) {
		name := objectName(col.Name, f.Name, kind)
		sql := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s)", qt, ident(name), expr)
		t.Constraints[name] = &Object{Name: name, Table: qt, SQL: sql, Hash: hashOf(sql), Column: f.Name}
	}
	addIndex := func(name, column, sql string) {
		t.Indexes[name] = &Object{Name: name, Table: qt, SQL: sql, Hash: hashOf(sql), Column: column}
	}
	indexedFirst := map[string]bool{}
	for _, idx := range col.Indexes {
		indexedFirst[idx.Fields[0]] = true
	}
	// Lists are sorted by -created_at unless asked otherwise; without an
	// index every default list of a large table would sort it whole.
	if !indexedFirst["created_at"] {
		name := objectName(col.Name, "created_at", "idx")
		addIndex(name, "", fmt.Sprintf("CREATE INDEX %s ON %s (created_at)", ident(name), qt))
	}

	for _, f := range col.Fields {
		c := &Column{Name: f.Name, Type: ColumnType(f), NotNull: f.NotNull() && !f.Many, Default: DefaultSQL(f), RenamedFrom: f.RenamedFrom, Field: f}
		if f.Many {
			// A list is never null: an empty list says "none" and keeps
			// `x in record.list` simple in rules.
			c.NotNull = true
			if c.Default == "" {
				c.Default = QuoteLiteral("{}") + "::" + c.Type
			}
		}
		t.Columns = append(t.Columns, c)
		qc := ident(f.Name)

		lo, hi := f.Min, f.Max
		if f.Many && f.Required && (lo == nil || *lo < 1) {
			one := 1.0
			lo = &one
		}
		if lo != nil || hi != nil {
			subject := qc
			switch {
			case f.Many:
				subject = "cardinality(" + qc + ")"
			case f.Type == Text || f.Type == Email || f.Type == URL:
				subject = "char_length(" + qc + ")"
			}
			var parts []string
			if lo != nil {
				parts = append(parts, subject+" >= "+formatNumber(*lo))
			}
			if hi != nil {
				parts = append(parts, subject+" <= "+formatNumber(*hi))
			}
			kind := "range"
			if f.Many {
				kind = "items"
			} else if f.Type != Number && f.Type != Integer {
				kind = "length"
			}
			addCheck(f, kind, strings.Join(parts, " AND "))
		}
		if f.Pattern != "" {
			addCheck(f, "pattern", qc+" ~ "+QuoteLiteral(f.Pattern))
		}
		switch f.Type {
		case Email:
			addCheck(f, "format", qc+" ~ "+QuoteLiteral(emailRE.String()))
		case URL:
			addCheck(f, "format", qc+" ~ "+QuoteLiteral(urlRE.String()))
		case Select:
			vals := make([]string, len(f.Values))
			for i, v := range f.Values {
				vals[i] = QuoteLiteral(v)
			}
			if f.Many {
				addCheck(f, "values", qc+" <@ ARRAY["+strings.Join(vals, ", ")+"]::text[]")
			} else {
				addCheck(f, "values", qc+" IN ("+strings.Join(vals, ", ")+")")
			}
		}
		if f.Unique {
			name := objectName(col.Name, f.Name, "key")
			addIndex(name, f.Name, fmt.Sprintf("CREATE UNIQUE INDEX %s ON %s (%s)", ident(name), qt, qc))
		}
		if f.Type != Relation {
			continue
		}
		target := TableName(s, f.Collection)
		if !f.Many {
			name := objectName(col.Name, f.Name, "fkey")
			sql := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (id) ON DELETE %s",
				qt, ident(name), qc, target, strings.ToUpper(strings.ReplaceAll(f.OnDelete, "_", " ")))
			t.Constraints[name] = &Object{Name: name, Table: qt, SQL: sql, Hash: hashOf(sql), Column: f.Name, ForeignKey: true}
			// Postgres does not index the referencing side; without one every
			// delete of a target scans this table.
			if !indexedFirst[f.Name] && !f.Unique {
				name := objectName(col.Name, f.Name, "idx")
				addIndex(name, f.Name, fmt.Sprintf("CREATE INDEX %s ON %s (%s)", ident(name), qt, qc))
			}
			continue
		}
		// A many-relation is a uuid[]: triggers give it the guarantees of a
		// foreign key (see docs/schema.md).
		name := objectName(col.Name, f.Name, "gin")
		addIndex(name, f.Name, fmt.Sprintf("CREATE INDEX %s ON %s USING gin (%s)", ident(name), qt, qc))

		check := objectName(col.Name, f.Name, "refcheck")
		sql := fmt.Sprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE OF %s ON %s FOR EACH ROW EXECUTE FUNCTION abe.check_many_ref(%s, %s)",
			ident(check), qc, qt, QuoteLiteral(target), QuoteLiteral(f.Name))
		tr := &Trigger{Name: check, Table: qt, SQL: sql, Hash: hashOf(sql), Column: f.Name}
		cat.Triggers[triggerKey(tr)] = tr

		onDelete := objectName(f.Collection, "ondelete", col.Name, f.Name)
		sql = fmt.Sprintf("CREATE TRIGGER %s AFTER DELETE ON %s FOR EACH ROW EXECUTE FUNCTION abe.many_ref_on_delete(%s, %s, %s)",
			ident(onDelete), target, QuoteLiteral(qt), QuoteLiteral(f.Name), QuoteLiteral(f.OnDelete))
		tr = &Trigger{Name: onDelete, Table: target, SQL: sql, Hash: hashOf(sql), Column: f.Name}
		cat.Triggers[triggerKey(tr)] = tr
	}

	for _, idx := range col.Indexes {
		cols := make([]string, len(idx.Fields))
		for i, f := range idx.Fields {
			cols[i] = ident(f)
		}
		name := idx.Name
		if name == "" {
			suffix := "idx"
			if idx.Unique {
				suffix = "key"
			}
			name = objectName(append(append([]string{col.Name}, idx.Fields...), suffix)...)
		}
		unique, method := "", ""
		if idx.Unique {
			unique = "UNIQUE "
		}
		if f := col.Field(idx.Fields[0]); len(idx.Fields) == 1 && f != nil && f.Many {
			method = " USING gin"
		}
		column := ""
		if len(idx.Fields) == 1 {
			column = idx.Fields[0]
		}
		addIndex(name, column, fmt.Sprintf("CREATE %sINDEX %s ON %s%s (%s)", unique, ident(name), qt, method, strings.Join(cols, ", ")))
	}
	return t
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// DefaultSQL renders a field's default as a SQL expression, "" for none.
// The validator has already checked that the default fits the type.
func DefaultSQL(f *Field) string {
	if f.Default == nil {
		return ""
	}
	if f.Many {
		items, _ := f.Default.([]any)
		if len(items) == 0 {
			return QuoteLiteral("{}") + "::" + ColumnType(f)
		}
		single := *f
		single.Many = false
		parts := make([]string, len(items))
		for i, item := range items {
			single.Default = item
			parts[i] = DefaultSQL(&single)
		}
		return "ARRAY[" + strings.Join(parts, ", ") + "]::" + ColumnType(f)
	}
	switch f.Type {
	case Number, Integer:
		switch v := f.Default.(type) {
		case int64:
			return strconv.FormatInt(v, 10)
		case float64:
			if f.Type == Integer {
				return strconv.FormatInt(int64(v), 10)
			}
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
	case Bool:
		if b, _ := f.Default.(bool); b {
			return "true"
		}
		return "false"
	case Timestamp:
		s, _ := f.Default.(string)
		if s == "now" {
			return "now()"
		}
		ts, err := timeOf(s)
		if err != nil {
			return ""
		}
		return QuoteLiteral(ts.UTC().Format("2006-01-02T15:04:05.999999Z")) + "::timestamptz"
	case JSON:
		b, err := json.Marshal(f.Default)
		if err != nil {
			return ""
		}
		return QuoteLiteral(string(b)) + "::jsonb"
	case Relation:
		s, _ := f.Default.(string)
		return QuoteLiteral(strings.ToLower(s)) + "::uuid"
	}
	s, _ := f.Default.(string)
	return QuoteLiteral(s)
}
