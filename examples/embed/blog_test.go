package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// clock is the blog's clock, set by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

var (
	monday   = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	saturday = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
)

// site is the blog on its own database, served over HTTP, with bob and
// ann logged in.
type site struct {
	t      *testing.T
	blog   *blog
	clock  *clock
	srv    *httptest.Server
	tokens map[string]string
	ids    map[string]string
}

func newSite(t *testing.T) *site {
	t.Helper()
	src, err := os.ReadFile("abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Parse("abe.yaml", src, []string{"DATABASE_URL=" + pgtest.NewURL(t, nil), "ABE_AUTH_SECRET=" + strings.Repeat("s", 40)})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.RateLimit.Disabled = true
	clk := &clock{t: monday}
	b, err := newBlog(context.Background(), cfg, &abe.Options{Migrate: true, Console: io.Discard}, clk.now, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.app.Handler())
	t.Cleanup(func() { srv.Close(); b.app.Close() })
	s := &site{t: t, blog: b, clock: clk, srv: srv, tokens: map[string]string{}, ids: map[string]string{}}
	for _, email := range []string{"bob@x.test", "ann@x.test"} {
		u, err := b.app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: email, Password: "long enough pass phrase 9", Verified: true})
		if err != nil {
			t.Fatal(err)
		}
		s.ids[email] = u.ID
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		s.call("", "POST", "/api/auth/login", map[string]string{"email": email, "password": "long enough pass phrase 9"}, 200, &tok)
		s.tokens[email] = tok.AccessToken
	}
	return s
}

// call sends body as who ("" is anonymous), wants status, and decodes the
// answer into out (when not nil). It returns the answer's text.
func (s *site) call(who, method, path string, body any, status int, out any) string {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := s.tokens[who]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		s.t.Fatalf("%s %s as %q: %d, want %d: %s", method, path, who, res.StatusCode, status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return string(raw)
}

// audit is the audit trail as "action record actor" lines.
func (s *site) audit() []string {
	s.t.Helper()
	rows, err := s.blog.app.System().List(context.Background(), "audit_log", abe.ListQuery{Sort: "created_at", Limit: 500})
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r["action"].(string)+" "+r["record_id"].(string)+" "+r["actor"].(string))
	}
	return out
}

// changes counts the change log's entries.
func (s *site) changes() int {
	s.t.Helper()
	var n int
	if err := s.blog.app.Pool().QueryRow(context.Background(), `SELECT count(*) FROM abe.changes`).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

type post struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Slug      string `json:"slug"`
	Published bool   `json:"published"`
	Version   int64  `json:"version"`
}

const posts = "/api/collections/posts/records"

