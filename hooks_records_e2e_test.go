package abe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/schema"
)

const hooksYAML = `
roles:
  admin: { permissions: ["*"] }
  user:  { permissions: [], default: true }
collections:
  posts:
    realtime: true
    fields:
      title: { type: text, required: true, max: 200 }
      slug:  { type: text, required: true, max: 40 }
      owner: { type: relation, collection: users, required: true }
      tags:  { type: json }
      cover: { type: file, max_size: 64KiB, mime_types: [image/png] }
    rules:
      list:   "auth != null && record.owner == auth.id"
      read:   "auth != null && record.owner == auth.id"
      create: "auth != null && record.owner == auth.id"
      update: "auth != null && record.owner == auth.id && !('owner' in changes)"
      delete: "auth != null && record.owner == auth.id"
  # No rules: only the system (and "*") writes the trail.
  audit:
    fields:
      action: { type: text, required: true }
      subject: { type: text }
      actor:  { type: text }
`

// recordHookWorld is a world on hooksYAML with an admin, whose log the test
// reads.
func recordHookWorld(t *testing.T, opts *abe.Options) (*world, *syncBuffer) {
	t.Helper()
	cfg, err := schema.Parse("abe.yaml", []byte(hooksYAML), []string{"ABE_AUTH_SECRET=" + strings.Repeat("x", 40)})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Local.Root = t.TempDir()
	logs := &syncBuffer{}
	if opts == nil {
		opts = &abe.Options{}
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	opts.Console = io.Discard
	w := newWorldWith(t, cfg, opts)
	u, err := w.app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: recordsAdmin, Password: "long enough pass phrase 9", Roles: []string{"admin"}, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	w.ids[recordsAdmin] = u.ID
	w.tokens[recordsAdmin] = w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": recordsAdmin, "password": "long enough pass phrase 9"}, 200).str("access_token")
	return w, logs
}

// count is how many rows a table has, and how many change log entries
// name its collection.
func (w *world) count(table string) (rows, changes int) {
	w.t.Helper()
	ctx := context.Background()
	if err := w.app.Pool().QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&rows); err != nil {
		w.t.Fatal(err)
	}
	if err := w.app.Pool().QueryRow(ctx, `SELECT count(*) FROM abe.changes WHERE collection = $1`, table).Scan(&changes); err != nil {
		w.t.Fatal(err)
	}
	return rows, changes
}

func slugOf(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), " ", "-")
}

