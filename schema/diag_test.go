package schema

import "testing"

// TestSuggest: a "did you mean" is a likely typo or nothing.
func TestSuggest(t *testing.T) {
	t.Parallel()
	fields := []string{"title", "done", "project", "id", "version", "created_at", "updated_at"}
	for _, tc := range []struct {
		s          string
		candidates []string
		want       string
	}{
		{"titel", fields, "title"},
		{"tilte", fields, "title"},
		{"Title", fields, "title"},
		{"projet", fields, "project"},
		{"craeted_at", fields, "created_at"},
		{"uid", []string{"id", "email", "roles", "verified", "mfa"}, "id"},
		{"emial", []string{"id", "email", "roles", "verified", "mfa"}, "email"},
		{"projets", []string{"users", "projects", "todos"}, "projects"},
		{"txt", []string{"text", "number", "integer", "bool"}, "text"},
		{"ABE_SERVER_LISTN", []string{"ABE_SERVER_LISTEN", "ABE_SERVER_PUBLIC_URL"}, "ABE_SERVER_LISTEN"},
		// Unrelated names get no suggestion.
		{"nope", []string{"users", "todos"}, ""},
		{"teams", []string{"users", "projects", "todos"}, ""},
		{"zzz", fields, ""},
		{"colour", []string{"id", "email", "roles", "verified", "mfa"}, ""},
		{"x", []string{"id"}, ""},
		{"owner", fields, ""},
		{"title", fields, ""}, // itself is no suggestion
	} {
		if got := Suggest(tc.s, tc.candidates); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.s, got, tc.want)
		}
	}
}
