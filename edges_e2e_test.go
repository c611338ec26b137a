package abe_test

// An attacker's check of the places where a rule's SQL (lists, counts,
// cursors) and its evaluation in CEL (get, realtime) used to disagree
// (rules/rules_edge_test.go has the unit form): for each, the records the
// read rule hides from bob must be absent from his list, his count, his
// cursor pages and his realtime events, and changing them, or a field he
// may not read, must change none of his answers.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/abe-stack/abe/schema"
)

// edgeCollections: each collection's list and read rule is the same rule,
// one per disagreement that was fixed, with records it shows bob and
// records it hides from him (the old SQL showed them, or hid the shown
// ones, or failed).
var edgeCollections = []struct {
	name, rule      string
	visible, hidden []map[string]any
}{
	// size(null) is CEL's error: != 0 is not true of a missing tag.
	{"sized", "size(record.tag) != 0",
		[]map[string]any{{"tag": "x"}, {"tag": "yy"}},
		[]map[string]any{{}, {"tag": ""}, {"tag": nil}}},
	// A null status is in a list holding null, so it is not public.
	{"statused", "!(record.status in ['draft', null])",
		[]map[string]any{{"status": "open"}, {"status": "closed"}},
		[]map[string]any{{}, {"status": "draft"}}},
	// The other direction: the list hid what get showed.
	{"nullable", "record.status in ['open', null]",
		[]map[string]any{{}, {"status": "open"}},
		[]map[string]any{{"status": "draft"}, {"status": "closed"}}},
	// CEL compares count * 3 as the double nearest to it: beyond 2^53,
	// 3 * 9007199254740990 is 27021597764222968.0, not above it.
	{"rounded", "record.count * 3 > 27021597764222968.0",
		[]map[string]any{{"count": 9007199254740991}},
		[]map[string]any{{"count": 9007199254740990}, {"count": 1}, {}}},
	// CEL's timestamps have nanoseconds, PostgreSQL's microseconds (the
	// constant was truncated to the hidden record's due).
	{"nanos", "record.due >= timestamp('2025-01-01T00:00:00.0000005Z')",
		[]map[string]any{{"due": "2025-01-01T00:00:00.000001Z"}},
		[]map[string]any{{"due": "2025-01-01T00:00:00Z"}, {}}},
	// A relation ordered with a string that is not a UUID (the list was
	// a failed query).
	{"ordered", "record.owner > 'x' || record.tag == 'pub'",
		[]map[string]any{{"tag": "pub"}},
		[]map[string]any{{"tag": "x"}, {}}},
}

func edgesConfig(t *testing.T) *schema.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("auth:\n  secret: ${ABE_AUTH_SECRET}\ncollections:\n")
	for _, c := range edgeCollections {
		fmt.Fprintf(&b, `  %s:
    fields:
      title:  { type: text, required: true }
      owner:  { type: relation, collection: users, required: true }
      tag:    { type: text }
      status: { type: select, values: [open, closed, draft] }
      count:  { type: integer }
      due:    { type: timestamp }
      note:   { type: text, rules: { read: "auth != null && record.owner == auth.id" } }
    rules:
      list:   "(auth != null && record.owner == auth.id) || (%[2]s)"
      read:   "(auth != null && record.owner == auth.id) || (%[2]s)"
      create: "auth != null && record.owner == auth.id"
      update: "auth != null && record.owner == auth.id"
    realtime: true
`, c.name, strings.ReplaceAll(c.rule, `"`, `\"`))
	}
	cfg, err := schema.Parse("edges.yaml", []byte(b.String()), []string{"ABE_AUTH_SECRET=" + strings.Repeat("k", 40)})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// edgeAnswers is everything who asks of a collection by listing: the
// list, the count, every page of a walk by cursor, a filtered list, and
// each record by id. ids are the records the list and the pages showed.
func edgeAnswers(w *world, who, coll string, all []string) (out []answer, listed, paged []string) {
	path := "/api/collections/" + coll + "/records"
	ids := func(a answer) []string {
		var l struct {
			Items []map[string]any `json:"items"`
			Next  *string          `json:"next_cursor"`
		}
		if err := json.Unmarshal([]byte(a.body), &l); err != nil {
			w.t.Fatalf("%s: %d %s", a.label, a.status, a.body)
		}
		var out []string
		for _, it := range l.Items {
			out = append(out, it["id"].(string))
		}
		return out
	}
	list := w.answer(who, "list", "GET", path+"?sort=title", nil)
	out = append(out, list)
	if list.status != 200 {
		w.t.Fatalf("%s lists %s: %d %s", who, coll, list.status, list.body)
	}
	listed = ids(list)
	out = append(out, w.answer(who, "count", "GET", path+"?count=true&limit=1", nil))
	out = append(out, w.answer(who, "filtered", "GET", path+"?"+url.Values{"filter": {"title != '' && note == null"}, "count": {"true"}}.Encode(), nil))
	q := url.Values{"sort": {"-title"}, "limit": {"1"}, "count": {"true"}}
	for page := 0; page < 20; page++ {
		a := w.answer(who, fmt.Sprintf("page %d", page), "GET", path+"?"+q.Encode(), nil)
		out = append(out, a)
		paged = append(paged, ids(a)...)
		var body struct {
			Next *string `json:"next_cursor"`
		}
		if json.Unmarshal([]byte(a.body), &body) != nil || body.Next == nil {
			break
		}
		q.Set("cursor", *body.Next)
	}
	for _, id := range all {
		out = append(out, w.answer(who, "one "+id, "GET", path+"/"+id, nil))
	}
	return out, listed, paged
}

