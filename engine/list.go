package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
)

// Limits of list requests.
const (
	defaultLimit = 50
	maxLimit     = 500
	maxSortKeys  = 5
	maxExpand    = 10
)

// sortKey is one key of ORDER BY.
type sortKey struct {
	col  *column
	desc bool
	// expr is the key as the caller may see it (maskSort): the column, or
	// a CASE that is NULL where the field's read rule hides it, so that
	// neither the order nor the cursor depends on what it cannot read.
	expr   string
	masked bool
}

// maskSort sets the expression of each key for the caller, binding what
// the read rules need into q.
func (e *Engine) maskSort(co *coll, c *caller, keys []sortKey, q *rules.SQL) error {
	in := &rules.SQLInput{Auth: c.principal, Request: c.request}
	for i := range keys {
		k := &keys[i]
		k.expr = "t." + quote(k.col.name)
		if c.bypass || k.col.field == nil || !e.rules.HasFieldReadRule(co.name, k.col.name) {
			continue
		}
		sql, masked, err := e.rules.FieldSQL(co.name, k.col.name, in, q)
		if err != nil {
			if rules.IsUntranslatable(err) {
				return errStatus(http.StatusBadRequest, "invalid sort: %s", err.Error())
			}
			return err
		}
		k.expr, k.masked = sql, masked
	}
	return nil
}

// nullable reports whether the key can be null: a masked key can.
func (k sortKey) nullable() bool { return k.col.nullable || k.masked }

// parseSort reads "-created_at,title"; id is appended as the tie-breaker,
// so the order is total and keyset pagination never skips or repeats.
func parseSort(co *coll, s string) ([]sortKey, error) {
	if strings.TrimSpace(s) == "" {
		s = "-created_at"
	}
	var keys []sortKey
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		desc := strings.HasPrefix(part, "-")
		name := strings.TrimLeft(part, "+-")
		col := co.byName[name]
		switch {
		case name == "":
			return nil, errStatus(http.StatusBadRequest, "invalid sort %q: empty key; write fields separated by commas, - for descending, like -created_at,title", s)
		case col == nil:
			return nil, errStatus(http.StatusBadRequest, "invalid sort %q: %s has no field %q", s, co.name, name)
		case col.kind == "json" || col.kind == "list":
			return nil, errStatus(http.StatusBadRequest, "invalid sort %q: %s fields cannot be sorted", s, col.kind)
		case seen[name]:
			return nil, errStatus(http.StatusBadRequest, "invalid sort %q: %s appears twice", s, name)
		}
		seen[name] = true
		keys = append(keys, sortKey{col: col, desc: desc})
	}
	if len(keys) > maxSortKeys {
		return nil, errStatus(http.StatusBadRequest, "invalid sort %q: at most %d keys", s, maxSortKeys)
	}
	if !seen["id"] {
		keys = append(keys, sortKey{col: co.byName["id"], desc: keys[0].desc})
	}
	return keys, nil
}

func orderBy(keys []sortKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		dir := " ASC"
		if k.desc {
			dir = " DESC"
		}
		// Nulls always last, whichever the direction, so the cursor knows
		// where they are. Columns that cannot be null say nothing, so that
		// an index on them still gives the order.
		parts[i] = k.expr + dir
		if k.nullable() {
			parts[i] += " NULLS LAST"
		}
	}
	return strings.Join(parts, ", ")
}

// cursor is the position after the last record of a page: its sort values.
type cursor struct {
	Sort   string `json:"s"`
	Values []any  `json:"v"`
}

func sortString(keys []sortKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.col.name
		if k.desc {
			parts[i] = "-" + parts[i]
		}
	}
	return strings.Join(parts, ",")
}

