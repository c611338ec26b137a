package rules

import (
	"strings"
	"testing"
)

// TestFilterUnrestricted: a filter of the admin records API
// (SQLInput.Unrestricted) reads hidden fields and related records as
// they are; without it, both stay behind their read rules.
func TestFilterUnrestricted(t *testing.T) {
	t.Parallel()
	e := engine(t, projectsYAML)
	f, err := e.Filter("projects", "secret == 'x' && get('teams', team).lead == auth.id")
	if err != nil {
		t.Fatal(err)
	}
	guarded, err := f.SQL(&SQLInput{Auth: &Principal{ID: ann}}, &SQL{})
	if err != nil {
		t.Fatal(err)
	}
	// The field's read rule masks it; teams has no read rule, so only *
	// may read a team.
	if !strings.Contains(guarded, "CASE WHEN") || !strings.Contains(guarded, "FALSE") {
		t.Fatalf("a client's filter is not guarded: %s", guarded)
	}
	open, err := f.SQL(&SQLInput{Auth: &Principal{ID: ann}, Unrestricted: true}, &SQL{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(open, "CASE WHEN") || strings.Contains(open, "FALSE") {
		t.Fatalf("an unrestricted filter is guarded: %s", open)
	}
}
