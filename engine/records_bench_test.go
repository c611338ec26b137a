package engine_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/schema"
)

// todosYAML is bench/records' application: an owner rule on every
// operation, no field rules, rate limiting on with budgets it never meets.
const todosYAML = `
server:
  rate_limit:
    requests: 1000000
    window: 1s
    auth: { requests: 1000000, window: 1s }
    writes: { requests: 1000000, window: 1s }
collections:
  todos:
    fields:
      owner: { type: relation, collection: users, required: true }
      title: { type: text, required: true, max: 200 }
      done:  { type: bool, default: false }
    indexes:
      - { fields: [owner, created_at] }
    rules:
      list:   "auth != null && record.owner == auth.id"
      read:   "auth != null && record.owner == auth.id"
      create: "auth != null && record.owner == auth.id"
      update: "auth != null && record.owner == auth.id"
      delete: "auth != null && record.owner == auth.id"
`

// todosApp is bench/records' application with one user owning 100 todos:
// its handler (the whole middleware stack), the user's access token and
// the todos' ids.
func todosApp(b *testing.B) (http.Handler, string, []string) {
	b.Helper()
	cfg, err := schema.Parse("abe.yaml", []byte(todosYAML), []string{"ABE_AUTH_SECRET=" + strings.Repeat("x", 40)})
	if err != nil {
		b.Fatal(err)
	}
	cfg.Database.URL = pgtest.NewURL(b, nil)
	ctx := context.Background()
	app, err := abe.New(ctx, cfg, &abe.Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { app.Close() })
	const pass = "long enough pass phrase 9"
	u, err := app.Auth().CreateUser(ctx, auth.CreateUserOpts{Email: "ann@x.test", Password: pass, Verified: true})
	if err != nil {
		b.Fatal(err)
	}
	rows, err := app.Pool().Query(ctx, `INSERT INTO todos (owner, title, created_at)
		SELECT $1, 'todo number ' || i, now() - i * interval '1 minute' FROM generate_series(1, 100) i RETURNING id::text`, u.ID)
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	h := app.Handler()
	body, err := json.Marshal(map[string]string{"email": "ann@x.test", "password": pass})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/api/auth/login", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(rec.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		b.Fatalf("login: %d %v", rec.Code, err)
	}
	return h, tok.AccessToken, ids
}

// serveBench runs the request path makes through h b.N times, in this
// goroutine, so ns/op is the CPU of one request through the whole stack
// (the database's round trip included) and allocs/op its allocations.
func serveBench(b *testing.B, h http.Handler, token string, path func(i int) string) {
	b.Helper()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest("GET", path(i), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%s: %d %s", path(i), rec.Code, rec.Body)
		}
	}
}

// BenchmarkRecordsGet: bench/records' get by id, in process.
func BenchmarkRecordsGet(b *testing.B) {
	h, token, ids := todosApp(b)
	serveBench(b, h, token, func(i int) string { return "/api/collections/todos/records/" + ids[i%len(ids)] })
}

// BenchmarkRecordsList50: bench/records' list, the newest 50 through the
// owner rule, in process.
func BenchmarkRecordsList50(b *testing.B) {
	h, token, _ := todosApp(b)
	serveBench(b, h, token, func(int) string { return "/api/collections/todos/records?limit=50" })
}
