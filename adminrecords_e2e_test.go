package abe_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/engine"
	"github.com/abe-stack/abe/schema"
)

const adminRecordsYAML = `
roles:
  admin: { permissions: ["*"] }
  user:  { permissions: [], default: true }
collections:
  notes:
    realtime: true
    fields:
      title:  { type: text, required: true, max: 100 }
      owner:  { type: relation, collection: users, required: true }
      secret: { type: text, rules: { read: "auth != null && auth.id == record.owner", update: "auth != null && auth.id == record.owner" } }
    rules:
      list:   "auth != null && record.owner == auth.id"
      read:   "auth != null && record.owner == auth.id"
      create: "auth != null && record.owner == auth.id"
      update: "auth != null && record.owner == auth.id"
      delete: "auth != null && record.owner == auth.id"
`

const recordsAdmin = "root@x.test"

// adminRecordsWorld is a world on adminRecordsYAML with an admin.
func adminRecordsWorld(t *testing.T, requireMFA bool) *world {
	t.Helper()
	cfg, err := schema.Parse("abe.yaml", []byte(adminRecordsYAML), []string{"ABE_AUTH_SECRET=" + strings.Repeat("x", 40)})
	if err != nil {
		t.Fatal(err)
	}
	if requireMFA {
		cfg.Auth.RequireMFAForRoles = []string{"admin"}
	}
	w := newWorldWith(t, cfg, &abe.Options{})
	u, err := w.app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: recordsAdmin, Password: "long enough pass phrase 9", Roles: []string{"admin"}, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	w.ids[recordsAdmin] = u.ID
	w.tokens[recordsAdmin] = w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": recordsAdmin, "password": "long enough pass phrase 9"}, 200).str("access_token")
	return w
}

const adminNotes = "/api/admin/collections/notes/records"

// TestAdminRecordsRefuse: 401 without a token and 403 without
// records:admin on every method, 403 to an admin without MFA where
// admins must use it.
func TestAdminRecordsRefuse(t *testing.T) {
	t.Parallel()
	w := adminRecordsWorld(t, false)
	id := w.mustDo(bob, "POST", "/api/collections/notes/records", map[string]any{"title": "b", "owner": w.ids[bob]}, 201).str("id")
	calls := []struct{ method, path string }{
		{"GET", adminNotes}, {"POST", adminNotes}, {"GET", adminNotes + "/" + id},
		{"PATCH", adminNotes + "/" + id}, {"PUT", adminNotes + "/" + id}, {"DELETE", adminNotes + "/" + id},
		{"GET", "/api/admin/collections/nope/records"},
	}
	for _, c := range calls {
		if r := w.do("", c.method, c.path, map[string]any{"title": "x"}, nil); r.status != 401 {
			t.Errorf("%s %s anonymous: %d, want 401", c.method, c.path, r.status)
		}
		if r := w.do(ann, c.method, c.path, map[string]any{"title": "x"}, nil); r.status != 403 || !strings.HasSuffix(r.str("type"), "permission_required") {
			t.Errorf("%s %s as a user: %d %s, want 403 permission_required", c.method, c.path, r.status, r.raw)
		}
	}
	mfa := adminRecordsWorld(t, true)
	for _, c := range calls {
		if r := mfa.do(recordsAdmin, c.method, c.path, map[string]any{"title": "x"}, nil); r.status != 403 || !strings.HasSuffix(r.str("type"), "mfa_required") {
			t.Errorf("%s %s as an admin without MFA: %d %s, want 403 mfa_required", c.method, c.path, r.status, r.raw)
		}
	}
	if got := w.mustDo(bob, "GET", "/api/collections/notes/records/"+id, nil, 200).str("title"); got != "b" {
		t.Fatalf("the refused writes changed the record: %q", got)
	}
}

