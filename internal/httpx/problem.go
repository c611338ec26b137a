package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// Problem is an RFC 9457 problem detail, the body of every error answer.
type Problem struct {
	// Code is the error class (see codes.go); WriteProblem turns it into
	// Type. Without one, the status's code is used.
	Code      string       `json:"-"`
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
	if p.Code == "" {
		p.Code = StatusCode(p.Status)
	}
	p.Type = TypeURI(p.Code)
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

// NotFound answers routes that do not exist, as no_such_endpoint: a
// client tells a missing endpoint (an older server) from a missing record,
// which is not_found, by the type alone.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteProblem(w, r, Problem{Status: http.StatusNotFound, Code: CodeNoSuchEndpoint, Detail: "no such endpoint: " + r.Method + " " + r.URL.Path})
}

// MethodNotAllowed answers a known route called with the wrong method,
// with the methods it takes in Allow (RFC 9110, 15.5.6), found by asking
// the chi router that routed the request.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	allowed := allowedMethods(r)
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
	detail := r.Method + " is not allowed on " + r.URL.Path
	if len(allowed) > 0 {
		detail += "; it takes " + strings.Join(allowed, ", ")
	}
	WriteProblem(w, r, Problem{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Detail: detail})
}

var routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

func allowedMethods(r *http.Request) []string {
	rc := chi.RouteContext(r.Context())
	if rc == nil || rc.Routes == nil {
		return nil
	}
	var out []string
	for _, m := range routeMethods {
		if rc.Routes.Match(chi.NewRouteContext(), m, r.URL.Path) {
			out = append(out, m)
		}
	}
	return out
}