// TestBeforeHooksChange: a before-hook's change goes through validation
// and the rules as if the caller had sent it, on every write path: REST
// create, patch, ops, put, batch (the SDK's queue replays through it), the
// admin records API and file uploads.
func TestBeforeHooksChange(t *testing.T) {
	t.Parallel()
	w, _ := recordHookWorld(t, nil)
	slug := func(_ context.Context, ev *abe.RecordEvent) error {
		if title, ok := ev.After["title"].(string); ok && (ev.Before == nil || ev.Before["title"] != title) {
			ev.After["slug"] = slugOf(title)
		}
		return nil
	}
	w.app.OnBeforeCreate("posts", slug)
	w.app.OnBeforeUpdate("posts", slug)
	// A hook may set any Go value JSON carries; "steal" hands the post to
	// someone else, which the rules refuse as they would the caller.
	w.app.OnBeforeUpdate(abe.AllCollections, func(_ context.Context, ev *abe.RecordEvent) error {
		if ev.Collection == "posts" && ev.After["title"] == "steal" {
			ev.After["owner"] = w.ids[ann]
		}
		if ev.After["title"] == "tagged" {
			ev.After["tags"] = []string{"go", "hooks"}
		}
		return nil
	})
	posts, owner := "/api/collections/posts/records", w.ids[bob]

	rec := w.mustDo(bob, "POST", posts, map[string]any{"title": "Hello World", "owner": owner}, 201)
	id := rec.str("id")
	if rec.str("slug") != "hello-world" {
		t.Fatalf("create: slug %q", rec.str("slug"))
	}
	if got := w.mustDo(bob, "PATCH", posts+"/"+id, map[string]any{"title": "Second Title"}, 200); got.str("slug") != "second-title" || got.body["version"] != 2.0 {
		t.Fatalf("patch: %s", got.raw)
	}
	ops := map[string]any{"ops": []any{map[string]any{"op": "set", "path": []string{"title"}, "value": "By Ops"}}}
	if got := w.mustDo(bob, "PATCH", posts+"/"+id, ops, 200); got.str("slug") != "by-ops" {
		t.Fatalf("ops: %s", got.raw)
	}
	if got := w.mustDo(bob, "PUT", posts+"/"+id, map[string]any{"title": "Put Title", "slug": "x", "owner": owner}, 200); got.str("slug") != "put-title" {
		t.Fatalf("put: %s", got.raw)
	}
	if got := w.mustDo(bob, "PATCH", posts+"/"+id, map[string]any{"title": "tagged"}, 200); fmt.Sprint(got.body["tags"]) != "[go hooks]" {
		t.Fatalf("a hook's Go value: %s", got.raw)
	}
	// The hook's change meets the rules: the update rule forbids a new owner.
	if got := w.do(bob, "PATCH", posts+"/"+id, map[string]any{"title": "steal"}, nil); got.status != 403 {
		t.Fatalf("a hook's change the rules refuse: %d %s", got.status, got.raw)
	}
	// And validation: a slug over 40 characters is the caller's 422.
	if got := w.do(bob, "POST", posts, map[string]any{"title": strings.Repeat("long ", 10), "owner": owner}, nil); got.status != 422 || !strings.Contains(got.raw, `"slug"`) {
		t.Fatalf("a hook's invalid change: %d %s", got.status, got.raw)
	}
	b := w.mustDo(bob, "POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"collection": "posts", "action": "create", "data": map[string]any{"title": "In Batch", "owner": owner}},
		map[string]any{"collection": "posts", "action": "update", "id": id, "data": map[string]any{"title": "Batch Edit"}},
	}}, 200)
	results := b.body["results"].([]any)
	for i, want := range []string{"in-batch", "batch-edit"} {
		if got := results[i].(map[string]any)["record"].(map[string]any)["slug"]; got != want {
			t.Fatalf("batch op %d: slug %v, want %s", i, got, want)
		}
	}
	if got := w.mustDo(recordsAdmin, "POST", adminPosts, map[string]any{"title": "By Admin", "owner": owner}, 201); got.str("slug") != "by-admin" {
		t.Fatalf("admin create: %s", got.raw)
	}
	if got := w.mustDo(recordsAdmin, "PATCH", adminPosts+"/"+id, map[string]any{"title": "Admin Edit"}, 200); got.str("slug") != "admin-edit" {
		t.Fatalf("admin patch: %s", got.raw)
	}
	// An upload is an update that sets the file field: the hook sees it.
	var seen []string
	var mu sync.Mutex
	w.app.OnBeforeUpdate("posts", func(_ context.Context, ev *abe.RecordEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if c, _ := ev.After["cover"].(string); c != "" && ev.Before["cover"] == nil {
			seen = append(seen, c)
		}
		return nil
	})
	fw := &fileWorld{world: w}
	up := fw.upload(bob, posts+"/"+id+"/files/cover", "file", "a.png", "image/png", pngBytes(), nil)
	if up.status != 201 {
		t.Fatalf("upload: %d %s", up.status, up.raw)
	}
	mu.Lock()
	defer mu.Unlock()
	// The dry run before the bytes are stored, then the write itself.
	if len(seen) != 2 || seen[0] == "" {
		t.Fatalf("the upload's hook saw %v", seen)
	}
}

const adminPosts = "/api/admin/collections/posts/records"

// pngBytes is a PNG's signature and header, enough to be sniffed as one.
func pngBytes() []byte {
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 64)...)
}

