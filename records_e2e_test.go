package abe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/schema"
)

// world is a running app with the todo example and a few accounts.
type world struct {
	t      *testing.T
	app    *abe.App
	srv    *httptest.Server
	tokens map[string]string // email -> access token
	ids    map[string]string // email -> user id
}

func newWorld(t *testing.T, cfg *schema.Config) *world {
	t.Helper()
	return newWorldWith(t, cfg, &abe.Options{})
}

// newWorldWith is newWorld with options for the app, like a clock.
func newWorldWith(t *testing.T, cfg *schema.Config, opts *abe.Options) *world {
	t.Helper()
	if cfg == nil {
		cfg = loadExample(t)
	}
	cfg.Server.RateLimit.Disabled = true
	cfg.Database.URL = migratedURL(t, cfg)
	opts.Migrate, opts.Dev = true, true
	app, err := abe.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(func() { srv.Close(); app.Close() })
	w := &world{t: t, app: app, srv: srv, tokens: map[string]string{}, ids: map[string]string{}}
	for _, u := range []struct {
		email string
		roles []string
	}{{"ann@x.test", nil}, {"bob@x.test", nil}, {"carol@x.test", nil}, {"mod@x.test", []string{"moderator"}}} {
		if u.roles != nil && !slices.ContainsFunc(cfg.Roles, func(r *schema.Role) bool { return r.Name == "moderator" }) {
			continue
		}
		created, err := app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: u.email, Password: "long enough pass phrase 9", Roles: u.roles, Verified: true})
		if err != nil {
			t.Fatal(err)
		}
		w.ids[u.email] = created.ID
		r := w.do("", "POST", "/api/auth/login", map[string]string{"email": u.email, "password": "long enough pass phrase 9"}, nil)
		w.tokens[u.email] = r.str("access_token")
	}
	return w
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }

func (r reply) items() []map[string]any {
	var out []map[string]any
	for _, it := range r.body["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// do calls the server as who ("" is anonymous) with a JSON body.
func (w *world) do(who, method, path string, body any, header map[string]string) reply {
	w.t.Helper()
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, contentType = strings.NewReader(b), "application/json"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			w.t.Fatal(err)
		}
		rd, contentType = bytes.NewReader(buf), "application/json"
	}
	return w.raw(who, method, path, rd, contentType, header)
}

