package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/schema"
)

// testUsersMigration is the accounts table the rules tests need for
// relations to users and get('users', ...).
func testUsersMigration() schema.Migration {
	return schema.Migration{Component: "test", Version: 1, Name: "users", SQL: `
CREATE TABLE abe.users (id uuid PRIMARY KEY DEFAULT abe.uuid_v7(), email text NOT NULL, name text NOT NULL DEFAULT '',
  email_verified boolean NOT NULL DEFAULT false, version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());`}
}

// migrated is a database with cfg's tables and the accounts table.
func migrated(t *testing.T, ctx context.Context, cfg *schema.Config) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.New(t, nil)
	sys := append(schema.CoreMigrations(), testUsersMigration())
	if _, err := (&schema.Migrator{Config: cfg, System: sys}).Apply(ctx, pool, nil); err != nil {
		t.Fatal(err)
	}
	return pool
}

// TestFilterVectorsSQL runs the shared filter vectors the way a list does:
// each case's record is stored as a row of a real table, and the filter's
// SQL translation selects it or not. The SQL answer must be the vector's
// answer (want, or server when want is null) and Match's answer on the
// row as read back, as realtime sees it; a list and a subscription with
// the same filter then agree.
//
// A record the table cannot hold as given (a NUL in text) is skipped; a
// record that leaves out a column the table fills (a required field, a
// system field) is stored with the column filled, and then only SQL and
// Match on the stored row must agree, since the vector's answer is for
// the record with that field null.
func TestFilterVectorsSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := mustConfig(t, filterVectorYAML)
	pool := migrated(t, ctx, cfg)
	// The select fields' CHECKs go: records hold values outside the
	// choices (the vectors test what Match makes of them), and the
	// translation must not lean on the CHECKs.
	if _, err := pool.Exec(ctx, `ALTER TABLE "public"."items" DROP CONSTRAINT items_labels_values, DROP CONSTRAINT items_status_values`); err != nil {
		t.Fatal(err)
	}
	e, err := Compile(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	col := cfg.Collection("items")
	cols := []string{"id"}
	for _, f := range col.Fields {
		cols = append(cols, f.Name)
	}
	loader := &dbLoader{pool: pool, cfg: cfg}
	checked := 0
	for file, f := range loadFilterVectors(t) {
		for _, c := range f.Cases {
			if c.Error {
				continue
			}
			t.Run(file+"/"+c.Name, func(t *testing.T) {
				flt, err := e.Filter("items", c.Filter)
				if err != nil {
					t.Fatalf("filter %q: %v", c.Filter, err)
				}
				id, filled, err := storeVector(ctx, pool, col, c.Record)
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && (pgErr.Code == "22021" || pgErr.Code == "22P05") {
					// A NUL in text is the one value Postgres cannot store:
					// such a record never reaches a table (the API answers
					// 400 invalid_data; fuzz_e2e_test.go writes one), so no SQL
					// ever sees it; Match still answers it (filter_vectors_test.go).
					// Any other vector failing to store is a failure.
					if !strings.Contains(string(c.Record), `\u0000`) {
						t.Fatalf("store %s: %v", c.Record, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("store %s: %v", c.Record, err)
				}
				in := SQLInput{}
				match := &Input{}
				if c.Auth != nil {
					in.Auth = &Principal{ID: c.Auth.ID, Email: c.Auth.Email, Roles: c.Auth.Roles}
					match.Auth = in.Auth
				}
				if c.Now != "" {
					if in.Request.Time, err = time.Parse(time.RFC3339Nano, c.Now); err != nil {
						t.Fatalf("now: %v", err)
					}
					match.Request = in.Request
				}
				q := &SQL{}
				pred, err := flt.SQL(&in, q)
				if err != nil {
					t.Fatal(err)
				}
				var fromSQL bool
				err = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM "public"."items" t WHERE t.id = `+q.Arg(id)+`::uuid AND `+pred+`)`, q.Args...).Scan(&fromSQL)
				if err != nil {
					t.Fatalf("filter %q: %v\n%s", c.Filter, err, pred)
				}
				rows, err := pool.Query(ctx, selectRecord(`"public"."items"`, cols, col)+` WHERE t.id = $1`, id)
				if err != nil {
					t.Fatal(err)
				}
				recs, err := collect(rows)
				if err != nil || len(recs) != 1 {
					t.Fatalf("read back: %v (%d rows)", err, len(recs))
				}
				match.Record = recs[0]
				matched, err := flt.Match(match, NewLoads(ctx, loader))
				if err != nil {
					t.Fatal(err)
				}
				if fromSQL != matched {
					t.Errorf("filter %q on %s: SQL %v, Match on the stored row %v\nSQL: %s %v", c.Filter, c.Record, fromSQL, matched, pred, q.Args)
				}
				want := c.Want
				if want == nil {
					want = c.Server
				}
				if want != nil && len(filled) == 0 && fromSQL != *want {
					t.Errorf("filter %q on %s: want %v, SQL says %v\nSQL: %s %v", c.Filter, c.Record, *want, fromSQL, pred, q.Args)
				}
				checked++
			})
		}
	}
	if checked < 150 {
		t.Errorf("%d vectors ran through SQL; keep at least 150", checked)
	}
}

// storeVector inserts a vector's record as a row and returns its id and
// the columns the table filled because the record left them out.
func storeVector(ctx context.Context, pool *pgxpool.Pool, col *schema.Collection, raw json.RawMessage) (string, []string, error) {
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &rec); err != nil {
		return "", nil, err
	}
	// Accounts the record points at exist, as relations require.
	for _, name := range []string{"owner", "members"} {
		var ids []string
		var one string
		if json.Unmarshal(rec[name], &one) == nil && one != "" {
			ids = append(ids, one)
		} else {
			_ = json.Unmarshal(rec[name], &ids)
		}
		for _, u := range ids {
			if !canonicalUUID(u) {
				continue
			}
			if _, err := pool.Exec(ctx, `INSERT INTO abe.users (id, email) VALUES ($1::uuid, $2) ON CONFLICT DO NOTHING`, u, u+"@example.test"); err != nil {
				return "", nil, fmt.Errorf("account %s: %w", u, err)
			}
		}
	}
	var names, vals []string
	var args []any
	var filled []string
	add := func(name, typ string, v any) {
		args = append(args, v)
		names = append(names, pgx.Identifier{name}.Sanitize())
		vals = append(vals, fmt.Sprintf("$%d::%s", len(args), typ))
	}
	system := map[string]string{"id": "uuid", "version": "bigint", "created_at": "timestamptz", "updated_at": "timestamptz"}
	for name, typ := range system {
		v, ok := rec[name]
		if !ok || string(v) == "null" {
			filled = append(filled, name)
			continue
		}
		var s any
		if err := json.Unmarshal(v, &s); err != nil {
			return "", nil, err
		}
		if n, isNum := s.(float64); isNum {
			s = int64(n)
		}
		add(name, typ, s)
	}
	for _, f := range col.Fields {
		v, ok := rec[f.Name]
		if !ok || string(v) == "null" {
			if f.Required {
				filled = append(filled, f.Name)
				switch f.Type {
				case schema.Bool:
					add(f.Name, "boolean", false)
				default:
					add(f.Name, "text", "")
				}
			}
			continue
		}
		typ := schema.ColumnType(f)
		if f.Type == schema.JSON {
			add(f.Name, "jsonb", string(v))
			continue
		}
		var s any
		dec := json.NewDecoder(strings.NewReader(string(v)))
		dec.UseNumber()
		if err := dec.Decode(&s); err != nil {
			return "", nil, err
		}
		switch x := s.(type) {
		case json.Number:
			// Text, so the column's type reads the number exactly.
			s = x.String()
			typ = "text::" + typ
		case []any:
			l := make([]string, len(x))
			for i, it := range x {
				l[i] = fmt.Sprint(it)
			}
			s = l
		}
		add(f.Name, typ, s)
	}
	var id string
	err := pool.QueryRow(ctx, `INSERT INTO "public"."items" (`+strings.Join(names, ", ")+`) VALUES (`+strings.Join(vals, ", ")+`) RETURNING id::text`, args...).Scan(&id)
	return id, filled, err
}
