package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
)

func TestProblemTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    Problem
		want string
	}{
		{Problem{Status: 404}, TypeBase + "not_found"},
		{Problem{Status: 409, Code: CodeVersionConflict}, TypeBase + "version_conflict"},
		{Problem{Status: 422}, TypeBase + "validation"},
		{Problem{Status: 418}, TypeBase + "bad_request"},
		{Problem{Status: 502}, TypeBase + "internal"},
	} {
		rec := httptest.NewRecorder()
		WriteProblem(rec, httptest.NewRequest("GET", "/", nil), tc.p)
		var got Problem
		if err := json.NewDecoder(rec.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.Type != tc.want || CodeOf(got.Type) == "" {
			t.Errorf("%+v: type %q, want %q", tc.p, got.Type, tc.want)
		}
	}
	if CodeOf("about:blank") != "" || CodeOf(TypeURI(CodeRateLimited)) != CodeRateLimited {
		t.Error("CodeOf does not invert TypeURI")
	}
}

func TestMethodNotAllowedAllow(t *testing.T) {
	t.Parallel()
	r := chi.NewRouter()
	r.MethodNotAllowed(MethodNotAllowed)
	ok := func(http.ResponseWriter, *http.Request) {}
	r.Route("/things", func(r chi.Router) {
		r.Get("/{id}", ok)
		r.Patch("/{id}", ok)
		r.Delete("/{id}", ok)
	})
	r.Post("/top", ok)
	for path, want := range map[string]string{
		"/things/1": "GET, PATCH, DELETE",
		"/top":      "POST",
	} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("PUT", path, nil))
		if rec.Code != 405 || rec.Header().Get("Allow") != want {
			t.Errorf("PUT %s: %d, Allow %q, want %q", path, rec.Code, rec.Header().Get("Allow"), want)
		}
	}
}
