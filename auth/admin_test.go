package auth

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/internal/httpx"
)

// adminSetup is an env with an admin (root), a user without permissions
// (bob) and the admin's user id.
type adminSetup struct {
	e                    *env
	admin, adminID       string
	bob, bobID, bobRefre string
}

func setupAdmin(t *testing.T, o *envOpts) adminSetup {
	t.Helper()
	e := newEnv(t, o)
	admin := e.admin()
	me := e.do(req{method: "GET", path: "/api/auth/me", token: admin})
	bob := e.register("bob@example.test")
	return adminSetup{e: e, admin: admin, adminID: me.str("id"), bob: bob.str("access_token"),
		bobID: bob.body["user"].(map[string]any)["id"].(string), bobRefre: bob.str("refresh_token")}
}

// actorEvent finds the newest event of typ about userID and checks that
// its actor is the admin.
func (a adminSetup) actorEvent(t *testing.T, typ, userID string) Event {
	t.Helper()
	evs, _, err := a.e.s.Events(context.Background(), EventFilter{Type: typ, UserID: userID, Limit: 1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("no %s event for %s: %v", typ, userID, err)
	}
	if evs[0].Details["actor"] != a.adminID {
		t.Fatalf("%s: actor %v, want the admin %s", typ, evs[0].Details["actor"], a.adminID)
	}
	return evs[0]
}

// adminEndpoints are the endpoints this file adds, each with a body that
// would pass.
func adminEndpoints(bobID string) []req {
	return []req{
		{method: "GET", path: "/api/admin/console"},
		{method: "POST", path: "/api/admin/users", body: map[string]any{"email": "new@example.test"}},
		{method: "GET", path: "/api/admin/users/" + bobID},
		{method: "POST", path: "/api/admin/users/" + bobID + "/verify"},
		{method: "GET", path: "/api/admin/users/" + bobID + "/sessions"},
		{method: "DELETE", path: "/api/admin/users/" + bobID + "/sessions/0193a000-0000-7000-8000-000000000000"},
		{method: "POST", path: "/api/admin/users/" + bobID + "/logout-all"},
		{method: "GET", path: "/api/admin/roles/admin/users"},
	}
}

func TestAdminEndpointsRefuse(t *testing.T) {
	t.Parallel()
	a := setupAdmin(t, nil)
	for _, q := range adminEndpoints(a.bobID) {
		if r := a.e.do(q); r.status != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d", q.method, q.path, r.status)
		}
		q.token = a.bob
		if r := a.e.do(q); r.status != http.StatusForbidden || !strings.HasSuffix(r.str("type"), "/permission_required") {
			t.Errorf("%s %s without the permission: %d %s", q.method, q.path, r.status, r.raw)
		}
	}
	// An auditor holds security:read and nothing these endpoints need.
	if err := a.e.s.AssignRoleCLI(context.Background(), a.bobID, "auditor"); err != nil {
		t.Fatal(err)
	}
	for _, q := range adminEndpoints(a.bobID) {
		q.token = a.bob
		if r := a.e.do(q); r.status != http.StatusForbidden {
			t.Errorf("%s %s as an auditor: %d", q.method, q.path, r.status)
		}
	}
	// Nothing happened to bob on the way.
	if r := a.e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": a.bobRefre}}); r.status != 200 {
		t.Fatalf("bob's session after refused calls: %d", r.status)
	}
}

func TestAdminEndpointsNeedMFA(t *testing.T) {
	t.Parallel()
	a := setupAdmin(t, &envOpts{requireMFA: []string{"admin"}})
	for _, q := range adminEndpoints(a.bobID) {
		q.token = a.admin
		if r := a.e.do(q); r.status != http.StatusForbidden || !strings.HasSuffix(r.str("type"), "/mfa_required") {
			t.Errorf("%s %s as an admin without MFA: %d %s", q.method, q.path, r.status, r.raw)
		}
	}
	// With a second factor the same admin passes, and the console says MFA
	// is required of them.
	secret, _ := a.e.enrol(a.admin)
	r := a.e.verify(map[string]string{"mfa_token": a.e.challenge("root@example.test"), "code": codeAt(t, secret, a.e.clock.Now())})
	if r.status != 200 {
		t.Fatal(r.status, r.raw)
	}
	withMFA := r.str("access_token")
	if r := a.e.do(req{method: "GET", path: "/api/admin/console", token: withMFA}); r.status != 200 || r.body["mfa_required"] != true {
		t.Fatalf("console with MFA: %d %s", r.status, r.raw)
	}
	r = a.e.do(req{method: "GET", path: "/api/admin/users/" + a.adminID + "/sessions", token: withMFA})
	if items, _ := r.body["items"].([]any); r.status != 200 || len(items) != 2 || items[0].(map[string]any)["mfa"] != true || items[1].(map[string]any)["mfa"] != false {
		t.Fatalf("the admin's sessions, the MFA one first: %d %s", r.status, r.raw)
	}
	// The MFA reset of another account names the admin.
	a.e.enrol(a.bob)
	if r := a.e.do(req{method: "DELETE", path: "/api/admin/users/" + a.bobID + "/mfa", token: withMFA}); r.status != 204 {
		t.Fatalf("reset bob's MFA: %d %s", r.status, r.raw)
	}
	a.actorEvent(t, EventMFADisabled, a.bobID)
}

