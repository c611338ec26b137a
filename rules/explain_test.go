package rules

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// find returns the first node of the tree whose expression is expr.
func find(n *Node, expr string) *Node {
	if n == nil {
		return nil
	}
	if n.Expr == expr {
		return n
	}
	for _, c := range n.Children {
		if f := find(c, expr); f != nil {
			return f
		}
	}
	return nil
}

func TestExplain(t *testing.T) {
	t.Parallel()
	e := engine(t, projectsYAML)
	ctx := context.Background()
	team := "018f0000-0000-7000-8000-0000000000ee"
	ld := &memLoader{records: map[string]map[string]any{"teams/" + team: {"id": team, "lead": bob}}}
	rec := map[string]any{"id": "p1", "owner": ann, "status": "draft", "members": []string{}, "team": team, "secret": "s"}

	// create: ann is not the owner bob.
	x, err := e.Explain(ctx, "projects", Create, &Input{Auth: &Principal{ID: ann}, Record: map[string]any{"owner": bob}}, ld)
	if err != nil {
		t.Fatal(err)
	}
	eq := find(x.Tree, "record.owner == auth.id")
	if x.Allowed || eq == nil || eq.Value != false || len(eq.Children) != 2 || eq.Children[0].Value != bob || eq.Children[1].Value != ann {
		b, _ := json.MarshalIndent(x, "", " ")
		t.Fatalf("create explained as %s", b)
	}
	if got := x.Rule[eq.Start:eq.End]; got != "record.owner == auth.id" {
		t.Errorf("span %d-%d is %q", eq.Start, eq.End, got)
	}
	if got := x.Rule[eq.Children[0].Start:eq.Children[0].End]; got != "record.owner" {
		t.Errorf("span of record.owner is %q", got)
	}

	// delete: get() loads the team, whose lead is bob.
	x, err = e.Explain(ctx, "projects", Delete, &Input{Auth: &Principal{ID: bob}, Record: rec}, ld)
	if err != nil {
		t.Fatal(err)
	}
	g := find(x.Tree, `get("teams", record.team)`)
	if !x.Allowed || g == nil || len(x.Loads) != 1 || !x.Loads[0].Found || x.Loads[0].Record["lead"] != bob {
		b, _ := json.MarshalIndent(x, "", " ")
		t.Fatalf("delete explained as %s", b)
	}
	if m, _ := g.Value.(map[string]any); m["lead"] != bob || x.Rule[g.Start:g.End] != "get('teams', record.team)" {
		t.Errorf("get() node %+v (span %q)", g, x.Rule[g.Start:g.End])
	}

	// anonymous: the right side of && errs, and shows it.
	x, err = e.Explain(ctx, "projects", Create, &Input{Record: map[string]any{"owner": bob}}, ld)
	if err != nil {
		t.Fatal(err)
	}
	if n := find(x.Tree, "auth != null"); x.Allowed || n == nil || n.Value != false {
		t.Fatalf("anonymous create: %+v", x.Tree)
	}

	// field rules: secret hidden from bob, shown to ann.
	fr, err := e.ExplainFieldRules(ctx, "projects", "read", &Input{Auth: &Principal{ID: bob}, Record: rec}, ld)
	if err != nil {
		t.Fatal(err)
	}
	if len(fr) != 1 || fr[0].Field != "secret" || fr[0].Allowed {
		t.Fatalf("field rules %+v", fr)
	}
	// has_role shows as written.
	fr, err = e.ExplainFieldRules(ctx, "projects", "update", &Input{Auth: &Principal{ID: bob, Roles: []string{"moderator"}}, Record: rec, Before: rec, Changes: []string{"secret"}}, ld)
	if err != nil {
		t.Fatal(err)
	}
	if len(fr) != 1 || !fr[0].Allowed || !strings.HasPrefix(fr[0].Tree.Expr, "has_role(") {
		t.Fatalf("update field rules %+v", fr[0].Tree)
	}
	// no rule: only *.
	x, err = e.Explain(ctx, "teams", Read, &Input{Auth: &Principal{ID: bob}}, ld)
	if err != nil || x.Allowed || x.Tree != nil || x.Reason == "" {
		t.Fatalf("no rule: %+v %v", x, err)
	}
}

// TestExplainSpans: the span of every subexpression holds that
// subexpression, as written.
func TestExplainSpans(t *testing.T) {
	t.Parallel()
	e := engine(t, `
roles:
  moderator: { permissions: [todos:moderate] }
collections:
  notes:
    fields:
      title:  { type: text, required: true }
      owner:  { type: relation, collection: users }
      tags:   { type: json }
      parent: { type: relation, collection: notes }
    rules:
      read:   "(auth != null || has_role('moderator')) && (record.title.startsWith('é(') || size(record.title) > 3)"
      update: "auth != null && !('owner' in changes) && [1, 2].all(x, x > 0) && has(record.owner) && exists('notes', record.parent) == false"
      delete: "has_permission('todos:moderate') || get('notes', record.parent).owner == auth.id"
`)
	norm := func(s string) string {
		s = strings.NewReplacer(" ", "", "'", `"`).Replace(s)
		for strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") && balanced(s[1:len(s)-1]) {
			s = s[1 : len(s)-1]
		}
		return s
	}
	rec := map[string]any{"id": "n1", "title": "é(abc", "owner": ann, "parent": nil}
	for _, op := range []Op{Read, Update, Delete} {
		x, err := e.Explain(context.Background(), "notes", op, &Input{Auth: &Principal{ID: ann}, Record: rec, Before: rec}, &memLoader{})
		if err != nil {
			t.Fatal(err)
		}
		src := []rune(x.Rule)
		var walk func(n *Node)
		walk = func(n *Node) {
			if got := string(src[n.Start:n.End]); norm(got) != norm(n.Expr) {
				t.Errorf("%s: the span of %s is %q", op, n.Expr, got)
			}
			for _, c := range n.Children {
				walk(c)
			}
		}
		walk(x.Tree)
	}
}

func balanced(s string) bool {
	depth := 0
	for _, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}
