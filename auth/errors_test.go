package auth

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestNULInput: text the database cannot hold (JSON's \u0000) is a 400
// that names the field, on every auth body, never a 500.
func TestNULInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	token := e.register("ann@example.test").str("access_token")
	admin := e.admin()
	for _, c := range []struct {
		path, token, body, field string
	}{
		{path: "/api/auth/register", body: `{"email":"bob\u0000@example.test","password":"` + goodPassword + `","name":"Bob"}`, field: "email"},
		{path: "/api/auth/register", body: `{"email":"bob@example.test","password":"` + goodPassword + `","name":"B\u0000ob"}`, field: "name"},
		{path: "/api/auth/register", body: `{"email":"bob@example.test","password":"pass\u0000` + goodPassword + `","name":"Bob"}`, field: "password"},
		{path: "/api/auth/login", body: `{"email":"ann\u0000@example.test","password":"` + goodPassword + `"}`, field: "email"},
		{path: "/api/auth/login", body: `{"email":"ann@example.test","password":"\u0000"}`, field: "password"},
		{path: "/api/auth/password/forgot", body: `{"email":"ann@example.test\u0000"}`, field: "email"},
		{path: "/api/auth/password/reset", body: `{"token":"\u0000","password":"x"}`, field: "token"},
		{path: "/api/auth/verify-email", body: `{"token":"a\u0000"}`, field: "token"},
		{path: "/api/auth/mfa/verify", body: `{"mfa_token":"t","code":"12\u00003456"}`, field: "code"},
		{path: "/api/auth/password", token: token, body: `{"current_password":"` + goodPassword + `","new_password":"\u0000` + goodPassword + `"}`, field: "new_password"},
		{path: "/api/admin/roles", token: admin, body: `{"name":"edit\u0000or","permissions":[]}`, field: "name"},
		{path: "/api/admin/roles", token: admin, body: `{"name":"editor","permissions":["a","b\u0000"]}`, field: "permissions[1]"},
	} {
		r := e.do(req{method: "POST", path: c.path, token: c.token, body: c.body})
		errs, _ := r.body["errors"].([]any)
		if r.status != 400 || len(errs) != 1 || errs[0].(map[string]any)["field"] != c.field {
			t.Errorf("%s %s: %d %s, want 400 naming %s", c.path, c.body, r.status, r.raw, c.field)
		}
	}
	// Query parameters reach SQL too; the database's refusal is a 400.
	for _, path := range []string{"/api/admin/users?email=a%00b", "/api/admin/security-events?type=x%00"} {
		if r := e.do(req{method: "GET", path: path, token: admin}); r.status != 400 {
			t.Errorf("%s: %d %s", path, r.status, r.raw)
		}
	}
}

// TestDatabaseOutage: when the database cannot be reached, auth and admin
// endpoints answer 503 with Retry-After, never 500.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	base := testDB(t)
	var down atomic.Bool
	cfg, err := pgxpool.ParseConfig(base.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			return nil, errors.New("connection refused (the test's outage)")
		}
		return dial(ctx, network, addr)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := newEnv(t, &envOpts{db: pool})
	token := e.register("ann@example.test").str("access_token")
	admin := e.admin()

	down.Store(true)
	pool.Reset() // every open connection goes; new ones cannot be made
	for _, q := range []req{
		{method: "POST", path: "/api/auth/login", body: map[string]string{"email": "ann@example.test", "password": goodPassword}},
		{method: "POST", path: "/api/auth/register", body: map[string]string{"email": "bob@example.test", "password": goodPassword, "name": "Bob"}},
		{method: "POST", path: "/api/auth/password/forgot", body: map[string]string{"email": "ann@example.test"}},
		{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": "whatever"}},
		{method: "GET", path: "/api/auth/me", token: token},
		{method: "GET", path: "/api/admin/users", token: admin},
		{method: "GET", path: "/api/admin/security-events", token: admin},
	} {
		r := e.do(q)
		if q.path == "/api/auth/password/forgot" {
			// It answers before any database work, by design.
			if r.status != 202 {
				t.Errorf("%s %s: %d %s", q.method, q.path, r.status, r.raw)
			}
			continue
		}
		if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(r.str("detail"), "unavailable") {
			t.Errorf("%s %s: %d Retry-After %q %s", q.method, q.path, r.status, r.header.Get("Retry-After"), r.raw)
		}
	}
	down.Store(false)
	if r := e.login("ann@example.test", goodPassword); r.status != 200 {
		t.Fatalf("after the outage: %d %s", r.status, r.raw)
	}
}
