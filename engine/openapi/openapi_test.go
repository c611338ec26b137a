package openapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/abe-stack/abe/schema"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The configurations the tests generate documents for.
const (
	todoConfig    = "../../examples/todo/abe.yaml"
	exampleConfig = "../../config.example.yaml"
)

// examples names the configurations for subtests.
func examples() [][2]string {
	return [][2]string{{"todo", todoConfig}, {"example", exampleConfig}}
}

func load(t *testing.T, path string) *schema.Config {
	t.Helper()
	cfg, err := schema.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return cfg
}

// generate returns the document of cfg with options fixed, so that the
// environment of the test run cannot change it.
func generate(t *testing.T, cfg *schema.Config) []byte {
	t.Helper()
	out, err := Generate(cfg, Options{Title: "abe", Version: "dev", ServerURL: "http://127.0.0.1:8090"})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return out
}

func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("document is %T, not an object", v)
	}
	return m
}

// oasSchema compiles the OpenAPI 3.1 specification's own JSON Schema.
func oasSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/oas-3.1-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("read the OpenAPI schema: %v", err)
	}
	id := doc.(map[string]any)["$id"].(string)
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, doc); err != nil {
		t.Fatalf("add the OpenAPI schema: %v", err)
	}
	s, err := c.Compile(id)
	if err != nil {
		t.Fatalf("compile the OpenAPI schema: %v", err)
	}
	return s
}

func TestValidAgainstOpenAPISchema(t *testing.T) {
	oas := oasSchema(t)
	for _, ex := range examples() {
		path := ex[1]
		t.Run(ex[0], func(t *testing.T) {
			doc := decode(t, generate(t, load(t, path)))
			if err := oas.Validate(doc); err != nil {
				t.Fatalf("the document is not valid OpenAPI 3.1:\n%v", err)
			}
		})
	}
}

// The check above is only worth something if the schema refuses broken
// documents.
func TestOpenAPISchemaRefuses(t *testing.T) {
	oas := oasSchema(t)
	for name, edit := range map[string]func(doc map[string]any){
		"no info":       func(doc map[string]any) { delete(doc, "info") },
		"wrong version": func(doc map[string]any) { doc["openapi"] = "3.0.3" },
		"unknown member": func(doc map[string]any) {
			doc["paths"].(map[string]any)["/healthz"].(map[string]any)["get"].(map[string]any)["response"] = map[string]any{}
		},
		"response without description": func(doc map[string]any) {
			get := doc["paths"].(map[string]any)["/healthz"].(map[string]any)["get"].(map[string]any)
			delete(get["responses"].(map[string]any)["200"].(map[string]any), "description")
		},
		"schema not an object": func(doc map[string]any) {
			doc["components"].(map[string]any)["schemas"].(map[string]any)["Problem"] = "Problem"
		},
	} {
		t.Run(name, func(t *testing.T) {
			doc := decode(t, generate(t, load(t, todoConfig)))
			edit(doc)
			if err := oas.Validate(doc); err == nil {
				t.Fatal("the broken document passes")
			}
		})
	}
}

