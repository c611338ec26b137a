package openapi

import (
	"fmt"
	"strings"

	"github.com/abe-stack/abe/schema"
)

// maxSafeInteger bounds integer fields as the server does: larger numbers
// do not survive a round trip through JavaScript.
const maxSafeInteger = 1<<53 - 1

// maxFileRef is the longest file reference the server stores.
const maxFileRef = 1024

// collection adds the schemas and the seven operations of c, and those of
// its files.
func (g *generator) collection(paths *object, c *schema.Collection) error {
	t := TypeName(c.Name)
	if t == "" {
		return fmt.Errorf("collection %q has no letters to name its types with", c.Name)
	}
	owner := "collection " + c.Name
	for _, s := range []struct {
		name   string
		schema *object
	}{
		{t + "Record", recordSchema(c)},
		{t + "Create", createSchema(c)},
		{t + "Update", updateSchema(c)},
	} {
		if err := g.addSchema(s.name, owner, s.schema); err != nil {
			return err
		}
	}
	// Component responses have names of their own, apart from schemas.
	g.responses.set(t+"Conflict", problemResponse(
		"A stale If-Match version, with current holding the record as it is now; or another conflict, like a taken unique value.",
		obj("allOf", []any{problem(), obj("properties", obj("current", ref(t+"Record")))}),
	))

	base := "/api/collections/" + c.Name
	paths.set(base+"/records", obj("get", listOperation(c, t), "post", createOperation(c, t)))
	paths.set(base+"/records/{id}", obj(
		"parameters", []any{paramRef("RecordId")},
		"get", getOperation(c, t),
		"put", replaceOperation(c, t),
		"patch", patchOperation(c, t),
		"delete", deleteOperation(c, t),
	))
	paths.set(base+"/changes", obj("get", changesOperation(c, t)))
	g.files(paths, c, t)
	return nil
}