// TestAdminRecordsBypassRules: the admin lists, reads and writes what
// the rules hide from them, hidden fields included; the public API gives
// nothing of it to anyone else, whatever the request carries.
func TestAdminRecordsBypassRules(t *testing.T) {
	t.Parallel()
	w := adminRecordsWorld(t, false)
	rec := w.mustDo(bob, "POST", "/api/collections/notes/records", map[string]any{"title": "bob's", "owner": w.ids[bob], "secret": "s3"}, 201)
	id := rec.str("id")

	// The public API, as the admin and as ann, however asked.
	if n := len(w.mustDo(recordsAdmin, "GET", "/api/collections/notes/records", nil, 200).items()); n != 0 {
		t.Fatalf("the public list gave the admin %d records of bob", n)
	}
	tricks := map[string]string{"X-Admin": "1", "X-Abe-Admin-Mode": "true", "X-Forwarded-Prefix": "/api/admin"}
	for _, q := range []string{"", "?admin=true", "?bypass=1&mode=admin"} {
		if r := w.do(ann, "GET", "/api/collections/notes/records"+q, nil, tricks); r.status != 200 || len(r.items()) != 0 {
			t.Fatalf("list%s as ann with admin headers: %d %s", q, r.status, r.raw)
		}
		if r := w.do(ann, "GET", "/api/collections/notes/records/"+id+q, nil, tricks); r.status != 404 {
			t.Fatalf("get%s as ann with admin headers: %d %s", q, r.status, r.raw)
		}
	}

	// The admin API.
	items := w.mustDo(recordsAdmin, "GET", adminNotes+"?sort=-created_at&limit=50&count=true", nil, 200).items()
	if len(items) != 1 || items[0]["id"] != id || items[0]["secret"] != "s3" {
		t.Fatalf("admin list: %v", items)
	}
	got := w.mustDo(recordsAdmin, "GET", adminNotes+"/"+id, nil, 200)
	if got.str("secret") != "s3" || got.header.Get("ETag") != `"1"` {
		t.Fatalf("admin get: %s %v", got.raw, got.header)
	}
	if r := w.mustDo(recordsAdmin, "GET", adminNotes+"?filter="+url.QueryEscape(`title == "bob's"`), nil, 200); len(r.items()) != 1 {
		t.Fatalf("admin filter: %s", r.raw)
	}
	// The field update rule (the owner only) does not hold the admin back.
	up := w.do(recordsAdmin, "PATCH", adminNotes+"/"+id, map[string]any{"secret": "s4"}, map[string]string{"If-Match": `"1"`})
	if up.status != 200 || up.str("secret") != "s4" || up.body["version"] != float64(2) {
		t.Fatalf("admin update: %d %s", up.status, up.raw)
	}
	// A filter sees the hidden field too.
	if r := w.mustDo(recordsAdmin, "GET", adminNotes+"?filter="+url.QueryEscape(`secret == "s4"`), nil, 200); len(r.items()) != 1 {
		t.Fatalf("admin filter on a hidden field: %s", r.raw)
	}
	stale := w.do(recordsAdmin, "PATCH", adminNotes+"/"+id, map[string]any{"title": "late"}, map[string]string{"If-Match": `"1"`})
	cur, _ := stale.body["current"].(map[string]any)
	if stale.status != 409 || cur["version"] != float64(2) || cur["secret"] != "s4" {
		t.Fatalf("stale update: %d %s", stale.status, stale.raw)
	}
	// Operations, and expand, as the public API has them.
	op := w.mustDo(recordsAdmin, "PATCH", adminNotes+"/"+id, map[string]any{"ops": []any{map[string]any{"op": "set", "path": []any{"title"}, "value": "by op"}}}, 200)
	if op.str("title") != "by op" || op.str("secret") != "s4" || op.body["version"] != float64(3) {
		t.Fatalf("admin ops: %s", op.raw)
	}
	exp := w.mustDo(recordsAdmin, "GET", adminNotes+"/"+id+"?expand=owner", nil, 200)
	if e, _ := exp.body["expand"].(map[string]any); e == nil || e["owner"] == nil {
		t.Fatalf("admin expand: %s", exp.raw)
	}
	// Validation still applies.
	if r := w.do(recordsAdmin, "PATCH", adminNotes+"/"+id, map[string]any{"title": strings.Repeat("x", 101)}, nil); r.status != 422 {
		t.Fatalf("invalid update: %d %s", r.status, r.raw)
	}
	if r := w.do(recordsAdmin, "POST", adminNotes, map[string]any{"title": "no owner"}, nil); r.status != 422 {
		t.Fatalf("invalid create: %d %s", r.status, r.raw)
	}
	// A client id on create.
	const clientID = "01937a4e-0000-7000-8000-000000000001"
	c := w.mustDo(recordsAdmin, "POST", adminNotes, map[string]any{"id": clientID, "title": "for bob", "owner": w.ids[bob]}, 201)
	if c.str("id") != clientID || c.header.Get("Location") != adminNotes+"/"+clientID {
		t.Fatalf("create with a client id: %s", c.raw)
	}
	if r := w.do(recordsAdmin, "GET", adminNotes+"?filter="+url.QueryEscape("title =="), nil, nil); r.status != 400 {
		t.Fatalf("bad filter: %d %s", r.status, r.raw)
	}
	if r := w.do(recordsAdmin, "GET", "/api/admin/collections/nope/records", nil, nil); r.status != 404 {
		t.Fatalf("unknown collection: %d %s", r.status, r.raw)
	}
	if r := w.do(recordsAdmin, "GET", adminNotes+"/01937a4e-0000-7000-8000-0000000000ff", nil, nil); r.status != 404 {
		t.Fatalf("unknown record: %d %s", r.status, r.raw)
	}
	w.mustDo(recordsAdmin, "DELETE", adminNotes+"/"+id, nil, 204)
	w.mustDo(bob, "GET", "/api/collections/notes/records/"+id, nil, 404)

	// The trail: each write with its actor, record and version; each read.
	var evs []map[string]any
	for _, typ := range []string{engine.EventAdminRecordCreate, engine.EventAdminRecordUpdate, engine.EventAdminRecordDelete, engine.EventAdminRecordsRead} {
		evs = append(evs, w.mustDo(recordsAdmin, "GET", "/api/admin/security-events?limit=500&type="+typ, nil, 200).items()...)
	}
	seen := map[string]int{}
	for _, ev := range evs {
		d, _ := ev["details"].(map[string]any)
		if d["actor"] != w.ids[recordsAdmin] || ev["user_id"] != w.ids[recordsAdmin] || d["collection"] != "notes" {
			t.Errorf("event without its actor or collection: %v", ev)
		}
		seen[ev["type"].(string)]++
		if ev["type"] == engine.EventAdminRecordUpdate && (d["record_id"] != id || d["version"] != float64(2) && d["version"] != float64(3)) {
			t.Errorf("update event without the version: %v", ev)
		}
		if ev["type"] == engine.EventAdminRecordCreate && d["record_id"] != clientID {
			t.Errorf("create event without the record: %v", ev)
		}
	}
	// reads: list, get, two filters, the expand, bad filter, unknown record (the unknown
	// collection records none).
	if seen[engine.EventAdminRecordCreate] != 1 || seen[engine.EventAdminRecordUpdate] != 2 || seen[engine.EventAdminRecordDelete] != 1 || seen[engine.EventAdminRecordsRead] != 7 {
		t.Fatalf("events: %v", seen)
	}
}

