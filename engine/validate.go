package engine

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/schema"
)

// The JSON Schemas of bodies are generated from the fields: every create
// and update is checked against them before it reaches the database, so
// a client hears of every invalid field at once, in words.

// maxSafeInteger bounds integer fields: larger numbers do not survive a
// round trip through JavaScript.
const maxSafeInteger = 1<<53 - 1

var (
	emailPattern = `^[^@\s]+@[^@\s]+$`
	urlPattern   = `^https?://[^\s]+$`
	uuidPattern  = `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
)

// fieldSchema is the JSON Schema of one field's value.
func fieldSchema(f *schema.Field) map[string]any {
	var item map[string]any
	switch f.Type {
	case schema.Text, schema.Email, schema.URL:
		item = map[string]any{"type": "string"}
		if !f.Many {
			if f.Min != nil {
				item["minLength"] = int(*f.Min)
			}
			if f.Max != nil {
				item["maxLength"] = int(*f.Max)
			}
		}
		switch {
		case f.Pattern != "":
			item["pattern"] = f.Pattern
		case f.Type == schema.Email:
			item["pattern"] = emailPattern
		case f.Type == schema.URL:
			item["pattern"] = urlPattern
		}
		if f.Pattern != "" && f.Type != schema.Text {
			// The format check still applies alongside a pattern.
			pattern := emailPattern
			if f.Type == schema.URL {
				pattern = urlPattern
			}
			item = map[string]any{"allOf": []any{item, map[string]any{"pattern": pattern}}, "type": "string"}
		}
	case schema.Number:
		item = map[string]any{"type": "number"}
		bounds(item, f)
	case schema.Integer:
		item = map[string]any{"type": "integer", "minimum": -maxSafeInteger, "maximum": maxSafeInteger}
		bounds(item, f)
	case schema.Bool:
		item = map[string]any{"type": "boolean"}
	case schema.Timestamp:
		item = map[string]any{"type": "string", "format": "date-time"}
	case schema.JSON:
		return map[string]any{}
	case schema.Select:
		vals := make([]any, len(f.Values))
		for i, v := range f.Values {
			vals[i] = v
		}
		item = map[string]any{"enum": vals}
	case schema.Relation:
		item = map[string]any{"type": "string", "pattern": uuidPattern}
	case schema.File:
		item = map[string]any{"type": "string", "maxLength": 1024}
	}
	if f.Many {
		list := map[string]any{"type": "array", "items": item, "uniqueItems": true}
		if f.Min != nil {
			list["minItems"] = int(*f.Min)
		}
		if f.Max != nil {
			list["maxItems"] = int(*f.Max)
		}
		if f.Required && (f.Min == nil || *f.Min < 1) {
			list["minItems"] = 1
		}
		if !f.Required {
			// null clears an optional list, as it clears any optional
			// field (a PUT that leaves the field out sends null).
			return map[string]any{"anyOf": []any{map[string]any{"type": "null"}, list}}
		}
		return list
	}
	if !f.NotNull() {
		return map[string]any{"anyOf": []any{map[string]any{"type": "null"}, item}}
	}
	return item
}

func bounds(s map[string]any, f *schema.Field) {
	if f.Min != nil {
		s["minimum"] = *f.Min
	}
	if f.Max != nil {
		s["maximum"] = *f.Max
	}
}

// validator checks bodies of one kind (create or update) for a collection.
type validator struct {
	schema *jsonschema.Schema
	co     *coll
}

func newValidator(co *coll, create bool) (*validator, error) {
	props := map[string]any{
		// System fields are read-only; clients may send them back with a
		// record and they are ignored, except id on create.
		"version": map[string]any{}, "created_at": map[string]any{}, "updated_at": map[string]any{},
		"id": map[string]any{"type": "string", "pattern": uuidPattern},
	}
	var required []any
	for _, f := range co.cfg.Fields {
		props[f.Name] = fieldSchema(f)
		if create && f.Required && f.Default == nil {
			required = append(required, f.Name)
		}
	}
	doc := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		doc["required"] = required
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	url := fmt.Sprintf("abe:///%s/%v.json", co.name, create)
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("body schema of %s: %w", co.name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("body schema of %s: %w", co.name, err)
	}
	return &validator{schema: s, co: co}, nil
}

// bodyError is an invalid body: 400 for unknown fields, 422 for invalid
// values, with every field named.
type bodyError struct {
	status int
	detail string
	fields []httpx.FieldError
}

func (e *bodyError) Error() string { return e.detail }

// check validates body and converts it to Record values.
func (v *validator) check(body map[string]any) (Record, error) {
	if err := v.schema.Validate(body); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, &bodyError{status: 422, detail: err.Error()}
		}
		return nil, v.describe(ve)
	}
	if p := httpx.CheckText(body); p != nil {
		// PostgreSQL stores no NUL in text or jsonb: an invalid value.
		return nil, &bodyError{status: 422, detail: "the record has invalid fields", fields: p.Errors}
	}
	rec := Record{}
	for name, raw := range body {
		c := v.co.byName[name]
		if c == nil || (c.field == nil && name != "id") {
			continue // read-only system fields
		}
		val, err := convert(c, raw)
		if err != nil {
			return nil, &bodyError{status: 422, detail: "the record has invalid fields", fields: []httpx.FieldError{{Field: name, Message: err.Error()}}}
		}
		rec[name] = val
	}
	return rec, nil
}

// convert turns a validated JSON value into its Record value.
func convert(c *column, raw any) (any, error) {
	if raw == nil {
		if c.kind == "list" {
			return []string{}, nil
		}
		return nil, nil
	}
	switch c.kind {
	case "uuid":
		return strings.ToLower(raw.(string)), nil
	case "int":
		return int64(raw.(float64)), nil
	case "float":
		return raw.(float64), nil
	case "time":
		t, err := time.Parse(time.RFC3339Nano, raw.(string))
		if err != nil {
			return nil, errors.New("must be a date-time like 2024-01-31T09:00:00Z")
		}
		return t.UTC().Truncate(time.Microsecond), nil
	case "list":
		items := raw.([]any)
		out := make([]string, len(items))
		for i, it := range items {
			s := it.(string)
			if c.pgType == "uuid[]" {
				s = strings.ToLower(s)
			}
			out[i] = s
		}
		return out, nil
	}
	return raw, nil
}

func (v *validator) describe(ve *jsonschema.ValidationError) error {
	var unknown []string
	byField := map[string]string{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		if ap, ok := e.ErrorKind.(*kind.AdditionalProperties); ok {
			unknown = append(unknown, ap.Properties...)
			return
		}
		field := fieldPath(e.InstanceLocation)
		if r, ok := e.ErrorKind.(*kind.Required); ok {
			for _, m := range r.Missing {
				byField[m] = "is required"
			}
			return
		}
		if _, seen := byField[field]; seen {
			return // a field's first complaint says enough
		}
		if msg := v.message(e); msg != "" {
			byField[field] = msg
		}
	}
	walk(ve)
	var fields []httpx.FieldError
	for _, u := range unknown {
		fields = append(fields, httpx.FieldError{Field: u, Message: "unknown field: " + v.co.name + " has no such field"})
	}
	names := make([]string, 0, len(byField))
	for f := range byField {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		fields = append(fields, httpx.FieldError{Field: f, Message: byField[f]})
	}
	if len(unknown) > 0 {
		return &bodyError{status: 400, detail: "the record has unknown fields: " + strings.Join(unknown, ", "), fields: fields}
	}
	return &bodyError{status: 422, detail: "the record has invalid fields", fields: fields}
}

func fieldPath(loc []string) string {
	var b strings.Builder
	for i, p := range loc {
		if _, err := strconv.Atoi(p); err == nil && i > 0 {
			b.WriteString("[" + p + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// message says what is wrong with a value in words that name what the
// field expects. It is "" for the complaint of the null branch of an
// optional field, which says nothing the other branch does not.
func (v *validator) message(e *jsonschema.ValidationError) string {
	var f *schema.Field
	item := false
	if len(e.InstanceLocation) > 0 {
		f = v.co.cfg.Field(e.InstanceLocation[0])
		item = len(e.InstanceLocation) > 1
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Type:
		if len(k.Want) == 1 && k.Want[0] == "null" {
			return ""
		}
		if k.Got == "null" {
			if f != nil && !f.Required && f.Type != schema.JSON {
				// Not null for its default: say what it takes instead.
				return expects(f, item)
			}
			return "is required"
		}
		if f != nil {
			return expects(f, item)
		}
		return "must be " + article(strings.Join(k.Want, " or "))
	case *kind.Enum:
		if k.Got == nil {
			return "is required"
		}
		if f != nil {
			return expects(f, true)
		}
		var want []string
		for _, w := range k.Want {
			want = append(want, fmt.Sprint(w))
		}
		return "must be one of: " + strings.Join(want, ", ")
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %d characters", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters", k.Want)
	case *kind.Pattern:
		switch k.Want {
		case uuidPattern:
			return "must be a record id (a UUID)"
		case emailPattern:
			return "must be an email address"
		case urlPattern:
			return "must be an http(s) URL"
		}
		return "does not match the pattern " + k.Want
	case *kind.Minimum:
		if f != nil && f.Type == schema.Integer {
			return expects(f, item)
		}
		return "must be at least " + number(k.Want)
	case *kind.Maximum:
		if f != nil && f.Type == schema.Integer {
			return expects(f, item)
		}
		return "must be at most " + number(k.Want)
	case *kind.MinItems:
		if k.Want == 1 {
			return "must have at least 1 item"
		}
		return fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items", k.Want)
	case *kind.UniqueItems:
		return "must not repeat an item"
	case *kind.Format:
		if k.Want == "date-time" {
			return "must be a date-time like 2024-01-31T09:00:00Z"
		}
		return "must be a valid " + k.Want
	}
	return e.ErrorKind.LocalizedString(message.NewPrinter(language.English))
}

// expects says what a value of f must be; item is for one item of a
// many field, or the field's value when it holds one.
func expects(f *schema.Field, item bool) string {
	if f.Many && !item {
		switch f.Type {
		case schema.Relation:
			return "must be a list of record ids (UUIDs)"
		case schema.Select:
			return "must be a list of values from: " + strings.Join(f.Values, ", ")
		}
		return "must be a list of file names"
	}
	switch f.Type {
	case schema.Text, schema.File:
		return "must be a string"
	case schema.Email:
		return "must be an email address"
	case schema.URL:
		return "must be an http(s) URL"
	case schema.Number:
		return "must be a number"
	case schema.Integer:
		lo, hi := float64(-maxSafeInteger), float64(maxSafeInteger)
		if f.Min != nil {
			lo = max(lo, math.Ceil(*f.Min))
		}
		if f.Max != nil {
			hi = min(hi, math.Floor(*f.Max))
		}
		return fmt.Sprintf("must be a whole number from %s to %s", strconv.FormatFloat(lo, 'f', -1, 64), strconv.FormatFloat(hi, 'f', -1, 64))
	case schema.Bool:
		return "must be true or false"
	case schema.Timestamp:
		return "must be a date-time like 2024-01-31T09:00:00Z"
	case schema.Select:
		return "must be one of: " + strings.Join(f.Values, ", ")
	case schema.Relation:
		return "must be a record id (a UUID)"
	}
	return "is not a valid " + string(f.Type)
}

// number writes a bound as people write numbers: 1000000, 0.5.
func number(r *big.Rat) string {
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func article(t string) string {
	switch {
	case t == "integer":
		return "a whole number"
	case strings.HasPrefix(t, "a") || strings.HasPrefix(t, "o") || strings.HasPrefix(t, "i"):
		return "an " + t
	}
	return "a " + t
}
