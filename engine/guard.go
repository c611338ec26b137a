package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
)

// A write must not tell its caller more than a read would (docs/rules.md,
// "What a write tells"). Two checks run after the rule of the write:
//
//   - a relation may point only at a record the caller may read; one it
//     may not read gets the answer of a missing one;
//   - field update rules hold for creates too: a create that sets such a
//     field to anything but its default must pass the field's rule, so that
//     deleting a record and creating it again cannot set what no update
//     could.

// errNoSuchRecord is the answer to a relation that points at nothing the
// caller may read, word for word the answer to a missing record.
func errNoSuchRecord(field string) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, detail: "the record points at a record that does not exist",
		fields: []httpx.FieldError{{Field: field, Message: "no such record"}}}
}

// checkRelations refuses a write whose relation fields point at records
// the caller may not read. Only what the write adds is checked: a record
// may keep pointing at one that has since become private. before is nil
// for a create.
func (e *Engine) checkRelations(ctx context.Context, db dbtx, co *coll, c *caller, loads *rules.Loads, rec, before Record) error {
	for i := range co.columns {
		col := &co.columns[i]
		if col.field == nil || col.field.Type != schema.Relation || col.field.Collection == schema.UsersCollection {
			continue // accounts are readable by id (their name, as expand shows)
		}
		var added []string
		switch v := rec[col.name].(type) {
		case string:
			if old, _ := before[col.name].(string); before == nil || old != v {
				added = append(added, v)
			}
		case []string:
			old, _ := before[col.name].([]string)
			for _, id := range v {
				if !slices.Contains(old, id) {
					added = append(added, id)
				}
			}
		}
		if len(added) == 0 {
			continue
		}
		slices.Sort(added)
		added = slices.Compact(added)
		readable, err := e.readableRecords(ctx, db, col.field.Collection, c, loads, added)
		if err != nil {
			return err
		}
		if len(readable) < len(added) {
			return errNoSuchRecord(col.name)
		}
	}
	return nil
}

// readableRecords reads the records of collection with the given ids that the
// caller may read, through db.
func (e *Engine) readableRecords(ctx context.Context, db dbtx, collection string, c *caller, loads *rules.Loads, ids []string) ([]Record, error) {
	target := e.colls[collection]
	rows, err := db.Query(ctx, `SELECT `+target.selectList+` FROM `+target.table+` t WHERE t.id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	var recs []Record
	for rows.Next() {
		rec, err := target.scan(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		recs = append(recs, rec)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := recs[:0]
	for _, rec := range recs {
		d, err := e.allow(ctx, c, collection, rules.Read, c.input(rec, nil, nil), loads)
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			out = append(out, rec)
		}
	}
	return out, nil
}

// checkCreateFields applies field update rules to a create: each field the
// create sets (vals, what the client sent) to other than its default is a
// change from the record as its defaults would make it, and must pass the
// field's update rule, with before that record.
func (e *Engine) checkCreateFields(ctx context.Context, co *coll, c *caller, loads *rules.Loads, rec, vals Record) error {
	if !e.rules.HasFieldUpdateRules(co.name) {
		return nil
	}
	defaults, changes := e.createChanges(co, rec, vals)
	if len(changes) == 0 {
		return nil
	}
	denied, err := e.deniedUpdates(ctx, c, co.name, c.input(rec, defaults, changes), loads)
	if err != nil {
		return err
	}
	return deniedFields(denied)
}

// createChanges is what field update rules see of a create: before is
// the record as its defaults would make it, and the changes are the fields
// vals sets to something else.
func (e *Engine) createChanges(co *coll, rec, vals Record) (Record, []string) {
	defaults := e.provisional(co, Record{})
	var changes []string
	for _, col := range co.columns {
		if col.field == nil {
			continue
		}
		if v, ok := vals[col.name]; ok && !equal(v, defaults[col.name]) {
			changes = append(changes, col.name)
		}
	}
	defaults["id"] = rec["id"]
	return defaults, changes
}

// deniedFields is the refusal of a write that sets fields whose update
// rules deny it.
func deniedFields(denied []string) error {
	if len(denied) == 0 {
		return nil
	}
	var fields []httpx.FieldError
	for _, f := range denied {
		fields = append(fields, httpx.FieldError{Field: f, Message: "your roles may not change this field"})
	}
	return &apiError{status: http.StatusForbidden, detail: "the update rules of these fields do not allow this change", fields: fields}
}

// provisional is the record that vals would make, with the declared
// defaults for what it leaves out, before the database has it.
func (e *Engine) provisional(co *coll, vals Record) Record {
	rec := Record{}
	for i := range co.columns {
		col := &co.columns[i]
		if v, ok := vals[col.name]; ok {
			rec[col.name] = v
			continue
		}
		var def any
		if col.field != nil {
			def = col.field.Default
		}
		switch {
		case col.name == "version":
			rec[col.name] = int64(1)
		case col.kind == "time" && (col.field == nil || def == "now"):
			rec[col.name] = e.now()
		case def != nil:
			// YAML gave the default; JSON gives it the shape convert takes.
			var raw any
			if b, err := json.Marshal(def); err == nil && json.Unmarshal(b, &raw) == nil {
				rec[col.name], _ = convert(col, raw) //nolint:errcheck // a nil value only makes a rule stricter
			}
		case col.kind == "list":
			rec[col.name] = []string{}
		default:
			rec[col.name] = nil
		}
	}
	return rec
}
