package schema

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Catalog is the part of a Postgres database that abe manages: the
// collection tables of one schema, with the constraints, indexes and
// triggers abe made for them, and the system migrations already applied.
//
// The same type describes the desired state (built from a Config by
// Desired) and the live one (read by ReadCatalog), so planning is a diff of
// two values and can be tested without a database.
type Catalog struct {
	// Schema holds the collection tables.
	Schema string
	Tables map[string]*Table
	// Triggers abe made, keyed by table and name; a many-relation puts one
	// on the table it points at, which may be abe.users.
	Triggers map[string]*Trigger
	// Applied system migrations, keyed by Migration.Key.
	Applied map[string]AppliedMigration
}

// Table is a collection table.
type Table struct {
	Name string
	// Managed tables carry abe's comment; only they are ever altered or
	// dropped, so tables made by hand in the same schema are left alone.
	Managed     bool
	Columns     []*Column
	Constraints map[string]*Object
	Indexes     map[string]*Object
	// RenamedFrom is the table's previous name (desired catalog only).
	RenamedFrom string
}

// Column is one column of a table.
type Column struct {
	Name    string
	Type    string // as format_type prints it, e.g. "timestamp with time zone"
	NotNull bool
	// Default is the SQL expression of the default, "" for none. For a live
	// column it is what abe recorded when it set the default, since Postgres
	// prints expressions back in a normalised form.
	Default string
	// HasDefault tells, for a live column, whether Postgres has a default.
	HasDefault  bool
	RenamedFrom string // desired catalog only
	// Field is the declared field (desired catalog only; nil for system
	// columns).
	Field *Field
}

// Object is a constraint, index or trigger abe made. Hash identifies its
// definition: abe stores it in the object's comment, so a changed
// definition is recreated without comparing SQL that Postgres rewrites.
type Object struct {
	Name  string
	Table string // qualified, quoted table name
	SQL   string // the statement that creates it (desired catalog only)
	Hash  string
	// Column the object belongs to, for ordering and messages ("" for
	// multi-column indexes).
	Column string
	// ForeignKey marks foreign key constraints.
	ForeignKey bool
}

// Trigger is a trigger abe made.
type Trigger = Object

// AppliedMigration is a system migration recorded in abe.system_migrations.
type AppliedMigration struct {
	Component string
	Version   int
	Checksum  string
}

func (c *Catalog) table(name string) *Table {
	if c == nil {
		return nil
	}
	return c.Tables[name]
}

// column returns the named column of t, or nil.
func (t *Table) column(name string) *Column {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// DB runs queries on a pool, a connection or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const commentPrefix = "abe:"

// ReadCatalog reads the live catalog of the collections schema.
func ReadCatalog(ctx context.Context, db DB, schemaName string) (*Catalog, error) {
	cat := &Catalog{Schema: schemaName, Tables: map[string]*Table{}, Triggers: map[string]*Trigger{}, Applied: map[string]AppliedMigration{}}

	err := forRows(ctx, db, qTables, []any{schemaName}, func(r pgx.Rows) error {
		var name string
		var comment *string
		if err := r.Scan(&name, &comment); err != nil {
			return err
		}
		cat.Tables[name] = &Table{Name: name, Managed: comment != nil && *comment == tableComment, Constraints: map[string]*Object{}, Indexes: map[string]*Object{}}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tables of schema %s: %w", schemaName, err)
	}

	err = forRows(ctx, db, qColumns, []any{schemaName}, func(r pgx.Rows) error {
		var table string
		var col Column
		var def, comment *string
		if err := r.Scan(&table, &col.Name, &col.Type, &col.NotNull, &def, &comment); err != nil {
			return err
		}
		col.HasDefault = def != nil
		if comment != nil {
			col.Default, _ = strings.CutPrefix(*comment, commentPrefix+"default=")
			if !strings.HasPrefix(*comment, commentPrefix+"default=") {
				col.Default = ""
			}
		}
		if t := cat.Tables[table]; t != nil {
			t.Columns = append(t.Columns, &col)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read columns of schema %s: %w", schemaName, err)
	}

	// Only objects that carry abe's comment are abe's; the rest were made by
	// hand and are never touched.
	readObjects := func(query string, into func(t *Table) map[string]*Object) error {
		return forRows(ctx, db, query, []any{schemaName}, func(r pgx.Rows) error {
			var table, name string
			var comment *string
			var fk bool
			if err := r.Scan(&table, &name, &comment, &fk); err != nil {
				return err
			}
			t := cat.Tables[table]
			if t == nil || comment == nil || !strings.HasPrefix(*comment, commentPrefix) {
				return nil
			}
			into(t)[name] = &Object{Name: name, Table: qualify(schemaName, table), Hash: strings.TrimPrefix(*comment, commentPrefix), ForeignKey: fk}
			return nil
		})
	}
	if err := readObjects(qConstraints, func(t *Table) map[string]*Object { return t.Constraints }); err != nil {
		return nil, fmt.Errorf("read constraints of schema %s: %w", schemaName, err)
	}
	if err := readObjects(qIndexes, func(t *Table) map[string]*Object { return t.Indexes }); err != nil {
		return nil, fmt.Errorf("read indexes of schema %s: %w", schemaName, err)
	}

	err = forRows(ctx, db, qTriggers, []any{schemaName}, func(r pgx.Rows) error {
		var nsp, table, name string
		var comment *string
		if err := r.Scan(&nsp, &table, &name, &comment); err != nil {
			return err
		}
		if comment == nil || !strings.HasPrefix(*comment, commentPrefix) {
			return nil
		}
		tr := &Trigger{Name: name, Table: qualify(nsp, table), Hash: strings.TrimPrefix(*comment, commentPrefix)}
		cat.Triggers[triggerKey(tr)] = tr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read triggers: %w", err)
	}

	var exists bool
	if err := db.QueryRow(ctx, `SELECT to_regclass('abe.system_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for abe.system_migrations: %w", err)
	}
	if exists {
		err = forRows(ctx, db, `SELECT component, version, checksum FROM abe.system_migrations`, nil, func(r pgx.Rows) error {
			var a AppliedMigration
			if err := r.Scan(&a.Component, &a.Version, &a.Checksum); err != nil {
				return err
			}
			cat.Applied[migrationKey(a.Component, a.Version)] = a
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read applied system migrations: %w", err)
		}
	}
	return cat, nil
}

func forRows(ctx context.Context, db DB, query string, args []any, each func(pgx.Rows) error) error {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func triggerKey(t *Trigger) string { return t.Table + " " + t.Name }

const (
	qTables = `
SELECT c.relname, obj_description(c.oid, 'pg_class')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`

	qColumns = `
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum`

	qConstraints = `
SELECT c.relname, k.conname, obj_description(k.oid, 'pg_constraint'), k.contype = 'f'
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND k.contype IN ('c', 'f')`

	qIndexes = `
SELECT t.relname, i.relname, obj_description(i.oid, 'pg_class'), false
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND NOT x.indisprimary`

	qTriggers = `
SELECT n.nspname, c.relname, t.tgname, obj_description(t.oid, 'pg_trigger')
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND n.nspname IN ($1, 'abe')`
)
