package abe_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/schema"
)

const explainYAML = `
roles:
  admin:   { permissions: ["*"] }
  auditor: { permissions: ["security:read"] }
  user:    { permissions: [], default: true }
collections:
  projects:
    fields:
      name:   { type: text, required: true, max: 100 }
      owner:  { type: relation, collection: users, required: true }
      budget: { type: number, rules: { read: "auth != null && auth.id == record.owner" } }
    rules:
      list:   "auth != null && record.owner == auth.id"
      read:   "auth != null"
      create: "auth != null && record.owner == auth.id"
      update: "auth != null && auth.id == record.owner"
      delete: "auth != null && auth.id == record.owner"
  tasks:
    fields:
      project: { type: relation, collection: projects, required: true }
      title:   { type: text, required: true, max: 100 }
    rules:
      list:   "auth != null && get('projects', record.project).owner == auth.id"
      read:   "auth != null && get('projects', record.project).owner == auth.id"
      create: "auth != null && get('projects', record.project).owner == auth.id"
`

func explainWorld(t *testing.T, requireMFA bool) (*world, string) {
	t.Helper()
	cfg, err := schema.Parse("abe.yaml", []byte(explainYAML), []string{"ABE_AUTH_SECRET=" + strings.Repeat("x", 40)})
	if err != nil {
		t.Fatal(err)
	}
	if requireMFA {
		cfg.Auth.RequireMFAForRoles = []string{"admin"}
	}
	w := newWorldWith(t, cfg, &abe.Options{})
	const admin = "admin@x.test"
	u, err := w.app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: admin, Password: "long enough pass phrase 9", Roles: []string{"admin"}, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	w.ids[admin] = u.ID
	w.tokens[admin] = w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": admin, "password": "long enough pass phrase 9"}, 200).str("access_token")
	return w, admin
}

