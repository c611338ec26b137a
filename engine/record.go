package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/abe-stack/abe/schema"
)

// Record is a record as Go values: string (text, uuid), int64, float64,
// bool, time.Time, []string (lists), and for json fields what
// encoding/json decodes; nil is null. Rules see the same values.
type Record map[string]any

// ID is the record's id.
func (r Record) ID() string { s, _ := r["id"].(string); return s }

// Version is the record's version.
func (r Record) Version() int64 { v, _ := r["version"].(int64); return v }

// coll is what the engine knows of a collection.
type coll struct {
	cfg   *schema.Collection
	name  string
	table string // qualified, quoted
	// columns are the columns in output order: id, version, created_at,
	// updated_at, then the fields.
	columns []column
	byName  map[string]*column
	// selectList reads every column as Record values (uuids as text).
	selectList string
	create     *validator
	update     *validator
	// scanners are reusable scan targets for the rows of this
	// collection (scanner, releaseScanner).
	scanners sync.Pool
}

type column struct {
	name  string
	field *schema.Field // nil for system columns
	// kind is the Go shape of the value: "uuid", "text", "int", "float",
	// "bool", "time", "json", "list" (text or uuid arrays).
	kind     string
	pgType   string
	nullable bool
}

func newColl(cfg *schema.Config, c *schema.Collection) *coll {
	co := &coll{cfg: c, name: c.Name, table: schema.TableName(cfg.Database.Schema, c.Name), byName: map[string]*column{}}
	co.columns = []column{
		{name: "id", kind: "uuid", pgType: "uuid"},
		{name: "version", kind: "int", pgType: "bigint"},
		{name: "created_at", kind: "time", pgType: "timestamptz"},
		{name: "updated_at", kind: "time", pgType: "timestamptz"},
	}
	for _, f := range c.Fields {
		col := column{name: f.Name, field: f, pgType: schema.ColumnType(f), nullable: !f.Required && !f.Many}
		switch {
		case f.Many:
			col.kind = "list"
		case f.Type == schema.Relation:
			col.kind = "uuid"
		case f.Type == schema.Integer:
			col.kind = "int"
		case f.Type == schema.Number:
			col.kind = "float"
		case f.Type == schema.Bool:
			col.kind = "bool"
		case f.Type == schema.Timestamp:
			col.kind = "time"
		case f.Type == schema.JSON:
			col.kind = "json"
		default:
			col.kind = "text"
		}
		co.columns = append(co.columns, col)
	}
	var sel []string
	for i := range co.columns {
		col := &co.columns[i]
		co.byName[col.name] = col
		sel = append(sel, col.selectExpr("t"))
	}
	co.selectList = strings.Join(sel, ", ")
	return co
}

// selectExpr reads a column as its Record value: uuids as text, so rules
// and JSON see the canonical string.
func (c *column) selectExpr(alias string) string {
	ref := alias + "." + pgx.Identifier{c.name}.Sanitize()
	switch c.pgType {
	case "uuid":
		return ref + "::text"
	case "uuid[]":
		return ref + "::text[]"
	}
	return ref
}

// slot receives one column of a row. Scanning into value types, not
// pointers that pgx allocates, and reusing a query's slots row after row,
// keeps a list of 50 records from making hundreds of small allocations
// (a quarter of the CPU of a list request, measured by bench/records).
//
// Times are scanned into pgtype.Timestamptz, a value, rather than into a
// *time.Time, which pgx fills through reflection with a new time per row.
type slot struct {
	s pgtype.Text
	i pgtype.Int8
	f pgtype.Float8
	b pgtype.Bool
	t pgtype.Timestamptz
	l []string
	j any
}

// scanner holds the scan targets of a query's rows.
type scanner struct {
	slots []slot
	ptrs  []any
}

// scan reads one row selected with selectList.
func (co *coll) scan(row pgx.Row) (Record, error) {
	sc := co.scanner()
	defer co.releaseScanner(sc)
	return co.scanWith(sc, row)
}

// scanner is a scanner of co's rows from its pool: a get or a write
// scans one row, and making the slots afresh each time was three
// allocations of every request.
func (co *coll) scanner() *scanner {
	if sc, ok := co.scanners.Get().(*scanner); ok {
		return sc
	}
	return co.newScanner()
}

