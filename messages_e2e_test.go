package abe_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/abe-stack/abe/schema"
)

// TestFieldErrorMessages: over HTTP, every invalid field says what it
// expects, optional fields included, and a required field left out or set
// to null is "is required" on every write.
func TestFieldErrorMessages(t *testing.T) {
	t.Parallel()
	cfg, err := schema.Parse("abe.yaml", []byte(`
collections:
  posts:
    fields:
      title:  { type: text, required: true }
      owner:  { type: relation, collection: users, required: true }
      pinned: { type: bool }
      score:  { type: integer }
      salary: { type: number }
      status: { type: select, values: [draft, published] }
      tags:   { type: select, many: true, values: [a, b] }
    rules: { read: "true", create: "auth != null", update: "auth != null" }
`), []string{"ABE_AUTH_SECRET=" + strings.Repeat("e", 40)})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, cfg)
	posts := "/api/collections/posts/records"
	id := w.mustDo(ann, "POST", posts, map[string]any{"title": "x", "owner": w.ids[ann], "tags": []string{"a"}}, 201).str("id")
	const whole = "must be a whole number from -9007199254740991 to 9007199254740991"
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   string
		want   map[string]string
	}{
		{"bool", "PATCH", posts + "/" + id, `{"pinned":"yes"}`, map[string]string{"pinned": "must be true or false"}},
		{"fraction", "PATCH", posts + "/" + id, `{"score":1.5}`, map[string]string{"score": whole}},
		{"beyond 2^53", "PATCH", posts + "/" + id, `{"score":12345678901234567890}`, map[string]string{"score": whole}},
		{"number", "PATCH", posts + "/" + id, `{"salary":"x"}`, map[string]string{"salary": "must be a number"}},
		{"select", "PATCH", posts + "/" + id, `{"status":"bogus"}`, map[string]string{"status": "must be one of: draft, published"}},
		{"all at once", "POST", posts, `{"title":"t","owner":"` + w.ids[ann] + `","pinned":"yes","score":1.5,"salary":"x","status":"bogus"}`, map[string]string{
			"pinned": "must be true or false", "score": whole, "salary": "must be a number", "status": "must be one of: draft, published",
		}},
		{"PUT without the owner", "PUT", posts + "/" + id, `{"title":"t"}`, map[string]string{"owner": "is required"}},
		{"PUT with a null owner", "PUT", posts + "/" + id, `{"title":"t","owner":null}`, map[string]string{"owner": "is required"}},
		{"PATCH with a null owner", "PATCH", posts + "/" + id, `{"owner":null}`, map[string]string{"owner": "is required"}},
		{"POST without the owner", "POST", posts, `{"title":"t"}`, map[string]string{"owner": "is required"}},
	} {
		r := w.do(ann, tc.method, tc.path, tc.body, nil)
		got := map[string]string{}
		errs, _ := r.body["errors"].([]any)
		for _, e := range errs {
			m := e.(map[string]any)
			got[m["field"].(string)], _ = m["message"].(string)
		}
		if r.status != 422 {
			t.Errorf("%s: %d %s, want 422", tc.name, r.status, r.raw)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: %s (-want +got):\n%s", tc.name, tc.body, diff)
		}
	}
	// PUT clears what it leaves out, an optional list included.
	r := w.mustDo(ann, "PUT", posts+"/"+id, map[string]any{"title": "t2", "owner": w.ids[ann]}, 200)
	if tags, _ := r.body["tags"].([]any); len(tags) != 0 || r.body["pinned"] != nil {
		t.Errorf("PUT left fields behind: %s", r.raw)
	}
}
