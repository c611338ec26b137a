package engine_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const bigYAML = `
roles:
  admin: { permissions: ["*"] }
  user:  { permissions: [], default: true }
collections:
  notes:
    fields:
      title: { type: text, required: true, max: 100 }
      owner: { type: relation, collection: users, required: true }
      body:  { type: text, rules: { read: "auth != null && auth.id == record.owner" } }
    rules:
      list: "auth != null && record.owner == auth.id"
      read: "auth != null && record.owner == auth.id"
`

// bigApp is an app whose notes hold rows rows of one owner, created a
// second apart (as rows written over time are), analyzed; and an admin's
// access token.
func bigApp(tb testing.TB, rows int) (*abe.App, *httptest.Server, string) {
	tb.Helper()
	cfg, err := schema.Parse("abe.yaml", []byte(bigYAML), []string{"ABE_AUTH_SECRET=" + strings.Repeat("x", 40)})
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Server.RateLimit.Disabled = true
	cfg.Database.URL = pgtest.NewURL(tb, nil)
	ctx := context.Background()
	app, err := abe.New(ctx, cfg, &abe.Options{Migrate: true})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	tb.Cleanup(func() { srv.Close(); app.Close() })
	const pass = "long enough pass phrase 9"
	admin, err := app.Auth().CreateUser(ctx, auth.CreateUserOpts{Email: "root@x.test", Password: pass, Roles: []string{"admin"}, Verified: true})
	if err != nil {
		tb.Fatal(err)
	}
	// One statement, and no change log: the seed is not what is measured.
	if _, err := app.Pool().Exec(ctx, `ALTER TABLE notes DISABLE TRIGGER USER`); err != nil {
		tb.Fatal(err)
	}
	if _, err := app.Pool().Exec(ctx, `INSERT INTO notes (title, owner, body, created_at, updated_at)
		SELECT 'note ' || i, $1, 'body ' || i, now() - i * interval '1 second', now() FROM generate_series(1, $2::int) i`, admin.ID, rows); err != nil {
		tb.Fatal(err)
	}
	for _, q := range []string{`ALTER TABLE notes ENABLE TRIGGER USER`, `ANALYZE notes`} {
		if _, err := app.Pool().Exec(ctx, q); err != nil {
			tb.Fatal(err)
		}
	}
	body, err := json.Marshal(map[string]string{"email": "root@x.test", "password": pass})
	if err != nil {
		tb.Fatal(err)
	}
	res, err := srv.Client().Post(srv.URL+"/api/auth/login", "application/json", strings.NewReader(string(body)))
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		tb.Fatalf("login: %d %v", res.StatusCode, err)
	}
	return app, srv, tok.AccessToken
}

// adminList gets a page of the admin records API and its next cursor.
func adminList(tb testing.TB, srv *httptest.Server, token string, q url.Values) (int, string) {
	tb.Helper()
	req, err := http.NewRequest("GET", srv.URL+"/api/admin/collections/notes/records?"+q.Encode(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var page struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil || res.StatusCode != 200 {
		tb.Fatalf("list: %d %v", res.StatusCode, err)
	}
	return len(page.Items), page.NextCursor
}

// TestAdminListUsesTheIndex: a page after a cursor, in the default order,
// reads the created_at index, neither the whole table nor a sort of it.
func TestAdminListUsesTheIndex(t *testing.T) {
	t.Parallel()
	app, srv, token := bigApp(t, 20000)
	n, cursor := adminList(t, srv, token, url.Values{"limit": {"50"}})
	if n != 50 || cursor == "" {
		t.Fatalf("first page: %d items, cursor %q", n, cursor)
	}
	sql, args, err := app.Engine().AdminListSQL("notes", url.Values{"limit": {"50"}, "cursor": {cursor}})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := app.Pool().Query(context.Background(), "EXPLAIN (COSTS OFF) "+sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(lines, "\n")
	t.Logf("%s\n%s", sql, text)
	if !strings.Contains(text, "Index Scan Backward using notes_created_at_idx") || strings.Contains(text, "Seq Scan") {
		t.Fatalf("the list does not read the index:\n%s\n%s", sql, text)
	}
}

// BenchmarkAdminList100k: the records browser's page, 50 records after a
// cursor in the default order of a 100,000-row collection, through the
// whole admin API (token check, permission, security event, query, JSON).
func BenchmarkAdminList100k(b *testing.B) {
	_, srv, token := bigApp(b, 100000)
	_, cursor := adminList(b, srv, token, url.Values{"limit": {"50"}})
	q := url.Values{"limit": {"50"}, "cursor": {cursor}}
	b.ResetTimer()
	for b.Loop() {
		if n, _ := adminList(b, srv, token, q); n != 50 {
			b.Fatalf("%d items", n)
		}
	}
}