// raw calls the server with any body; path may be a whole URL. A JSON
// answer is decoded into body.
func (w *world) raw(who, method, path string, body io.Reader, contentType string, header map[string]string) reply {
	w.t.Helper()
	target := path
	if !strings.HasPrefix(path, "http") {
		target = w.srv.URL + path
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if tok := w.tokens[who]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := reply{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body) //nolint:errcheck // some answers have no body, or are files
	return out
}

func (w *world) mustDo(who, method, path string, body any, status int) reply {
	w.t.Helper()
	r := w.do(who, method, path, body, nil)
	if r.status != status {
		w.t.Fatalf("%s %s %s as %s: %d, want %d: %s", method, path, body, who, r.status, status, r.raw)
	}
	return r
}

const (
	ann   = "ann@x.test"
	bob   = "bob@x.test"
	carol = "carol@x.test"
	mod   = "mod@x.test"
)

func TestRecordsWithRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	projects, todos := "/api/collections/projects/records", "/api/collections/todos/records"

	// projects: create only as the owner.
	p := w.mustDo(ann, "POST", projects, map[string]any{"name": "Garden", "owner": w.ids[ann], "members": []string{w.ids[bob]}}, 201)
	pid := p.str("id")
	if p.header.Get("ETag") != `"1"` || p.header.Get("Location") != projects+"/"+pid || p.body["members"].([]any)[0] != w.ids[bob] {
		t.Fatalf("create: %v %s", p.header, p.raw)
	}
	r := w.mustDo(bob, "POST", projects, map[string]any{"name": "Not mine", "owner": w.ids[ann]}, 403)
	if !strings.Contains(r.str("detail"), "create rule of projects") {
		t.Errorf("denial: %s", r.raw)
	}
	w.mustDo("", "POST", projects, map[string]any{"name": "x", "owner": w.ids[ann]}, 403)

	// todos: members create; others cannot, and do not see the project.
	t1 := w.mustDo(bob, "POST", todos, map[string]any{"project": pid, "title": "Water the plants", "note": "owner only"}, 201)
	if t1.body["done"] != false {
		t.Errorf("default done: %s", t1.raw)
	}
	w.mustDo(carol, "POST", todos, map[string]any{"project": pid, "title": "Intrude"}, 403)
	w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "Plant tulips", "tags": []string{"spring"}}, 201)

	// Reading: carol gets 404 (not 403), and the field rule hides note
	// from bob.
	id := t1.str("id")
	w.mustDo(carol, "GET", todos+"/"+id, nil, 404)
	asBob := w.mustDo(bob, "GET", todos+"/"+id, nil, 200)
	if _, has := asBob.body["note"]; has {
		t.Errorf("bob sees the owner-only note: %s", asBob.raw)
	}
	asAnn := w.mustDo(ann, "GET", todos+"/"+id, nil, 200)
	if asAnn.body["note"] != "owner only" || asAnn.header.Get("ETag") != `"1"` {
		t.Errorf("ann: %s", asAnn.raw)
	}
	if r := w.do(ann, "GET", todos+"/"+id, nil, map[string]string{"If-None-Match": `"1"`}); r.status != 304 {
		t.Errorf("If-None-Match: %d", r.status)
	}
	w.mustDo(ann, "GET", todos+"/not-a-uuid", nil, 404)
	w.mustDo(ann, "GET", "/api/collections/nope/records", nil, 404)

	// Lists obey the list rule.
	for who, want := range map[string]int{ann: 2, bob: 2, carol: 0, "": 0} {
		if got := len(w.mustDo(who, "GET", todos, nil, 200).items()); got != want {
			t.Errorf("%s lists %d todos, want %d", who, got, want)
		}
	}
	l := w.mustDo(ann, "GET", todos+"?filter="+url.QueryEscape("title.startsWith('Plant')")+"&sort=title&count=true&expand=project", nil, 200)
	if items := l.items(); len(items) != 1 || items[0]["title"] != "Plant tulips" || l.body["total"] != float64(1) ||
		items[0]["expand"].(map[string]any)["project"].(map[string]any)["name"] != "Garden" {
		t.Errorf("filtered list: %s", l.raw)
	}

	// Projection and many-relation expansion (accounts expand to id and
	// name only).
	f := w.mustDo(bob, "GET", todos+"?fields=title", nil, 200).items()
	if _, hasDone := f[0]["done"]; len(f) != 2 || f[0]["title"] == nil || hasDone {
		t.Errorf("fields=title: %v", f)
	}
	ex := w.mustDo(ann, "GET", projects+"/"+pid+"?expand=members", nil, 200)
	if m := ex.body["expand"].(map[string]any)["members"].([]any); len(m) != 1 || m[0].(map[string]any)["id"] != w.ids[bob] || m[0].(map[string]any)["email"] != nil {
		t.Errorf("expand=members: %s", ex.raw)
	}

	// Updates: version-checked, rules with before and changes.
	w.mustDo(bob, "PATCH", projects+"/"+pid, map[string]any{"name": "Mine now"}, 403)
	r = w.do(ann, "PATCH", projects+"/"+pid, map[string]any{"owner": w.ids[bob]}, nil)
	if r.status != 403 {
		t.Errorf("changing the owner: %d %s", r.status, r.raw)
	}
	up := w.do(ann, "PATCH", projects+"/"+pid, map[string]any{"name": "Garden 2"}, map[string]string{"If-Match": `"1"`})
	if up.status != 200 || up.body["version"] != float64(2) || up.header.Get("ETag") != `"2"` {
		t.Fatalf("update: %d %s", up.status, up.raw)
	}
	stale := w.do(ann, "PATCH", projects+"/"+pid, map[string]any{"name": "Garden 3"}, map[string]string{"If-Match": `"1"`})
	if stale.status != 409 || stale.body["current"].(map[string]any)["name"] != "Garden 2" {
		t.Fatalf("stale update: %d %s", stale.status, stale.raw)
	}
	// PUT replaces: fields left out are cleared.
	put := w.mustDo(ann, "PUT", projects+"/"+pid, map[string]any{"name": "Garden 3", "owner": w.ids[ann], "members": []string{w.ids[bob]}}, 200)
	if put.body["version"] != float64(3) {
		t.Fatalf("put: %s", put.raw)
	}
	w.mustDo(ann, "PUT", projects+"/"+pid, map[string]any{"owner": w.ids[ann]}, 422) // name is required
	// Operations on a list field, atomically on the current row.
	op := w.mustDo(ann, "PATCH", projects+"/"+pid, map[string]any{"ops": []any{
		map[string]any{"op": "listInsert", "path": []string{"members"}, "value": w.ids[carol], "where": "prepend"},
	}}, 200)
	if m := op.body["members"].([]any); len(m) != 2 || m[0] != w.ids[carol] {
		t.Fatalf("listInsert: %s", op.raw)
	}
	if got := len(w.mustDo(carol, "GET", todos, nil, 200).items()); got != 2 {
		t.Errorf("carol, now a member, lists %d todos", got)
	}

	// Deletes: bob (a member) may not, the moderator may.
	w.mustDo(bob, "DELETE", todos+"/"+id, nil, 403)
	w.mustDo(mod, "DELETE", todos+"/"+id, nil, 404) // mod cannot even read it
	w.mustDo(ann, "DELETE", todos+"/"+id, nil, 204)
	w.mustDo(ann, "GET", todos+"/"+id, nil, 404)

	// Deleting the project cascades to its todos.
	w.mustDo(ann, "DELETE", projects+"/"+pid, nil, 204)
	if got := len(w.mustDo(ann, "GET", todos, nil, 200).items()); got != 0 {
		t.Errorf("todos left after the project was deleted: %d", got)
	}
}

