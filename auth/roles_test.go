package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/schema"
)

func TestRoleSyncPlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testDB(t) // has admin, auditor, user from testRoles
	plan := func(src string) []string {
		t.Helper()
		cfg, err := schema.Parse("abe.yaml", []byte(src), nil)
		if err != nil {
			t.Fatal(err)
		}
		steps, err := RoleSync{}.Plan(ctx, db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range steps {
			out = append(out, s.Summary)
			for _, q := range s.SQL {
				if _, err := db.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
		}
		return out
	}
	if got := plan(testRoles); len(got) != 0 {
		t.Fatalf("in sync, but planned %v", got)
	}
	got := strings.Join(plan(`
roles:
  admin: { permissions: ["*"] }
  auditor: { permissions: ["security:read", "users:read"] }
  user: { permissions: [], default: true }
  editor: { permissions: ["todos:edit"] }
`), "; ")
	if got != "update role auditor (security:read, users:read) from abe.yaml; create role editor (todos:edit)" {
		t.Fatalf("plan: %s", got)
	}
	// A change through the API survives until the file changes the role.
	if _, err := db.Exec(ctx, `UPDATE abe.roles SET permissions = '{todos:edit,todos:publish}' WHERE name = 'editor'`); err != nil {
		t.Fatal(err)
	}
	got = strings.Join(plan(`
roles:
  admin: { permissions: ["*"] }
  auditor: { permissions: ["security:read", "users:read"] }
  editor: { permissions: ["todos:edit"] }
`), "; ")
	if got != "role user is no longer in abe.yaml: keep it, managed through the API" {
		t.Fatalf("plan: %s", got)
	}
	var perms []string
	if err := db.QueryRow(ctx, `SELECT permissions FROM abe.roles WHERE name = 'editor'`).Scan(&perms); err != nil || len(perms) != 2 {
		t.Fatalf("the API's change was overwritten: %v %v", perms, err)
	}
}

func TestRolesAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := e.admin()
	bobRes := e.register("bob@example.test")
	bob, bobID := bobRes.str("access_token"), bobRes.body["user"].(map[string]any)["id"].(string)

	if r := e.do(req{method: "GET", path: "/api/admin/roles", token: bob}); r.status != 403 {
		t.Fatalf("a user lists roles: %d", r.status)
	}
	r := e.do(req{method: "GET", path: "/api/admin/roles", token: admin})
	if r.status != 200 || len(r.body["items"].([]any)) != 3 {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	for _, tc := range []struct {
		body   any
		status int
	}{
		{map[string]any{"name": "editor", "permissions": []string{"todos:edit"}}, 201},
		{map[string]any{"name": "editor"}, 409},
		{map[string]any{"name": "Bad Name"}, 422},
		{map[string]any{"name": "x", "permissions": []string{"not a permission"}}, 422},
	} {
		if r := e.do(req{method: "POST", path: "/api/admin/roles", token: admin, body: tc.body}); r.status != tc.status {
			t.Errorf("create %v: %d %s", tc.body, r.status, r.raw)
		}
	}
	if r := e.do(req{method: "DELETE", path: "/api/admin/roles/admin", token: admin}); r.status != 409 {
		t.Errorf("deleting a built-in role: %d", r.status)
	}

	// Permissions follow role changes at once, for tokens already issued.
	if r := e.do(req{method: "GET", path: "/api/admin/security-events", token: bob}); r.status != 403 {
		t.Fatalf("before: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/admin/users/" + bobID + "/roles", token: admin, body: map[string]string{"role": "editor"}}); r.status != 204 {
		t.Fatalf("assign: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "PATCH", path: "/api/admin/roles/editor", token: admin, body: map[string]any{"permissions": []string{"security:read"}}}); r.status != 200 {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "GET", path: "/api/admin/security-events", token: bob}); r.status != 200 {
		t.Fatalf("after the role got security:read: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "GET", path: "/api/admin/users/" + bobID + "/roles", token: admin}); r.status != 200 || !strings.Contains(r.raw, "editor") {
		t.Fatalf("user roles: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "DELETE", path: "/api/admin/users/" + bobID + "/roles/editor", token: admin}); r.status != 204 {
		t.Fatalf("remove: %d", r.status)
	}
	if r := e.do(req{method: "GET", path: "/api/admin/security-events", token: bob}); r.status != 403 {
		t.Fatalf("after removal: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/admin/users/" + bobID + "/roles", token: admin, body: map[string]string{"role": "wizard"}}); r.status != 422 {
		t.Errorf("assigning an unknown role: %d", r.status)
	}
	if r := e.do(req{method: "DELETE", path: "/api/admin/roles/editor", token: admin}); r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
	evs := strings.Join(e.events(bobID), ",")
	if !strings.Contains(evs, "role_assigned") || !strings.Contains(evs, "role_removed") {
		t.Errorf("events %s", evs)
	}
}

// TestRoleChangeReachesOtherNodes gives a role on one node; another node,
// sharing the database, applies it as soon as the notification arrives.
func TestRoleChangeReachesOtherNodes(t *testing.T) {
	t.Parallel()
	one := newEnv(t, nil)
	two := newEnv(t, &envOpts{db: one.db, clock: one.clock})
	admin := one.admin()
	bobRes := one.register("bob@example.test")
	bob, bobID := bobRes.str("access_token"), bobRes.body["user"].(map[string]any)["id"].(string)
	if r := two.do(req{method: "GET", path: "/api/admin/security-events", token: bob}); r.status != 403 {
		t.Fatalf("before: %d", r.status)
	}
	drain(two.s.roles.changed)
	if r := one.do(req{method: "POST", path: "/api/admin/users/" + bobID + "/roles", token: admin, body: map[string]string{"role": "auditor"}}); r.status != 204 {
		t.Fatalf("assign: %d", r.status)
	}
	select {
	case <-two.s.roles.changed:
	case <-time.After(10 * time.Second):
		t.Fatal("node two heard nothing")
	}
	if r := two.do(req{method: "GET", path: "/api/admin/security-events", token: bob}); r.status != 200 {
		t.Fatalf("node two after the change: %d", r.status)
	}
}