// TestBeforeHooksRefuse: a refusing before-hook rolls the write back on
// every path (nothing in the table, nothing in the change log, so nothing
// for realtime or webhooks), with the status, type and message it chose;
// a plain error is a 500 that tells nothing of it, logged.
func TestBeforeHooksRefuse(t *testing.T) {
	t.Parallel()
	w, logs := recordHookWorld(t, nil)
	posts, owner := "/api/collections/posts/records", w.ids[bob]
	id := w.mustDo(bob, "POST", posts, map[string]any{"title": "kept", "slug": "kept", "owner": owner}, 201).str("id")
	var mode string
	var mu sync.Mutex
	refuse := func(_ context.Context, ev *abe.RecordEvent) error {
		mu.Lock()
		defer mu.Unlock()
		// The audit row is written first, then the write refused: the
		// refusal takes the audit row with it.
		if _, err := ev.AsSystem().Create(context.Background(), "audit", map[string]any{"action": ev.Op}); err != nil {
			return err
		}
		if ev.After != nil && ev.After["title"] == "first" {
			return nil // the first op of a batch, rolled back by the second
		}
		switch mode {
		case "refuse":
			return &abe.HookError{Status: 423, Code: "office_closed", Message: "the office is closed: come back at 9"}
		case "plain":
			return fmt.Errorf("dial tcp 10.0.0.7:5432: secret internal detail")
		}
		return nil
	}
	w.app.OnBeforeCreate("posts", refuse)
	w.app.OnBeforeUpdate("posts", refuse)
	w.app.OnBeforeDelete("posts", refuse)
	postsBefore, postChanges := w.count("posts")
	auditBefore, auditChanges := w.count("audit")
	fw := &fileWorld{world: w}
	calls := []struct {
		label string
		do    func() reply
	}{
		{"create", func() reply {
			return w.do(bob, "POST", posts, map[string]any{"title": "no", "slug": "no", "owner": owner}, nil)
		}},
		{"patch", func() reply { return w.do(bob, "PATCH", posts+"/"+id, map[string]any{"title": "no"}, nil) }},
		{"ops", func() reply {
			return w.do(bob, "PATCH", posts+"/"+id, map[string]any{"ops": []any{map[string]any{"op": "set", "path": []string{"title"}, "value": "no"}}}, nil)
		}},
		{"put", func() reply {
			return w.do(bob, "PUT", posts+"/"+id, map[string]any{"title": "no", "slug": "no", "owner": owner}, nil)
		}},
		{"delete", func() reply { return w.do(bob, "DELETE", posts+"/"+id, nil, nil) }},
		{"batch", func() reply {
			return w.do(bob, "POST", "/api/batch", map[string]any{"ops": []any{
				map[string]any{"collection": "audit", "action": "create", "data": map[string]any{"action": "x"}},
			}}, nil)
		}},
		{"batch", func() reply {
			return w.do(bob, "POST", "/api/batch", map[string]any{"ops": []any{
				map[string]any{"collection": "posts", "action": "create", "data": map[string]any{"title": "first", "slug": "first", "owner": owner}},
				map[string]any{"collection": "posts", "action": "update", "id": id, "data": map[string]any{"title": "no"}},
			}}, nil)
		}},
		{"admin create", func() reply {
			return w.do(recordsAdmin, "POST", adminPosts, map[string]any{"title": "no", "slug": "no", "owner": owner}, nil)
		}},
		{"admin delete", func() reply { return w.do(recordsAdmin, "DELETE", adminPosts+"/"+id, nil, nil) }},
		{"upload", func() reply {
			return fw.upload(bob, posts+"/"+id+"/files/cover", "file", "a.png", "image/png", pngBytes(), nil)
		}},
	}
	for _, m := range []string{"refuse", "plain"} {
		mu.Lock()
		mode = m
		mu.Unlock()
		for i, c := range calls {
			r := c.do()
			if i == 5 {
				// bob may not write audit: the rules refuse before any hook.
				if r.status != 403 {
					t.Fatalf("batch into audit as bob: %d %s", r.status, r.raw)
				}
				continue
			}
			switch m {
			case "refuse":
				if r.status != 423 || !strings.HasSuffix(r.str("type"), "/office_closed") || !strings.Contains(r.str("detail"), "the office is closed: come back at 9") {
					t.Errorf("%s refused: %d %s", c.label, r.status, r.raw)
				}
				if c.label == "batch" && r.body["index"] != 1.0 {
					t.Errorf("batch refused: the index is %v, want 1", r.body["index"])
				}
			case "plain":
				if r.status != 500 || strings.Contains(r.raw, "secret") || strings.Contains(r.raw, "10.0.0.7") {
					t.Errorf("%s with a plain error: %d %s", c.label, r.status, r.raw)
				}
			}
		}
	}
	if !strings.Contains(logs.String(), "secret internal detail") {
		t.Fatalf("the plain error was not logged:\n%s", logs.String())
	}
	if n, ch := w.count("posts"); n != postsBefore || ch != postChanges {
		t.Fatalf("posts: %d rows, %d changes, want %d and %d", n, ch, postsBefore, postChanges)
	}
	if n, ch := w.count("audit"); n != auditBefore || ch != auditChanges {
		t.Fatalf("audit: %d rows, %d changes, want %d and %d: the hook's writes outlived the refusal", n, ch, auditBefore, auditChanges)
	}
	if got := w.mustDo(bob, "GET", posts+"/"+id, nil, 200); got.str("title") != "kept" || got.body["cover"] != nil {
		t.Fatalf("the refused writes changed the post: %s", got.raw)
	}
}

