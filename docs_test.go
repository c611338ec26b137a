package abe_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/abe-stack/abe/engine/ops"
	"github.com/abe-stack/abe/realtime"
	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
)

// The examples of README.md and docs/*.md are run here, so a reader who
// copies one gets what the page says. A fenced block may be marked by an
// HTML comment on the line before its fence:
//
//	<!-- fragment -->                   not run: part of something larger
//	<!-- with examples/todo/abe.yaml -->  a yaml block whose keys are merged
//	                                      into that file (its collections
//	                                      replace those of the same name)
//	<!-- filters of todos -->           a block of list filters, one per
//	                                      line, over that collection of
//	                                      examples/todo
//
// Unmarked yaml blocks are whole abe.yaml files; json blocks must parse
// once their placeholders ({...}, [...]) are filled, realtime messages go
// through the protocol and a real socket, and the filters of every page
// through a real list request.

// docBlock is a fenced code block of a page.
type docBlock struct {
	file   string
	line   int // of the opening fence
	lang   string
	marker string // the HTML comment before the fence, without <!-- -->
	text   string
}

var markerRE = regexp.MustCompile(`^<!--\s*(.*?)\s*-->$`)

// docBlocks reads every fenced block of README.md and docs/*.md.
func docBlocks(t *testing.T) []docBlock {
	t.Helper()
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []docBlock
	for _, f := range append([]string{"README.md"}, files...) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(src), "\n")
		for i := 0; i < len(lines); i++ {
			fence := strings.TrimSpace(lines[i])
			if !strings.HasPrefix(fence, "```") {
				continue
			}
			b := docBlock{file: f, line: i + 1, lang: strings.TrimPrefix(fence, "```")}
			for j := i - 1; j >= 0; j-- {
				if prev := strings.TrimSpace(lines[j]); prev != "" {
					if m := markerRE.FindStringSubmatch(prev); m != nil {
						b.marker = m[1]
					}
					break
				}
			}
			var body []string
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
				body = append(body, lines[i])
			}
			b.text = strings.Join(body, "\n") + "\n"
			out = append(out, b)
		}
	}
	return out
}

// TestDocsConfigExamples: every yaml block is a valid abe.yaml whose rules
// compile, as `abe validate` checks it.
func TestDocsConfigExamples(t *testing.T) {
	t.Parallel()
	n := 0
	for _, b := range docBlocks(t) {
		if b.lang != "yaml" || b.marker == "fragment" {
			continue
		}
		n++
		src := []byte(b.text)
		if base, ok := strings.CutPrefix(b.marker, "with "); ok {
			src = mergeYAML(t, b, base)
		} else if b.marker != "" {
			t.Errorf("%s:%d: unknown marker %q", b.file, b.line, b.marker)
			continue
		}
		cfg, err := schema.Parse(b.file, src, nil)
		if err != nil {
			t.Errorf("%s:%d: the example is not a valid abe.yaml:\n%v", b.file, b.line, err)
			continue
		}
		if _, err := rules.Compile(cfg, nil); err != nil {
			t.Errorf("%s:%d: the example's rules do not compile:\n%v", b.file, b.line, err)
		}
	}
	if n == 0 {
		t.Fatal("no yaml examples found")
	}
}

// mergeYAML lays the block's keys over the file base: maps merge one
// level down (collections by name), anything else is replaced.
func mergeYAML(t *testing.T, b docBlock, base string) []byte {
	t.Helper()
	src, err := os.ReadFile(base)
	if err != nil {
		t.Fatalf("%s:%d: %v", b.file, b.line, err)
	}
	var into, over map[string]any
	if err := yaml.Unmarshal(src, &into); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(b.text), &over); err != nil {
		t.Fatalf("%s:%d: the example is not YAML: %v", b.file, b.line, err)
	}
	for k, v := range over {
		sub, ok1 := v.(map[string]any)
		cur, ok2 := into[k].(map[string]any)
		if ok1 && ok2 {
			maps.Copy(cur, sub)
			continue
		}
		into[k] = v
	}
	out, err := yaml.Marshal(into)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var placeholderRE = regexp.MustCompile(`\{\.\.\.\}|\[\.\.\.\]`)

// jsonValues reads a json block: one value, or one per line.
func jsonValues(t *testing.T, b docBlock) []map[string]any {
	t.Helper()
	text := placeholderRE.ReplaceAllStringFunc(b.text, func(s string) string { return s[:1] + s[len(s)-1:] })
	dec := json.NewDecoder(strings.NewReader(text))
	var out []map[string]any
	for dec.More() {
		var v map[string]any
		if err := dec.Decode(&v); err != nil {
			t.Errorf("%s:%d: the example is not JSON: %v", b.file, b.line, err)
			return nil
		}
		out = append(out, v)
	}
	return out
}

