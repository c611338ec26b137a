package abe_test

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/abe-stack/abe/schema"
)

// TestReloadUnderTraffic swaps the model while requests and a realtime
// subscription run: nothing fails, and what follows sees the new field.
func TestReloadUnderTraffic(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	c := w.as(ann)
	c.subscribe("s", "collection:todos", "")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				res, err := w.srv.Client().Get(w.srv.URL + "/api/collections/projects/records")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body) //nolint:errcheck // draining
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Errorf("during a reload: %d", res.StatusCode)
					return
				}
			}
		})
	}
	raw, err := os.ReadFile("examples/todo/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(raw), "      done:    { type: bool, default: false }", "      done:    { type: bool, default: false }\n      due:     { type: timestamp }", 1)
	cfg, err := schema.Parse("abe.yaml", []byte(src), []string{"ABE_AUTH_SECRET=" + strings.Repeat("s", 40)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.app.Reload(context.Background(), cfg, nil)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 1 || len(res.Skipped) != 0 {
		t.Fatalf("applied %v, skipped %v", res.Applied, res.Skipped)
	}
	id := w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": "t", "due": "2027-01-01T00:00:00Z"}, 201).str("id")
	ev := c.event()
	if ev["id"] != id || ev["record"].(map[string]any)["due"] != "2027-01-01T00:00:00Z" {
		t.Fatalf("the subscription after the reload: %v", ev)
	}
}