// TestSlugAndAudit: a post gets its slug from its title on create and on
// a new title, and every write of it leaves an audit row naming its
// author, in the same transaction.
func TestSlugAndAudit(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	bob := "bob@x.test"
	var p post
	s.call(bob, "POST", posts, map[string]any{"title": "Hello, World!", "owner": s.ids[bob]}, 201, &p)
	if p.Slug != "hello-world" {
		t.Fatalf("slug %q", p.Slug)
	}
	s.call(bob, "PATCH", posts+"/"+p.ID, map[string]any{"title": "Second  Thoughts"}, 200, &p)
	if p.Slug != "second-thoughts" || p.Version != 2 {
		t.Fatalf("after a new title: %+v", p)
	}
	// A body-only change keeps the slug.
	s.call(bob, "PATCH", posts+"/"+p.ID, map[string]any{"body": "text"}, 200, &p)
	if p.Slug != "second-thoughts" {
		t.Fatalf("after a body change: %+v", p)
	}
	// A title with nothing to slug is the client's 422 on slug.
	if raw := s.call(bob, "POST", posts, map[string]any{"title": "!!!", "owner": s.ids[bob]}, 422, nil); !strings.Contains(raw, `"slug"`) {
		t.Fatalf("empty slug: %s", raw)
	}
	s.call(bob, "DELETE", posts+"/"+p.ID, nil, 204, nil)
	want := []string{"create " + p.ID + " " + s.ids[bob], "update " + p.ID + " " + s.ids[bob], "update " + p.ID + " " + s.ids[bob], "delete " + p.ID + " " + s.ids[bob]}
	if got := s.audit(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The trail is the system's: bob lists nothing of it, nor writes it.
	var list struct {
		Items []map[string]any `json:"items"`
	}
	s.call(bob, "GET", "/api/collections/audit_log/records", nil, 200, &list)
	if len(list.Items) != 0 {
		t.Fatalf("bob lists the audit log: %v", list.Items)
	}
	s.call(bob, "POST", "/api/collections/audit_log/records", map[string]any{"action": "create", "collection": "posts", "record_id": "x"}, 403, nil)
}

// TestOfficeHours: outside office hours every write of a person is
// refused with the hook's answer, on each write path, and nothing of it
// is kept: no post, no audit row, no change log entry.
func TestOfficeHours(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	bob := "bob@x.test"
	var p post
	s.call(bob, "POST", posts, map[string]any{"title": "Kept", "owner": s.ids[bob]}, 201, &p)
	trail, changes := s.audit(), s.changes()

	s.clock.set(saturday)
	refused := []struct {
		method, path string
		body         any
	}{
		{"POST", posts, map[string]any{"title": "Weekend", "owner": s.ids[bob]}},
		{"PATCH", posts + "/" + p.ID, map[string]any{"title": "Weekend"}},
		{"PUT", posts + "/" + p.ID, map[string]any{"title": "Weekend", "owner": s.ids[bob]}},
		{"DELETE", posts + "/" + p.ID, nil},
		{"POST", "/api/batch", map[string]any{"ops": []any{map[string]any{"collection": "posts", "action": "create", "data": map[string]any{"title": "Queued offline", "owner": s.ids[bob]}}}}},
	}
	for _, c := range refused {
		var problem struct {
			Type   string `json:"type"`
			Detail string `json:"detail"`
		}
		s.call(bob, c.method, c.path, c.body, http.StatusLocked, &problem)
		if !strings.HasSuffix(problem.Type, "/office_closed") || !strings.Contains(problem.Detail, "Monday to Friday from 9:00 to 17:00") || !strings.Contains(problem.Detail, "Saturday 10:00") {
			t.Fatalf("%s %s: %+v", c.method, c.path, problem)
		}
	}
	if got := s.audit(); len(got) != len(trail) {
		t.Fatalf("the refused writes left audit rows: %v", got)
	}
	if n := s.changes(); n != changes {
		t.Fatalf("the refused writes left %d change log entries", n-changes)
	}
	s.clock.set(monday.Add(7 * time.Hour)) // 17:00 is closed too
	s.call(bob, "PATCH", posts+"/"+p.ID, map[string]any{"title": "Late"}, http.StatusLocked, nil)
	s.clock.set(monday)
	s.call(bob, "GET", posts+"/"+p.ID, nil, 200, &p)
	if p.Title != "Kept" || p.Version != 1 {
		t.Fatalf("the post after the refusals: %+v", p)
	}
}

// TestBySlugAndPublishing: the route answers a post as its caller may
// read it; the periodic job publishes due posts as the system, at any
// hour, and then everyone reads them.
func TestBySlugAndPublishing(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	bob, ann := "bob@x.test", "ann@x.test"
	s.call(bob, "POST", posts, map[string]any{"title": "Due", "owner": s.ids[bob], "publish_at": monday.Add(-time.Hour)}, 201, nil)
	var later post
	s.call(bob, "POST", posts, map[string]any{"title": "Later", "owner": s.ids[bob], "publish_at": saturday.Add(-time.Hour)}, 201, &later)

	var got struct {
		Post post `json:"post"`
		Mine bool `json:"mine"`
	}
	s.call(bob, "GET", "/api/posts/by-slug/due", nil, 200, &got)
	if got.Post.Title != "Due" || !got.Mine || got.Post.Published {
		t.Fatalf("bob by slug: %+v", got)
	}
	for _, who := range []string{ann, ""} {
		s.call(who, "GET", "/api/posts/by-slug/due", nil, 404, nil)
	}
	for _, bad := range []string{"Due", "due%22%20||%20true", "no-such-post"} {
		s.call(bob, "GET", "/api/posts/by-slug/"+bad, nil, 404, nil)
	}
	// Publishing is the system's: bob may not do it himself.
	s.call(bob, "PATCH", posts+"/"+later.ID, map[string]any{"published": true}, 403, nil)

	if err := s.blog.publishDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.call(ann, "GET", "/api/posts/by-slug/due", nil, 200, &got)
	if !got.Post.Published || got.Mine {
		t.Fatalf("ann reads the published post: %+v", got)
	}
	s.call(ann, "GET", "/api/posts/by-slug/later", nil, 404, nil)

	// On Saturday people may not write, but the job does.
	s.clock.set(saturday)
	if err := s.blog.publishDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.call("", "GET", "/api/posts/by-slug/later", nil, 200, &got)
	if !got.Post.Published {
		t.Fatalf("the later post: %+v", got)
	}
	// The job's writes are audited too, with no actor.
	if trail := s.audit(); trail[len(trail)-1] != "update "+later.ID+" " {
		t.Fatalf("audit: %v", trail)
	}
}