// TestDocsJSONExamples: json blocks parse, and bodies of operations are
// operations the engine decodes.
func TestDocsJSONExamples(t *testing.T) {
	t.Parallel()
	for _, b := range docBlocks(t) {
		if b.lang != "json" || b.marker == "fragment" {
			continue
		}
		for _, v := range jsonValues(t, b) {
			raw, isOps := v["ops"].([]any)
			if !isOps || len(raw) == 0 {
				continue
			}
			if _, batch := raw[0].(map[string]any)["collection"]; batch {
				for i, op := range raw {
					o := op.(map[string]any)
					if sub, ok := o["ops"]; ok {
						checkOps(t, b, sub, i)
					}
				}
				continue
			}
			checkOps(t, b, raw, -1)
		}
	}
}

func checkOps(t *testing.T, b docBlock, v any, index int) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ops.Decode(data); err != nil {
		t.Errorf("%s:%d: operations (batch op %d) the engine refuses: %v", b.file, b.line, index, err)
	}
}

// isServerMessage tells the server's realtime messages from the client's.
func isServerMessage(m map[string]any) bool {
	_, sub := m["sub"]
	return sub || slices.Contains([]string{"ack", "event", "error", "resync", "pong"}, m["type"].(string))
}

var elidedIDRE = regexp.MustCompile(`[0-9a-f]{4}\.\.\.`)

// TestDocsRealtimeExamples sends every client message of the pages over a
// real socket, in page order, and expects what the protocol promises; and
// checks that every server message shown has the fields of a real one.
func TestDocsRealtimeExamples(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	projects, todos := "/api/collections/projects/records", "/api/collections/todos/records"
	pid := w.mustDo(ann, "POST", projects, map[string]any{"name": "Garden", "owner": w.ids[ann]}, 201).str("id")
	tid := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "Water"}, 201).str("id")

	var client, server []map[string]any
	var from []docBlock
	for _, b := range docBlocks(t) {
		if b.lang != "json" || b.marker == "fragment" {
			continue
		}
		for _, m := range jsonValues(t, b) {
			if _, ok := m["type"].(string); !ok || m["ops"] != nil {
				continue
			}
			if isServerMessage(m) {
				server = append(server, m)
				continue
			}
			client = append(client, m)
			from = append(from, b)
		}
	}
	if len(client) == 0 || len(server) == 0 {
		t.Fatalf("found %d client and %d server messages", len(client), len(server))
	}

	// The client messages, as documented, over one socket.
	ws := w.dial(nil)
	for i, m := range client {
		b := from[i]
		raw, _ := json.Marshal(m)
		if _, err := realtime.DecodeClientMessage(raw); err != nil {
			t.Errorf("%s:%d: %s is refused: %v", b.file, b.line, raw, err)
			continue
		}
		if m["token"] != nil {
			m["token"] = w.tokens[ann]
		}
		if topic, ok := m["topic"].(string); ok {
			m["topic"] = elidedIDRE.ReplaceAllString(topic, tid)
		}
		ws.send(m)
		want := "ack"
		if m["type"] == "ping" {
			want = "pong"
		}
		for {
			got, err := ws.next(waitFor)
			if err != nil {
				t.Fatalf("%s:%d: no answer to %s: %v", b.file, b.line, raw, err)
			}
			if got["type"] == "event" { // a catch-up
				continue
			}
			if got["type"] != want || (want == "ack" && m["id"] != nil && got["id"] != m["id"]) {
				t.Errorf("%s:%d: %s was answered %v, want %s", b.file, b.line, raw, got, want)
			}
			break
		}
	}

	// Real server messages of each shape the pages show.
	real := realServerMessages(t, w, pid)
	for _, m := range server {
		shape := messageShape(m)
		r, ok := real[shape]
		if !ok {
			t.Errorf("a documented message of shape %s was never seen: %v", shape, m)
			continue
		}
		if got, want := slices.Sorted(maps.Keys(m)), slices.Sorted(maps.Keys(r)); !slices.Equal(got, want) {
			t.Errorf("documented %s has fields %v; the server sends %v", shape, got, want)
		}
	}
}

// messageShape names the kind of a server message: its type, and for an
// event its op and whether it is a no-longer-matching one.
func messageShape(m map[string]any) string {
	s, _ := m["type"].(string)
	if s == "event" {
		op, _ := m["op"].(string)
		s += " " + op
		if _, ok := m["match"]; ok {
			s += " match"
		}
	}
	return s
}

