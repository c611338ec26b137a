package rules

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	celtypes "github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/schema"
)

// SQL collects the bind parameters of a statement being built. Values are
// always parameters; identifiers only ever come from the schema.
type SQL struct {
	Args []any
}

// Arg binds v and returns its placeholder.
func (q *SQL) Arg(v any) string {
	q.Args = append(q.Args, v)
	return "$" + strconv.Itoa(len(q.Args))
}

// SQLInput is what a translated predicate may depend on: the principal and
// the request are known when the query is built and become parameters.
type SQLInput struct {
	Auth    *Principal
	Request Request
	// Alias is the alias of the collection's table in the query; "t" when
	// empty.
	Alias string
	// Unrestricted lets a filter see every field and every related record,
	// past their read rules: the admin records API, which no rule binds,
	// sets it; nothing a client sends can.
	Unrestricted bool
}

// ListPredicate translates the list rule of a collection into a SQL
// boolean over the collection's table, so a list returns only what the
// principal may see and never scans to filter in memory. Without a list
// rule only principals with the * permission see anything.
func (e *Engine) ListPredicate(collection string, in *SQLInput, q *SQL) (string, error) {
	col, err := e.collection(collection)
	if err != nil {
		return "", err
	}
	p := col.ops[List]
	if p == nil {
		if in.Auth.superuser() {
			return "TRUE", nil
		}
		return "FALSE", nil
	}
	tr := &translator{eng: e, col: col, prog: p, in: in, q: q}
	return tr.boolean(p.ast.NativeRep().Expr(), false)
}

// errUntranslatable marks what has no SQL form.
type untranslatable struct{ what string }

func (u *untranslatable) Error() string { return u.what }

func cannot(format string, args ...any) error {
	return &untranslatable{what: fmt.Sprintf(format, args...)}
}

// join is a related record loaded by get(), as an alias in an EXISTS.
type join struct {
	table, alias, key string
	// guard is, in a client's filter, the related collection's read rule
	// over alias: a filter sees only related records the caller may read.
	guard string
}

// translator turns one checked expression into SQL.
type translator struct {
	eng  *Engine
	col  *collection
	prog *program
	in   *SQLInput
	q    *SQL
	// dry translates without evaluating the principal's values, to find
	// what cannot be translated.
	dry bool
	// filter means identifiers are the collection's fields.
	filter bool

	joins []join // of the atom being translated
	n     int    // alias counter
	// counter, when set, is the alias counter of the translation this one
	// is part of (a related collection's rule inside a filter), so that
	// aliases never repeat in one statement.
	counter *int
	act     *activation
	// aliases names each related record once per translation, so that
	// conditions over the same record can share an EXISTS.
	aliases map[[2]string]string
}

func (tr *translator) alias() string {
	if tr.in.Alias != "" {
		return tr.in.Alias
	}
	return "t"
}

func (tr *translator) fresh(prefix string) string {
	c := tr.count()
	*c++
	return prefix + strconv.Itoa(*c)
}

func (tr *translator) count() *int {
	if tr.counter == nil {
		tr.counter = &tr.n
	}
	return tr.counter
}

// cond is a translated boolean: SQL over the record and the related
// records in joins, which the caller puts into an EXISTS.
type cond struct {
	sql   string
	joins []join
}

// boolean translates a boolean expression into SQL.
func (tr *translator) boolean(x ast.Expr, neg bool) (string, error) {
	c, err := tr.cond(x, neg)
	if err != nil {
		return "", err
	}
	return c.exists(), nil
}

// cond translates a boolean expression. neg asks for its negation, which
// is pushed down to the atoms: a negation must never wrap an EXISTS over a
// related record, or a missing record would count as true.
func (tr *translator) cond(x ast.Expr, neg bool) (cond, error) {
	if isConst(x) {
		v, _ := tr.constValue(x)
		b, ok := v.(bool)
		if !ok {
			return cond{sql: "NULL"}, nil // an error in CEL: unknown, which denies
		}
		return cond{sql: sqlBool(b != neg)}, nil
	}
	if x.Kind() == ast.CallKind {
		c := x.AsCall()
		switch c.FunctionName() {
		case "_&&_", "_||_":
			and := (c.FunctionName() == "_&&_") != neg
			mark0 := len(tr.q.Args)
			l, err := tr.cond(c.Args()[0], neg)
			if err != nil {
				return cond{}, err
			}
			mark1 := len(tr.q.Args)
			r, err := tr.cond(c.Args()[1], neg)
			if err != nil {
				return cond{}, err
			}
			// A side that a constant makes irrelevant is dropped, and so
			// are the values it bound (constants bind none).
			decides := func(s string) bool { return (and && s == "FALSE") || (!and && s == "TRUE") }
			switch {
			case decides(l.sql):
				tr.q.Args = tr.q.Args[:mark1]
				return l, nil
			case decides(r.sql):
				tr.q.Args = tr.q.Args[:mark0]
				return r, nil
			}
			// Both sides over the same related records (get() of a
			// relation is at most one row) share one EXISTS, which plans as
			// one semi-join.
			if sameJoins(l.joins, r.joins) || l.sql == "TRUE" || l.sql == "FALSE" || r.sql == "TRUE" || r.sql == "FALSE" {
				joins := l.joins
				if len(joins) == 0 {
					joins = r.joins
				}
				sql := combine(l.sql, r.sql, and)
				if sql == "TRUE" || sql == "FALSE" {
					joins = nil
				}
				return cond{sql: sql, joins: joins}, nil
			}
			return cond{sql: combine(l.exists(), r.exists(), and)}, nil
		case "!_":
			return tr.cond(c.Args()[0], !neg)
		}
	}
	saved := tr.joins
	tr.joins = nil
	defer func() { tr.joins = saved }()
	mark := len(tr.q.Args)
	s, err := tr.atom(x, neg)
	if err != nil {
		return cond{}, err
	}
	if s == "TRUE" || s == "FALSE" || s == "NULL" {
		// Decided without its operands: what they bound (a read rule
		// around a column) and joined goes too.
		tr.q.Args = tr.q.Args[:mark]
		return cond{sql: s}, nil
	}
	return cond{sql: s, joins: tr.joins}, nil
}