func TestRecordBadInput(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	projects := "/api/collections/projects/records"
	pid := w.mustDo(ann, "POST", projects, map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	todos := "/api/collections/todos/records"
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		header map[string]string
		status int
		want   string
	}{
		{"unknown field", "POST", todos, map[string]any{"project": pid, "title": "x", "colour": "red"}, nil, 400, "colour"},
		{"wrong types", "POST", todos, map[string]any{"project": 5, "title": true, "done": "yes"}, nil, 422, "done"},
		{"missing required", "POST", todos, map[string]any{"done": true}, nil, 422, "is required"},
		{"too long", "POST", todos, map[string]any{"project": pid, "title": strings.Repeat("x", 501)}, nil, 422, "at most 500"},
		{"empty title", "POST", todos, map[string]any{"project": pid, "title": ""}, nil, 422, "at least 1"},
		{"not a uuid", "POST", todos, map[string]any{"project": "nope", "title": "x"}, nil, 422, "UUID"},
		{"missing project", "POST", todos, map[string]any{"project": "018f0000-0000-7000-8000-000000000000", "title": "x"}, nil, 403, "create rule"},
		{"dangling member", "POST", projects, map[string]any{"name": "x", "owner": w.ids[ann], "members": []string{"018f0000-0000-7000-8000-000000000000"}}, nil, 422, "members"},
		{"malformed", "POST", todos, `{"title": `, nil, 400, "JSON"},
		{"array body", "POST", todos, `[1,2]`, nil, 422, ""},
		{"not json", "POST", todos, "title=x", map[string]string{"Content-Type": "text/plain"}, 415, ""},
		{"too big", "POST", todos, `{"title": "` + strings.Repeat("x", 2<<20) + `"}`, nil, 413, ""},
		{"bad filter", "GET", todos + "?filter=" + url.QueryEscape("title == "), nil, nil, 400, "column"},
		{"filter on unknown field", "GET", todos + "?filter=" + url.QueryEscape("titel == 'x'"), nil, nil, 400, "titel"},
		{"filter type mismatch", "GET", todos + "?filter=" + url.QueryEscape("done == 'yes'"), nil, nil, 400, "overload"},
		{"bad sort", "GET", todos + "?sort=-nope", nil, nil, 400, "no field"},
		{"sort on json", "GET", todos + "?sort=tags", nil, nil, 400, "cannot be sorted"},
		{"bad limit", "GET", todos + "?limit=1000", nil, nil, 400, "limit"},
		{"bad cursor", "GET", todos + "?cursor=garbage", nil, nil, 400, "cursor"},
		{"bad expand", "GET", todos + "?expand=title", nil, nil, 400, "relation"},
		{"bad fields", "GET", todos + "?fields=nope", nil, nil, 400, "no field"},
		{"bad if-match", "PATCH", projects + "/" + pid, map[string]any{"name": "x"}, map[string]string{"If-Match": "soon"}, 400, "If-Match"},
		{"bad ops", "PATCH", projects + "/" + pid, map[string]any{"ops": []any{map[string]any{"op": "frobnicate"}}}, nil, 400, ""},
		{"list op on text", "PATCH", projects + "/" + pid, map[string]any{"ops": []any{map[string]any{"op": "listInsert", "path": []string{"name"}, "value": "x"}}}, nil, 422, ""},
		{"id change", "PATCH", projects + "/" + pid, map[string]any{"id": "018f0000-0000-7000-8000-000000000000"}, nil, 400, "id"},
		{"sql in values", "POST", projects, map[string]any{"name": "'); DROP TABLE projects; --", "owner": w.ids[ann]}, nil, 201, ""},
	} {
		r := w.do(ann, tc.method, tc.path, tc.body, tc.header)
		if r.status != tc.status || !strings.Contains(r.raw, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, r.status, r.raw, tc.status, tc.want)
		}
		if r.status >= 400 && r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: content type %q", tc.name, r.header.Get("Content-Type"))
		}
	}
	// Every invalid field is named at once.
	r := w.do(ann, "POST", todos, map[string]any{"project": 5, "title": true, "done": "yes"}, nil)
	if n := len(r.body["errors"].([]any)); n != 3 {
		t.Errorf("named %d of 3 invalid fields: %s", n, r.raw)
	}
}