// realServerMessages makes the server send one message of each shape.
func realServerMessages(t *testing.T, w *world, pid string) map[string]map[string]any {
	t.Helper()
	todos := "/api/collections/todos/records"
	ws := w.as(ann)
	ws.subscribe("s1", "collection:todos", "")
	ws.subscribe("s2", "collection:todos", "done == false")
	out := map[string]map[string]any{
		// A resync needs a change log older than its retention; its
		// fields are those realtime's resyncMessage writes.
		"resync": {"type": "resync", "id": "s3", "seq": 1},
	}
	// Events are dispatched after commit, from the change log, and one
	// whose record has changed again by then may be folded into the
	// later one; so each write waits for its events, and the ping (a pong
	// is answered at once) for the last.
	until := func(shapes ...string) {
		for len(shapes) > 0 {
			m, err := ws.next(waitFor)
			if err != nil {
				t.Fatalf("waiting for %v: %v (have %v)", shapes, err, slices.Collect(maps.Keys(out)))
			}
			out[messageShape(m)] = m
			shapes = slices.DeleteFunc(shapes, func(s string) bool { return s == messageShape(m) })
		}
	}
	tid := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "Weed"}, 201).str("id")
	until("event create")
	w.mustDo(ann, "PATCH", todos+"/"+tid, map[string]any{"done": true}, 200)
	until("event update", "event update match")
	w.mustDo(ann, "DELETE", todos+"/"+tid, nil, 204)
	until("event delete")
	ws.send(map[string]any{"type": "subscribe", "id": "s3", "topic": "record:todos:018f0000-0000-7000-8000-000000000000"})
	ws.send(map[string]any{"type": "ping"})
	until("pong")
	return out
}

// docFilter is a list filter one of the pages shows.
type docFilter struct {
	where, collection, filter string
}

var (
	urlFilterRE   = regexp.MustCompile(`/api/collections/(\w+)/records\?[^"' ]*?filter=([^&"' ]+)`)
	jsFilterRE    = regexp.MustCompile(`topic: "collection:(\w+)", filter: "([^"]+)"`)
	tableFilterRE = regexp.MustCompile("^\\| `filter` \\|.*?e\\.g\\. `([^`]+)`")
)

// docFilters finds the filters of the pages: blocks marked "filters of
// c", filter= in URLs, filters of subscriptions in code, and the example
// of the filter parameter in records.md's table.
func docFilters(t *testing.T) []docFilter {
	t.Helper()
	var out []docFilter
	for _, b := range docBlocks(t) {
		where := fmt.Sprintf("%s:%d", b.file, b.line)
		if c, ok := strings.CutPrefix(b.marker, "filters of "); ok {
			for l := range strings.Lines(b.text) {
				if l = strings.TrimSpace(l); l != "" {
					out = append(out, docFilter{where, c, l})
				}
			}
			continue
		}
		for _, m := range urlFilterRE.FindAllStringSubmatch(b.text, -1) {
			f, err := url.QueryUnescape(m[2])
			if err != nil {
				t.Errorf("%s: filter %q is not URL-encoded: %v", where, m[2], err)
				continue
			}
			out = append(out, docFilter{where, m[1], f})
		}
		for _, m := range jsFilterRE.FindAllStringSubmatch(b.text, -1) {
			out = append(out, docFilter{where, m[1], m[2]})
		}
	}
	src, err := os.ReadFile("docs/records.md")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(src)) {
		if m := tableFilterRE.FindStringSubmatch(l); m != nil {
			out = append(out, docFilter{"docs/records.md", "todos", m[1]})
		}
	}
	return out
}

// TestDocsFilterExamples runs every filter of the pages as a list request
// of the todo example.
func TestDocsFilterExamples(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "Garden", "owner": w.ids[ann]}, 201).str("id")
	w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": "Water the plants", "tags": []string{"garden"}}, 201)
	filters := docFilters(t)
	if len(filters) < 5 {
		t.Fatalf("found only %d filters: %v", len(filters), filters)
	}
	for _, f := range filters {
		r := w.do(ann, "GET", "/api/collections/"+f.collection+"/records?filter="+url.QueryEscape(f.filter), nil, nil)
		if r.status != 200 {
			t.Errorf("%s: filter %q on %s: %d %s", f.where, f.filter, f.collection, r.status, r.raw)
			continue
		}
		if len(r.items()) == 0 {
			t.Errorf("%s: filter %q on %s matched nothing; the world has a todo it describes", f.where, f.filter, f.collection)
		}
	}
}