// encodeCursor makes the cursor after rec; masked holds the values of the
// masked keys as the caller sees them, in key order.
func encodeCursor(keys []sortKey, rec Record, masked []any) string {
	c := cursor{Sort: sortString(keys)}
	for _, k := range keys {
		v := rec[k.col.name]
		if k.masked {
			v, masked = masked[0], masked[1:]
		}
		if t, ok := v.(time.Time); ok {
			v = t.Format(time.RFC3339Nano)
		}
		c.Values = append(c.Values, v)
	}
	b, _ := json.Marshal(c) //nolint:errcheck // plain values always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

var errCursor = errStatus(http.StatusBadRequest, "invalid cursor: pass the next_cursor of the previous page, with the same sort")

// decodeCursor reads a cursor made for keys, converting its values to the
// columns' types.
func decodeCursor(keys []sortKey, s string) ([]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 4096 {
		return nil, errCursor
	}
	var c cursor
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil || c.Sort != sortString(keys) || len(c.Values) != len(keys) {
		return nil, errCursor
	}
	out := make([]any, len(keys))
	for i, k := range keys {
		v := c.Values[i]
		if v == nil {
			if !k.nullable() {
				return nil, errCursor
			}
			continue
		}
		var ok bool
		switch k.col.kind {
		case "uuid":
			var s string
			s, ok = v.(string)
			ok = ok && isUUID(s)
			out[i] = s
		case "text":
			var s string
			s, ok = v.(string)
			ok = ok && !strings.ContainsRune(s, 0) // no stored text holds a NUL
			out[i] = s
		case "bool":
			out[i], ok = v.(bool)
		case "int":
			n, isNum := v.(json.Number)
			x, err := n.Int64()
			ok = isNum && err == nil
			out[i] = x
		case "float":
			n, isNum := v.(json.Number)
			x, err := n.Float64()
			ok = isNum && err == nil
			out[i] = x
		case "time":
			s, isStr := v.(string)
			t, err := time.Parse(time.RFC3339Nano, s)
			ok = isStr && err == nil
			out[i] = t
		}
		if !ok {
			return nil, errCursor
		}
	}
	return out, nil
}

// after is the condition "comes after the cursor" in the order of keys.
func after(keys []sortKey, vals []any, q *rules.SQL) string {
	// The common case, every key non-null and in one direction, is a row
	// comparison, which an index on the keys answers directly.
	same, nullable := true, false
	for _, k := range keys {
		same = same && k.desc == keys[0].desc
		nullable = nullable || k.nullable()
	}
	if same && !nullable {
		cols := make([]string, len(keys))
		ps := make([]string, len(keys))
		for i, k := range keys {
			cols[i] = k.expr
			ps[i] = q.Arg(vals[i]) + "::" + k.col.pgType
		}
		op := ">"
		if keys[0].desc {
			op = "<"
		}
		return "(" + strings.Join(cols, ", ") + ") " + op + " (" + strings.Join(ps, ", ") + ")"
	}
	// Otherwise: after on key i and equal on every key before it, for
	// some i, with nulls sorted last.
	var ors []string
	var eqs []string
	for i, k := range keys {
		ref := k.expr
		var gt, eq string
		if vals[i] == nil {
			gt = "FALSE" // nothing comes after null: nulls are last, and equal
			eq = ref + " IS NULL"
		} else {
			p := q.Arg(vals[i]) + "::" + k.col.pgType
			op := ">"
			if k.desc {
				op = "<"
			}
			gt = "(" + ref + " " + op + " " + p + ")"
			if k.nullable() {
				gt = "(" + ref + " IS NULL OR " + ref + " " + op + " " + p + ")"
			}
			eq = ref + " = " + p
		}
		term := append(slices.Clone(eqs), gt)
		ors = append(ors, "("+strings.Join(term, " AND ")+")")
		eqs = append(eqs, eq)
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// listRequest is a parsed list request.
type listRequest struct {
	filter string
	keys   []sortKey
	cursor []any
	limit  int
	fields []string
	expand []*column
	count  bool
}

func (e *Engine) parseList(co *coll, r *http.Request) (*listRequest, error) {
	return e.parseListQuery(co, r.URL.Query())
}

// parseListQuery reads the parameters of a list: filter, sort, cursor,
// limit, fields, expand, count.
func (e *Engine) parseListQuery(co *coll, q url.Values) (*listRequest, error) {
	lr := &listRequest{limit: defaultLimit, filter: q.Get("filter")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return nil, errStatus(http.StatusBadRequest, "limit must be a whole number from 1 to %d", maxLimit)
		}
		lr.limit = n
	}
	var err error
	if lr.keys, err = parseSort(co, q.Get("sort")); err != nil {
		return nil, err
	}
	if v := q.Get("cursor"); v != "" {
		if lr.cursor, err = decodeCursor(lr.keys, v); err != nil {
			return nil, err
		}
	}
	if lr.fields, err = fieldsParam(co, q.Get("fields")); err != nil {
		return nil, err
	}
	if lr.expand, err = e.expandParam(co, q.Get("expand")); err != nil {
		return nil, err
	}
	switch q.Get("count") {
	case "", "false", "0":
	case "true", "1":
		lr.count = true
	default:
		return nil, errStatus(http.StatusBadRequest, "count must be true or false")
	}
	return lr, nil
}

// where builds the rule, filter and cursor conditions into q.
func (e *Engine) where(co *coll, c *caller, lr *listRequest, q *rules.SQL, withCursor bool) (string, error) {
	in := &rules.SQLInput{Auth: c.principal, Request: c.request, Unrestricted: c.bypass}
	rule, err := e.listPredicate(co.name, c, in, q)
	if err != nil {
		return "", err
	}
	conds := []string{rule}
	if strings.TrimSpace(lr.filter) != "" {
		f, err := e.rules.Filter(co.name, lr.filter)
		if err != nil {
			return "", err
		}
		fs, err := f.SQL(in, q)
		if err != nil {
			return "", err
		}
		conds = append(conds, fs)
	}
	if withCursor && lr.cursor != nil {
		conds = append(conds, after(lr.keys, lr.cursor, q))
	}
	return strings.Join(conds, " AND "), nil
}

// listQuery is the statement of a list for the caller, with its
// arguments, and how many masked sort keys it selects after the record's
// columns. The playground (explain.go) shows it as built here.
func (e *Engine) listQuery(co *coll, c *caller, lr *listRequest) (string, *rules.SQL, int, error) {
	q := &rules.SQL{}
	if err := e.maskSort(co, c, lr.keys, q); err != nil {
		return "", nil, 0, err
	}
	where, err := e.where(co, c, lr, q, true)
	if err != nil {
		return "", nil, 0, err
	}
	// The masked keys are selected as the caller sees them, for the cursor.
	sel := co.selectList
	var nMasked int
	for _, k := range lr.keys {
		if k.masked {
			sel += ", " + k.expr
			if k.col.kind == "uuid" {
				sel += "::text"
			}
			nMasked++
		}
	}
	sql := `SELECT ` + sel + ` FROM ` + co.table + ` t WHERE ` + where + ` ORDER BY ` + orderBy(lr.keys) + ` LIMIT ` + strconv.Itoa(lr.limit+1)
	return sql, q, nMasked, nil
}

func (e *Engine) handleList(w http.ResponseWriter, r *http.Request) {
	co, err := e.collOf(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	lr, err := e.parseList(co, r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	c := e.callerOf(r)
	ctx := r.Context()
	sql, q, nMasked, err := e.listQuery(co, c, lr)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	rows, err := e.db.Query(ctx, sql, q.Args...)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	buf := e.buffer()
	defer e.release(buf)
	buf.WriteString(`{"items":[`)
	// Without field rules to apply or relations to expand, no record of
	// the page is needed as a Record (only the last, for the cursor): the
	// rows are written as they come, which spares a map per row.
	direct := len(lr.expand) == 0 && (c.bypass || !e.rules.HasFieldReadRules(co.name))
	var recs []Record
	if !direct {
		recs = make([]Record, 0, lr.limit+1)
	}
	sc := co.scanner()
	defer co.releaseScanner(sc)
	masked := make([]any, nMasked)
	for i := range masked {
		sc.ptrs = append(sc.ptrs, &masked[i])
	}
	var last Record // the last record of the page
	var lastM []any // its masked sort keys
	n := 0          // rows read; the one past the limit says there is a next page
	for rows.Next() {
		if err := co.scanRow(sc, rows); err != nil {
			rows.Close()
			e.writeError(w, r, err)
			return
		}
		if n < lr.limit {
			if direct {
				if n > 0 {
					buf.WriteByte(',')
				}
				if err := co.appendSlotsJSON(buf, sc, lr.fields); err != nil {
					rows.Close()
					e.writeError(w, r, err)
					return
				}
			}
			if n == lr.limit-1 {
				if direct {
					last = co.record(sc)
				}
				if nMasked > 0 {
					lastM = slices.Clone(masked)
				}
			}
		}
		if !direct {
			recs = append(recs, co.record(sc))
		}
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		e.writeError(w, r, err)
		return
	}
	next := ""
	if n > lr.limit {
		if !direct {
			recs = recs[:lr.limit]
			last = recs[len(recs)-1]
		}
		next = encodeCursor(lr.keys, last, lastM)
	}
	var total *int64
	if lr.count {
		cq := &rules.SQL{}
		cwhere, err := e.where(co, c, lr, cq, false)
		if err != nil {
			e.writeError(w, r, err)
			return
		}
		var n int64
		if err := e.db.QueryRow(ctx, `SELECT count(*) FROM `+co.table+` t WHERE `+cwhere, cq.Args...).Scan(&n); err != nil {
			e.writeError(w, r, err)
			return
		}
		total = &n
	}
	if !direct {
		loads := e.loads(ctx, e.db)
		expanded, err := e.expandAll(ctx, co, c, loads, recs, lr.expand)
		if err != nil {
			e.writeError(w, r, err)
			return
		}
		for i, rec := range recs {
			if i > 0 {
				buf.WriteByte(',')
			}
			v, err := e.viewOf(ctx, co, c, loads, rec, &view{fields: lr.fields, expand: expanded[i]})
			if err != nil {
				e.writeError(w, r, err)
				return
			}
			if err := co.appendJSON(buf, rec, v); err != nil {
				e.writeError(w, r, err)
				return
			}
		}
	}
	buf.WriteString(`],"next_cursor":`)
	if next == "" {
		buf.WriteString("null")
	} else {
		buf.WriteString(`"` + next + `"`)
	}
	if total != nil {
		buf.WriteString(`,"total":` + strconv.FormatInt(*total, 10))
	}
	buf.WriteString("}")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes()) //nolint:errcheck // the client went away
}

// expandParam reads expand=a,b: relation fields to inline.
func (e *Engine) expandParam(co *coll, s string) ([]*column, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []*column
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		col := co.byName[name]
		if col == nil || col.field == nil || col.field.Type != schema.Relation {
			return nil, errStatus(http.StatusBadRequest, "invalid expand: %q is not a relation field of %s", name, co.name)
		}
		if !slices.Contains(out, col) {
			out = append(out, col)
		}
	}
	if len(out) > maxExpand {
		return nil, errStatus(http.StatusBadRequest, "invalid expand: at most %d fields", maxExpand)
	}
	return out, nil
}

// expandAll loads the related records of recs for each expanded field,
// each checked by its own collection's read rule: what the principal may
// not read is left out. Accounts show only id and name.
func (e *Engine) expandAll(ctx context.Context, co *coll, c *caller, loads *rules.Loads, recs []Record, fields []*column) ([]map[string]any, error) {
	out := make([]map[string]any, len(recs))
	for _, col := range fields {
		target := col.field.Collection
		var ids []string
		for _, rec := range recs {
			switch v := rec[col.name].(type) {
			case string:
				ids = append(ids, v)
			case []string:
				ids = append(ids, v...)
			}
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		found := map[string]any{}
		if len(ids) > 0 {
			var err error
			if found, err = e.loadReadable(ctx, target, c, loads, ids); err != nil {
				return nil, err
			}
		}
		for i, rec := range recs {
			if out[i] == nil {
				out[i] = map[string]any{}
			}
			switch v := rec[col.name].(type) {
			case string:
				out[i][col.name] = found[v] // nil (null) when missing or unreadable
			case []string:
				list := []any{}
				for _, id := range v {
					if r, ok := found[id]; ok {
						list = append(list, r)
					}
				}
				out[i][col.name] = list
			default:
				out[i][col.name] = nil
			}
		}
	}
	return out, nil
}

// loadReadable reads the records of collection with the given ids that
// the caller may read, encoded as it may see them.
func (e *Engine) loadReadable(ctx context.Context, collection string, c *caller, loads *rules.Loads, ids []string) (map[string]any, error) {
	found := map[string]any{}
	if collection == schema.UsersCollection {
		rows, err := e.db.Query(ctx, `SELECT id::text, name FROM abe.users WHERE id = ANY($1::uuid[])`, ids)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				return nil, err
			}
			found[id] = map[string]any{"id": id, "name": name}
		}
		return found, rows.Err()
	}
	target := e.colls[collection]
	recs, err := e.readableRecords(ctx, e.db, collection, c, loads, ids)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		v, err := e.viewOf(ctx, target, c, loads, rec, nil)
		if err != nil {
			return nil, err
		}
		b, err := target.encode(rec, v)
		if err != nil {
			return nil, err
		}
		found[rec.ID()] = b
	}
	return found, nil
}

// fieldsParam reads fields=a,b: a projection (id and version are always
// in it); nil is every field.
func fieldsParam(co *coll, v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if co.byName[f] == nil {
			return nil, errStatus(http.StatusBadRequest, "invalid fields: %s has no field %q", co.name, f)
		}
		out = append(out, f)
	}
	return out, nil
}