func TestAdminConsole(t *testing.T) {
	t.Parallel()
	a := setupAdmin(t, nil)
	r := a.e.do(req{method: "GET", path: "/api/admin/console", token: a.admin})
	if r.status != 200 || r.body["mfa_required"] != false || !strings.Contains(r.raw, `"permissions":["*"]`) ||
		r.body["user"].(map[string]any)["id"] != a.adminID {
		t.Fatalf("console: %d %s", r.status, r.raw)
	}
}

func TestAdminCreateAndVerifyUser(t *testing.T) {
	t.Parallel()
	a := setupAdmin(t, nil)
	for _, tc := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"with a password", map[string]any{"email": "ann@example.test", "password": goodPassword, "name": "Ann", "roles": []string{"auditor"}, "email_verified": true}, 201, ""},
		{"without a password", map[string]any{"email": "cy@example.test"}, 201, ""},
		{"a taken email", map[string]any{"email": "ANN@example.test", "password": goodPassword}, 409, "email"},
		{"a bad email", map[string]any{"email": "not-an-email"}, 422, "email"},
		{"a weak password", map[string]any{"email": "dee@example.test", "password": "password"}, 422, "password"},
		{"an unknown role", map[string]any{"email": "eve@example.test", "roles": []string{"wizard"}}, 422, "roles"},
		{"an unknown field", map[string]any{"email": "fay@example.test", "admin": true}, 400, ""},
	} {
		r := a.e.do(req{method: "POST", path: "/api/admin/users", token: a.admin, body: tc.body})
		if r.status != tc.status || (tc.field != "" && !strings.Contains(r.raw, `"field":"`+tc.field+`"`)) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
			continue
		}
		if tc.status == 201 {
			a.actorEvent(t, EventUserCreated, r.str("id"))
		}
	}
	if r := a.e.login("ann@example.test", goodPassword); r.status != 200 || !strings.Contains(r.raw, `"auditor"`) {
		t.Fatalf("ann logs in: %d %s", r.status, r.raw)
	}
	if r := a.e.login("cy@example.test", ""); r.status == 200 {
		t.Fatalf("an account without a password logged in")
	}

	r := a.e.do(req{method: "POST", path: "/api/admin/users/" + a.bobID + "/verify", token: a.admin})
	if r.status != 200 || r.body["email_verified"] != true {
		t.Fatalf("verify: %d %s", r.status, r.raw)
	}
	a.actorEvent(t, EventAdminVerified, a.bobID)
	for _, id := range []string{"0193a000-0000-7000-8000-000000000000", "nope"} {
		if r := a.e.do(req{method: "POST", path: "/api/admin/users/" + id + "/verify", token: a.admin}); r.status != 404 {
			t.Errorf("verify %s: %d", id, r.status)
		}
		for _, q := range []req{{method: "GET", path: "/api/admin/users/" + id}, {method: "GET", path: "/api/admin/users/" + id + "/sessions"},
			{method: "DELETE", path: "/api/admin/users/" + id + "/sessions/" + id}, {method: "POST", path: "/api/admin/users/" + id + "/logout-all"}} {
			q.token = a.admin
			if r := a.e.do(q); r.status != 404 {
				t.Errorf("%s %s: %d", q.method, q.path, r.status)
			}
		}
	}
}

