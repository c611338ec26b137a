package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateReportsEveryProblem: one run of the binary reports the
// problems of the schema, the semantic checks and the rules of a file
// together, in file order, each at its line and column.
func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "abe.yaml")
	src := `collections:
  todos:
    fields:
      title: { type: txt }
      owner: { type: relation, collection: usrs }
      done:  { type: bool }
    indexes:
      - { fields: [titel, created_at] }
    rules:
      list: "record.done == true &&"
      read: "auth.uid == record.owner"
      create: "record.titel != ''"
      delete: "record.zzz == 1"
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runBin(t, nil, "validate", "--config", file)
	if code == 0 {
		t.Fatalf("exit 0:\n%s", out)
	}
	assertNoStackTrace(t, out)
	want := []string{
		"the configuration has 7 problems",
		file + `:4:22: collections.todos.fields.title.type: unknown field type txt`,
		`fix: did you mean "text"?`,
		file + `:5:44: collections.todos.fields.owner.collection: relation to unknown collection "usrs"`,
		`fix: did you mean "users"?`,
		file + `:8:20: collections.todos.indexes[0].fields[0]: index over unknown field "titel"`,
		`fix: did you mean "title"?`,
		file + `:10:36: collections.todos.rules.list: invalid rule: Syntax error`,
		file + `:11:18: collections.todos.rules.read: invalid rule: undefined field 'uid'`,
		`fix: did you mean auth.id? auth has id, email, roles, verified, mfa`,
		file + `:12:22: collections.todos.rules.create: invalid rule: undefined field 'titel'`,
		`fix: did you mean record.title? the fields of todos are title, owner, done, id, version, created_at, updated_at`,
		file + `:13:22: collections.todos.rules.delete: invalid rule: undefined field 'zzz'`,
		`fix: the fields of todos are title, owner, done, id, version, created_at, updated_at`,
	}
	// In this order: the report reads top to bottom.
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("missing, or out of order: %q\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
}

// TestValidateSyntaxErrorPosition: a YAML syntax error is reported at the
// line and column of the fault, not the start of the block around it.
func TestValidateSyntaxErrorPosition(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, src, want string
	}{
		{"misindented key", "collections:\n  todos:\n    fields:\n      title: { type: text }\n      done: { type: bool }\n     due: { type: timestamp }\n", ":6:6: invalid YAML: did not find expected key"},
		{"dedented rules", "collections:\n  todos:\n    fields:\n      title: { type: text }\n    # who may do what\n   rules:\n      list: \"true\"\n", ":6:4: invalid YAML: did not find expected key"},
		{"unclosed brace", "collections:\n  todos:\n    fields:\n      title: { type: text\n", ":4:14: invalid YAML: did not find expected ',' or '}'"},
	} {
		file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
		if err := os.WriteFile(file, []byte(tc.src), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := runBin(t, nil, "validate", "--config", file)
		if code == 0 || !strings.Contains(out, file+tc.want) || !strings.Contains(out, "fix: ") {
			t.Errorf("%s: exit %d, want %q:\n%s", tc.name, code, tc.want, out)
		}
	}
}