// releaseScanner gives sc back, without what a caller added to its
// targets (the list's masked sort keys) and without the last row's values,
// which the pool must not keep alive.
func (co *coll) releaseScanner(sc *scanner) {
	clear(sc.slots)
	clear(sc.ptrs[len(co.columns):])
	sc.ptrs = sc.ptrs[:len(co.columns)]
	co.scanners.Put(sc)
}

func (co *coll) newScanner() *scanner {
	slots := make([]slot, len(co.columns))
	ptrs := make([]any, len(co.columns))
	for i, c := range co.columns {
		sl := &slots[i]
		switch c.kind {
		case "uuid", "text":
			ptrs[i] = &sl.s
		case "int":
			ptrs[i] = &sl.i
		case "float":
			ptrs[i] = &sl.f
		case "bool":
			ptrs[i] = &sl.b
		case "time":
			ptrs[i] = &sl.t
		case "list":
			ptrs[i] = &sl.l
		case "json":
			ptrs[i] = &sl.j
		}
	}
	return &scanner{slots: slots, ptrs: ptrs}
}

func (co *coll) scanWith(sc *scanner, row pgx.Row) (Record, error) {
	if err := co.scanRow(sc, row); err != nil {
		return nil, err
	}
	return co.record(sc), nil
}

// scanRow reads one row into sc's slots, to be turned into a Record
// (record) or written out as JSON (appendSlotsJSON).
func (co *coll) scanRow(sc *scanner, row pgx.Row) error {
	slots := sc.slots
	for i := range slots {
		// What a record keeps by reference must be fresh for each row:
		// pgx may decode into a slice or map it is handed.
		slots[i].l, slots[i].j = nil, nil
	}
	if err := row.Scan(sc.ptrs...); err != nil {
		return err
	}
	for i, c := range co.columns {
		// A *time.Time, which these slots replace, refuses infinity; so
		// do they.
		if t := &slots[i].t; c.kind == "time" && t.Valid && t.InfinityModifier != pgtype.Finite {
			return fmt.Errorf("scan %s.%s: cannot scan %s into a time", co.name, c.name, t.InfinityModifier)
		}
	}
	return nil
}

// record is the Record of the row last scanned into sc.
func (co *coll) record(sc *scanner) Record {
	rec := make(Record, len(co.columns))
	for i := range co.columns {
		c := &co.columns[i]
		rec[c.name] = slotValue(c, &sc.slots[i])
	}
	return rec
}

// slotValue is the Record value of a column's slot.
func slotValue(c *column, sl *slot) any {
	switch c.kind {
	case "uuid", "text":
		if sl.s.Valid {
			return sl.s.String
		}
	case "int":
		if sl.i.Valid {
			return sl.i.Int64
		}
	case "float":
		if sl.f.Valid {
			return sl.f.Float64
		}
	case "bool":
		if sl.b.Valid {
			return sl.b.Bool
		}
	case "time":
		if sl.t.Valid {
			return sl.t.Time.UTC()
		}
	case "list":
		if sl.l == nil {
			return []string{}
		}
		return sl.l
	case "json":
		return sl.j
	}
	return nil
}

