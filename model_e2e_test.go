package abe_test

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestDefaultsAreNotNull: a field with a default (todos.done) never holds
// null: a create without it gets the default, null is refused naming the
// field, a PUT that leaves it out puts the default back, and the API's
// description says so.
func TestDefaultsAreNotNull(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	todos := "/api/collections/todos/records"
	rec := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "t"}, 201)
	if rec.body["done"] != false {
		t.Fatalf("create: %s", rec.raw)
	}
	id := rec.str("id")
	for _, body := range []map[string]any{{"done": nil}, {"project": pid, "title": "t", "done": nil}} {
		method := "PATCH"
		target := todos + "/" + id
		if len(body) > 1 {
			method, target = "POST", todos
		}
		r := w.do(ann, method, target, body, nil)
		wantProblem(t, method+" done: null", r, 422, "validation")
		if errs, _ := r.body["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "done" || errs[0].(map[string]any)["message"] != "must be true or false" {
			t.Errorf("%s done: null: %s", method, r.raw)
		}
	}
	w.mustDo(ann, "PATCH", todos+"/"+id, map[string]any{"done": true}, 200)
	if r := w.mustDo(ann, "PUT", todos+"/"+id, map[string]any{"project": pid, "title": "u"}, 200); r.body["done"] != false || r.body["note"] != nil {
		t.Errorf("PUT without done: %s", r.raw)
	}

	var doc map[string]any
	if err := json.Unmarshal([]byte(w.mustDo("", "GET", "/api/openapi.json", nil, 200).raw), &doc); err != nil {
		t.Fatal(err)
	}
	done := doc["components"].(map[string]any)["schemas"].(map[string]any)["TodosRecord"].(map[string]any)["properties"].(map[string]any)["done"].(map[string]any)
	if done["type"] != "boolean" {
		t.Errorf("TodosRecord.done is %v, want a plain boolean", done)
	}
}

// TestBodyVersionIsIfMatch: a client that sends a record back with its
// version gets a conditional write, as with If-Match.
func TestBodyVersionIsIfMatch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	todos := "/api/collections/todos/records"
	read := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "t"}, 201)
	id := read.str("id")
	rec := read.body

	// The record as read, changed and sent back whole: it applies once.
	rec["title"] = "mine"
	if r := w.mustDo(ann, "PUT", todos+"/"+id, rec, 200); r.body["version"] != 2.0 {
		t.Fatalf("PUT at its version: %s", r.raw)
	}
	rec["title"] = "stale"
	r := w.do(ann, "PUT", todos+"/"+id, rec, nil)
	wantProblem(t, "PUT of a stale copy", r, 409, "version_conflict")
	if cur, _ := r.body["current"].(map[string]any); cur["title"] != "mine" {
		t.Errorf("stale PUT: %s", r.raw)
	}
	wantProblem(t, "PATCH of a stale version", w.do(ann, "PATCH", todos+"/"+id, map[string]any{"done": true, "version": 1}, nil), 409, "version_conflict")
	w.mustDo(ann, "PATCH", todos+"/"+id, map[string]any{"done": true, "version": 2}, 200)
	w.mustDo(ann, "PATCH", todos+"/"+id, map[string]any{"done": false, "version": nil}, 200) // null: unconditional

	wantProblem(t, "version and If-Match disagree", w.do(ann, "PATCH", todos+"/"+id, map[string]any{"done": true, "version": 4}, map[string]string{"If-Match": `"3"`}), 400, "bad_request")
	wantProblem(t, "version not a number", w.do(ann, "PATCH", todos+"/"+id, map[string]any{"done": true, "version": "4"}, nil), 400, "bad_request")
	w.mustDo(ann, "PATCH", todos+"/"+id, map[string]any{"done": true, "version": 4}, 200)

	// In a batch, data's version is the op's version.
	r = w.do(ann, "POST", "/api/batch", map[string]any{"ops": []any{map[string]any{"collection": "todos", "action": "update", "id": id, "data": map[string]any{"title": "b", "version": 1}}}}, nil)
	wantProblem(t, "batch data version", r, 409, "version_conflict")
}

// TestGetFieldsAndPutClearsLists: ?fields= projects a single record as it
// does a list, and a PUT that leaves a many field out clears it.
func TestGetFieldsAndPutClearsLists(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	projects := "/api/collections/projects/records"
	p := w.mustDo(ann, "POST", projects, map[string]any{"name": "P", "owner": w.ids[ann], "members": []string{w.ids[bob]}}, 201)
	id := p.str("id")
	keys := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if got := keys(w.mustDo(ann, "GET", projects+"/"+id+"?fields=name", nil, 200).body); !slices.Equal(got, []string{"id", "name", "version"}) {
		t.Errorf("GET ?fields=name: %v", got)
	}
	r := w.mustDo(ann, "GET", projects+"/"+id+"?fields=owner&expand=owner", nil, 200)
	if got := keys(r.body); !slices.Equal(got, []string{"expand", "id", "owner", "version"}) {
		t.Errorf("GET ?fields=owner&expand=owner: %v", got)
	}
	wantProblem(t, "GET ?fields=nope", w.do(ann, "GET", projects+"/"+id+"?fields=nope", nil, nil), 400, "bad_request")

	r = w.mustDo(ann, "PUT", projects+"/"+id, map[string]any{"name": "Q", "owner": w.ids[ann]}, 200)
	if m, ok := r.body["members"].([]any); !ok || len(m) != 0 {
		t.Errorf("PUT without members: %s", r.raw)
	}
}