// The OpenAPI schema checks that component schemas are objects, not that
// they are JSON Schemas; compiling each one checks that, against the
// 2020-12 meta-schema, and that its references resolve.
func TestComponentSchemasCompile(t *testing.T) {
	for _, ex := range examples() {
		path := ex[1]
		t.Run(ex[0], func(t *testing.T) {
			doc := decode(t, generate(t, load(t, path)))
			c := jsonschema.NewCompiler()
			if err := c.AddResource("openapi.json", doc); err != nil {
				t.Fatal(err)
			}
			schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
			for name := range schemas {
				if _, err := c.Compile("openapi.json#/components/schemas/" + name); err != nil {
					t.Errorf("schema %s: %v", name, err)
				}
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	for _, ex := range examples() {
		path := ex[1]
		t.Run(ex[0], func(t *testing.T) {
			a := generate(t, load(t, path))
			b := generate(t, load(t, path))
			if !bytes.Equal(a, b) {
				t.Fatalf("two runs differ:\n%s", cmp.Diff(string(a), string(b)))
			}
		})
	}
}

func TestGolden(t *testing.T) {
	got := generate(t, load(t, todoConfig))
	golden := filepath.Join("testdata", "todo.openapi.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./engine/openapi -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("the document changed (-golden +got); if intended, run go test ./engine/openapi -update:\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	cfg := load(t, todoConfig)
	out, err := Generate(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc := decode(t, out)
	info := doc["info"].(map[string]any)
	if info["title"] != "abe" || info["version"] != "dev" {
		t.Errorf("info = %v, want title abe, version dev", info)
	}
	servers := doc["servers"].([]any)
	if got := servers[0].(map[string]any)["url"]; got != cfg.Server.PublicURL {
		t.Errorf("server url = %v, want %s", got, cfg.Server.PublicURL)
	}
	out, err = Generate(cfg, Options{Title: "notes", Version: "1.2.0", ServerURL: "https://api.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	doc = decode(t, out)
	info = doc["info"].(map[string]any)
	server := doc["servers"].([]any)[0].(map[string]any)["url"]
	if info["title"] != "notes" || info["version"] != "1.2.0" || server != "https://api.example.com" {
		t.Errorf("options not used: info %v, url %v", info, server)
	}
}

func TestEveryCollectionHasItsOperations(t *testing.T) {
	for _, ex := range examples() {
		path := ex[1]
		t.Run(ex[0], func(t *testing.T) {
			cfg := load(t, path)
			doc := decode(t, generate(t, cfg))
			paths := doc["paths"].(map[string]any)
			for _, c := range cfg.Collections {
				base := "/api/collections/" + c.Name
				want := map[string][]string{
					base + "/records":      {"get", "post"},
					base + "/records/{id}": {"get", "put", "patch", "delete"},
					base + "/changes":      {"get"},
				}
				n := 0
				for p, methods := range want {
					item, ok := paths[p].(map[string]any)
					if !ok {
						t.Errorf("no path %s", p)
						continue
					}
					for _, m := range methods {
						op, ok := item[m].(map[string]any)
						if !ok {
							t.Errorf("no %s %s", strings.ToUpper(m), p)
							continue
						}
						if !slices.Equal(op["tags"].([]any), []any{c.Name}) {
							t.Errorf("%s %s has tags %v, want [%s]", m, p, op["tags"], c.Name)
						}
						n++
					}
				}
				if n != 7 {
					t.Errorf("%s has %d operations, want 7", c.Name, n)
				}
				for _, suffix := range []string{"Record", "Create", "Update"} {
					if _, ok := doc["components"].(map[string]any)["schemas"].(map[string]any)[TypeName(c.Name)+suffix]; !ok {
						t.Errorf("no schema %s%s", TypeName(c.Name), suffix)
					}
				}
			}
		})
	}
}

// operations calls f for every operation of the document.
func operations(doc map[string]any, f func(path, method string, op map[string]any)) {
	paths := doc["paths"].(map[string]any)
	keys := make([]string, 0, len(paths))
	for p := range paths {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	for _, p := range keys {
		for _, m := range []string{"get", "put", "post", "delete", "patch"} {
			if op, ok := paths[p].(map[string]any)[m].(map[string]any); ok {
				f(p, m, op)
			}
		}
	}
}

func TestOperationIDsUnique(t *testing.T) {
	doc := decode(t, generate(t, load(t, exampleConfig)))
	seen := map[string]string{}
	operations(doc, func(path, method string, op map[string]any) {
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s %s has no operationId", method, path)
		}
		if prev, ok := seen[id]; ok {
			t.Errorf("operationId %s of %s %s is also that of %s", id, method, path, prev)
		}
		seen[id] = method + " " + path
	})
}

func TestSecurity(t *testing.T) {
	doc := decode(t, generate(t, load(t, todoConfig)))
	if got := fmt.Sprint(doc["security"]); got != "[map[bearerAuth:[]]]" {
		t.Errorf("document security = %s, want bearerAuth", got)
	}
	public := map[string]bool{
		"post /api/auth/register": true, "post /api/auth/login": true, "post /api/auth/refresh": true,
		"post /api/auth/password/forgot": true, "post /api/auth/password/reset": true, "get /api/auth/password/reset": true,
		"post /api/auth/verify-email": true, "get /api/auth/verify-email": true, "get /api/auth/jwks.json": true,
		"get /healthz": true, "get /readyz": true, "post /api/auth/mfa/verify": true,
	}
	operations(doc, func(path, method string, op map[string]any) {
		key := method + " " + path
		sec, overridden := op["security"]
		switch {
		case public[key]:
			if fmt.Sprint(sec) != "[]" {
				t.Errorf("%s should be public, has security %v", key, sec)
			}
		case key == "post /api/auth/logout":
			if fmt.Sprint(sec) != "[map[] map[bearerAuth:[]]]" {
				t.Errorf("%s should take an optional token, has security %v", key, sec)
			}
		case overridden:
			t.Errorf("%s overrides the bearer requirement with %v", key, sec)
		}
	})
}

// resolve follows a local reference of the document.
func resolve(t *testing.T, doc map[string]any, ref string) any {
	t.Helper()
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		t.Fatalf("reference %s is not local", ref)
	}
	var v any = doc
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("reference %s: %s is not inside an object", ref, tok)
		}
		if v, ok = m[tok]; !ok {
			t.Fatalf("reference %s does not resolve: no %s", ref, tok)
		}
	}
	return v
}

func TestReferencesResolve(t *testing.T) {
	doc := decode(t, generate(t, load(t, exampleConfig)))
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "$ref" {
					resolve(t, doc, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

func TestErrorsAreProblems(t *testing.T) {
	doc := decode(t, generate(t, load(t, todoConfig)))
	operations(doc, func(path, method string, op map[string]any) {
		for code, r := range op["responses"].(map[string]any) {
			if code < "400" || (path == "/readyz" && code == "503") {
				continue
			}
			resp := r.(map[string]any)
			if ref, ok := resp["$ref"].(string); ok {
				resp = resolve(t, doc, ref).(map[string]any)
			}
			content, _ := resp["content"].(map[string]any)
			if _, ok := content["application/problem+json"]; !ok || len(content) != 1 {
				t.Errorf("%s %s answers %s with %v, want application/problem+json", method, path, code, content)
			}
		}
	})
}

func TestTodoCreateRequired(t *testing.T) {
	doc := decode(t, generate(t, load(t, todoConfig)))
	create := doc["components"].(map[string]any)["schemas"].(map[string]any)["TodosCreate"].(map[string]any)
	got := create["required"]
	if diff := cmp.Diff([]any{"project", "title"}, got); diff != "" {
		t.Errorf("TodosCreate required (-want +got):\n%s", diff)
	}
	if create["additionalProperties"] != false {
		t.Errorf("TodosCreate allows unknown fields")
	}
	update := doc["components"].(map[string]any)["schemas"].(map[string]any)["TodosUpdate"].(map[string]any)
	if _, ok := update["required"]; ok {
		t.Errorf("TodosUpdate requires %v", update["required"])
	}
}

// validator compiles one schema of the document, at a JSON pointer (with
// its ~1 escapes).
func validator(t *testing.T, doc map[string]any, pointer string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	var esc []string
	for tok := range strings.SplitSeq(pointer, "/") {
		esc = append(esc, url.PathEscape(tok))
	}
	s, err := c.Compile("openapi.json#" + strings.Join(esc, "/"))
	if err != nil {
		t.Fatalf("compile %s: %v", pointer, err)
	}
	return s
}

// sample is a JSON value and whether a schema should accept it.
type sample struct {
	json  string
	valid bool
}

func check(t *testing.T, s *jsonschema.Schema, name string, samples []sample) {
	t.Helper()
	for _, c := range samples {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(c.json))
		if err != nil {
			t.Fatalf("%s sample %s: %v", name, c.json, err)
		}
		err = s.Validate(v)
		if c.valid && err != nil {
			t.Errorf("%s refuses %s:\n%v", name, c.json, err)
		}
		if !c.valid && err == nil {
			t.Errorf("%s accepts %s", name, c.json)
		}
	}
}

const (
	id1 = "01920000-0000-7000-8000-000000000001"
	id2 = "01920000-0000-7000-8000-000000000002"
)

func TestTodoSchemasValidate(t *testing.T) {
	doc := decode(t, generate(t, load(t, todoConfig)))
	s := func(name string) *jsonschema.Schema { return validator(t, doc, "/components/schemas/"+name) }

	check(t, s("TodosCreate"), "TodosCreate", []sample{
		{`{"project": "` + id1 + `", "title": "Buy milk"}`, true},
		{`{"id": "` + id2 + `", "project": "` + id1 + `", "title": "Buy milk", "done": true, "tags": ["a", {"b": 1}], "note": null}`, true},
		{`{"project": "` + id1 + `", "title": "Buy milk", "colour": "red"}`, false}, // unknown field
		{`{"project": "` + id1 + `", "title": 5}`, false},                           // wrong type
		{`{"project": "` + id1 + `", "title": ""}`, false},                          // min 1
		{`{"project": "` + id1 + `", "title": "` + strings.Repeat("x", 501) + `"}`, false},
		{`{"project": "` + id1 + `"}`, false},                             // title is required
		{`{"project": "not-a-uuid", "title": "x"}`, false},                // a relation is a uuid
		{`{"project": "` + id1 + `", "title": "x", "note": null}`, true},  // optional fields may be null
		{`{"project": "` + id1 + `", "title": "x", "done": null}`, false}, // a field with a default is not null
		{`{"project": "` + id1 + `", "title": "x", "done": "yes"}`, false},
		{`{"project": "` + id1 + `", "title": null}`, false}, // required fields may not
	})
	check(t, s("TodosUpdate"), "TodosUpdate", []sample{
		{`{}`, true},
		{`{"done": true}`, true},
		{`{"title": null}`, false},
		{`{"version": 3, "done": true}`, true}, // conditional, as If-Match
		{`{"version": 0}`, false},
		{`{"version": "3"}`, false},
	})
	check(t, s("TodosRecord"), "TodosRecord", []sample{
		{`{"id": "` + id1 + `", "version": 2, "created_at": "2024-01-31T09:00:00Z", "updated_at": "2024-01-31T09:00:01.5Z",
			"project": "` + id2 + `", "title": "x", "done": false, "tags": null, "note": null}`, true},
		// note has a read rule, so it may be left out.
		{`{"id": "` + id1 + `", "version": 2, "created_at": "2024-01-31T09:00:00Z", "updated_at": "2024-01-31T09:00:00Z",
			"project": "` + id2 + `", "title": "x", "done": false, "tags": null}`, true},
		{`{"id": "` + id1 + `", "version": 2, "created_at": "yesterday", "updated_at": "2024-01-31T09:00:00Z",
			"project": "` + id2 + `", "title": "x", "done": false, "tags": null}`, false},
	})
	check(t, validator(t, doc, "/paths/~1api~1collections~1todos~1records~1{id}/patch/requestBody/content/application~1json/schema"), "PATCH body", []sample{
		{`{"title": "y"}`, true},
		{`{"ops": [{"op": "set", "path": ["title"], "value": "y"}]}`, true},
		{`{"ops": [{"op": "listInsert", "path": ["tags"], "value": "a", "where": {"after": "b"}}]}`, true},
		{`{"ops": [{"op": "listInsert", "path": ["tags"], "value": "a", "where": "prepend"}]}`, true},
		{`{"ops": [{"op": "listRemove", "path": ["tags", 0], "value": "a"}]}`, true},
		{`{"ops": [{"op": "listInsert", "path": ["tags"], "value": "a", "where": "middle"}]}`, false},
		{`{"ops": [{"op": "move", "path": ["title"]}]}`, false},
		{`{"ops": [{"op": "set", "path": [], "value": 1}]}`, false},
		{`{"title": "y", "ops": []}`, false},
	})

	var ops []string
	for range 101 {
		ops = append(ops, `{"collection": "todos", "action": "delete", "id": "`+id1+`"}`)
	}
	check(t, s("BatchRequest"), "BatchRequest", []sample{
		{`{"ops": [{"collection": "todos", "action": "create", "data": {"title": "x"}}, {"collection": "projects", "action": "update", "id": "` + id1 + `", "version": 3, "ops": []}]}`, true},
		{`{"ops": [{"collection": "nope", "action": "create"}]}`, false},
		{`{"ops": [{"collection": "todos", "action": "upsert"}]}`, false},
		{`{"ops": [` + strings.Join(ops, ",") + `]}`, false},
	})
}

// config.example.yaml declares every field type.
func TestEveryFieldTypeValidates(t *testing.T) {
	doc := decode(t, generate(t, load(t, exampleConfig)))
	create := validator(t, doc, "/components/schemas/ProjectsCreate")
	base := `"name": "Apollo", "owner": "` + id1 + `"`
	check(t, create, "ProjectsCreate", []sample{
		{`{` + base + `}`, true},
		{`{` + base + `, "slug": "apollo-11", "members": ["` + id1 + `", "` + id2 + `"], "status": "archived", "labels": ["red", "blue"],
			"budget": 12.5, "seats": 10, "public": true, "starts": "2024-01-31T09:00:00Z", "settings": {"theme": "dark"},
			"logo": "logo.png", "contact": "ann@example.com", "website": "https://example.com", "summary": "s"}`, true},
		{`{` + base + `, "budget": null, "contact": null}`, true},
		{`{` + base + `, "status": null}`, false}, // a field with a default is not null
		{`{` + base + `, "starts": null}`, false},
		{`{` + base + `, "slug": "Not A Slug"}`, false},
		{`{` + base + `, "members": null}`, false}, // lists are never null
		{`{` + base + `, "members": ["x"]}`, false},
		{`{` + base + `, "members": ["` + id1 + `", "` + id1 + `"]}`, false},
		{`{` + base + `, "status": "deleted"}`, false},
		{`{` + base + `, "labels": ["purple"]}`, false},
		{`{` + base + `, "budget": -1}`, false},
		{`{` + base + `, "seats": 0}`, false},
		{`{` + base + `, "seats": 1.5}`, false},
		{`{` + base + `, "public": "yes"}`, false},
		{`{` + base + `, "starts": "tomorrow"}`, false},
		{`{` + base + `, "contact": "nobody"}`, false},
		{`{` + base + `, "name": ""}`, false},
	})
}

func TestTypeName(t *testing.T) {
	for in, want := range map[string]string{
		"todos": "Todos", "team_members": "TeamMembers", "a": "A", "v2_items": "V2Items", "x__y": "XY",
	} {
		if got := TypeName(in); got != want {
			t.Errorf("TypeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTypeNameCollision(t *testing.T) {
	cfg := &schema.Config{Collections: []*schema.Collection{
		{Name: "a1b", Fields: []*schema.Field{{Name: "x", Type: schema.Text}}},
		{Name: "a_1b", Fields: []*schema.Field{{Name: "x", Type: schema.Text}}},
	}}
	_, err := Generate(cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "A1bRecord") {
		t.Fatalf("Generate = %v, want an error naming A1bRecord", err)
	}
}

func TestOrderFollowsDeclaration(t *testing.T) {
	out := generate(t, load(t, todoConfig))
	// The text, not a decoded map: the order is what is checked.
	var at []int
	for _, s := range []string{`"/api/collections/projects/records"`, `"/api/collections/todos/records"`, `"/api/batch"`, `"/api/auth/register"`, `"/healthz"`} {
		at = append(at, bytes.Index(out, []byte(s)))
	}
	if !slices.IsSorted(at) || at[0] < 0 {
		t.Errorf("paths out of order: %v", at)
	}
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	rec := string(doc.Components.Schemas["TodosRecord"])
	at = at[:0]
	for _, s := range []string{`"id"`, `"version"`, `"created_at"`, `"updated_at"`, `"project"`, `"title"`, `"done"`, `"tags"`, `"note"`, `"expand"`} {
		at = append(at, strings.Index(rec, s))
	}
	if !slices.IsSorted(at) || at[0] < 0 {
		t.Errorf("TodosRecord fields out of order: %v", at)
	}
}

func TestIntegerBounds(t *testing.T) {
	lo := 2.0
	for _, c := range []struct {
		field *schema.Field
		want  string
	}{
		{&schema.Field{Name: "n", Type: schema.Integer, Required: true},
			`{"type":"integer","minimum":-9007199254740991,"maximum":9007199254740991}`},
		{&schema.Field{Name: "n", Type: schema.Integer, Min: &lo},
			`{"type":["integer","null"],"minimum":2,"maximum":9007199254740991}`},
	} {
		got, err := json.Marshal(fieldSchema(c.field, false))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}