// fieldList names the fields of c that pass keep, for descriptions.
func fieldList(c *schema.Collection, keep func(*schema.Field) bool) string {
	var out []string
	for _, f := range c.Fields {
		if keep(f) {
			out = append(out, f.Name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func expandParam(c *schema.Collection) *object {
	return queryParam("expand",
		"Relation fields whose records to inline under expand, separated by commas (at most 10). Relation fields of "+c.Name+": "+
			fieldList(c, func(f *schema.Field) bool { return f.Type == schema.Relation })+".",
		str())
}

func listOperation(c *schema.Collection, t string) *object {
	all := func(*schema.Field) bool { return true }
	sortable := func(f *schema.Field) bool { return f.Type != schema.JSON && !f.Many }
	return operation("list"+t+"Records", c.Name, "List "+c.Name+" records").
		set("description", "The records the list rule lets the caller see, a page at a time (keyset pagination).").
		set("parameters", []any{
			queryParam("filter", "A CEL expression over the fields, like done == false; it narrows the records the rules allow. Fields: "+
				fieldList(c, all)+".", str()),
			queryParam("sort", "Keys separated by commas, - for descending, like -created_at,id. Sortable: id, version, created_at, updated_at, "+
				fieldList(c, sortable)+".", str()),
			paramRef("Limit"),
			paramRef("Cursor"),
			queryParam("fields", "Only these fields, separated by commas; id, version, created_at and updated_at always come.", str()),
			expandParam(c),
			queryParam("count", "Also count every matching record, as total.", boolean()),
		}).
		set("responses", responses(obj("200", jsonResponse("A page of records.", open(obj(
			"items", arrayOf(ref(t+"Record")),
			"next_cursor", obj("type", []any{"string", "null"}, "description", "Pass as cursor for the next page; null on the last page."),
			"total", obj("type", "integer", "minimum", 0, "description", "Every matching record, with count=true."),
		), "items", "next_cursor"))), 400, 401, 403, 429))
}

func createOperation(c *schema.Collection, t string) *object {
	return operation("create"+t+"Record", c.Name, "Create a "+c.Name+" record").
		set("description", "An id may be sent (a UUID), as offline clients do; otherwise the server makes a UUIDv7.").
		set("requestBody", jsonBody(ref(t+"Create"))).
		set("responses", responses(obj("201", obj(
			"description", "The new record.",
			"headers", obj("ETag", headerRef("ETag"), "Location", headerRef("Location")),
			"content", obj("application/json", obj("schema", ref(t+"Record"))),
		)), 400, 401, 403, 409, 413, 415, 422, 429))
}

func getOperation(c *schema.Collection, t string) *object {
	return operation("get"+t+"Record", c.Name, "Read a "+c.Name+" record").
		set("parameters", []any{paramRef("IfNoneMatch"), expandParam(c)}).
		set("responses", responses(obj(
			"200", obj(
				"description", "The record.",
				"headers", obj("ETag", headerRef("ETag")),
				"content", obj("application/json", obj("schema", ref(t+"Record"))),
			),
			"304", obj("description", "The record still has the version of If-None-Match.",
				"headers", obj("ETag", headerRef("ETag"))),
		), 400, 401, 403, 404, 429))
}

// written is the answer of a write that returns the record.
func written(t string) *object {
	return obj(
		"description", "The record as written.",
		"headers", obj("ETag", headerRef("ETag")),
		"content", obj("application/json", obj("schema", ref(t+"Record"))),
	)
}

func patchOperation(c *schema.Collection, t string) *object {
	return operation("update"+t+"Record", c.Name, "Change a "+c.Name+" record").
		set("description", "A partial object sets the fields it names; {ops: [...]} applies operations. Without If-Match the change merges into the current row; with it, it is all or nothing against that version.").
		set("parameters", []any{paramRef("IfMatch")}).
		set("requestBody", jsonBody(obj("oneOf", []any{ref(t + "Update"), ref("PatchOps")}))).
		set("responses", conflictAfter(responses(obj("200", written(t)), 400, 401, 403, 404), t, 413, 415, 422, 429))
}

func replaceOperation(c *schema.Collection, t string) *object {
	return operation("replace"+t+"Record", c.Name, "Replace a "+c.Name+" record").
		set("description", "Sets every field: those left out take their defaults, or null.").
		set("parameters", []any{paramRef("IfMatch")}).
		set("requestBody", jsonBody(ref(t+"Create"))).
		set("responses", conflictAfter(responses(obj("200", written(t)), 400, 401, 403, 404), t, 413, 415, 422, 429))
}

func deleteOperation(c *schema.Collection, t string) *object {
	return operation("delete"+t+"Record", c.Name, "Delete a "+c.Name+" record").
		set("parameters", []any{paramRef("IfMatch")}).
		set("responses", conflictAfter(responses(obj("204", emptyResponse("Deleted.")), 400, 401, 403, 404), t, 429))
}

// conflictAfter adds the collection's 409, with the current record, then
// the shared answers of the codes after it.
func conflictAfter(r *object, t string, codes ...int) *object {
	r.set("409", responseRef(t+"Conflict"))
	return responses(r, codes...)
}

func changesOperation(c *schema.Collection, t string) *object {
	return operation("list"+t+"Changes", c.Name, "Follow the changes of "+c.Name).
		set("description", "The changes after a position that the caller may read, oldest first, so a client that was offline catches up without refetching everything.").
		set("parameters", []any{
			obj("name", "since", "in", "query", "required", true,
				"description", "The position to continue from: next_since of the previous answer, 0 for the start.",
				"schema", obj("type", "integer", "minimum", 0)),
			queryParam("limit", "How many changes an answer holds at most.",
				obj("type", "integer", "minimum", 1, "maximum", 500, "default", 100)),
		}).
		set("responses", responses(obj("200", jsonResponse("Changes, oldest first.", open(obj(
			"items", arrayOf(open(obj(
				"seq", obj("type", "integer", "description", "The change's position."),
				"op", obj("enum", []any{"create", "update", "delete"}),
				"id", uuid(),
				"version", integer(),
				"at", dateTime(),
				"record", obj("$ref", "#/components/schemas/"+t+"Record",
					"description", "The record as it is now; left out for deletes."),
			), "seq", "op", "id", "version", "at")),
			"next_since", obj("type", "integer", "description", "Pass as since to continue."),
		), "items", "next_since"))), 400, 401, 403, 410, 429))
}

// recordSchema is a record as the server answers it.
func recordSchema(c *schema.Collection) *object {
	props := obj(
		"id", uuid(),
		"version", obj("type", "integer", "description", "Grows on every write; the ETag quotes it."),
		"created_at", dateTime(),
		"updated_at", dateTime(),
	)
	required := []string{"id", "version", "created_at", "updated_at"}
	expand := obj()
	for _, f := range c.Fields {
		props.set(f.Name, fieldSchema(f, false))
		// A field with a read rule is left out for callers the rule
		// refuses, so it cannot be required.
		if f.Rules.Read == nil {
			required = append(required, f.Name)
		}
		if f.Type == schema.Relation {
			expand.set(f.Name, expandedSchema(f))
		}
	}
	// A field may be called expand; the property then describes the field.
	if c.Field("expand") == nil {
		props.set("expand", obj("type", "object",
			"description", "The related records asked for with expand; what the caller may not read is left out.",
			"properties", expand))
	}
	return obj("type", "object",
		"description", "A record of "+c.Name+". With the fields parameter, only the fields asked for come.",
		"required", stringList(required),
		"properties", props)
}

// expandedSchema is what expand puts for relation f: the related record,
// or null when it is gone or unreadable; a list for many.
func expandedSchema(f *schema.Field) *object {
	var item *object
	if f.Collection == schema.UsersCollection {
		item = open(obj("id", uuid(), "name", str()), "id", "name")
	} else {
		item = ref(TypeName(f.Collection) + "Record")
	}
	if f.Many {
		return arrayOf(item)
	}
	return obj("oneOf", []any{item, obj("type", "null")})
}

// createSchema is the body of a create or a replace.
func createSchema(c *schema.Collection) *object {
	props := obj("id", obj("type", "string", "format", "uuid",
		"description", "Leave out for a server-made UUIDv7; offline clients send their own."),
		"version", bodyVersion("On a replace (PUT), the version the write expects, as If-Match; a create ignores it."))
	var required []string
	for _, f := range c.Fields {
		s := fieldSchema(f, true)
		props.set(f.Name, s)
		if f.Required && f.Default == nil {
			required = append(required, f.Name)
		}
	}
	return closed(props, required...).set("description", "The body of a create or a replace of "+c.Name+".")
}

// bodyVersion is the version a client may send back with a record.
func bodyVersion(desc string) *object {
	return obj("type", []any{"integer", "null"}, "minimum", 1, "description", desc)
}

// updateSchema is the body of a partial update: any field, none required.
func updateSchema(c *schema.Collection) *object {
	props := obj("version", bodyVersion("The version the write expects, as If-Match: a newer record makes it a 409."))
	for _, f := range c.Fields {
		props.set(f.Name, fieldSchema(f, false))
	}
	return closed(props).set("description", "A partial update of "+c.Name+": the fields it names are set.")
}

// fieldSchema is the JSON Schema of f's value; withDefault adds the
// default a create takes when the field is left out.
func fieldSchema(f *schema.Field, withDefault bool) *object {
	var item *object
	var desc []string
	switch f.Type {
	case schema.Text, schema.Email, schema.URL:
		item = str()
		switch f.Type {
		case schema.Email:
			item.set("format", "email")
		case schema.URL:
			item.set("format", "uri")
		}
		if f.Min != nil {
			item.set("minLength", int64(*f.Min))
		}
		if f.Max != nil {
			item.set("maxLength", int64(*f.Max))
		}
		if f.Pattern != "" {
			item.set("pattern", f.Pattern)
		}
	case schema.Number:
		item = obj("type", "number")
		if f.Min != nil {
			item.set("minimum", *f.Min)
		}
		if f.Max != nil {
			item.set("maximum", *f.Max)
		}
	case schema.Integer:
		lo, hi := float64(-maxSafeInteger), float64(maxSafeInteger)
		if f.Min != nil {
			lo = max(lo, *f.Min)
		}
		if f.Max != nil {
			hi = min(hi, *f.Max)
		}
		item = obj("type", "integer", "minimum", lo, "maximum", hi)
	case schema.Bool:
		item = boolean()
	case schema.Timestamp:
		item = dateTime()
	case schema.JSON:
		// Any JSON value, null included.
		item = obj()
	case schema.Select:
		item = obj("type", "string", "enum", stringList(f.Values))
	case schema.Relation:
		item = uuid()
		target := "a " + f.Collection + " record"
		if f.Collection == schema.UsersCollection {
			target = "an account"
		}
		if f.Many {
			desc = append(desc, "Ids, each of "+target+".")
		} else {
			desc = append(desc, "The id of "+target+".")
		}
	case schema.File:
		item = obj("type", "string", "maxLength", maxFileRef)
		if f.Many {
			desc = append(desc, "File references.")
		} else {
			desc = append(desc, "A file reference.")
		}
	default:
		item = obj()
	}

	var s *object
	switch {
	case f.Many:
		s = obj("type", "array", "items", item, "uniqueItems", true)
		if f.Min != nil {
			s.set("minItems", int64(*f.Min))
		}
		if f.Max != nil {
			s.set("maxItems", int64(*f.Max))
		}
		if f.Required && (f.Min == nil || *f.Min < 1) {
			s.set("minItems", 1)
		}
	case !f.NotNull() && f.Type != schema.JSON:
		s = nullable(item)
	default:
		s = item
	}
	if f.Unique {
		desc = append(desc, "Unique: no two records share a value.")
	}
	if withDefault && f.Default != nil {
		if f.Type == schema.Timestamp && f.Default == "now" {
			desc = append(desc, "Defaults to the time of the create.")
		} else {
			s.set("default", f.Default)
		}
	}
	if len(desc) > 0 {
		s.set("description", strings.Join(desc, " "))
	}
	return s
}

// nullable lets a schema also be null, as optional single fields are
// when they hold nothing.
func nullable(s *object) *object {
	if t, ok := s.get("type").(string); ok {
		s.set("type", []any{t, "null"})
	}
	if enum, ok := s.get("enum").([]any); ok {
		s.set("enum", append(enum, nil))
	}
	return s
}