// TestAdminRecordsRealtime: the admin's writes reach a subscriber whose
// rules let them see the record, and not one whose rules do not.
func TestAdminRecordsRealtime(t *testing.T) {
	t.Parallel()
	w := adminRecordsWorld(t, false)
	bobWS, annWS := w.as(bob), w.as(ann)
	bobWS.subscribe("s", "collection:notes", "")
	annWS.subscribe("s", "collection:notes", "")

	id := w.mustDo(recordsAdmin, "POST", adminNotes, map[string]any{"title": "for bob", "owner": w.ids[bob], "secret": "k"}, 201).str("id")
	if ev := bobWS.event(); ev["op"] != "create" || ev["id"] != id {
		t.Fatalf("bob's create event: %v", ev)
	}
	w.mustDo(recordsAdmin, "PATCH", adminNotes+"/"+id, map[string]any{"title": "changed"}, 200)
	if ev := bobWS.event(); ev["op"] != "update" || ev["id"] != id {
		t.Fatalf("bob's update event: %v", ev)
	}
	w.mustDo(recordsAdmin, "DELETE", adminNotes+"/"+id, nil, 204)
	if ev := bobWS.event(); ev["op"] != "delete" || ev["id"] != id {
		t.Fatalf("bob's delete event: %v", ev)
	}
	marker := w.mustDo(recordsAdmin, "POST", adminNotes, map[string]any{"title": "for ann", "owner": w.ids[ann]}, 201).str("id")
	annWS.quietUntil(marker)
}