func TestClientIDsAndDuplicates(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	id := "018f6f3a-1c2d-7e4f-8a9b-0c1d2e3f4a5b"
	body := map[string]any{"id": id, "name": "Offline", "owner": w.ids[ann]}
	r := w.mustDo(ann, "POST", "/api/collections/projects/records", body, 201)
	if r.str("id") != id {
		t.Fatalf("client id not kept: %s", r.raw)
	}
	r = w.mustDo(ann, "POST", "/api/collections/projects/records", body, 409)
	if !strings.Contains(r.raw, "id") {
		t.Errorf("duplicate: %s", r.raw)
	}
}

// TestPagination walks a list page by page while records are inserted:
// every record that existed at the start is seen exactly once.
func TestPagination(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	want := map[string]bool{}
	for i := range 23 {
		r := w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": fmt.Sprintf("t%02d", i%7)}, 201)
		want[r.str("id")] = true
	}
	for _, sort := range []string{"", "title", "-title,created_at", "done,-title"} {
		seen := map[string]int{}
		cursor := ""
		for pages := 0; ; pages++ {
			path := "/api/collections/todos/records?limit=5&sort=" + url.QueryEscape(sort)
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			r := w.mustDo(ann, "GET", path, nil, 200)
			for _, it := range r.items() {
				seen[it["id"].(string)]++
			}
			// A record added mid-walk must not shift the pages.
			w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": "t00"}, 201)
			if cursor = r.str("next_cursor"); cursor == "" {
				break
			}
			if pages > 20 {
				t.Fatal("too many pages")
			}
		}
		for id := range want {
			if seen[id] != 1 {
				t.Errorf("sort %q: record %s seen %d times", sort, id, seen[id])
			}
		}
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	pid := "018f6f3a-1c2d-7e4f-8a9b-0c1d2e3f4a5c"
	ok := w.mustDo(ann, "POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"collection": "projects", "action": "create", "id": pid, "data": map[string]any{"name": "B", "owner": w.ids[ann]}},
		map[string]any{"collection": "todos", "action": "create", "data": map[string]any{"project": pid, "title": "in the batch"}},
		map[string]any{"collection": "projects", "action": "update", "id": pid, "version": 1, "data": map[string]any{"name": "B2"}},
	}}, 200)
	res := ok.body["results"].([]any)
	if len(res) != 3 || res[0].(map[string]any)["status"] != float64(201) || res[2].(map[string]any)["record"].(map[string]any)["name"] != "B2" {
		t.Fatalf("batch: %s", ok.raw)
	}
	// Every operation is checked by its rules.
	denied := w.do(bob, "POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"collection": "projects", "action": "create", "data": map[string]any{"name": "own", "owner": w.ids[bob]}},
		map[string]any{"collection": "projects", "action": "delete", "id": pid},
	}}, nil)
	if denied.status != 404 || denied.body["index"] != float64(1) {
		// bob cannot read ann's project, so it does not exist for him.
		t.Fatalf("batch delete of another's project: %d %s", denied.status, denied.raw)
	}
	if got := len(w.mustDo(bob, "GET", "/api/collections/projects/records", nil, 200).items()); got != 0 {
		t.Fatalf("bob's project from the refused batch was kept")
	}
	// A failing operation rolls back the whole batch and is named.
	bad := w.do(ann, "POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"collection": "todos", "action": "create", "data": map[string]any{"project": pid, "title": "rolled back"}},
		map[string]any{"collection": "projects", "action": "update", "id": pid, "version": 1, "data": map[string]any{"name": "stale"}},
	}}, nil)
	if bad.status != 409 || bad.body["index"] != float64(1) || !strings.Contains(bad.str("detail"), "operation 1") {
		t.Fatalf("failing batch: %d %s", bad.status, bad.raw)
	}
	l := w.mustDo(ann, "GET", "/api/collections/todos/records?filter="+url.QueryEscape("title == 'rolled back'"), nil, 200)
	if len(l.items()) != 0 {
		t.Fatal("the failed batch left a record behind")
	}
	for _, tc := range []struct {
		body   any
		status int
	}{
		{map[string]any{"ops": []any{}}, 400},
		{map[string]any{"ops": []any{map[string]any{"collection": "nope", "action": "create", "data": map[string]any{}}}}, 404},
		{map[string]any{"ops": []any{map[string]any{"collection": "todos", "action": "explode"}}}, 400},
		{map[string]any{"ops": []any{map[string]any{"collection": "todos", "action": "create", "data": map[string]any{"project": pid, "title": "x"}, "extra": 1}}}, 400},
		{map[string]any{"ops": make([]any, 101)}, 400},
	} {
		if r := w.do(ann, "POST", "/api/batch", tc.body, nil); r.status != tc.status {
			t.Errorf("%v: %d %s", tc.body, r.status, r.raw)
		}
	}
}