func TestAdminUserLockState(t *testing.T) {
	t.Parallel()
	a := setupAdmin(t, nil)
	get := func() res {
		t.Helper()
		r := a.e.do(req{method: "GET", path: "/api/admin/users/" + a.bobID, token: a.admin})
		if r.status != 200 {
			t.Fatalf("get: %d %s", r.status, r.raw)
		}
		return r
	}
	if r := get(); r.body["locked_until"] != nil || r.body["failed_attempts"] != 0.0 || len(r.body["recent_failures"].([]any)) != 0 {
		t.Fatalf("fresh: %s", r.raw)
	}
	for range 2 {
		r := a.e.do(req{method: "POST", path: "/api/auth/login", header: map[string]string{"User-Agent": "guesser/1"},
			body: map[string]string{"email": "bob@example.test", "password": "wrong password 123"}})
		if r.status != 401 {
			t.Fatalf("bad login: %d", r.status)
		}
		a.e.clock.Advance(time.Minute) // past the progressive delay
	}
	r := get()
	fails := r.body["recent_failures"].([]any)
	if r.body["failed_attempts"] != 2.0 || len(fails) != 2 || fails[0].(map[string]any)["user_agent"] != "guesser/1" || fails[0].(map[string]any)["ip"] != "192.0.2.10" {
		t.Fatalf("after two failures: %s", r.raw)
	}
	list := a.e.do(req{method: "GET", path: "/api/admin/users?email=BOB", token: a.admin})
	items, _ := list.body["items"].([]any)
	if list.status != 200 || len(items) != 1 || items[0].(map[string]any)["failed_attempts"] != 2.0 {
		t.Fatalf("list: %d %s", list.status, list.raw)
	}
	// Ten failures lock the account.
	for range 8 {
		a.e.login("bob@example.test", "wrong password 123")
		a.e.clock.Advance(31 * time.Second)
	}
	if r := get(); r.body["locked_until"] == nil {
		t.Fatalf("not locked after ten failures: %s", r.raw)
	}
	if r := a.e.do(req{method: "POST", path: "/api/admin/users/" + a.bobID + "/unlock", token: a.admin}); r.status != 204 {
		t.Fatalf("unlock: %d", r.status)
	}
	a.actorEvent(t, EventUnlocked, a.bobID)
	if r := get(); r.body["locked_until"] != nil || r.body["failed_attempts"] != 0.0 || len(r.body["recent_failures"].([]any)) != 0 {
		t.Fatalf("after unlock: %s", r.raw)
	}
}

func TestAdminRevokeSession(t *testing.T) {
	t.Parallel()
	a := setupAdmin(t, nil)
	e := a.e
	// bob's second session, from a phone.
	phone := e.do(req{method: "POST", path: "/api/auth/login", header: map[string]string{"User-Agent": "phone/2"},
		body: map[string]string{"email": "bob@example.test", "password": goodPassword}})
	if phone.status != 200 {
		t.Fatalf("login: %d", phone.status)
	}
	r := e.do(req{method: "GET", path: "/api/admin/users/" + a.bobID + "/sessions", token: a.admin})
	items, _ := r.body["items"].([]any)
	if r.status != 200 || len(items) != 2 {
		t.Fatalf("sessions: %d %s", r.status, r.raw)
	}
	var phoneID string
	for _, it := range items {
		s := it.(map[string]any)
		if s["user_agent"] == "phone/2" {
			phoneID = s["id"].(string)
		}
		for _, k := range []string{"created_at", "last_used_at", "expires_at", "ip", "mfa"} {
			if _, ok := s[k]; !ok {
				t.Fatalf("a session without %s: %v", k, s)
			}
		}
	}
	if phoneID == "" {
		t.Fatalf("no session from the phone: %s", r.raw)
	}

	// The admin's own session, asked for under bob: 404, nothing revoked.
	adminSessions := e.do(req{method: "GET", path: "/api/admin/users/" + a.adminID + "/sessions", token: a.admin})
	adminSession := adminSessions.body["items"].([]any)[0].(map[string]any)["id"].(string)
	for _, id := range []string{adminSession, "0193a000-0000-7000-8000-000000000000", "garbage"} {
		if r := e.do(req{method: "DELETE", path: "/api/admin/users/" + a.bobID + "/sessions/" + id, token: a.admin}); r.status != 404 {
			t.Errorf("revoke %s under bob: %d", id, r.status)
		}
	}
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: a.admin}); r.status != 200 {
		t.Fatalf("the admin's session was revoked by a 404: %d", r.status)
	}

	if r := e.do(req{method: "DELETE", path: "/api/admin/users/" + a.bobID + "/sessions/" + phoneID, token: a.admin}); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if ev := a.actorEvent(t, EventSessionRevoked, a.bobID); ev.Details["session"] != phoneID {
		t.Fatalf("event: %+v", ev)
	}
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: phone.str("access_token")}); r.status != 401 {
		t.Errorf("the revoked session's access token: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": phone.str("refresh_token")}}); r.status != 401 {
		t.Errorf("the revoked session's refresh token: %d", r.status)
	}
	if r := e.do(req{method: "DELETE", path: "/api/admin/users/" + a.bobID + "/sessions/" + phoneID, token: a.admin}); r.status != 404 {
		t.Errorf("revoking it again: %d", r.status)
	}
	// bob's other session goes on.
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: a.bob}); r.status != 200 {
		t.Fatalf("the other session's access token: %d", r.status)
	}
	next := e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": a.bobRefre}})
	if next.status != 200 {
		t.Fatalf("the other session's refresh: %d %s", next.status, next.raw)
	}
	if r := e.do(req{method: "GET", path: "/api/admin/users/" + a.bobID + "/sessions", token: a.admin}); len(r.body["items"].([]any)) != 1 {
		t.Fatalf("sessions after the revocation: %s", r.raw)
	}

	// logout-all ends the rest.
	r = e.do(req{method: "POST", path: "/api/admin/users/" + a.bobID + "/logout-all", token: a.admin})
	if r.status != 200 || r.body["revoked"] != 1.0 {
		t.Fatalf("logout-all: %d %s", r.status, r.raw)
	}
	a.actorEvent(t, EventAdminLogoutAll, a.bobID)
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: next.str("access_token")}); r.status != 401 {
		t.Errorf("after logout-all: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/admin/users/0193a000-0000-7000-8000-000000000000/logout-all", token: a.admin}); r.status != 404 {
		t.Errorf("logout-all of nobody: %d", r.status)
	}
}