func TestEdgesRulesShowTheSameRecordsEverywhere(t *testing.T) {
	t.Parallel()
	w := newWorld(t, edgesConfig(t))
	ctx := context.Background()
	for _, c := range edgeCollections {
		t.Run(c.name, func(t *testing.T) {
			w := *w
			w.t = t
			path := "/api/collections/" + c.name + "/records"
			bobWS := w.as(bob)
			bobWS.subscribe("all", "collection:"+c.name, "")
			anonWS := w.as("")
			anonWS.subscribe("all", "collection:"+c.name, "")

			var visible, hidden []string
			create := func(i int, fields map[string]any, into *[]string) {
				body := map[string]any{"title": fmt.Sprintf("%s %02d", c.name, i), "owner": w.ids[ann], "note": fmt.Sprintf("secret %d", i)}
				for k, v := range fields {
					body[k] = v
				}
				*into = append(*into, w.mustDo(ann, "POST", path, body, 201).str("id"))
			}
			// Interleaved, so that pages and cursors fall between hidden
			// and visible records.
			for i := 0; i < max(len(c.visible), len(c.hidden)); i++ {
				if i < len(c.hidden) {
					create(2*i, c.hidden[i], &hidden)
				}
				if i < len(c.visible) {
					create(2*i+1, c.visible[i], &visible)
				}
			}
			var marker []string
			create(99, c.visible[0], &marker)
			all := slices.Concat(visible, hidden)
			want := slices.Sorted(slices.Values(slices.Concat(visible, marker)))

			// Realtime: the creates of the visible records, then the
			// marker's, and nothing of the hidden ones.
			for _, ws := range []*wsClient{bobWS, anonWS} {
				var heard []string
				for {
					e := ws.event()
					if e["id"] == marker[0] {
						break
					}
					heard = append(heard, e["id"].(string))
					if rec, _ := e["record"].(map[string]any); rec["note"] != nil {
						t.Errorf("an event shows the hidden note: %v", e)
					}
				}
				sort.Strings(heard)
				if !slices.Equal(heard, slices.Sorted(slices.Values(visible))) {
					t.Errorf("realtime: heard %v, want the visible %v (hidden %v)", heard, visible, hidden)
				}
			}

			before := map[string][]answer{}
			for _, who := range []string{bob, ""} {
				answers, listed, paged := edgeAnswers(&w, who, c.name, slices.Concat(all, marker))
				before[who] = answers
				sort.Strings(listed)
				sort.Strings(paged)
				if !slices.Equal(listed, want) || !slices.Equal(paged, want) {
					t.Errorf("%q: the list shows %v, the pages %v; want %v (hidden %v)", who, listed, paged, want, hidden)
				}
				for _, a := range answers {
					switch {
					case strings.HasPrefix(a.label, who+" one "):
						id := strings.TrimPrefix(a.label, who+" one ")
						if wantStatus := map[bool]int{true: 200, false: 404}[slices.Contains(want, id)]; a.status != wantStatus {
							t.Errorf("%q: GET %s answers %d, want %d", who, id, a.status, wantStatus)
						}
					case strings.HasSuffix(a.label, "count"), strings.HasSuffix(a.label, "filtered"):
						var l struct {
							Total int `json:"total"`
						}
						if err := json.Unmarshal([]byte(a.body), &l); err != nil || l.Total != len(want) {
							t.Errorf("%q %s: total %d (%v), want %d", who, a.label, l.Total, err, len(want))
						}
					}
				}
			}

			// Only hidden data changes: the hidden records (through the API,
			// as their owner) and the note bob may read on none (through
			// SQL, so versions stay).
			for i, id := range hidden {
				w.mustDo(ann, "PATCH", path+"/"+id, map[string]any{"title": fmt.Sprintf("%s %02d moved", c.name, 2*i), "note": "changed"}, 200)
			}
			tx, err := w.app.Pool().Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx) //nolint:errcheck // after commit
			for _, q := range []string{`SET LOCAL session_replication_role = replica`, `UPDATE public.` + c.name + ` SET note = 'z' || note`} {
				if _, err := tx.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			for who, b := range before {
				after, _, _ := edgeAnswers(&w, who, c.name, slices.Concat(all, marker))
				sameAnswers(t, fmt.Sprintf("%s as %q", c.name, who), b, after)
			}
			// Realtime heard nothing of it: the next event is the marker's.
			w.mustDo(ann, "PATCH", path+"/"+marker[0], map[string]any{"title": c.name + " 99 again"}, 200)
			bobWS.quietUntil(marker[0])
			anonWS.quietUntil(marker[0])
		})
	}
}
