package abe_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestTodoExampleInvitations runs the invitation rules of
// examples/todo/abe.yaml on a real server: an invited account joins (or
// declines) on its own, in one batch, with no step left to the owner's
// app; it takes only its own email off the list and adds only itself; the
// invited emails are read by the owner alone; nobody else learns anything.
func TestTodoExampleInvitations(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	projects, todos, invites := "/api/collections/projects/records", "/api/collections/todos/records", "/api/collections/invites/records"

	p := w.mustDo(ann, "POST", projects, map[string]any{"name": "Garden", "owner": w.ids[ann], "members": []string{}, "order": []string{}}, 201)
	pid := p.str("id")
	if inv, ok := p.body["invited"].([]any); !ok || len(inv) != 0 {
		t.Fatalf("a new project's invited list: %s", p.raw)
	}
	w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "Water the roses"}, 201)
	invite := func(email string) string {
		t.Helper()
		r := w.mustDo(ann, "POST", "/api/batch", map[string]any{"ops": []any{
			map[string]any{"collection": "invites", "action": "create", "data": map[string]any{"project": pid, "project_name": "Garden", "email": email}},
			map[string]any{"collection": "projects", "action": "update", "id": pid, "ops": []any{map[string]any{"op": "listInsert", "path": []string{"invited"}, "value": email}}},
		}}, 200)
		return r.body["results"].([]any)[0].(map[string]any)["record"].(map[string]any)["id"].(string)
	}
	bobInvite, carolInvite := invite(bob), invite(carol)
	projectPath := projects + "/" + pid
	ops := func(o ...map[string]any) map[string]any { return map[string]any{"ops": o} }
	insert := func(field, v string) map[string]any {
		return map[string]any{"op": "listInsert", "path": []string{field}, "value": v}
	}
	remove := func(field, v string) map[string]any {
		return map[string]any{"op": "listRemove", "path": []string{field}, "value": v}
	}

	// Someone not invited learns nothing, and cannot join.
	// A 404 answers like a missing record's, but for its request id.
	answer := func(r reply) string { delete(r.body, "request_id"); return fmt.Sprint(r.body) }
	notFound := answer(w.mustDo(carol, "GET", projects+"/00000000-0000-7000-8000-000000000000", nil, 404))
	if r := w.mustDo(mod, "GET", projectPath, nil, 404); answer(r) != notFound {
		t.Fatalf("a project one is not invited to answers unlike a missing one: %s vs %s", r.raw, notFound)
	}
	w.mustDo(mod, "PATCH", projectPath, ops(insert("members", w.ids[mod])), 404)
	if r := w.mustDo(mod, "GET", invites, nil, 200); len(r.items()) != 0 {
		t.Fatalf("mod sees invitations: %s", r.raw)
	}

	// The invitee reads the project (not its invited list, nor the todos)
	// and sees only its own invitation; it does not list the project yet.
	r := w.mustDo(bob, "GET", projectPath, nil, 200)
	if strings.Contains(r.raw, carol) || strings.Contains(r.raw, bob) || r.body["invited"] != nil {
		t.Fatalf("the invitee sees the invited list: %s", r.raw)
	}
	if r := w.mustDo(bob, "GET", invites, nil, 200); len(r.items()) != 1 || r.items()[0]["id"] != bobInvite {
		t.Fatalf("bob's invitations: %s", r.raw)
	}
	if r := w.mustDo(bob, "GET", projects, nil, 200); len(r.items()) != 0 {
		t.Fatalf("an invitee lists the project: %s", r.raw)
	}
	if r := w.mustDo(bob, "GET", todos, nil, 200); len(r.items()) != 0 {
		t.Fatalf("an invitee lists the todos: %s", r.raw)
	}

	// Joining takes exactly one's own email off and adds exactly oneself.
	for name, body := range map[string]map[string]any{
		"adding someone else":              ops(insert("members", w.ids[mod]), remove("invited", bob)),
		"adding oneself and someone else":  ops(insert("members", w.ids[bob]), insert("members", w.ids[mod]), remove("invited", bob)),
		"taking another's email off":       ops(insert("members", w.ids[bob]), remove("invited", carol)),
		"taking both emails off":           ops(insert("members", w.ids[bob]), remove("invited", bob), remove("invited", carol)),
		"adding oneself, keeping the list": ops(insert("members", w.ids[bob])),
		"renaming while joining":           ops(insert("members", w.ids[bob]), remove("invited", bob), map[string]any{"op": "set", "path": []string{"name"}, "value": "Mine"}),
		"reordering while joining":         ops(insert("members", w.ids[bob]), remove("invited", bob), insert("order", w.ids[bob])),
		"inviting someone":                 ops(insert("invited", "eve@x.test")),
	} {
		if r := w.do(bob, "PATCH", projectPath, body, nil); r.status != 403 {
			t.Fatalf("%s: %d, want 403: %s", name, r.status, r.raw)
		}
	}

	// Bob accepts while Ann makes no request at all: one batch adds him and
	// deletes the invitation.
	w.mustDo(bob, "POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"collection": "projects", "action": "update", "id": pid, "ops": []any{insert("members", w.ids[bob]), remove("invited", bob)}},
		map[string]any{"collection": "invites", "action": "delete", "id": bobInvite},
	}}, 200)
	if r := w.mustDo(bob, "GET", projects, nil, 200); len(r.items()) != 1 || strings.Contains(r.raw, carol) {
		t.Fatalf("a member's projects: %s", r.raw)
	}
	if r := w.mustDo(bob, "GET", todos, nil, 200); len(r.items()) != 1 {
		t.Fatalf("a member's todos: %s", r.raw)
	}
	if r := w.mustDo(bob, "GET", invites, nil, 200); len(r.items()) != 0 {
		t.Fatalf("the accepted invitation stays: %s", r.raw)
	}
	// A member cannot use the invitation path to change the list.
	w.mustDo(bob, "PATCH", projectPath, ops(remove("invited", carol)), 403)

	// Carol declines: her email goes, nobody joins, and the project is
	// hidden from her again.
	w.mustDo(carol, "POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"collection": "projects", "action": "update", "id": pid, "ops": []any{remove("invited", carol)}},
		map[string]any{"collection": "invites", "action": "delete", "id": carolInvite},
	}}, 200)
	if r := w.mustDo(carol, "GET", projectPath, nil, 404); answer(r) != notFound {
		t.Fatalf("a declined project answers unlike a missing one: %s", r.raw)
	}
	got := w.mustDo(ann, "GET", projectPath, nil, 200)
	members, _ := got.body["members"].([]any)
	invited, _ := got.body["invited"].([]any)
	if len(members) != 1 || members[0] != w.ids[bob] || len(invited) != 0 {
		t.Fatalf("after one acceptance and one refusal: %s", got.raw)
	}

	// A batch whose second step is refused leaves nothing done: the
	// invitee is not added when its invitation cannot be deleted.
	invite(carol)
	w.mustDo(carol, "POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"collection": "projects", "action": "update", "id": pid, "ops": []any{insert("members", w.ids[carol]), remove("invited", carol)}},
		map[string]any{"collection": "invites", "action": "delete", "id": bobInvite},
	}}, 404)
	if r := w.mustDo(ann, "GET", projectPath, nil, 200); len(r.body["members"].([]any)) != 1 || len(r.body["invited"].([]any)) != 1 {
		t.Fatalf("a refused batch changed the project: %s", r.raw)
	}
}

