package rules

import (
	"context"
	"fmt"

	"github.com/abe-stack/abe/schema"
)

// A client's filter, sort and cursor must be a function of what the caller
// may read, and nothing else (docs/rules.md, "What a filter sees"). Rules
// are the developer's and see every record; a filter is the client's, so
// its translation sees the data as the caller does:
//
//   - a field whose read rule the caller fails is null on that record;
//   - get() and exists() find only records whose collection's read rule
//     lets the caller read them, and see their fields the same way;
//   - of an account, only the id and the name (what expand shows).
//
// The read rules become part of the SQL (a CASE around the column, a
// condition inside the EXISTS), so the answer cannot be probed; Match
// applies the same view to one record for realtime.

// visible is a column as the caller may see it in a filter or a sort: the
// column where its field's read rule allows, NULL where it does not.
func (tr *translator) visible(v val, c *schema.Collection, name, alias string) (val, error) {
	if c.Name == schema.UsersCollection {
		if name != "id" && name != "name" {
			return val{}, cannot("a filter can read only the id and name of an account, not its %s", name)
		}
		return v, nil
	}
	col := tr.eng.colls[c.Name]
	if col == nil || tr.in.Unrestricted {
		return v, nil
	}
	p := col.fieldRead[name]
	if p == nil {
		return v, nil
	}
	guard, err := tr.ruleOn(col, p, alias, fmt.Sprintf("the read rule of %s.%s cannot run in the database, so filters and sorts cannot use the field", c.Name, name))
	if err != nil {
		return val{}, err
	}
	if guard == "TRUE" {
		return v, nil
	}
	v.sql = "(CASE WHEN " + guard + " THEN " + v.sql + " END)"
	v.nullable = true
	return v, nil
}

// readGuard is, in a filter, the read rule of collection over alias: the
// condition under which the caller may read the related record. Rules
// (not filters) see every record, and accounts are readable by id.
func (tr *translator) readGuard(collection, alias string) (string, error) {
	if !tr.filter || tr.in.Unrestricted || collection == schema.UsersCollection {
		return "", nil
	}
	col := tr.eng.colls[collection]
	if col == nil {
		return "", cannot("no collection %s", collection)
	}
	guard, err := tr.ruleOn(col, col.ops[Read], alias, fmt.Sprintf("the read rule of %s cannot run in the database, so filters cannot use get() or exists() on it", collection))
	if err != nil || guard == "TRUE" {
		return "", err
	}
	return guard, nil
}

// ruleOn translates p, a rule of col, over the record at alias, in this
// statement. A missing rule lets only the * permission through.
func (tr *translator) ruleOn(col *collection, p *program, alias, untranslatable string) (string, error) {
	if p == nil {
		return sqlBool(tr.in.Auth.superuser()), nil
	}
	if p.translateErr != "" {
		return "", cannot("%s", untranslatable)
	}
	sub := &translator{eng: tr.eng, col: col, prog: p, q: tr.q, dry: tr.dry, counter: tr.count(),
		in: &SQLInput{Auth: tr.in.Auth, Request: tr.in.Request, Alias: alias}}
	return sub.boolean(p.ast.NativeRep().Expr(), false)
}

// existsSQL is exists(collection, key): in a filter, only a record the
// caller may read exists.
func (tr *translator) existsSQL(collection, key string) (string, error) {
	a := tr.fresh("e")
	guard, err := tr.readGuard(collection, a)
	if err != nil {
		return "", err
	}
	s := "EXISTS (SELECT 1 FROM " + tr.eng.tables[collection] + " " + a + " WHERE " + a + ".id = " + key
	if guard != "" {
		s += " AND " + guard
	}
	return s + ")", nil
}

// FieldSQL is the SQL of a field of collection as the principal may see it
// in a sort: the column, or a CASE that is NULL where the field's read rule
// hides it (masked). A field whose read rule has no SQL form is an error
// that IsUntranslatable recognises.
func (e *Engine) FieldSQL(collection, field string, in *SQLInput, q *SQL) (sql string, masked bool, err error) {
	col, err := e.collection(collection)
	if err != nil {
		return "", false, err
	}
	tr := &translator{eng: e, col: col, in: in, q: q, filter: true}
	raw, err := tr.rawColumn(tr.alias(), col.schema, field)
	if err != nil {
		return "", false, err
	}
	v, err := tr.visible(raw, col.schema, field, tr.alias())
	if err != nil {
		return "", false, err
	}
	return v.sql, v.sql != raw.sql, nil
}

// filterView is a record as a filter sees it: without the fields the
// principal may not read.
func (e *Engine) filterView(ctx context.Context, col *collection, in *Input, loads *Loads, rec map[string]any) (map[string]any, error) {
	if len(col.fieldRead) == 0 || rec == nil {
		return rec, nil
	}
	hidden, err := e.HiddenFields(ctx, col.schema.Name, &Input{Auth: in.Auth, Record: rec, Request: in.Request}, loads)
	if err != nil || len(hidden) == 0 {
		return rec, err
	}
	out := make(map[string]any, len(rec))
	for k, v := range rec {
		out[k] = v
	}
	for _, f := range hidden {
		out[f] = nil
	}
	return out, nil
}

// readableLoader loads records for get() and exists() in a filter: only
// those the principal may read, as it may see them.
type readableLoader struct {
	eng   *Engine
	in    *Input
	loads *Loads // the request's, which rules load through
}

func (l *readableLoader) Load(ctx context.Context, collection, id string) (map[string]any, error) {
	rec, err := l.loads.get(collection, id)
	if err != nil || rec == nil {
		return nil, err
	}
	if collection == schema.UsersCollection {
		return map[string]any{"id": rec["id"], "name": rec["name"]}, nil
	}
	col, err := l.eng.collection(collection)
	if err != nil {
		return nil, err
	}
	d, err := l.eng.Allow(ctx, collection, Read, &Input{Auth: l.in.Auth, Record: rec, Request: l.in.Request}, l.loads)
	if err != nil || !d.Allowed {
		return nil, err
	}
	return l.eng.filterView(ctx, col, l.in, l.loads, rec)
}