func sameJoins(a, b []join) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// exists puts a condition over related records into an EXISTS over them.
func (c cond) exists() string {
	if len(c.joins) == 0 {
		return c.sql
	}
	from := make([]string, len(c.joins))
	where := make([]string, len(c.joins))
	for i, j := range c.joins {
		from[i] = j.table + " " + j.alias
		where[i] = j.alias + ".id = " + j.key
		if j.guard != "" {
			where[i] += " AND " + j.guard
		}
	}
	return "EXISTS (SELECT 1 FROM " + strings.Join(from, ", ") + " WHERE " + strings.Join(where, " AND ") + " AND " + c.sql + ")"
}

func sqlBool(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

func combine(l, r string, and bool) string {
	switch {
	case and && (l == "FALSE" || r == "FALSE"):
		return "FALSE"
	case and && l == "TRUE":
		return r
	case and && r == "TRUE":
		return l
	case !and && (l == "TRUE" || r == "TRUE"):
		return "TRUE"
	case !and && l == "FALSE":
		return r
	case !and && r == "FALSE":
		return l
	case and:
		return "(" + l + " AND " + r + ")"
	}
	return "(" + l + " OR " + r + ")"
}

// val is a translated value.
type val struct {
	sql      string
	typ      string // Postgres type, "jsonb" for json fields
	nullable bool
	// konst is set for values known when the query is built.
	konst bool
	value any // the Go value of a constant; nil is null
	// failed is set for a constant whose evaluation failed: CEL's error,
	// SQL's unknown.
	failed   bool
	column   bool
	celType  *cel.Type
	relation *join // for get(): the related record itself
	// nanos is, for a timestamp, what it has beyond sql's whole
	// microseconds (0 to 999ns): CEL's timestamps and durations have
	// nanoseconds, PostgreSQL's microseconds (see microTime).
	nanos time.Duration
}

func (tr *translator) atom(x ast.Expr, neg bool) (string, error) {
	switch x.Kind() {
	case ast.SelectKind:
		s := x.AsSelect()
		if s.IsTestOnly() {
			v, err := tr.field(s.Operand(), s.FieldName())
			if err != nil {
				return "", err
			}
			if neg {
				return "(" + v.sql + " IS NULL)", nil
			}
			return "(" + v.sql + " IS NOT NULL)", nil
		}
		v, err := tr.value(x)
		if err != nil {
			return "", err
		}
		if v.typ != "boolean" {
			return "", cannot("%s is not a boolean", v.sql)
		}
		if neg {
			return "(NOT " + v.sql + ")", nil
		}
		return v.sql, nil
	case ast.IdentKind:
		v, err := tr.value(x)
		if err != nil {
			return "", err
		}
		if neg {
			return "(NOT " + v.sql + ")", nil
		}
		return v.sql, nil
	case ast.CallKind:
	default:
		return "", cannot("this kind of expression (%v) has no SQL form", x.Kind())
	}
	c := x.AsCall()
	fn := c.FunctionName()
	args := c.Args()
	switch {
	case (fn == "_==_" || fn == "_!=_") && (isGet(args[0]) && isNull(args[1]) || isGet(args[1]) && isNull(args[0])):
		// get(c, id) == null: the record does not exist.
		g := args[0]
		if !isGet(g) {
			g = args[1]
		}
		missing := (fn == "_==_") != neg
		key, err := tr.relationKey(g.AsCall().Args()[1])
		if err != nil {
			return "", err
		}
		s, err := tr.existsSQL(strings.TrimPrefix(g.AsCall().FunctionName(), getPrefix), key)
		if err != nil {
			return "", err
		}
		if missing {
			return "(NOT " + s + ")", nil
		}
		return s, nil
	case fn == "_==_" || fn == "_!=_":
		return tr.equal(args[0], args[1], (fn == "_==_") != neg)
	case fn == "_<_" || fn == "_<=_" || fn == "_>_" || fn == "_>=_":
		return tr.order(fn, args[0], args[1], neg)
	case fn == "@in":
		s, err := tr.membership(args[0], args[1])
		if err != nil || !neg {
			return s, err
		}
		return negate(s), nil
	case strings.HasPrefix(fn, existsPrefix):
		coll := strings.TrimPrefix(fn, existsPrefix)
		key, err := tr.relationKey(args[1])
		if err != nil {
			return "", err
		}
		s, err := tr.existsSQL(coll, key)
		if err != nil {
			return "", err
		}
		if neg {
			return "(NOT " + s + ")", nil
		}
		return s, nil
	case c.IsMemberFunction() && (fn == "startsWith" || fn == "endsWith" || fn == "contains"):
		s, err := tr.stringTest(fn, c.Target(), args[0])
		if err != nil || !neg {
			return s, err
		}
		return "(NOT " + s + ")", nil
	}
	return "", cannot("%s has no SQL form", describeFunction(fn))
}

// describeFunction names a CEL function for people.
func describeFunction(fn string) string {
	switch fn {
	case "_?_:_":
		return "the conditional operator (a ? b : c)"
	case "@in":
		return "in"
	case "_+_", "_-_", "_*_", "_/_", "_%_":
		return "the operator " + strings.Trim(fn, "_")
	}
	if strings.HasPrefix(fn, "_") || strings.HasPrefix(fn, "@") {
		return strings.Trim(fn, "_@!")
	}
	return fn + "()"
}

func isGet(x ast.Expr) bool {
	return x.Kind() == ast.CallKind && strings.HasPrefix(x.AsCall().FunctionName(), getPrefix)
}

func isNull(x ast.Expr) bool {
	if x.Kind() != ast.LiteralKind {
		return false
	}
	_, ok := x.AsLiteral().(celtypes.Null)
	return ok
}

func negate(s string) string {
	switch s {
	case "TRUE":
		return "FALSE"
	case "FALSE":
		return "TRUE"
	}
	return "(NOT " + s + ")"
}

// equal translates == (eq) or != so that a null never makes the result
// unknown: CEL says null == 'x' is false, and so must SQL. A computed
// operand that is NULL is CEL's error, which is unknown (strict).
func (tr *translator) equal(a, b ast.Expr, eq bool) (string, error) {
	va, err := tr.value(a)
	if err != nil {
		return "", err
	}
	vb, err := tr.value(b)
	if err != nil {
		return "", err
	}
	s, err := tr.equalValues(va, vb, eq)
	if err != nil {
		return "", err
	}
	return strict(s, va, vb), nil
}

// computed reports whether v is computed from fields (size, arithmetic,
// concatenation, timestamp ± duration) and may be NULL: it is NULL only
// where CEL's evaluation fails (size(null), an overflow), never as a
// null field is.
func (v val) computed() bool { return !v.konst && !v.column && v.relation == nil && v.nullable }

// strict makes s, a test of the values vs, unknown wherever one of them
// is a computed NULL: CEL's error, which neither == nor != nor in absorbs
// (size(note) != 0 fails on a null note; IS DISTINCT FROM would say true,
// and NULL = ANY('{}') false, so that their negations would hold).
func strict(s string, vs ...val) string {
	var conds []string
	for _, v := range vs {
		if v.computed() {
			conds = append(conds, v.sql+" IS NOT NULL")
		}
	}
	if len(conds) == 0 || s == "NULL" || s == "TRUE" || s == "FALSE" {
		// Decided without the operands (x in [] is false even for CEL's
		// error, which its optimizer never evaluates).
		return s
	}
	return "(CASE WHEN " + strings.Join(conds, " AND ") + " THEN " + s + " END)"
}

func (tr *translator) equalValues(va, vb val, eq bool) (string, error) {
	if va.failed || vb.failed {
		return "NULL", nil
	}
	if va.konst && !vb.konst {
		va, vb = vb, va
	}
	// get(...) == null is !exists(...).
	if va.relation != nil && vb.konst && vb.value == nil {
		return sqlBool(!eq), nil // the relation alias exists only if the record does
	}
	if va.relation != nil || vb.relation != nil {
		return "", cannot("a related record can only be compared with null")
	}
	if vb.konst && vb.value == nil {
		if va.typ == "jsonb" {
			// A json field holding JSON null is not SQL NULL; both are null
			// to CEL.
			if eq {
				return "(" + va.sql + " IS NULL OR " + va.sql + " = 'null'::jsonb)", nil
			}
			return "(" + va.sql + " IS NOT NULL AND " + va.sql + " <> 'null'::jsonb)", nil
		}
		if eq {
			return "(" + va.sql + " IS NULL)", nil
		}
		return "(" + va.sql + " IS NOT NULL)", nil
	}
	if va.typ == "jsonb" || vb.typ == "jsonb" {
		return "", cannot("json fields can only be compared with null in SQL")
	}
	if va.typ == "timestamptz" && vb.typ == "timestamptz" {
		// Equal to the nanosecond, as CEL says, over whole microseconds:
		// never where the nanoseconds beyond them differ (a null is not
		// equal either; a computed NULL is CEL's error, unknown).
		var da, db time.Duration
		va, da = microParts(va)
		vb, db = microParts(vb)
		if da != db {
			if eq {
				return "FALSE", nil
			}
			var known []string
			for _, v := range []val{va, vb} {
				if v.computed() {
					known = append(known, v.sql+" IS NOT NULL")
				}
			}
			if len(known) == 0 {
				return "TRUE", nil
			}
			return "(" + strings.Join(known, " AND ") + ")", nil
		}
	}
	if vb.konst {
		p, ok := tr.param(vb, va.typ)
		if !ok {
			// A uuid column never equals a string that is not a UUID.
			return sqlBool(!eq), nil
		}
		if eq {
			if va.nullable {
				return "(" + va.sql + " = " + p + " AND " + va.sql + " IS NOT NULL)", nil
			}
			return "(" + va.sql + " = " + p + ")", nil
		}
		return "(" + va.sql + " IS DISTINCT FROM " + p + ")", nil
	}
	l, r := comparable(va, vb)
	if eq {
		return "(" + l + " IS NOT DISTINCT FROM " + r + ")", nil
	}
	return "(" + l + " IS DISTINCT FROM " + r + ")", nil
}

// comparable casts a uuid side to text when the other is text.
func comparable(a, b val) (string, string) {
	l, r := a.sql, b.sql
	if a.typ == "uuid" && b.typ == "text" {
		l += "::text"
	}
	if b.typ == "uuid" && a.typ == "text" {
		r += "::text"
	}
	return l, r
}

var flipped = map[string]string{"_<_": ">=", "_<=_": ">", "_>_": "<=", "_>=_": "<"}
var ops = map[string]string{"_<_": "<", "_<=_": "<=", "_>_": ">", "_>=_": ">="}

func (tr *translator) order(fn string, a, b ast.Expr, neg bool) (string, error) {
	va, err := tr.value(a)
	if err != nil {
		return "", err
	}
	vb, err := tr.value(b)
	if err != nil {
		return "", err
	}
	if va.relation != nil || vb.relation != nil || va.typ == "jsonb" || vb.typ == "jsonb" || strings.HasSuffix(va.typ, "[]") || strings.HasSuffix(vb.typ, "[]") {
		return "", cannot("only numbers, text and timestamps can be ordered in SQL")
	}
	if va.failed || vb.failed {
		return "NULL", nil
	}
	if va.konst && !vb.konst {
		va, vb, fn = vb, va, mirrored[fn]
	}
	if c, ok := vb.value.(float64); ok && vb.konst && numeric(va.typ) {
		newFn, bound, decided, outcome := numberBound(fn, c, va.typ == "bigint")
		if decided {
			if outcome == neg {
				return "FALSE", nil
			}
			// True for every number: every x that is not null (and, of
			// a related record, exists).
			return "(" + va.sql + " IS NOT NULL)", nil
		}
		fn, vb = newFn, bound
	}
	if va.typ == "timestamptz" && vb.typ == "timestamptz" && !(va.konst && va.value == nil) && !(vb.konst && vb.value == nil) {
		// Compared to the nanosecond, as CEL does, over whole microseconds.
		var da, db time.Duration
		va, da = microParts(va)
		vb, db = microParts(vb)
		if da != db {
			fn = microOrder(fn, da-db)
		}
	}
	op := ops[fn]
	if neg {
		// Not less is greater-or-equal for values; for a null both are
		// unknown, as CEL's error is.
		op = flipped[fn]
	}
	l, r := va.sql, vb.sql
	// A string ordered with a relation is ordered as text, as CEL orders
	// the id's text: it need not be a UUID.
	asText := func(typ string) string {
		if typ == "uuid" {
			return "text"
		}
		return typ
	}
	if va.konst {
		if va.value == nil {
			return "NULL", nil
		}
		l, _ = tr.param(va, asText(vb.typ))
	}
	if vb.konst {
		if vb.value == nil {
			return "NULL", nil
		}
		r, _ = tr.param(vb, asText(va.typ))
	}
	if va.typ == "text" || vb.typ == "text" || va.typ == "uuid" || vb.typ == "uuid" {
		// CEL orders strings by code point, as the C collation does.
		l, r = textSide(l, va.typ)+` COLLATE "C"`, textSide(r, vb.typ)
	}
	return "(" + l + " " + op + " " + r + ")", nil
}

func textSide(s, typ string) string {
	if typ == "uuid" {
		return s + "::text"
	}
	return s
}

// membership translates x in list: true for a null x only in a list
// literal holding null (CEL's null == null), unknown for a computed x that
// failed.
func (tr *translator) membership(x, list ast.Expr) (string, error) {
	vx, err := tr.value(x)
	if err != nil {
		return "", err
	}
	vl, err := tr.value(list)
	if err != nil {
		return "", err
	}
	s, err := tr.membershipValues(vx, vl)
	if err != nil {
		return "", err
	}
	if !vl.konst && vl.nullable && s != "NULL" {
		// A list field the caller may not read is null in a filter, and
		// in on a null is CEL's error, even where the answer is decided
		// without the list ('x' in members is false for a list of UUIDs,
		// and a null owner is in no list, so their negations would hold).
		s = "(CASE WHEN " + vl.sql + " IS NOT NULL THEN " + s + " END)"
	}
	return strict(s, vx, vl), nil
}

func (tr *translator) membershipValues(vx, vl val) (string, error) {
	if vl.typ == "jsonb" && !vl.konst && vx.konst && vx.typ != "jsonb" {
		// A string in a json field: CEL's in finds it among a list's items
		// or an object's keys, as jsonb's ? does at the top level (a
		// string is never equal to a number or a nested list, in either).
		// On anything else (a scalar, null) CEL fails, which stays unknown
		// here, and ? would find a scalar string equal to the text.
		if vx.failed {
			return "NULL", nil
		}
		s, ok := vx.value.(string)
		if !ok {
			return "", cannot("in works in SQL on a json field only for a string")
		}
		return "(CASE WHEN jsonb_typeof(" + vl.sql + ") IN ('array', 'object') THEN " + vl.sql + " ? " + tr.q.Arg(s) + "::text END)", nil
	}
	if vl.typ == "jsonb" || vx.typ == "jsonb" || strings.HasSuffix(vx.typ, "[]") || vx.relation != nil || vl.relation != nil {
		return "", cannot("in works in SQL on list fields and lists of values")
	}
	if vx.failed || vl.failed {
		return "NULL", nil
	}
	if vl.konst {
		items, _ := vl.value.([]any)
		if vx.konst {
			return "", cannot("a constant in a constant list should have been folded")
		}
		elem := vx.typ
		var keep []any
		// A null column is in a list that holds null; a computed NULL
		// (CEL's error) is in none (strict).
		nullIn := vx.nullable && !vx.computed() && slices.Contains(items, nil)
		for _, it := range items {
			if t, ok := it.(time.Time); ok && elem == "timestamptz" {
				// Equal to the nanosecond, as CEL says.
				m, rest := microTime(t)
				if rest != vx.nanos {
					continue
				}
				it = m
			}
			if elem == "uuid" {
				s, ok := it.(string)
				if !ok || !canonicalUUID(s) {
					continue
				}
			}
			if it != nil {
				keep = append(keep, it)
			}
		}
		if len(keep) == 0 {
			if nullIn {
				return "(" + vx.sql + " IS NULL)", nil
			}
			return "FALSE", nil
		}
		p := tr.q.Arg(typedSlice(keep, elem)) + "::" + elem + "[]"
		if nullIn {
			return "(" + vx.sql + " IS NULL OR " + vx.sql + " = ANY(" + p + "))", nil
		}
		if vx.nullable {
			return "(" + vx.sql + " IS NOT NULL AND " + vx.sql + " = ANY(" + p + "))", nil
		}
		return "(" + vx.sql + " = ANY(" + p + "))", nil
	}
	elem := strings.TrimSuffix(vl.typ, "[]")
	if vx.konst {
		if vx.value == nil {
			return "FALSE", nil // lists hold no nulls
		}
		p, ok := tr.param(vx, elem)
		if !ok {
			return "FALSE", nil
		}
		// @> can use a GIN index on the list column.
		return "(" + vl.sql + " @> ARRAY[" + p + "])", nil
	}
	l := vx.sql
	if elem == "text" && vx.typ == "uuid" {
		l += "::text"
	}
	if vx.nullable {
		return "(" + l + " IS NOT NULL AND " + l + " = ANY(" + vl.sql + "))", nil
	}
	return "(" + l + " = ANY(" + vl.sql + "))", nil
}

func (tr *translator) stringTest(fn string, target, arg ast.Expr) (string, error) {
	vt, err := tr.value(target)
	if err != nil {
		return "", err
	}
	va, err := tr.value(arg)
	if err != nil {
		return "", err
	}
	if vt.typ != "text" && vt.typ != "uuid" {
		return "", cannot("%s() works in SQL on text", fn)
	}
	subject := textSide(vt.sql, vt.typ)
	if va.konst {
		s, ok := va.value.(string)
		if !ok || va.failed {
			return "NULL", nil
		}
		pattern := likeEscape(s)
		switch fn {
		case "startsWith":
			pattern += "%"
		case "endsWith":
			pattern = "%" + pattern
		default:
			pattern = "%" + pattern + "%"
		}
		return "(" + subject + " LIKE " + tr.q.Arg(pattern) + "::text)", nil
	}
	a := textSide(va.sql, va.typ)
	switch fn {
	case "startsWith":
		return "starts_with(" + subject + ", " + a + ")", nil
	case "endsWith":
		return "(right(" + subject + ", char_length(" + a + ")) = " + a + ")", nil
	}
	return "(strpos(" + subject + ", " + a + ") > 0)", nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func likeEscape(s string) string { return likeEscaper.Replace(s) }

// value translates a value expression.
func (tr *translator) value(x ast.Expr) (val, error) {
	if isConst(x) {
		v, ok := tr.constValue(x)
		t := tr.prog.ast.NativeRep().GetType(x.ID())
		return val{konst: true, value: v, failed: !ok, typ: pgType(t), celType: t}, nil
	}
	switch x.Kind() {
	case ast.IdentKind:
		name := x.AsIdent()
		if tr.filter {
			return tr.column(tr.alias(), tr.col.schema, name)
		}
		switch name {
		case varBefore, varChanges:
			return val{}, cannot("%s exists only in update rules, which are checked record by record", name)
		}
		return val{}, cannot("%s has no SQL form here", name)
	case ast.SelectKind:
		s := x.AsSelect()
		return tr.field(s.Operand(), s.FieldName())
	case ast.CallKind:
	default:
		return val{}, cannot("this kind of expression (%v) has no SQL form", x.Kind())
	}
	c := x.AsCall()
	fn := c.FunctionName()
	args := c.Args()
	switch {
	case strings.HasPrefix(fn, getPrefix):
		coll := strings.TrimPrefix(fn, getPrefix)
		key, err := tr.relationKey(args[1])
		if err != nil {
			return val{}, err
		}
		table := tr.eng.tables[coll]
		for i := range tr.joins {
			if tr.joins[i].table == table && tr.joins[i].key == key {
				return val{relation: &tr.joins[i], sql: tr.joins[i].alias}, nil
			}
		}
		if tr.aliases == nil {
			tr.aliases = map[[2]string]string{}
		}
		alias, ok := tr.aliases[[2]string{table, key}]
		if !ok {
			alias = tr.fresh("g")
			tr.aliases[[2]string{table, key}] = alias
		}
		guard, err := tr.readGuard(coll, alias)
		if err != nil {
			return val{}, err
		}
		tr.joins = append(tr.joins, join{table: table, alias: alias, key: key, guard: guard})
		return val{relation: &tr.joins[len(tr.joins)-1], sql: alias}, nil
	case fn == "size":
		var v val
		var err error
		if c.IsMemberFunction() {
			v, err = tr.value(c.Target())
		} else {
			v, err = tr.value(args[0])
		}
		if err != nil {
			return val{}, err
		}
		switch {
		case v.typ == "text":
			return val{sql: "char_length(" + v.sql + ")", typ: "bigint", nullable: v.nullable}, nil
		case strings.HasSuffix(v.typ, "[]"):
			return val{sql: "cardinality(" + v.sql + ")", typ: "bigint", nullable: v.nullable}, nil
		}
		return val{}, cannot("size() works in SQL on text and list fields")
	case fn == "_+_" || fn == "_-_" || fn == "_*_" || fn == "_/_" || fn == "_%_":
		return tr.arith(fn, args[0], args[1])
	case fn == "-_":
		v, err := tr.value(args[0])
		if err != nil {
			return val{}, err
		}
		if !numeric(v.typ) {
			return val{}, cannot("only numbers can be negated in SQL")
		}
		if v.typ == "bigint" {
			// The negation of the smallest bigint overflows.
			return val{sql: checkedInt("(-" + v.sql + "::numeric)"), typ: v.typ, nullable: true}, nil
		}
		return val{sql: "(-" + v.sql + ")", typ: v.typ, nullable: v.nullable}, nil
	}
	return val{}, cannot("%s has no SQL form", describeFunction(fn))
}

func (tr *translator) arith(fn string, a, b ast.Expr) (val, error) {
	va, err := tr.value(a)
	if err != nil {
		return val{}, err
	}
	vb, err := tr.value(b)
	if err != nil {
		return val{}, err
	}
	operand := func(v val) string {
		if v.konst {
			p, _ := tr.param(v, v.typ)
			return p
		}
		return v.sql
	}
	switch {
	case numeric(va.typ) && numeric(vb.typ):
		for _, v := range []val{va, vb} {
			if f, ok := v.value.(float64); v.konst && ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
				return val{}, cannot("arithmetic with NaN or infinity has no SQL form")
			}
		}
		l, r := operand(va), operand(vb)
		nullable := va.nullable || vb.nullable || va.konst || vb.konst
		if fn == "_/_" || fn == "_%_" {
			// CEL fails on division by zero; SQL would fail the whole query.
			r, nullable = "NULLIF("+r+", 0)", true
		}
		if va.typ == "bigint" && vb.typ == "bigint" {
			n := map[string]string{"_+_": "(" + l + "::numeric + " + r + "::numeric)", "_-_": "(" + l + "::numeric - " + r + "::numeric)",
				"_*_": "(" + l + "::numeric * " + r + "::numeric)", "_/_": "div(" + l + "::numeric, " + r + "::numeric)", "_%_": "mod(" + l + "::numeric, " + r + "::numeric)"}[fn]
			return val{sql: checkedInt(n), typ: "bigint", nullable: true}, nil
		}
		op := map[string]string{"_+_": "+", "_-_": "-", "_*_": "*", "_/_": "/"}[fn]
		if op == "" {
			return val{}, cannot("this arithmetic has no SQL form")
		}
		return val{sql: tr.checkedFloat(va, vb, l, r, op), typ: "double precision", nullable: nullable}, nil
	case fn == "_+_" && va.typ == "text" && vb.typ == "text":
		return val{sql: "(" + operand(va) + " || " + operand(vb) + ")", typ: "text", nullable: va.nullable || vb.nullable}, nil
	case (fn == "_+_" || fn == "_-_") && va.typ == "timestamptz" && vb.konst && vb.typ == "interval":
		d, ok := vb.value.(time.Duration)
		if !ok {
			return val{}, cannot("this arithmetic has no SQL form")
		}
		if fn == "_-_" {
			d = -d
		}
		// The exact value is va.sql + va.nanos + d: SQL adds the whole
		// microseconds of va.nanos + d, and the rest is carried in nanos.
		d += va.nanos
		rest := ((d % time.Microsecond) + time.Microsecond) % time.Microsecond
		// Only where CEL's timestamps reach (years 1 to 9999), as CEL
		// fails beyond; PostgreSQL would fail the whole query past its own
		// range. va.sql is whole microseconds, so the bounds are rounded
		// inwards to them.
		lo, _ := microTime(celMinTime.Add(-d))
		if lo.Before(celMinTime.Add(-d)) {
			lo = lo.Add(time.Microsecond)
		}
		hi, _ := microTime(celMaxTime.Add(-d))
		los, his := tr.q.Arg(lo)+"::timestamptz", tr.q.Arg(hi)+"::timestamptz"
		iv := tr.q.Arg(d-rest) + "::interval"
		return val{sql: "(CASE WHEN " + va.sql + " BETWEEN " + los + " AND " + his + " THEN " + va.sql + " + " + iv + " END)", typ: "timestamptz", nullable: true, nanos: rest}, nil
	}
	return val{}, cannot("this arithmetic has no SQL form")
}

// microTime splits t into what PostgreSQL can hold, its whole
// microseconds (rounded down), and the nanoseconds beyond.
func microTime(t time.Time) (time.Time, time.Duration) {
	m := t.Truncate(time.Microsecond)
	return m, t.Sub(m)
}

// microParts is v as whole microseconds (a constant's value rounded down)
// and the nanoseconds beyond, for a timestamp.
func microParts(v val) (val, time.Duration) {
	if t, ok := v.value.(time.Time); ok && v.konst {
		m, rest := microTime(t)
		v.value = m
		return v, rest
	}
	return v, v.nanos
}

// microOrder is fn between whole microseconds a and b for (a + delta) fn
// b, where 0 < |delta| < 1µs: a + 0.5µs < b is a < b, and a - 0.5µs < b
// is a <= b.
func microOrder(fn string, delta time.Duration) string {
	if delta > 0 {
		return map[string]string{"_<_": "_<_", "_<=_": "_<_", "_>_": "_>=_", "_>=_": "_>=_"}[fn]
	}
	return map[string]string{"_<_": "_<=_", "_<=_": "_<=_", "_>_": "_>_", "_>=_": "_>_"}[fn]
}

// CEL's range of timestamps.
var (
	celMinTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	celMaxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

func numeric(t string) bool { return t == "bigint" || t == "double precision" }

// Arithmetic over columns must never fail: a bigint or double overflow
// would fail the whole query, and whether it does would depend on rows the
// caller cannot see (PostgreSQL may evaluate a filter before the rule).

// checkedInt is an integer computed in numeric, n, as CEL computes it: NULL
// (CEL's error) beyond int64's range. The subquery names n once however
// deep the arithmetic nests.
func checkedInt(n string) string {
	return "(SELECT CASE WHEN abe_n BETWEEN -9223372036854775808 AND 9223372036854775807 THEN abe_n::bigint END FROM (SELECT " + n + " AS abe_n) abe_s)"
}

// checkedFloat is a op b (l and r, their SQL) in double precision, as
// CEL computes it, where PostgreSQL would fail the whole query on an
// overflow or an underflow to zero. A sum never underflows, and overflows
// where the sum of the halves (exact, and which cannot overflow) reaches
// 2^1023. A product or quotient is first estimated in numeric (from
// operands PostgreSQL converts with 15 digits, so within 1e-14): clearly
// beyond the largest double it is an infinity, clearly below half the
// smallest it is zero, and near either edge it is decided by the same
// operation on an operand scaled by a power of two, which is exact and
// cannot fail there. A constant operand is scaled here, not in SQL, where
// the planner would fold it, and could fail, even in a branch never taken.
func (tr *translator) checkedFloat(va, vb val, l, r, op string) string {
	if op == "+" || op == "-" {
		// An operand within ±1 cannot make a sum overflow and is not
		// halved (half of the smallest subnormal would fail as an
		// underflow; for a constant the condition folds to false first).
		half := func(x string) string {
			return "(CASE WHEN abs(" + x + ") > 1 THEN " + x + " * 0.5::float8 ELSE 0::float8 END)"
		}
		return "(SELECT CASE WHEN abs(abe_h) >= 8.98846567431158e307::float8 THEN sign(abe_h) * 'Infinity'::float8 ELSE abe_a " + op + " abe_b END" +
			" FROM (SELECT " + l + " AS abe_a, " + r + " AS abe_b) abe_s, LATERAL (SELECT " + half("abe_a") + " " + op + " " + half("abe_b") + " AS abe_h) abe_m)"
	}
	scaled := func(v val, side string, by float64, lit string) string {
		if v.konst {
			var x float64
			switch c := v.value.(type) {
			case float64:
				x = c
			case int64:
				x = float64(c)
			}
			return tr.q.Arg(x*by) + "::float8"
		}
		return "(" + side + " * " + lit + "::float8)"
	}
	const up = "1.6069380442589903e60" // 2^200
	inf := "sign(abe_n)::float8 * 'Infinity'::float8"
	exact := "abe_a " + op + " abe_b"
	// Near the largest double both operands are normal: (a/2) op b is
	// exactly half of a op b and cannot overflow.
	over := scaled(va, "abe_a", 0.5, "0.5") + " " + op + " abe_b"
	// Near zero, the smaller factor (or the dividend) times 2^200 is exact
	// and leaves the result normal: a op b rounds to zero where that is
	// at most 2^-875 (2^-1075 times 2^200). The scaled result is rounded
	// too, so a result within 2^-53 above 2^-1075, which CEL rounds up to
	// the smallest subnormal, is zero here: never the reverse, which
	// would fail the query.
	var under string
	if op == "*" {
		under = "(CASE WHEN abs(abe_a) <= abs(abe_b) THEN " + scaled(va, "abe_a", 0x1p200, up) + " * abe_b ELSE abe_a * " + scaled(vb, "abe_b", 0x1p200, up) + " END)"
	} else {
		under = scaled(va, "abe_a", 0x1p200, up) + " / abe_b"
	}
	return "(SELECT CASE WHEN abs(abe_n) > 3e308 THEN " + inf +
		" WHEN abs(abe_n) > 1e300 THEN (CASE WHEN abs(" + over + ") >= 8.98846567431158e307::float8 THEN " + inf + " ELSE " + exact + " END)" +
		" WHEN abe_n <> 0 AND abs(abe_n) < 1e-330 THEN 0::float8" +
		" WHEN abe_n <> 0 AND abs(abe_n) < 1e-290 THEN (CASE WHEN abs(" + under + ") <= 3.9696644133184383e-264::float8 THEN 0::float8 ELSE " + exact + " END)" +
		" ELSE " + exact + " END" +
		" FROM (SELECT " + l + " AS abe_a, " + r + " AS abe_b) abe_s, LATERAL (SELECT abe_a::numeric " + op + " abe_b::numeric AS abe_n) abe_m)"
}

// mirrored is the comparison with its sides swapped.
var mirrored = map[string]string{"_<_": "_>_", "_<=_": "_>=_", "_>_": "_<_", "_>=_": "_<=_"}

// numberBound compares a number x with a double constant c as CEL does.
// CEL compares an integer with a double as the double nearest to it
// (float64(x)): x >= 1.5 is x >= 2, a constant beyond int64's range
// decides the comparison, and beyond 2^53, where neighbouring integers are
// one double, x > 9007199254740992.0 is x >= 9007199254740994. The bound
// is an integer, so the comparison keeps the column's index. Nothing is
// ordered with NaN (CEL says false; PostgreSQL sorts NaN above every
// number). decided reports a comparison that is outcome for every non-null
// x; otherwise x compares with bound by fn.
func numberBound(fn string, c float64, integer bool) (newFn string, bound val, decided, outcome bool) {
	switch {
	case math.IsNaN(c):
		return "", val{}, true, false
	case !integer:
		return fn, val{konst: true, value: c, typ: "double precision"}, false, false
	}
	holds := func(i int64) bool {
		x := float64(i)
		switch fn {
		case "_<_":
			return x < c
		case "_<=_":
			return x <= c
		case "_>_":
			return x > c
		}
		return x >= c
	}
	if fn == "_>_" || fn == "_>=_" {
		// holds is false, then true, as float64 never decreases.
		k, ok := leastInt(holds)
		switch {
		case !ok:
			return "", val{}, true, false
		case k == math.MinInt64:
			return "", val{}, true, true
		}
		return "_>=_", val{konst: true, value: k, typ: "bigint"}, false, false
	}
	k, ok := leastInt(func(i int64) bool { return !holds(i) })
	switch {
	case !ok:
		return "", val{}, true, true
	case k == math.MinInt64:
		return "", val{}, true, false
	}
	return "_<=_", val{konst: true, value: k - 1, typ: "bigint"}, false, false
}

// leastInt is the least int64 for which pred, false and then true over
// int64's range, holds; ok is false where it never does.
func leastInt(pred func(int64) bool) (least int64, ok bool) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !pred(hi) {
		return 0, false
	}
	if pred(lo) {
		return lo, true
	}
	// pred(lo) is false and pred(hi) true; the distance fits a uint64.
	for uint64(hi)-uint64(lo) > 1 {
		mid := lo + int64((uint64(hi)-uint64(lo))/2)
		if pred(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, true
}

// field translates operand.name: a field of the record or of a related
// record.
func (tr *translator) field(operand ast.Expr, name string) (val, error) {
	if operand.Kind() == ast.IdentKind && operand.AsIdent() == varRecord && !tr.filter {
		return tr.column(tr.alias(), tr.col.schema, name)
	}
	if operand.Kind() == ast.IdentKind && (operand.AsIdent() == varBefore || operand.AsIdent() == varChanges) {
		return val{}, cannot("%s exists only in update rules, which are checked record by record", operand.AsIdent())
	}
	rel, err := tr.value(operand)
	if err != nil {
		return val{}, err
	}
	if rel.relation == nil {
		return val{}, cannot("only fields of the record and of related records have a SQL form")
	}
	coll := tr.collectionOfTable(rel.relation.table)
	return tr.column(rel.relation.alias, coll, name)
}

func (tr *translator) collectionOfTable(table string) *schema.Collection {
	for name, t := range tr.eng.tables {
		if t == table {
			if name == schema.UsersCollection {
				return &schema.Collection{Name: name, Fields: usersFields}
			}
			return tr.eng.cfg.Collection(name)
		}
	}
	return nil
}

// column is alias.name, typed from the schema.
func (tr *translator) column(alias string, c *schema.Collection, name string) (val, error) {
	v, err := tr.rawColumn(alias, c, name)
	if err != nil || !tr.filter {
		return v, err
	}
	return tr.visible(v, c, name, alias)
}

func (tr *translator) rawColumn(alias string, c *schema.Collection, name string) (val, error) {
	ref := alias + "." + pgx.Identifier{name}.Sanitize()
	switch name {
	case "id":
		return val{sql: ref, typ: "uuid", column: true}, nil
	case "version":
		return val{sql: ref, typ: "bigint", column: true}, nil
	case "created_at", "updated_at":
		return val{sql: ref, typ: "timestamptz", column: true}, nil
	}
	f := c.Field(name)
	if f == nil {
		return val{}, cannot("no field %s", name)
	}
	typ := schema.ColumnType(f)
	if typ == "timestamp with time zone" {
		typ = "timestamptz"
	}
	return val{sql: ref, typ: typ, column: true, nullable: !f.Required && !f.Many}, nil
}

// relationKey is the SQL of the id a get() or exists() looks up.
func (tr *translator) relationKey(x ast.Expr) (string, error) {
	v, err := tr.value(x)
	if err != nil {
		return "", err
	}
	if v.konst {
		p, ok := tr.param(v, "uuid")
		if !ok || v.failed {
			return "NULL", nil // no record has that id
		}
		return p, nil
	}
	if v.typ != "uuid" {
		return "", cannot("get() and exists() need an id from a relation field, auth.id or a constant to have a SQL form")
	}
	return v.sql, nil
}

// param binds a constant, cast to typ (the type of what it is compared
// with). It reports false for a string that cannot be a uuid.
func (tr *translator) param(v val, typ string) (string, bool) {
	value := v.value
	switch {
	case typ == "uuid":
		s, ok := value.(string)
		if !ok || !canonicalUUID(s) {
			return "", false
		}
	case strings.HasSuffix(typ, "[]"):
		if items, ok := value.([]any); ok {
			value = typedSlice(items, strings.TrimSuffix(typ, "[]"))
		}
	case typ == "" || typ == "jsonb":
		typ = v.typ
	}
	if v.typ == "interval" {
		typ = "interval"
	}
	if typ == "" {
		return tr.q.Arg(value), true
	}
	return tr.q.Arg(value) + "::" + typ, true
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// canonicalUUID reports whether s is a UUID as Postgres prints them: CEL
// compares the text, so another spelling of the same UUID is not equal.
func canonicalUUID(s string) bool { return uuidRE.MatchString(s) }

// pgType is the Postgres type of a CEL type.
func pgType(t *cel.Type) string {
	if t == nil {
		return ""
	}
	switch t.Kind() {
	case celtypes.StringKind:
		return "text"
	case celtypes.IntKind:
		return "bigint"
	case celtypes.DoubleKind:
		return "double precision"
	case celtypes.BoolKind:
		return "boolean"
	case celtypes.TimestampKind:
		return "timestamptz"
	case celtypes.DurationKind:
		return "interval"
	case celtypes.OpaqueKind:
		if t.TypeName() == "optional_type" {
			return ""
		}
	case celtypes.ListKind:
		if ps := t.Parameters(); len(ps) == 1 {
			if e := pgType(ps[0]); e != "" && !strings.HasSuffix(e, "[]") {
				return e + "[]"
			}
		}
	}
	if t.Kind() == celtypes.StructKind || t.Kind() == celtypes.NullTypeKind {
		return ""
	}
	// Nullable wrappers carry their primitive as a parameter-less name.
	switch t.DeclaredTypeName() {
	case "google.protobuf.StringValue":
		return "text"
	case "google.protobuf.Int64Value":
		return "bigint"
	case "google.protobuf.DoubleValue":
		return "double precision"
	case "google.protobuf.BoolValue":
		return "boolean"
	}
	return ""
}

// typedSlice gives pgx a slice of one element type to send as an array.
func typedSlice(items []any, elem string) any {
	switch elem {
	case "text", "uuid":
		out := make([]string, 0, len(items))
		for _, it := range items {
			if s, ok := it.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case "bigint":
		out := make([]int64, 0, len(items))
		for _, it := range items {
			switch n := it.(type) {
			case int64:
				out = append(out, n)
			case float64:
				// An integer never equals a fraction, or a number beyond
				// int64's range.
				if n == math.Trunc(n) && n >= -0x1p63 && n < 0x1p63 {
					out = append(out, int64(n))
				}
			}
		}
		return out
	case "double precision":
		out := make([]float64, 0, len(items))
		for _, it := range items {
			switch n := it.(type) {
			case int64:
				out = append(out, float64(n))
			case float64:
				out = append(out, n)
			}
		}
		return out
	case "boolean":
		out := make([]bool, 0, len(items))
		for _, it := range items {
			if b, ok := it.(bool); ok {
				out = append(out, b)
			}
		}
		return out
	case "timestamptz":
		out := make([]time.Time, 0, len(items))
		for _, it := range items {
			if t, ok := it.(time.Time); ok {
				out = append(out, t)
			}
		}
		return out
	}
	return items
}

// constValue evaluates a constant subexpression for this query. ok is
// false when the evaluation fails (auth.id of an anonymous principal):
// CEL's error, which is SQL's unknown.
func (tr *translator) constValue(x ast.Expr) (v any, ok bool) {
	if x.Kind() == ast.LiteralKind {
		return goValue(x.AsLiteral()), true
	}
	prg := tr.prog.consts[x.ID()]
	if prg == nil {
		return nil, false
	}
	if tr.act == nil {
		tr.act = &activation{in: &Input{Auth: tr.in.Auth, Request: tr.in.Request}}
	}
	out, _, err := prg.Eval(tr.act)
	if err != nil || celtypes.IsError(out) {
		return nil, false
	}
	return goValue(out), true
}

// goValue converts a CEL value to what pgx binds.
func goValue(v ref.Val) any {
	switch t := v.(type) {
	case celtypes.Null:
		return nil
	case celtypes.String:
		return string(t)
	case celtypes.Int:
		return int64(t)
	case celtypes.Uint:
		return int64(t)
	case celtypes.Double:
		return float64(t)
	case celtypes.Bool:
		return bool(t)
	case celtypes.Timestamp:
		return t.Time
	case celtypes.Duration:
		return t.Duration
	}
	if celtypes.IsError(v) || celtypes.IsUnknown(v) {
		return nil
	}
	if l, ok := v.(interface {
		Size() ref.Val
		Get(ref.Val) ref.Val
	}); ok {
		n, _ := l.Size().(celtypes.Int)
		out := make([]any, 0, int(n))
		for i := range int(n) {
			out = append(out, goValue(l.Get(celtypes.Int(i))))
		}
		return out
	}
	if native, err := v.ConvertToNative(reflect.TypeOf((*any)(nil)).Elem()); err == nil {
		return native
	}
	return nil
}

// IsUntranslatable reports whether err says an expression has no SQL form.
func IsUntranslatable(err error) bool {
	var u *untranslatable
	return errors.As(err, &u)
}