// node finds the first subexpression expr in an explanation's tree.
func node(tree any, expr string) map[string]any {
	n, _ := tree.(map[string]any)
	if n == nil {
		return nil
	}
	if n["expr"] == expr {
		return n
	}
	kids, _ := n["children"].([]any)
	for _, k := range kids {
		if f := node(k, expr); f != nil {
			return f
		}
	}
	return nil
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestRulesExplain: the playground explains allowed and refused
// operations with the value of each subexpression, the records get()
// loaded, hidden and refused fields and the list's SQL, answers reads as
// the user really gets them, and records every use.
func TestRulesExplain(t *testing.T) {
	t.Parallel()
	w, admin := explainWorld(t, false)
	const explain = "/api/admin/rules/explain"
	annID, bobID := w.ids[ann], w.ids[bob]
	project := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": annID, "budget": 5}, 201).str("id")
	task := w.mustDo(ann, "POST", "/api/collections/tasks/records", map[string]any{"project": project, "title": "T"}, 201).str("id")

	// Refused: bob may not update ann's project; both sides are shown.
	r := w.mustDo(admin, "POST", explain, map[string]any{"collection": "projects", "operation": "update",
		"principal": map[string]any{"user_id": bobID}, "record_id": project, "body": map[string]any{"name": "Q"}}, 200)
	eq := node(r.body["tree"], "auth.id == record.owner")
	if r.body["allowed"] != false || r.str("rule") != "auth != null && auth.id == record.owner" || eq == nil || eq["value"] != false {
		t.Fatalf("refused update: %s", r.raw)
	}
	if kids := eq["children"].([]any); len(kids) != 2 || kids[0].(map[string]any)["value"] != bobID || kids[1].(map[string]any)["value"] != annID {
		t.Fatalf("the sides of auth.id == record.owner: %v", eq["children"])
	}
	if rule := r.str("rule"); rule[int(eq["start"].(float64)):int(eq["end"].(float64))] != "auth.id == record.owner" {
		t.Errorf("span %v-%v", eq["start"], eq["end"])
	}
	if r.body["api"] != nil || !strings.Contains(strings.Join(strs(r.body["notes"]), " "), "never for writing") || !slices.Equal(strs(r.body["changes"]), []string{"name"}) {
		t.Errorf("a write explained: %s", r.raw)
	}
	// ... and was not run.
	if got := w.mustDo(ann, "GET", "/api/collections/projects/records/"+project, nil, 200); got.str("name") != "P" {
		t.Fatalf("the explained update was written: %s", got.raw)
	}

	// Allowed: ann, found by email.
	r = w.mustDo(admin, "POST", explain, map[string]any{"collection": "projects", "operation": "update",
		"principal": map[string]any{"email": ann}, "record_id": project, "body": map[string]any{"name": "Q"}}, 200)
	if eq := node(r.body["tree"], "auth.id == record.owner"); r.body["allowed"] != true || eq["value"] != true {
		t.Fatalf("allowed update: %s", r.raw)
	}

	// A read by bob: allowed, budget hidden by its field rule, and the
	// api answer is what bob gets.
	r = w.mustDo(admin, "POST", explain, map[string]any{"collection": "projects", "operation": "read",
		"principal": map[string]any{"user_id": bobID}, "record_id": project}, 200)
	if r.body["allowed"] != true || !slices.Equal(strs(r.body["hidden"]), []string{"budget"}) {
		t.Fatalf("read as bob: %s", r.raw)
	}
	if f := r.body["fields"].([]any)[0].(map[string]any); f["field"] != "budget" || f["allowed"] != false || node(f["tree"], "auth.id == record.owner")["value"] != false {
		t.Errorf("field rule: %v", f)
	}
	api := r.body["api"].(map[string]any)
	real := w.mustDo(bob, "GET", "/api/collections/projects/records/"+project, nil, 200)
	if api["status"] != float64(200) || !reflect.DeepEqual(api["body"], any(real.body)) {
		t.Fatalf("api %v, bob really gets %s", api, real.raw)
	}
	if _, ok := api["body"].(map[string]any)["budget"]; ok {
		t.Errorf("the api answer shows the hidden field: %v", api)
	}

	// A list of tasks by ann: the SQL binds her id; get() loaded the
	// project; the api answer is her list.
	r = w.mustDo(admin, "POST", explain, map[string]any{"collection": "tasks", "operation": "list",
		"principal": map[string]any{"user_id": annID}, "record_id": task, "query": "sort=-created_at&limit=10"}, 200)
	sql := r.body["sql"].(map[string]any)
	if r.body["allowed"] != true || !strings.Contains(sql["text"].(string), "SELECT") || !slices.Contains(strs(sql["args"]), annID) {
		t.Fatalf("list as ann: %s", r.raw)
	}
	loads := r.body["loads"].([]any)
	if len(loads) != 1 {
		t.Fatalf("loads %v", loads)
	}
	if l := loads[0].(map[string]any); l["collection"] != "projects" || l["id"] != project || l["found"] != true || l["record"].(map[string]any)["owner"] != annID {
		t.Errorf("load %v", l)
	}
	if g := node(r.body["tree"], `get("projects", record.project)`); g == nil || g["value"].(map[string]any)["id"] != project {
		t.Errorf("get() node %v", g)
	}
	api = r.body["api"].(map[string]any)
	real = w.mustDo(ann, "GET", "/api/collections/tasks/records?sort=-created_at&limit=10", nil, 200)
	if api["status"] != float64(200) || !reflect.DeepEqual(api["body"], any(real.body)) || len(real.items()) != 1 {
		t.Fatalf("api %v, ann really gets %s", api, real.raw)
	}
	// The same list for bob (by roles, with his id) returns nothing.
	r = w.mustDo(admin, "POST", explain, map[string]any{"collection": "tasks", "operation": "list",
		"principal": map[string]any{"roles": []string{"user"}, "id": bobID}, "record_id": task}, 200)
	if r.body["allowed"] != false || len(r.body["api"].(map[string]any)["body"].(map[string]any)["items"].([]any)) != 0 {
		t.Fatalf("list as bob's roles: %s", r.raw)
	}
	// Anonymous, without a record: the rule is false for every row.
	r = w.mustDo(admin, "POST", explain, map[string]any{"collection": "tasks", "operation": "list", "principal": map[string]any{"anonymous": true}}, 200)
	if r.body["allowed"] != false || r.body["principal"].(map[string]any)["anonymous"] != true || r.body["api"].(map[string]any)["status"] != float64(200) {
		t.Fatalf("anonymous list: %s", r.raw)
	}

	// A create whose body does not match the schema is a 422, as the
	// records API answers it.
	bad := w.mustDo(admin, "POST", explain, map[string]any{"collection": "tasks", "operation": "create",
		"principal": map[string]any{"user_id": annID}, "body": map[string]any{"project": project, "title": strings.Repeat("x", 101)}}, 422)
	realBad := w.do(ann, "POST", "/api/collections/tasks/records", map[string]any{"project": project, "title": strings.Repeat("x", 101)}, nil)
	if realBad.status != 422 || !reflect.DeepEqual(bad.body["errors"], realBad.body["errors"]) {
		t.Errorf("422: %s, the records API: %s", bad.raw, realBad.raw)
	}
	// A create by bob in ann's project is refused, after get().
	r = w.mustDo(admin, "POST", explain, map[string]any{"collection": "tasks", "operation": "create",
		"principal": map[string]any{"email": bob}, "body": map[string]any{"project": project, "title": "mine"}}, 200)
	if r.body["allowed"] != false || len(r.body["loads"].([]any)) != 1 || r.body["api"] != nil {
		t.Fatalf("create as bob: %s", r.raw)
	}

	// A relation to a missing record: the API would answer 422.
	r = w.mustDo(admin, "POST", explain, map[string]any{"collection": "tasks", "operation": "create",
		"principal": map[string]any{"email": ann}, "body": map[string]any{"project": "01a235c4-3611-73ef-915f-63bcc1763eaa", "title": "x"}}, 200)
	if r.body["allowed"] != false || !strings.Contains(strings.Join(strs(r.body["notes"]), " "), "422: project") {
		t.Errorf("create in a missing project: %s", r.raw)
	}

	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		detail string
	}{
		{"unknown collection", map[string]any{"collection": "nope", "operation": "list", "principal": map[string]any{"anonymous": true}}, 404, `no collection "nope"`},
		{"unknown operation", map[string]any{"collection": "tasks", "operation": "purge", "principal": map[string]any{"anonymous": true}}, 400, "operation must be"},
		{"unknown user", map[string]any{"collection": "tasks", "operation": "list", "principal": map[string]any{"email": "nobody@x.test"}}, 404, "no user with email nobody@x.test"},
		{"unknown role", map[string]any{"collection": "tasks", "operation": "list", "principal": map[string]any{"roles": []string{"wizard"}}}, 400, `no role "wizard"`},
		{"two principals", map[string]any{"collection": "tasks", "operation": "list", "principal": map[string]any{"anonymous": true, "email": ann}}, 400, "exactly one"},
		{"no principal", map[string]any{"collection": "tasks", "operation": "list"}, 400, "principal is required"},
		{"read without a record", map[string]any{"collection": "tasks", "operation": "read", "principal": map[string]any{"anonymous": true}}, 400, "record_id is required"},
		{"missing record", map[string]any{"collection": "tasks", "operation": "read", "principal": map[string]any{"anonymous": true}, "record_id": project}, 404, "no record"},
		{"record_id for create", map[string]any{"collection": "tasks", "operation": "create", "principal": map[string]any{"anonymous": true}, "record_id": task}, 400, "record_id is not for create"},
		{"unknown field", map[string]any{"collection": "tasks", "operation": "list", "principal": map[string]any{"anonymous": true}, "as": "x"}, 400, ""},
	} {
		r := w.do(admin, "POST", explain, tc.body, nil)
		if r.status != tc.status || r.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(r.str("detail"), tc.detail) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}

	// Without the permission: 403 (401 anonymous).
	body := map[string]any{"collection": "tasks", "operation": "list", "principal": map[string]any{"user_id": annID}}
	if r := w.do(bob, "POST", explain, body, nil); r.status != 403 || r.str("type") == "" || !strings.Contains(r.str("detail"), auth.PermRulesExplain) {
		t.Errorf("bob: %d %s", r.status, r.raw)
	}
	if r := w.do("", "POST", explain, body, nil); r.status != 401 {
		t.Errorf("anonymous: %d %s", r.status, r.raw)
	}

	// Every use is a security event: who asked, about whom.
	evs := w.mustDo(admin, "GET", "/api/admin/security-events?type="+auth.EventRulesExplained+"&limit=500", nil, 200).items()
	if len(evs) < 10 {
		t.Fatalf("%d rules_explained events", len(evs))
	}
	var found, refused bool
	for _, ev := range evs {
		d := ev["details"].(map[string]any)
		if ev["user_id"] != w.ids[admin] || d["by"] != w.ids[admin] {
			t.Errorf("event %v", ev)
		}
		p, _ := d["principal"].(map[string]any)
		refused = refused || (d["collection"] == "nope" && d["status"] == float64(404))
		found = found || (d["operation"] == "update" && p["user_id"] == bobID && d["as"] == bobID && d["collection"] == "projects" && d["status"] == float64(200))
	}
	if !found || !refused {
		t.Errorf("no event for the update explained as bob (%v) or for the unknown collection (%v): %v", found, refused, evs)
	}
}

// TestRulesExplainNeedsMFA: where admins must use MFA, an admin session
// without it is refused.
func TestRulesExplainNeedsMFA(t *testing.T) {
	t.Parallel()
	w, admin := explainWorld(t, true)
	r := w.do(admin, "POST", "/api/admin/rules/explain", map[string]any{"collection": "tasks", "operation": "list", "principal": map[string]any{"anonymous": true}}, nil)
	if r.status != 403 || r.str("type") != "mfa_required" && !strings.HasSuffix(r.str("type"), "/mfa_required") {
		t.Fatalf("an admin without MFA: %d %s", r.status, r.raw)
	}
}