// TestLostUpdates has 50 clients each increment a counter 20 times with
// If-Match, retrying on 409: no increment is lost.
func TestLostUpdates(t *testing.T) {
	t.Parallel()
	cfg, err := schema.Parse("abe.yaml", []byte(`
collections:
  counters:
    fields:
      n:    { type: integer, required: true, default: 0 }
      tags: { type: select, many: true, values: [`+tagList(20)+`] }
    rules: { read: "true", create: "true", update: "true", list: "true" }
`), []string{"ABE_AUTH_SECRET=" + strings.Repeat("e", 40)})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, cfg)
	id := w.mustDo("", "POST", "/api/collections/counters/records", map[string]any{}, 201).str("id")
	path := "/api/collections/counters/records/" + id
	// Conditional increments race: each one that lands makes the others
	// retry, so the work grows with clients². Ten clients conflict all the
	// time already; fifty took this test past ten minutes under the race
	// detector on a loaded 2-core machine (docs/testing.md).
	const clients, increments = 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			for range increments {
				for {
					cur := w.do("", "GET", path, nil, nil)
					n := cur.body["n"].(float64)
					r := w.do("", "PATCH", path, map[string]any{"n": n + 1}, map[string]string{"If-Match": cur.header.Get("ETag")})
					if r.status == 200 {
						break
					}
					if r.status != 409 {
						errs <- fmt.Errorf("increment: %d %s", r.status, r.raw)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := w.mustDo("", "GET", path, nil, 200).body["n"]; got != float64(clients*increments) {
		t.Fatalf("counter is %v, want %d", got, clients*increments)
	}

	// Concurrent list inserts without If-Match all land.
	var wg2 sync.WaitGroup
	for i := range 20 {
		wg2.Go(func() {
			w.mustDo("", "PATCH", path, map[string]any{"ops": []any{map[string]any{"op": "listInsert", "path": []string{"tags"}, "value": fmt.Sprintf("t%d", i)}}}, 200)
		})
	}
	wg2.Wait()
	if tags := w.mustDo("", "GET", path, nil, 200).body["tags"].([]any); len(tags) != 20 {
		t.Fatalf("%d of 20 concurrent inserts landed: %v", len(tags), tags)
	}
}

func tagList(n int) string {
	var s []string
	for i := range n {
		s = append(s, fmt.Sprintf("t%d", i))
	}
	return strings.Join(s, ", ")
}

func TestChangeLog(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann], "members": []string{w.ids[bob]}}, 201).str("id")
	kept := w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": "kept"}, 201).str("id")
	gone := w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": "gone"}, 201).str("id")
	w.mustDo(ann, "PATCH", "/api/collections/todos/records/"+kept, map[string]any{"done": true}, 200)
	w.mustDo(ann, "DELETE", "/api/collections/todos/records/"+gone, nil, 204)

	// Each record appears once, as it is now: kept updated, gone deleted
	// without its content.
	ch := w.mustDo(bob, "GET", "/api/collections/todos/changes?since=0", nil, 200)
	items := ch.items()
	if len(items) != 2 || items[0]["id"] != kept || items[0]["op"] != "update" || items[0]["version"] != float64(2) ||
		items[0]["record"].(map[string]any)["done"] != true || items[1]["id"] != gone || items[1]["op"] != "delete" || items[1]["record"] != nil {
		t.Fatalf("bob's changes: %s", ch.raw)
	}
	if _, has := items[0]["record"].(map[string]any)["note"]; has {
		t.Errorf("the change log shows bob the owner-only note: %s", ch.raw)
	}
	// Paging: one entry at a time walks the same changes.
	var walked []string
	for since := 0.0; ; {
		p := w.mustDo(bob, "GET", fmt.Sprintf("/api/collections/todos/changes?since=%d&limit=1", int(since)), nil, 200)
		if p.body["next_since"].(float64) == since {
			break
		}
		since = p.body["next_since"].(float64)
		for _, it := range p.items() {
			walked = append(walked, it["op"].(string))
		}
	}
	if strings.Join(walked, ",") != "create,update,delete" {
		// Page by page, kept's create and update are separate pages.
		t.Errorf("walked %v", walked)
	}
	if w.mustDo(carol, "GET", "/api/collections/todos/changes?since=0", nil, 200).items() != nil {
		t.Error("carol sees changes of records she may not read")
	}
	next := ch.body["next_since"].(float64)
	if after := w.mustDo(bob, "GET", fmt.Sprintf("/api/collections/todos/changes?since=%d", int(next)), nil, 200); after.items() != nil {
		t.Errorf("changes after the last: %s", after.raw)
	}
	w.mustDo(bob, "GET", "/api/collections/todos/changes?since=x", nil, 400)

	// After a prune, positions before it are gone: 410.
	if _, err := w.app.Pool().Exec(context.Background(), `UPDATE abe.changes SET at = at - interval '30 days'`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.Engine().PruneChanges(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.mustDo(bob, "GET", "/api/collections/todos/changes?since=0", nil, 410)
	w.mustDo(bob, "GET", fmt.Sprintf("/api/collections/todos/changes?since=%d", int(next)), nil, 200)
}

// TestRelations covers on_delete (restrict names the referencing
// collection, set_null clears) and expansion checked by the target's
// read rule.
func TestRelations(t *testing.T) {
	t.Parallel()
	cfg, err := schema.Parse("abe.yaml", []byte(`
collections:
  teams:
    fields: { name: { type: text } }
    rules: { read: "record.name != 'secret'", list: "true", create: "true", delete: "true" }
  players:
    fields:
      team:   { type: relation, collection: teams, required: true }
      former: { type: relation, collection: teams, on_delete: set_null }
    rules: { read: "true", list: "true", create: "true" }
`), []string{"ABE_AUTH_SECRET=" + strings.Repeat("e", 40)})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, cfg)
	teams, players := "/api/collections/teams/records", "/api/collections/players/records"
	team := w.mustDo("", "POST", teams, map[string]any{"name": "A"}, 201).str("id")
	old := w.mustDo("", "POST", teams, map[string]any{"name": "B"}, 201).str("id")
	secret := w.mustDo("", "POST", teams, map[string]any{"name": "secret"}, 201).str("id")
	p := w.mustDo("", "POST", players, map[string]any{"team": team, "former": old}, 201).str("id")
	// A relation to a record the caller may not read is answered as one
	// to a missing record.
	missing := w.do("", "POST", players, map[string]any{"team": "01a235c4-3611-73ef-915f-63bcc1763eaa"}, nil)
	unreadable := w.do("", "POST", players, map[string]any{"team": secret}, nil)
	if missing.status != 422 || stripRequestID(unreadable.raw) != stripRequestID(missing.raw) {
		t.Fatalf("a relation to an unreadable record: %s\nto a missing one: %s", unreadable.raw, missing.raw)
	}
	// A team that becomes unreadable after a player points at it.
	later := w.mustDo("", "POST", teams, map[string]any{"name": "C"}, 201).str("id")
	hidden := w.mustDo("", "POST", players, map[string]any{"team": later}, 201).str("id")
	if _, err := w.app.Pool().Exec(context.Background(), `UPDATE teams SET name = 'secret' WHERE id = $1`, later); err != nil {
		t.Fatal(err)
	}

	r := w.mustDo("", "DELETE", teams+"/"+team, nil, 409)
	if !strings.Contains(r.str("detail"), "players") || !strings.Contains(r.str("detail"), "team") {
		t.Fatalf("restrict: %s", r.raw)
	}
	w.mustDo("", "DELETE", teams+"/"+old, nil, 204)
	got := w.mustDo("", "GET", players+"/"+p, nil, 200)
	if got.body["former"] != nil || got.body["version"] != float64(2) {
		// set_null is a write: it bumps the version, so clients see it.
		t.Fatalf("set_null: %s", got.raw)
	}
	// The expanded team is checked by the teams read rule.
	ex := w.mustDo("", "GET", players+"/"+hidden+"?expand=team", nil, 200)
	if e := ex.body["expand"].(map[string]any); e["team"] != nil {
		t.Errorf("expanded a team the read rule hides: %s", ex.raw)
	}
	ex = w.mustDo("", "GET", players+"/"+p+"?expand=team", nil, 200)
	if e := ex.body["expand"].(map[string]any); e["team"].(map[string]any)["name"] != "A" {
		t.Errorf("expand: %s", ex.raw)
	}
}

// stripRequestID removes the request id from a problem, which differs by
// request.
func stripRequestID(raw string) string {
	return regexp.MustCompile(`"request_id":"[^"]*"`).ReplaceAllString(raw, "")
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	r := w.mustDo("", "GET", "/api/openapi.json", nil, 200)
	paths, _ := r.body["paths"].(map[string]any)
	if r.body["openapi"] != "3.1.0" || paths["/api/collections/todos/records"] == nil || paths["/api/auth/login"] == nil {
		t.Fatalf("openapi.json: %.400s", r.raw)
	}
}