// TestHookWrites: a before-hook writes other records in the write's
// transaction through the engine: as the system (the audit trail no
// caller may write), or as the caller, whose rules apply. What it writes
// gets versions and change log entries (so realtime) and commits with the
// write; a refusal by the caller's rules refuses the whole write.
func TestHookWrites(t *testing.T) {
	t.Parallel()
	w, _ := recordHookWorld(t, nil)
	posts, owner := "/api/collections/posts/records", w.ids[bob]
	w.app.OnBeforeCreate("posts", func(ctx context.Context, ev *abe.RecordEvent) error {
		actor := ""
		if ev.Principal != nil {
			actor = ev.Principal.UserID
		}
		rs := ev.AsSystem()
		if ev.After["title"] == "as caller" {
			rs = ev.Records()
		}
		_, err := rs.Create(ctx, "audit", map[string]any{"action": "create post", "subject": ev.After["title"], "actor": actor})
		return err
	})
	w.mustDo(bob, "POST", posts, map[string]any{"title": "audited", "slug": "a", "owner": owner}, 201)
	rows, err := w.app.System().List(context.Background(), "audit", abe.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["actor"] != owner || rows[0]["subject"] != "audited" || rows[0].Version() != 1 {
		t.Fatalf("audit rows: %v", rows)
	}
	if _, ch := w.count("audit"); ch != 1 {
		t.Fatalf("the audit row has %d change log entries", ch)
	}
	// bob's own rules do not let him write the trail: the whole create fails.
	if r := w.do(bob, "POST", posts, map[string]any{"title": "as caller", "slug": "b", "owner": owner}, nil); r.status != 403 || !strings.Contains(r.raw, "audit") {
		t.Fatalf("a hook writing as a caller the rules refuse: %d %s", r.status, r.raw)
	}
	if n, _ := w.count("posts"); n != 1 {
		t.Fatalf("%d posts, want 1", n)
	}
	// Nobody reads the trail but the system.
	if r := w.do(bob, "GET", "/api/collections/audit/records", nil, nil); r.status != 200 || len(r.items()) != 0 {
		t.Fatalf("bob lists audit: %d %s", r.status, r.raw)
	}
}

// TestHookDepth: a hook that writes what runs it again ends with a 500
// and nothing written, not a loop.
func TestHookDepth(t *testing.T) {
	t.Parallel()
	w, logs := recordHookWorld(t, nil)
	w.app.OnBeforeCreate("audit", func(ctx context.Context, ev *abe.RecordEvent) error {
		_, err := ev.AsSystem().Create(ctx, "audit", map[string]any{"action": "again"})
		return err
	})
	if r := w.do(recordsAdmin, "POST", "/api/admin/collections/audit/records", map[string]any{"action": "start"}, nil); r.status != 500 {
		t.Fatalf("recursive hook: %d %s", r.status, r.raw)
	}
	if n, ch := w.count("audit"); n != 0 || ch != 0 {
		t.Fatalf("audit: %d rows, %d changes", n, ch)
	}
	if !strings.Contains(logs.String(), "levels deep") {
		t.Fatalf("the depth error was not logged:\n%s", logs.String())
	}
}

// TestAfterHooks: after-hooks run once the write committed, with the row
// as stored, for the collection and operation they were registered for;
// their errors are logged and the write stands; a rolled-back write runs
// none.
func TestAfterHooks(t *testing.T) {
	t.Parallel()
	w, logs := recordHookWorld(t, nil)
	posts, owner := "/api/collections/posts/records", w.ids[bob]
	var mu sync.Mutex
	var got []string
	after := func(ctx context.Context, ev *abe.RecordEvent) error {
		// Committed: another connection sees the row as the event has it.
		var n int
		if err := w.app.Pool().QueryRow(ctx, `SELECT count(*) FROM posts WHERE id = $1 AND version = $2`, ev.ID, ev.Version).Scan(&n); err != nil {
			return err
		}
		if ev.Tx != nil {
			return errors.New("an after-hook has a transaction")
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s:%s:v%d:%d", ev.Collection, ev.Op, ev.Version, n))
		if ev.After != nil && ev.After["title"] == "fail after" {
			return errors.New("after-hook failure")
		}
		return nil
	}
	w.app.OnAfterCreate("posts", after)
	w.app.OnAfterUpdate("posts", after)
	w.app.OnAfterDelete("posts", after)
	w.app.OnBeforeUpdate("posts", func(_ context.Context, ev *abe.RecordEvent) error {
		if ev.After["title"] == "refused" {
			return abe.Refuse(http.StatusConflict, "no")
		}
		return nil
	})
	id := w.mustDo(bob, "POST", posts, map[string]any{"title": "a", "slug": "a", "owner": owner}, 201).str("id")
	w.mustDo(bob, "PATCH", posts+"/"+id, map[string]any{"title": "refused"}, 409)
	w.mustDo(bob, "PATCH", posts+"/"+id, map[string]any{"title": "fail after"}, 200)
	w.mustDo(bob, "DELETE", posts+"/"+id, nil, 204)
	mu.Lock()
	defer mu.Unlock()
	// The delete's row is gone: 0.
	if want := "posts:create:v1:1 posts:update:v2:1 posts:delete:v2:0"; strings.Join(got, " ") != want {
		t.Fatalf("after-hooks saw %v, want %s", got, want)
	}
	if !strings.Contains(logs.String(), "after-hook failure") {
		t.Fatalf("the after-hook's error was not logged:\n%s", logs.String())
	}
}

// TestHooksAndRealtime: a refused write never reaches a subscriber; what
// a hook writes does, as any write.
func TestHooksAndRealtime(t *testing.T) {
	t.Parallel()
	w, _ := recordHookWorld(t, nil)
	posts, owner := "/api/collections/posts/records", w.ids[bob]
	w.app.OnBeforeCreate("posts", func(ctx context.Context, ev *abe.RecordEvent) error {
		switch ev.After["title"] {
		case "refused":
			return abe.Refuse(http.StatusForbidden, "not this one")
		case "twin":
			_, err := ev.Records().Create(ctx, "posts", map[string]any{"title": "twin's twin", "slug": "twin-2", "owner": ev.Principal.UserID})
			return err
		}
		return nil
	})
	c := w.as(bob)
	c.subscribe("s1", "collection:posts", "")
	w.mustDo(bob, "POST", posts, map[string]any{"title": "refused", "slug": "r", "owner": owner}, 403)
	marker := w.mustDo(bob, "POST", posts, map[string]any{"title": "marker", "slug": "m", "owner": owner}, 201).str("id")
	c.quietUntil(marker)
	twin := w.mustDo(bob, "POST", posts, map[string]any{"title": "twin", "slug": "t", "owner": owner}, 201).str("id")
	// The hook's create came first in the transaction, so first in the log.
	if ev := c.event(); ev["record"].(map[string]any)["title"] != "twin's twin" || ev["op"] != "create" {
		t.Fatalf("first event: %v", ev)
	}
	if ev := c.event(); ev["id"] != twin {
		t.Fatalf("second event: %v", ev)
	}
}