// TestAdminRecordsFiles: the admin uploads into and downloads from a
// record the rules keep from them, in a field whose rules hide it; the
// upload is stored and recorded, and a user gets 403 on the same paths.
func TestAdminRecordsFiles(t *testing.T) {
	t.Parallel()
	cfg, err := schema.Parse("abe.yaml", []byte("roles:\n  admin: { permissions: [\"*\"] }\n  user: { permissions: [], default: true }\n"+filesYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Secret = strings.Repeat("s", 40)
	cfg.Storage.Local.Root = t.TempDir()
	w := &fileWorld{world: newWorldWith(t, cfg, &abe.Options{NoWorkers: true})}
	u, err := w.app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: recordsAdmin, Password: "long enough pass phrase 9", Roles: []string{"admin"}, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	w.ids[recordsAdmin] = u.ID
	w.tokens[recordsAdmin] = w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": recordsAdmin, "password": "long enough pass phrase 9"}, 200).str("access_token")
	id := w.mustDo(bob, "POST", "/api/collections/albums/records", map[string]any{"owner": w.ids[bob], "title": "bob's"}, 201).str("id")
	path := "/api/admin/collections/albums/records/" + id + "/files/doc"

	w.expect(w.upload(ann, path, "file", "a.txt", "text/plain", []byte("nope"), nil), 403, "a user's upload")
	w.expect(w.raw(ann, "GET", path, nil, "", nil), 403, "a user's download")
	up := w.expect(w.upload(recordsAdmin, path, "file", "a.txt", "text/plain", []byte("for the admin"), nil), 201, "the admin's upload")
	if up.str("doc") == "" || up.body["version"] != float64(2) {
		t.Fatalf("upload answer: %s", up.raw)
	}
	if got := w.expect(w.raw(recordsAdmin, "GET", path, nil, "", nil), 200, "the admin's download"); got.raw != "for the admin" {
		t.Fatalf("download: %q", got.raw)
	}
	if got := w.mustDo(recordsAdmin, "GET", "/api/admin/collections/albums/records/"+id, nil, 200); got.str("doc") != up.str("doc") {
		t.Fatalf("the admin's read: %s", got.raw)
	}
	if got := w.mustDo(ann, "GET", "/api/collections/albums/records/"+id, nil, 404); got.str("doc") != "" {
		t.Fatalf("ann's read: %s", got.raw)
	}
	evs := w.mustDo(recordsAdmin, "GET", "/api/admin/security-events?type="+engine.EventAdminRecordUpdate, nil, 200).items()
	if len(evs) != 1 {
		t.Fatalf("upload events: %v", evs)
	}
	if d, _ := evs[0]["details"].(map[string]any); d["field"] != "doc" || d["record_id"] != id || d["version"] != float64(2) || d["actor"] != u.ID {
		t.Fatalf("upload event: %v", evs[0])
	}
}

// TestAdminRecordWriteAndItsEventCommitTogether: an admin write's security
// event is written in the write's transaction, so a write whose event
// cannot be stored is rolled back (500): no change, no change-log entry,
// and the trail never misses a committed write.
func TestAdminRecordWriteAndItsEventCommitTogether(t *testing.T) {
	t.Parallel()
	w := adminRecordsWorld(t, false)
	id := w.mustDo(bob, "POST", "/api/collections/notes/records", map[string]any{"title": "bob's", "owner": w.ids[bob], "secret": "s1"}, 201).str("id")
	adminNote := "/api/admin/collections/notes/records/" + id
	ctx := context.Background()
	// The trail refuses admin updates, as a full disk or a broken
	// constraint would.
	if _, err := w.app.Pool().Exec(ctx, `
		CREATE FUNCTION pg_temp_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.type = 'admin.record.update' THEN RAISE EXCEPTION 'trail refuses'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER refuse_admin_updates BEFORE INSERT ON abe.security_events FOR EACH ROW EXECUTE FUNCTION pg_temp_refuse();`); err != nil {
		t.Fatal(err)
	}
	var seq int64
	if err := w.app.Pool().QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM abe.changes`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if r := w.do(recordsAdmin, "PATCH", adminNote, map[string]any{"secret": "changed"}, nil); r.status != 500 || strings.Contains(r.raw, "trail refuses") {
		t.Fatalf("an update whose event fails: %d %s", r.status, r.raw)
	}
	if got := w.mustDo(recordsAdmin, "GET", adminNote, nil, 200); got.str("secret") != "s1" || got.body["version"] != float64(1) {
		t.Fatalf("the refused update stayed: %s", got.raw)
	}
	var n int
	if err := w.app.Pool().QueryRow(ctx, `SELECT count(*) FROM abe.changes WHERE seq > $1 AND record_id = $2`, seq, id).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d change-log entries for a rolled-back write (%v)", n, err)
	}
	// Creates and deletes are still recorded, each with its version.
	c := w.mustDo(recordsAdmin, "POST", "/api/admin/collections/notes/records", map[string]any{"title": "the admin's", "owner": w.ids[bob]}, 201).str("id")
	w.do(recordsAdmin, "DELETE", "/api/admin/collections/notes/records/"+c, nil, nil)
	for typ, want := range map[string]float64{engine.EventAdminRecordCreate: 1, engine.EventAdminRecordDelete: 1} {
		evs := w.mustDo(recordsAdmin, "GET", "/api/admin/security-events?type="+typ, nil, 200).items()
		if len(evs) != 1 {
			t.Fatalf("%s events: %v", typ, evs)
		}
		if d, _ := evs[0]["details"].(map[string]any); d["record_id"] != c || d["version"] != want || d["actor"] != w.ids[recordsAdmin] {
			t.Errorf("%s event: %v", typ, evs[0])
		}
	}
	if evs := w.mustDo(recordsAdmin, "GET", "/api/admin/security-events?type="+engine.EventAdminRecordUpdate, nil, 200).items(); len(evs) != 0 {
		t.Errorf("update events of a rolled-back write: %v", evs)
	}
}
