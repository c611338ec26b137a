package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type decodeTarget struct {
	Title string   `json:"title"`
	Count int      `json:"count"`
	Price float64  `json:"price"`
	Done  bool     `json:"done"`
	Tags  []string `json:"tags"`
	Meta  struct {
		Color string `json:"color"`
	} `json:"meta"`
	Items []struct {
		Name string `json:"name"`
	} `json:"items"`
	When time.Time `json:"when"`
}

const decodeLimit = 64

func TestReadJSON(t *testing.T) {
	t.Parallel()
	atLimit := `{"title":"` + strings.Repeat("a", decodeLimit-12) + `"}`
	for _, tc := range []struct {
		name   string
		ct     string
		body   string
		status int // 0: no problem
		detail string
		field  *FieldError
	}{
		{name: "valid", ct: "application/json", body: `{"title":"a","count":2,"meta":{"color":"red"}}`},
		{name: "charset parameter", ct: "application/json; charset=utf-8", body: `{}`},
		{name: "+json type", ct: "application/merge-patch+json", body: `{}`},
		{name: "no content type", body: `{"done":true}`},
		{name: "exactly the limit", ct: "application/json", body: atLimit},
		{name: "text/plain", ct: "text/plain", body: `{}`, status: 415},
		{name: "look-alike type", ct: "application/jsonx", body: `{}`, status: 415},
		{name: "malformed content type", ct: "application/json; =", body: `{}`, status: 415},
		{name: "one byte over the limit", ct: "application/json", body: atLimit + " ", status: 413, detail: "limit of 64 bytes"},
		{name: "empty", ct: "application/json", body: "", status: 400, detail: "the request body is empty; send a JSON object"},
		{name: "only whitespace", body: " \n\t", status: 400, detail: "the request body is empty; send a JSON object"},
		{name: "malformed", body: "{\n  \"title\": hunter2}", status: 400, detail: "line 2, column 12"},
		{name: "malformed after multibyte characters", body: `{"title":"ééé",,}`, status: 400, detail: "line 1, column 16"},
		{name: "truncated", body: `{"title": "a"`, status: 400, detail: "ends early, at line 1, column 14"},
		{name: "unknown field", body: `{"password":"hunter2"}`, status: 400, field: &FieldError{Field: "password", Message: "unknown field"}},
		{name: "nested unknown field", body: `{"meta":{"shade":"red"}}`, status: 400, field: &FieldError{Field: "shade", Message: "unknown field"}},
		{name: "unknown field in an array", body: `{"items":[{"name":"a","x":1}]}`, status: 400, field: &FieldError{Field: "x", Message: "unknown field"}},
		{name: "string for a number", body: `{"count":"hunter2"}`, status: 422, field: &FieldError{Field: "count", Message: "must be a number"}},
		{name: "number for a string", body: `{"title":5}`, status: 422, field: &FieldError{Field: "title", Message: "must be a string"}},
		{name: "nested wrong type", body: `{"meta":{"color":true}}`, status: 422, field: &FieldError{Field: "meta.color", Message: "must be a string"}},
		{name: "string for a boolean", body: `{"done":"yes"}`, status: 422, field: &FieldError{Field: "done", Message: "must be a boolean"}},
		{name: "object for an array", body: `{"tags":{}}`, status: 422, field: &FieldError{Field: "tags", Message: "must be an array"}},
		{name: "array for an object", body: `{"meta":[]}`, status: 422, field: &FieldError{Field: "meta", Message: "must be an object"}},
		{name: "fraction for an integer", body: `{"count":1.5}`, status: 422, field: &FieldError{Field: "count", Message: "must be a whole number in range"}},
		{name: "overflowing float", body: `{"price":1e400}`, status: 422, field: &FieldError{Field: "price", Message: "must be a number in range"}},
		{name: "array body", body: `[]`, status: 422, detail: "the request body must be an object"},
		{name: "bad time", body: `{"when":"hunter2"}`, status: 422, detail: "wrong format"},
		{name: "two values", body: `{} {}`, status: 400, detail: "exactly one JSON value"},
		{name: "trailing garbage", body: `{}hunter2`, status: 400, detail: "exactly one JSON value"},
		{name: "trailing whitespace is fine", body: "{}\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			var v decodeTarget
			p := ReadJSON(httptest.NewRecorder(), req, &v, decodeLimit)
			if tc.status == 0 {
				if p != nil {
					t.Fatalf("problem %+v", p)
				}
				return
			}
			if p == nil {
				t.Fatalf("no problem, want %d", tc.status)
			}
			if p.Status != tc.status || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("got %d %q, want %d containing %q", p.Status, p.Detail, tc.status, tc.detail)
			}
			if tc.field != nil && (len(p.Errors) != 1 || p.Errors[0] != *tc.field) {
				t.Errorf("errors %+v, want %+v", p.Errors, *tc.field)
			}
			if b, _ := json.Marshal(p); strings.Contains(string(b), "hunter2") {
				t.Errorf("the problem echoes the body: %s", b)
			}
		})
	}
}

func FuzzReadJSON(f *testing.F) {
	for _, s := range []string{`{"title":"a"}`, `{"meta":{"color":1}}`, `[`, `{"items":[{"x":1}]}`, `{} {}`, `{"when":"x"}`, "{\"title\":\"\xff\"}", ""} {
		f.Add([]byte(s), "application/json")
	}
	f.Add([]byte(`{}`), "text/plain; charset=\"")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		req := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", ct)
		var v decodeTarget
		p := ReadJSON(httptest.NewRecorder(), req, &v, 256)
		if p == nil {
			return
		}
		switch p.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("status %d: %+v", p.Status, p)
		}
		if p.Detail == "" {
			t.Fatalf("no detail: %+v", p)
		}
	})
}
