package abe_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/schema"
)

// wantProblem checks that r is a problem+json answer of status and code.
func wantProblem(t *testing.T, what string, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.str("type") != httpx.TypeBase+code ||
		!strings.HasPrefix(r.header.Get("Content-Type"), httpx.ContentTypeProblem) {
		t.Errorf("%s: %d %s (%s), want %d with type %s", what, r.status, r.raw, r.header.Get("Content-Type"), status, httpx.TypeBase+code)
	}
}

// TestErrorTypes sends a request of every error class and checks that
// its answer carries the class's problem type (docs/errors.md), and the
// headers the class needs.
func TestErrorTypes(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t)
	cfg.Auth.RequireMFAForRoles = []string{"admin"}
	clk := &testClock{t: time.Now()}
	w := newWorldWith(t, cfg, &abe.Options{Now: clk.Now})
	if _, err := w.app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: "admin@x.test", Password: "long enough pass phrase 9", Roles: []string{"admin"}, Verified: true}); err != nil {
		t.Fatal(err)
	}
	w.tokens["admin@x.test"] = w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": "admin@x.test", "password": "long enough pass phrase 9"}, 200).str("access_token")
	w.tokens["garbage"] = "not-a-jwt"
	// Failed logins count after the last success, which the world's
	// logins made at this instant.
	clk.Advance(time.Second)

	projects, todos := "/api/collections/projects/records", "/api/collections/todos/records"
	pid := w.mustDo(ann, "POST", projects, map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	tid := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "t"}, 201).str("id")

	for _, tc := range []struct {
		name, who, method, path string
		body                    any
		header                  map[string]string
		status                  int
		code                    string
	}{
		{"validation", ann, "POST", todos, map[string]any{"project": pid, "title": ""}, nil, 422, "validation"},
		{"malformed body", ann, "POST", todos, `{"title": `, nil, 400, "malformed_body"},
		{"not JSON at all", ann, "POST", todos, `title=x`, nil, 400, "malformed_body"},
		{"unknown field", ann, "POST", todos, map[string]any{"project": pid, "title": "t", "nope": 1}, nil, 400, "unknown_field"},
		{"version conflict", ann, "PATCH", todos + "/" + tid, map[string]any{"done": true}, map[string]string{"If-Match": `"7"`}, 409, "version_conflict"},
		{"version conflict in a batch", ann, "POST", "/api/batch", map[string]any{"ops": []any{map[string]any{"collection": "todos", "action": "update", "id": tid, "version": 7, "data": map[string]any{"done": true}}}}, nil, 409, "version_conflict"},
		{"taken id", ann, "POST", todos, map[string]any{"id": tid, "project": pid, "title": "t"}, nil, 409, "already_exists"},
		{"taken email", "", "POST", "/api/auth/register", map[string]string{"email": bob, "password": "long enough pass phrase 9"}, nil, 409, "already_exists"},
		{"rule refused", carol, "POST", todos, map[string]any{"project": pid, "title": "t"}, nil, 403, "forbidden"},
		{"no such record", ann, "GET", todos + "/" + uuid.NewString(), nil, nil, 404, "not_found"},
		{"no such collection", ann, "GET", "/api/collections/nope/records", nil, nil, 404, "not_found"},
		{"no such route", ann, "GET", "/api/nope", nil, nil, 404, "no_such_endpoint"},
		{"bad filter", ann, "GET", todos + "?filter=(((", nil, nil, 400, "bad_filter"},
		{"bad sort", ann, "GET", todos + "?sort=nope", nil, nil, 400, "bad_request"},
		{"wrong media type", ann, "POST", todos, nil, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"too large", ann, "POST", todos, `{"title": "` + strings.Repeat("x", int(schema.DefaultBodyLimit)) + `"}`, nil, 413, "body_too_large"},
		{"no token", "", "GET", "/api/auth/me", nil, nil, 401, "unauthorized"},
		{"bad token", "garbage", "GET", "/api/auth/me", nil, nil, 401, "invalid_token"},
		{"wrong password", "", "POST", "/api/auth/login", map[string]string{"email": carol, "password": "wrong wrong wrong 1"}, nil, 401, "invalid_credentials"},
		{"bad refresh token", "", "POST", "/api/auth/refresh", map[string]string{"refresh_token": "nope"}, nil, 401, "invalid_refresh_token"},
		{"bad mfa token", "", "POST", "/api/auth/mfa/verify", map[string]string{"mfa_token": "nope", "code": "123456"}, nil, 401, "invalid_mfa_token"},
		{"missing permission", ann, "GET", "/api/admin/users", nil, nil, 403, "permission_required"},
		{"permission needs MFA", "admin@x.test", "GET", "/api/admin/users", nil, nil, 403, "mfa_required"},
	} {
		var r reply
		if ct := tc.header["Content-Type"]; ct != "" {
			r = w.raw(tc.who, tc.method, tc.path, strings.NewReader("x"), ct, nil)
		} else {
			r = w.do(tc.who, tc.method, tc.path, tc.body, tc.header)
		}
		wantProblem(t, tc.name, r, tc.status, tc.code)
	}

	// 405 names the methods the route takes.
	for path, allow := range map[string]string{
		"/api/auth/login":                   "POST",
		todos + "/" + tid:                   "GET, PUT, PATCH, DELETE",
		"/api/collections/todos/changes":    "GET",
		"/api/collections/todos/records":    "GET, POST",
		"/api/collections/nope/records/abc": "GET, PUT, PATCH, DELETE",
	} {
		r := w.do(ann, "POST", path, nil, nil)
		if path == "/api/auth/login" || path == "/api/collections/todos/records" {
			r = w.do(ann, "PUT", path, nil, nil)
		}
		wantProblem(t, "405 "+path, r, 405, "method_not_allowed")
		if r.header.Get("Allow") != allow {
			t.Errorf("405 %s: Allow %q, want %q", path, r.header.Get("Allow"), allow)
		}
	}

	// A 401 without a token challenges without an error code (RFC 6750
	// 3.1); one with a bad token says invalid_token.
	if h := w.do("", "GET", "/api/auth/me", nil, nil).header.Get("WWW-Authenticate"); h != "Bearer" {
		t.Errorf("no token: WWW-Authenticate %q", h)
	}
	if h := w.do("garbage", "GET", "/api/auth/me", nil, nil).header.Get("WWW-Authenticate"); h != `Bearer error="invalid_token"` {
		t.Errorf("bad token: WWW-Authenticate %q", h)
	}

	// Failed logins: at once again is throttled; ten in the window lock.
	wrong := map[string]string{"email": carol, "password": "wrong wrong wrong 1"}
	wantProblem(t, "throttled login", w.do("", "POST", "/api/auth/login", wrong, nil), 429, "rate_limited")
	for range 9 {
		clk.Advance(31 * time.Second)
		w.do("", "POST", "/api/auth/login", wrong, nil)
	}
	clk.Advance(31 * time.Second)
	wantProblem(t, "locked account", w.do("", "POST", "/api/auth/login", wrong, nil), 429, "account_locked")

	// A revoked token, then an expired one.
	w.mustDo(bob, "POST", "/api/auth/logout-all", nil, 204)
	wantProblem(t, "revoked token", w.do(bob, "GET", "/api/auth/me", nil, nil), 401, "token_revoked")
	clk.Advance(time.Hour)
	wantProblem(t, "expired token", w.do(ann, "GET", "/api/auth/me", nil, nil), 401, "token_expired")
}

// TestErrorTypeRateLimited checks the 429 of the request rate limits.
func TestErrorTypeRateLimited(t *testing.T) {
	t.Parallel()
	srv, _, _ := limitedApp(t)
	w := &world{t: t, srv: srv}
	for range schema.DefaultAuthRequests + 5 {
		r := w.do("", "POST", "/api/auth/password/forgot", map[string]string{"email": "someone@x.test"}, nil)
		if r.status == http.StatusTooManyRequests {
			wantProblem(t, "rate limit", r, 429, "rate_limited")
			return
		}
	}
	t.Fatal("never rate limited")
}