// TestUnlistedRecordsStayOffCollectionFeeds: a record the read rule lets
// someone read by id but the list rule does not list (the todo example's
// project, for the account invited to it) is not announced on that
// collection's feeds: not by a realtime collection subscription, not by
// the change log. Before the list rule was applied to collection topics,
// every write to the project reached the invitee's collection feed.
func TestUnlistedRecordsStayOffCollectionFeeds(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	projects := "/api/collections/projects/records"
	pid := w.mustDo(ann, "POST", projects, map[string]any{"name": "Garden", "owner": w.ids[ann], "invited": []string{carol}}, 201).str("id")

	ws := w.as(carol)
	ws.subscribe("all", "collection:projects", "")
	ws.subscribe("one", "record:projects:"+pid, "")
	w.mustDo(ann, "PATCH", projects+"/"+pid, map[string]any{"name": "Garden party"}, 200)
	// The record topic hears the rename; the collection topic does not.
	if m := ws.event(); m["sub"] != "one" || m["id"] != pid {
		t.Fatalf("the record topic: %v", m)
	}
	mine := w.mustDo(carol, "POST", projects, map[string]any{"name": "Carol's", "owner": w.ids[carol]}, 201).str("id")
	if m := ws.event(); m["sub"] != "all" || m["id"] != mine {
		t.Fatalf("the collection topic heard of an unlisted record before the marker: %v", m)
	}

	// The change log lists only Carol's own project.
	ch := w.mustDo(carol, "GET", "/api/collections/projects/changes?since=0", nil, 200)
	if items := ch.items(); len(items) != 1 || items[0]["id"] != mine {
		t.Fatalf("the change log shows an unlisted record: %s", ch.raw)
	}
}
