package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/abe-stack/abe/internal/httpx"
)

// FieldError is an invalid field of a request: 422 with the field named.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// apiError is an error with the answer the client gets.
type apiError struct {
	status int
	// code is the error class (httpx.Code*); empty means the status's.
	code   string
	detail string
	// retryAfter, when set, becomes the Retry-After header.
	retryAfter time.Duration
	// header is set on the answer (WWW-Authenticate).
	header map[string]string
}

func (e *apiError) Error() string { return e.detail }

func errStatus(status int, format string, args ...any) *apiError {
	return &apiError{status: status, detail: fmt.Sprintf(format, args...)}
}

func errCode(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, detail: fmt.Sprintf(format, args...)}
}

// errUnauthenticated is the answer for a bad credential: a 401 of class
// code, with WWW-Authenticate: Bearer error="invalid_token" (RFC 6750).
func errUnauthenticated(code, detail string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: code, detail: detail,
		header: map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`}}
}

// errNoToken is the answer for a request that needs a token and sent
// none: RFC 6750 (3.1) gives no error code when no credential came.
func errNoToken(detail string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: httpx.CodeUnauthorized, detail: detail,
		header: map[string]string{"WWW-Authenticate": `Bearer`}}
}

var errInvalidCredentials = errCode(http.StatusUnauthorized, httpx.CodeInvalidCredentials, "invalid email or password")

func errTooMany(wait time.Duration, code, detail string) *apiError {
	return &apiError{status: http.StatusTooManyRequests, code: code, detail: detail, retryAfter: wait}
}

// writeError is the one place auth errors become HTTP answers. A database
// outage is a 503 with Retry-After, a value the database refuses a 400;
// other causes the client should not see are logged, and the client gets
// a 500 that says only that.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var fe *FieldError
	if p, ok := httpx.Refusal(err); ok {
		// A hook's refusal, with the answer it chose.
		httpx.WriteProblem(w, r, p)
		return
	}
	switch {
	case errors.As(err, &ae):
		for k, v := range ae.header {
			w.Header().Set(k, v)
		}
		if ae.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ae.retryAfter.Seconds()))))
		}
		httpx.WriteProblem(w, r, httpx.Problem{Status: ae.status, Code: ae.code, Detail: ae.detail})
	case errors.As(err, &fe):
		httpx.WriteProblem(w, r, httpx.Problem{Status: http.StatusUnprocessableEntity, Detail: "the request has invalid fields",
			Errors: []httpx.FieldError{{Field: fe.Field, Message: fe.Message}}})
	case errors.Is(err, ErrEmailTaken):
		httpx.WriteProblem(w, r, httpx.Problem{Status: http.StatusConflict, Code: httpx.CodeAlreadyExists, Detail: "an account with this email already exists; log in, or reset the password",
			Errors: []httpx.FieldError{{Field: "email", Message: "is taken"}}})
	case errors.Is(err, ErrRoleExists):
		httpx.WriteProblem(w, r, httpx.Problem{Status: http.StatusConflict, Code: httpx.CodeAlreadyExists, Detail: "a role with this name exists",
			Errors: []httpx.FieldError{{Field: "name", Message: "is taken"}}})
	case errors.Is(err, ErrBuiltinRole):
		httpx.Error(w, r, http.StatusConflict, "this role is declared in abe.yaml and is read-only here: change or remove it in the file")
	case errors.Is(err, ErrNotFound):
		httpx.Error(w, r, http.StatusNotFound, "not found")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; there is nobody to answer.
	case httpx.IsUnavailable(err):
		s.log.WarnContext(r.Context(), "auth request failed: the database is unavailable", slog.String("error", err.Error()),
			slog.String("path", r.URL.Path), slog.String("request_id", httpx.RequestID(r.Context())))
		httpx.WriteProblem(w, r, httpx.Unavailable())
	case httpx.IsDataException(err):
		// A value of the request the database refuses; the checks before
		// it should have named the field, so it is logged to add one.
		s.log.WarnContext(r.Context(), "auth request held a value the database refused", slog.String("error", err.Error()),
			slog.String("path", r.URL.Path), slog.String("request_id", httpx.RequestID(r.Context())))
		httpx.WriteProblem(w, r, httpx.InvalidData())
	default:
		s.log.ErrorContext(r.Context(), "auth request failed", slog.String("error", err.Error()),
			slog.String("path", r.URL.Path), slog.String("request_id", httpx.RequestID(r.Context())))
		httpx.Error(w, r, http.StatusInternalServerError, "the server failed to answer this request; it has been logged with the request id")
	}
}
