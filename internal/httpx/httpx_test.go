package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestID(t *testing.T) {
	t.Parallel()
	var seen string
	h := WithRequestID(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = RequestID(r.Context()) }))
	for in, keep := range map[string]bool{
		"":                      false,
		"abc-123":               true,
		"trace:1.2_x":           true,
		"has space":             false,
		"line\nbreak":           false,
		strings.Repeat("a", 65): false,
		`"quoted"`:              false,
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(HeaderRequestID, in)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(HeaderRequestID)
		if got != seen || got == "" {
			t.Errorf("%q: header %q, context %q", in, got, seen)
		}
		if (got == in) != keep {
			t.Errorf("%q: kept=%v, want %v", in, got == in, keep)
		}
	}
}

func TestRecover(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	h := WithRequestID(Recover(log)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/after-write" {
			w.WriteHeader(http.StatusAccepted)
		}
		panic(errors.New("db password is hunter2"))
	})))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var p Problem
	if err := json.NewDecoder(rec.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 500 || rec.Header().Get("Content-Type") != ContentTypeProblem || p.Status != 500 || p.Type != TypeBase+CodeInternal ||
		p.RequestID == "" || strings.Contains(p.Detail, "hunter2") {
		t.Errorf("got %d %+v", rec.Code, p)
	}
	if !strings.Contains(logs.String(), "hunter2") || !strings.Contains(logs.String(), p.RequestID) {
		t.Errorf("the panic is not logged with its request id:\n%s", logs.String())
	}

	// Once the handler has answered, recovery must not write a second status.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/after-write", nil))
	if rec.Code != http.StatusAccepted {
		t.Errorf("status %d", rec.Code)
	}

	abort := Recover(log)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("ErrAbortHandler was swallowed: %v", v)
		}
	}()
	abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestWriteProblemFieldErrors(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	WriteProblem(rec, httptest.NewRequest("POST", "/", nil), Problem{Status: 422, Detail: "invalid record", Errors: []FieldError{{Field: "title", Message: "is required"}}})
	var got map[string]any
	if err := json.NewDecoder(rec.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["title"] != "Unprocessable Entity" || got["errors"].([]any)[0].(map[string]any)["field"] != "title" {
		t.Errorf("%v", got)
	}
}
