package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/abe-stack/abe/internal/pg/pgtest"
)

// notesYAML is a collection added to the todo example's collections
// (at their top: the file goes on with other sections), with a rule the
// test changes.
const notesYAML = `
  notes:
    fields:
      title: { type: text, required: true }
%s    rules: { list: "true", read: "%s", create: "%s" }
    realtime: true
`

func TestDevReloadsOnSave(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "abe.yaml")
	base, err := os.ReadFile("../../examples/todo/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(base), "\ncollections:\n") {
		t.Fatal("the todo example has no collections: line to add notes under")
	}
	save := func(extra string) {
		t.Helper()
		doc := strings.Replace(string(base), "\ncollections:\n", "\ncollections:"+strings.TrimSuffix(extra, "\n")+"\n", 1)
		// Written aside and renamed, as editors do: never half a file.
		tmp := cfg + ".tmp"
		if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg); err != nil {
			t.Fatal(err)
		}
	}
	save("")
	s := startBin(t, []string{"DATABASE_URL=" + pgtest.NewURL(t, nil), "ABE_AUTH_SECRET="}, "dev", "--config", cfg)
	post := func(body string) int {
		t.Helper()
		res, err := http.Post(s.url+"/api/collections/notes/records", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post(`{"title":"x"}`); code != 404 {
		t.Fatalf("notes before it is declared: %d", code)
	}

	// A new collection: migrated, served, described, without a restart.
	save(fmt.Sprintf(notesYAML, "", "true", "true"))
	s.waitFor(t, "reloaded")
	if code := post(`{"title":"x"}`); code != 201 {
		t.Fatalf("a new collection: %d\n%s", code, s.output.all.String())
	}
	if _, body := get(t, s.url+"/api/openapi.json"); !strings.Contains(body, "/api/collections/notes/records") {
		t.Error("the OpenAPI document does not describe the new collection")
	}

	// A WebSocket subscription made now lives through the next reloads.
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/api/realtime", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow() //nolint:errcheck // cleanup
	if err := wsjson.Write(ctx, ws, map[string]any{"type": "subscribe", "id": "s", "topic": "collection:notes"}); err != nil {
		t.Fatal(err)
	}
	var ack map[string]any
	if err := wsjson.Read(ctx, ws, &ack); err != nil || ack["type"] != "ack" {
		t.Fatalf("subscribe: %v %v", ack, err)
	}

	// A new field and a changed rule.
	save(fmt.Sprintf(notesYAML, "      body:  { type: text }\n", "true", "record.title != 'no'"))
	s.waitFor(t, "reloaded")
	if code := post(`{"title":"y","body":"new field"}`); code != 201 {
		t.Fatalf("a new field: %d\n%s", code, s.output.all.String())
	}
	if code := post(`{"title":"no"}`); code != 403 {
		t.Fatalf("a changed create rule: %d", code)
	}
	// next is the next event's record; an event of a write made before
	// the subscription (the hub may not have dispatched it yet) is skipped.
	next := func() map[string]any {
		t.Helper()
		for {
			var ev map[string]any
			if err := wsjson.Read(ctx, ws, &ev); err != nil || ev["type"] != "event" {
				t.Fatalf("the subscription after a reload: %v %v", ev, err)
			}
			if rec := ev["record"].(map[string]any); rec["title"] != "x" {
				return rec
			}
		}
	}
	if rec := next(); rec["body"] != "new field" {
		t.Fatalf("the subscription after a reload heard %v", rec)
	}

	// A read rule that changes applies to the open subscription at once.
	save(fmt.Sprintf(notesYAML, "      body:  { type: text }\n", "record.title != 'hidden'", "true"))
	s.waitFor(t, "reloaded")
	post(`{"title":"hidden"}`)
	post(`{"title":"shown"}`)
	if rec := next(); rec["title"] != "shown" {
		t.Fatalf("after the read rule changed, the subscription heard %v", rec)
	}

	// A broken file is reported with its position; the old model serves.
	if err := os.WriteFile(cfg, append(append([]byte{}, base...), "\n  notes:\n    fields: { title: { type: nosuch } }\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "still serving the previous version")
	s.waitFor(t, "abe.yaml:")
	if code := post(`{"title":"z","body":"still here"}`); code != 201 {
		t.Fatalf("after a broken save: %d", code)
	}

	// Dropping a field can lose data: not applied, and said how.
	save(fmt.Sprintf(notesYAML, "", "true", "true"))
	s.waitFor(t, "can lose data")
	s.waitFor(t, "abe migrate apply --allow-destructive")
	if code := post(`{"title":"w"}`); code != 201 {
		t.Fatalf("after a destructive change: %d", code)
	}
	if code, out := s.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("Ctrl-C: exit %d\n%s", code, out)
	}
}