func TestAdminRolesAndEvents(t *testing.T) {
	t.Parallel()
	a := setupAdmin(t, nil)
	e := a.e
	r := e.do(req{method: "GET", path: "/api/admin/roles/admin", token: a.admin})
	if r.status != 200 || r.body["source"] != "config" {
		t.Fatalf("admin role: %s", r.raw)
	}
	if r := e.do(req{method: "PATCH", path: "/api/admin/roles/admin", token: a.admin, body: map[string]any{"permissions": []string{}}}); r.status != 409 || !strings.Contains(r.raw, "abe.yaml") {
		t.Fatalf("editing a role of abe.yaml: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "POST", path: "/api/admin/roles", token: a.admin, body: map[string]any{"name": "editor"}}); r.status != 201 || r.body["source"] != "api" {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "PATCH", path: "/api/admin/roles/editor", token: a.admin, body: map[string]any{"description": "edits"}}); r.status != 200 || r.body["source"] != "api" {
		t.Fatalf("edit: %d %s", r.status, r.raw)
	}
	for _, typ := range []string{EventRoleCreated, EventRoleUpdated} {
		a.actorEvent(t, typ, a.adminID)
	}
	if r := e.do(req{method: "POST", path: "/api/admin/users/" + a.bobID + "/roles", token: a.admin, body: map[string]string{"role": "admin"}}); r.status != 204 {
		t.Fatalf("assign: %d", r.status)
	}
	a.actorEvent(t, EventRoleAssigned, a.bobID)

	// Holders, one per page.
	p1 := e.do(req{method: "GET", path: "/api/admin/roles/admin/users?limit=1", token: a.admin})
	if p1.status != 200 || len(p1.body["items"].([]any)) != 1 || p1.str("next_cursor") == "" {
		t.Fatalf("page 1: %d %s", p1.status, p1.raw)
	}
	p2 := e.do(req{method: "GET", path: "/api/admin/roles/admin/users?limit=1&cursor=" + p1.str("next_cursor"), token: a.admin})
	if p2.status != 200 || len(p2.body["items"].([]any)) != 1 || p2.str("next_cursor") != "" || p2.raw == p1.raw {
		t.Fatalf("page 2: %d %s", p2.status, p2.raw)
	}
	for path, status := range map[string]int{"/api/admin/roles/wizard/users": 404, "/api/admin/roles/admin/users?cursor=x": 400,
		"/api/admin/roles/editor/users": 200} {
		if r := e.do(req{method: "GET", path: path, token: a.admin}); r.status != status {
			t.Errorf("%s: %d", path, r.status)
		}
	}
	if r := e.do(req{method: "DELETE", path: "/api/admin/users/" + a.bobID + "/roles/admin", token: a.admin}); r.status != 204 {
		t.Fatalf("remove: %d", r.status)
	}
	a.actorEvent(t, EventRoleRemoved, a.bobID)
	if r := e.do(req{method: "DELETE", path: "/api/admin/roles/editor", token: a.admin}); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	a.actorEvent(t, EventRoleDeleted, a.adminID)

	// Security events: a type prefix, times, and bad values.
	r = e.do(req{method: "GET", path: "/api/admin/security-events?type=role_*", token: a.admin})
	if r.status != 200 || len(r.body["items"].([]any)) != 5 {
		t.Fatalf("role_*: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "GET", path: "/api/admin/security-events?type=role%25", token: a.admin}); len(r.body["items"].([]any)) != 0 {
		t.Fatalf("a %% is no wildcard: %s", r.raw)
	}
	now := e.clock.Now()
	in := "/api/admin/security-events?type=role_*&since=" + now.Add(-time.Hour).Format(time.RFC3339) + "&until=" + now.Add(time.Hour).Format(time.RFC3339) + "&user_id=" + a.bobID
	if r := e.do(req{method: "GET", path: in, token: a.admin}); r.status != 200 || len(r.body["items"].([]any)) != 2 {
		t.Fatalf("bob's role events in the hour: %d %s", r.status, r.raw)
	}
	for _, q := range []string{"since=yesterday", "until=2026-13-01T00:00:00Z", "user_id=bob", "cursor=x", "limit=0"} {
		if r := e.do(req{method: "GET", path: "/api/admin/security-events?" + q, token: a.admin}); r.status != 400 {
			t.Errorf("%s: %d", q, r.status)
		}
	}
}

// TestAdminRevokeSessionReachesOtherNodes: a session an admin ends on one
// node is refused on another as soon as the news arrives.
func TestAdminRevokeSessionReachesOtherNodes(t *testing.T) {
	t.Parallel()
	a := setupAdmin(t, nil)
	two := newEnv(t, &envOpts{db: a.e.db, clock: a.e.clock})
	if r := two.do(req{method: "GET", path: "/api/auth/me", token: a.bob}); r.status != 200 {
		t.Fatalf("node two before: %d", r.status)
	}
	r := a.e.do(req{method: "GET", path: "/api/admin/users/" + a.bobID + "/sessions", token: a.admin})
	items, _ := r.body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("sessions: %s", r.raw)
	}
	drain(two.s.revoked.reloaded)
	if r := a.e.do(req{method: "DELETE", path: "/api/admin/users/" + a.bobID + "/sessions/" + items[0].(map[string]any)["id"].(string), token: a.admin}); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	select {
	case <-two.s.revoked.reloaded:
	case <-time.After(10 * time.Second):
		t.Fatal("node two heard nothing")
	}
	if r := two.do(req{method: "GET", path: "/api/auth/me", token: a.bob}); r.status != 401 {
		t.Fatalf("node two after the revocation: %d", r.status)
	}
}

// TestCachedTokenRevokedAtOnce: an access token the verified-token cache
// holds (it has passed Authenticate before) is refused on the very next
// request once an admin revokes its session, and bob's other session is
// untouched: the cache skips the parse, never the revocation check.
func TestCachedTokenRevokedAtOnce(t *testing.T) {
	t.Parallel()
	a := setupAdmin(t, nil)
	e := a.e
	phone := e.do(req{method: "POST", path: "/api/auth/login", header: map[string]string{"User-Agent": "phone/2"},
		body: map[string]string{"email": "bob@example.test", "password": goodPassword}})
	if phone.status != 200 {
		t.Fatalf("login: %d", phone.status)
	}
	tok := phone.str("access_token")
	for range 2 {
		if r := e.do(req{method: "GET", path: "/api/auth/me", token: tok}); r.status != 200 {
			t.Fatalf("before the revocation: %d %s", r.status, r.raw)
		}
	}
	e.s.verified.mu.RLock()
	_, cached := e.s.verified.m[tok]
	e.s.verified.mu.RUnlock()
	if !cached {
		t.Fatal("the token is not in the verified-token cache; the test would prove nothing")
	}
	r := e.do(req{method: "GET", path: "/api/admin/users/" + a.bobID + "/sessions", token: a.admin})
	var phoneID string
	for _, it := range r.body["items"].([]any) {
		if s := it.(map[string]any); s["user_agent"] == "phone/2" {
			phoneID = s["id"].(string)
		}
	}
	if r := e.do(req{method: "DELETE", path: "/api/admin/users/" + a.bobID + "/sessions/" + phoneID, token: a.admin}); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: tok}); r.status != 401 || !strings.Contains(r.raw, httpx.CodeTokenRevoked) {
		t.Fatalf("the cached token of the revoked session: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: a.bob}); r.status != 200 {
		t.Fatalf("bob's other session: %d %s", r.status, r.raw)
	}
}
