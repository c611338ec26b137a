package abe_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/abe-stack/abe/engine"
	"github.com/abe-stack/abe/schema"
)

// writtenLog records what the written hook saw.
type writtenLog struct {
	mu     sync.Mutex
	events []engine.WriteEvent
	// inTx is whether the row was as the event says, read through ev.Tx.
	inTx []bool
}

func (l *writtenLog) take() ([]engine.WriteEvent, []bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	events, inTx := l.events, l.inTx
	l.events, l.inTx = nil, nil
	return events, inTx
}

// TestWrittenHook: the engine's written hook runs on every write path
// (REST create, patch, ops, put, delete, batch, the admin records API),
// inside the write's transaction with the row final, survives a reload,
// and its error rolls the write back: no row, no change log entry, and a
// 500 that tells the client nothing of the hook's error.
func TestWrittenHook(t *testing.T) {
	t.Parallel()
	w := adminRecordsWorld(t, false)
	log := &writtenLog{}
	var fail atomic.Bool
	w.app.Engine().OnWritten(func(ctx context.Context, ev *engine.WriteEvent) error {
		if fail.Load() {
			return errors.New("hook secret: internal detail")
		}
		var n int
		if err := ev.Tx.QueryRow(ctx, `SELECT count(*) FROM notes WHERE id = $1 AND ($2 = 'delete' OR version = $3)`, ev.ID, ev.Op, ev.Version).Scan(&n); err != nil {
			return err
		}
		log.mu.Lock()
		defer log.mu.Unlock()
		log.events = append(log.events, *ev)
		log.inTx = append(log.inTx, (ev.Op == "delete") == (n == 0))
		return nil
	})
	notes := "/api/collections/notes/records"
	owner := w.ids[bob]
	want := func(label string, ops ...string) []engine.WriteEvent {
		t.Helper()
		got, inTx := log.take()
		for i, ok := range inTx {
			if !ok {
				t.Fatalf("%s: event %d (%s) did not find its row as final through ev.Tx", label, i, got[i].Op)
			}
		}
		if len(got) != len(ops) {
			t.Fatalf("%s: %d events, want %v: %+v", label, len(got), ops, got)
		}
		for i, op := range ops {
			ev := got[i]
			if ev.Op != op || ev.Collection != "notes" || ev.ID == "" || ev.Tx == nil {
				t.Fatalf("%s: event %d is %+v, want %s", label, i, ev, op)
			}
			switch op {
			case "create":
				if ev.Before != nil || ev.After == nil || ev.Version != 1 || ev.After.ID() != ev.ID {
					t.Fatalf("%s: create event %+v", label, ev)
				}
			case "update":
				if ev.Before == nil || ev.After == nil || ev.After.Version() != ev.Before.Version()+1 || ev.Version != ev.After.Version() {
					t.Fatalf("%s: update event %+v", label, ev)
				}
			case "delete":
				if ev.Before == nil || ev.After != nil || ev.Version != ev.Before.Version() {
					t.Fatalf("%s: delete event %+v", label, ev)
				}
			}
		}
		return got
	}

	id := w.mustDo(bob, "POST", notes, map[string]any{"title": "a", "owner": owner}, 201).str("id")
	if ev := want("create", "create")[0]; ev.After["title"] != "a" {
		t.Fatalf("create event after: %v", ev.After)
	}
	w.mustDo(bob, "PATCH", notes+"/"+id, map[string]any{"title": "b"}, 200)
	if ev := want("patch", "update")[0]; ev.Before["title"] != "a" || ev.After["title"] != "b" {
		t.Fatalf("patch event: %v -> %v", ev.Before, ev.After)
	}
	w.mustDo(bob, "PATCH", notes+"/"+id, map[string]any{"ops": []any{map[string]any{"op": "set", "path": []string{"title"}, "value": "c"}}}, 200)
	want("ops", "update")
	w.mustDo(bob, "PUT", notes+"/"+id, map[string]any{"title": "d", "owner": owner}, 200)
	want("put", "update")
	// A write that changes nothing writes nothing, and tells no hook.
	w.mustDo(bob, "PATCH", notes+"/"+id, map[string]any{"title": "d"}, 200)
	want("no-op patch")
	// A write the rules refuse never reaches the hook.
	w.mustDo(ann, "POST", notes, map[string]any{"title": "x", "owner": owner}, 403)
	want("refused create")
	w.mustDo(bob, "DELETE", notes+"/"+id, nil, 204)
	want("delete", "delete")

	b := w.mustDo(bob, "POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"collection": "notes", "action": "create", "data": map[string]any{"title": "b1", "owner": owner}},
		map[string]any{"collection": "notes", "action": "create", "data": map[string]any{"title": "b2", "owner": owner}},
	}}, 200)
	got := want("batch", "create", "create")
	results := b.body["results"].([]any)
	id2 := results[1].(map[string]any)["record"].(map[string]any)["id"].(string)
	if got[1].ID != id2 {
		t.Fatalf("batch: event for %s, want %s", got[1].ID, id2)
	}
	w.mustDo(bob, "POST", "/api/batch", map[string]any{"ops": []any{
		map[string]any{"collection": "notes", "action": "update", "id": id2, "data": map[string]any{"title": "b3"}},
		map[string]any{"collection": "notes", "action": "delete", "id": id2},
	}}, 200)
	want("batch update+delete", "update", "delete")

	// The admin records API, where no rule applies, still runs the hook.
	aid := w.mustDo(recordsAdmin, "POST", adminNotes, map[string]any{"title": "adm", "owner": owner}, 201).str("id")
	want("admin create", "create")
	w.mustDo(recordsAdmin, "PATCH", adminNotes+"/"+aid, map[string]any{"title": "adm2"}, 200)
	want("admin patch", "update")
	w.mustDo(recordsAdmin, "PUT", adminNotes+"/"+aid, map[string]any{"title": "adm3", "owner": owner}, 200)
	want("admin put", "update")
	w.mustDo(recordsAdmin, "DELETE", adminNotes+"/"+aid, nil, 204)
	want("admin delete", "delete")

	// A reload builds a new engine; the hook goes on.
	cfg, err := schema.Parse("abe.yaml", []byte(adminRecordsYAML), []string{"ABE_AUTH_SECRET=" + strings.Repeat("x", 40)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.Reload(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	keep := w.mustDo(bob, "POST", notes, map[string]any{"title": "kept", "owner": owner}, 201).str("id")
	want("after reload", "create")

	// A failing hook rolls every kind of write back.
	ctx := context.Background()
	changes := func() int {
		var n int
		if err := w.app.Pool().QueryRow(ctx, `SELECT count(*) FROM abe.changes WHERE collection = 'notes'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := changes()
	fail.Store(true)
	refused := []struct {
		label, who, method, path string
		body                     any
	}{
		{"create", bob, "POST", notes, map[string]any{"title": "no", "owner": owner}},
		{"patch", bob, "PATCH", notes + "/" + keep, map[string]any{"title": "no"}},
		{"put", bob, "PUT", notes + "/" + keep, map[string]any{"title": "no", "owner": owner}},
		{"delete", bob, "DELETE", notes + "/" + keep, nil},
		{"batch", bob, "POST", "/api/batch", map[string]any{"ops": []any{map[string]any{"collection": "notes", "action": "create", "data": map[string]any{"title": "no", "owner": owner}}}}},
		{"admin create", recordsAdmin, "POST", adminNotes, map[string]any{"title": "no", "owner": owner}},
		{"admin delete", recordsAdmin, "DELETE", adminNotes + "/" + keep, nil},
	}
	for _, c := range refused {
		r := w.do(c.who, c.method, c.path, c.body, nil)
		if r.status != 500 || strings.Contains(r.raw, "secret") || strings.Contains(r.raw, "internal detail") {
			t.Errorf("%s with a failing hook: %d %s, want a 500 that says nothing of the hook", c.label, r.status, r.raw)
		}
	}
	fail.Store(false)
	if n := changes(); n != before {
		t.Fatalf("the change log grew by %d entries for rolled-back writes", n-before)
	}
	var titles []string
	rows, err := w.app.Pool().Query(ctx, `SELECT title FROM notes ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		titles = append(titles, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(titles, ",") != "b1,kept" {
		t.Fatalf("notes after the refused writes: %v, want [b1 kept]", titles)
	}
}