// appendSlotsJSON writes the row last scanned into sc as appendJSON
// writes its Record under a view with only fields set (no hidden fields,
// no expansions), without making the Record: a list whose records no
// field rule or expansion needs is written straight from its rows.
func (co *coll) appendSlotsJSON(buf *bytes.Buffer, sc *scanner, fields []string) error {
	buf.WriteByte('{')
	first := true
	for i := range co.columns {
		c := &co.columns[i]
		if fields != nil && c.name != "id" && c.name != "version" && !slices.Contains(fields, c.name) {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.WriteByte('"')
		buf.WriteString(c.name)
		buf.WriteString(`":`)
		if err := appendSlot(buf, c, &sc.slots[i]); err != nil {
			return fmt.Errorf("encode %s.%s: %w", co.name, c.name, err)
		}
	}
	buf.WriteByte('}')
	return nil
}

// appendSlot writes a slot as appendValue writes its slotValue, without
// boxing the common kinds.
func appendSlot(buf *bytes.Buffer, c *column, sl *slot) error {
	switch c.kind {
	case "uuid", "text":
		if sl.s.Valid {
			appendString(buf, sl.s.String)
			return nil
		}
	case "int":
		if sl.i.Valid {
			buf.Write(strconv.AppendInt(buf.AvailableBuffer(), sl.i.Int64, 10))
			return nil
		}
	case "bool":
		if sl.b.Valid {
			buf.Write(strconv.AppendBool(buf.AvailableBuffer(), sl.b.Bool))
			return nil
		}
	case "time":
		if sl.t.Valid {
			buf.WriteByte('"')
			buf.Write(sl.t.Time.UTC().AppendFormat(buf.AvailableBuffer(), time.RFC3339Nano))
			buf.WriteByte('"')
			return nil
		}
	default: // float, list, json: as appendValue writes them
		return appendValue(buf, slotValue(c, sl))
	}
	buf.WriteString("null")
	return nil
}

// view says what of a record a principal sees.
type view struct {
	hidden []string // field read rules deny these
	fields []string // projection; nil is every field
	expand map[string]any
}

// appendJSON writes rec as a JSON object in column order: system columns,
// then the fields as declared.
func (co *coll) appendJSON(buf *bytes.Buffer, rec Record, v *view) error {
	buf.WriteByte('{')
	first := true
	for i := range co.columns {
		c := &co.columns[i]
		if v != nil {
			if slices.Contains(v.hidden, c.name) {
				continue
			}
			if v.fields != nil && c.name != "id" && c.name != "version" && !slices.Contains(v.fields, c.name) {
				continue
			}
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.WriteByte('"')
		buf.WriteString(c.name)
		buf.WriteString(`":`)
		if err := appendValue(buf, rec[c.name]); err != nil {
			return fmt.Errorf("encode %s.%s: %w", co.name, c.name, err)
		}
	}
	if v != nil && len(v.expand) > 0 {
		expand := v.expand
		for _, h := range v.hidden {
			if _, ok := expand[h]; ok {
				// A relation the caller may not read is not expanded either.
				expand = maps.Clone(v.expand)
				for _, h := range v.hidden {
					delete(expand, h)
				}
				break
			}
		}
		buf.WriteString(`,"expand":`)
		b, err := json.Marshal(expand)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	buf.WriteByte('}')
	return nil
}

func appendValue(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case string:
		appendString(buf, x)
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			buf.WriteString("null")
			return nil
		}
		buf.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case time.Time:
		buf.WriteByte('"')
		buf.Write(x.UTC().AppendFormat(buf.AvailableBuffer(), time.RFC3339Nano))
		buf.WriteByte('"')
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return nil
}

// appendString writes s exactly as json.Marshal does, without its
// reflection and allocation for the common case: printable ASCII without
// quotes, backslashes or the HTML characters json.Marshal escapes is
// written as it is; anything else goes through json.Marshal.
func appendString(buf *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) //nolint:errcheck // strings always marshal
			buf.Write(b)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}

// rawRecord is a record already encoded, for json.Marshal of answers.
type rawRecord []byte

func (r rawRecord) MarshalJSON() ([]byte, error) { return r, nil }

// encode is appendJSON into a new buffer.
func (co *coll) encode(rec Record, v *view) (rawRecord, error) {
	var buf bytes.Buffer
	if err := co.appendJSON(&buf, rec, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// jsonForm turns a Record into the values encoding/json would decode from
// its JSON: what operations apply to.
func (co *coll) jsonForm(rec Record) map[string]any {
	out := make(map[string]any, len(rec))
	for k, v := range rec {
		switch x := v.(type) {
		case int64:
			out[k] = float64(x)
		case time.Time:
			out[k] = x.UTC().Format(time.RFC3339Nano)
		case []string:
			l := make([]any, len(x))
			for i, s := range x {
				l[i] = s
			}
			out[k] = l
		default:
			out[k] = x
		}
	}
	return out
}

// equal compares two Record values.
func equal(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return reflect.DeepEqual(a, b)
}
