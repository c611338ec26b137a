package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Problem is an RFC 9457 problem detail, the body of every error answer.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	// Index names the failing item of a batch.
	Index *int `json:"index,omitempty"`
	// Current is the resource as it is now, for a conflict the client
	// may merge.
	Current any `json:"current,omitempty"`
	// RetryAfter, when set, becomes the Retry-After header (in whole
	// seconds, rounded up).
	RetryAfter time.Duration `json:"-"`
}

// FieldError is one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ContentTypeProblem is the media type of problem details.
const ContentTypeProblem = "application/problem+json"

// WriteProblem sends p, filling in what it leaves out from its status.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.RequestID = RequestID(r.Context())
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(max(1, ceilSeconds(p.RetryAfter)), 10))
	}
	w.Header().Set("Content-Type", ContentTypeProblem)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p) //nolint:errcheck // the client went away; nothing to do
}

// Error sends a problem with a status and a sentence for the client.
func Error(w http.ResponseWriter, r *http.Request, status int, detail string) {
	WriteProblem(w, r, Problem{Status: status, Detail: detail})
}

// WriteJSON sends v as JSON with a status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away; nothing to do
}

// NotFound answers routes that do not exist.
func NotFound(w http.ResponseWriter, r *http.Request) {
	Error(w, r, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
}

// MethodNotAllowed answers a known route called with the wrong method.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	Error(w, r, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
}
