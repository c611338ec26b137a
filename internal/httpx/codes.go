package httpx

import (
	"net/http"
	"strings"
)

// TypeBase prefixes the code of a problem to make its type URI. The URI
// identifies the error class; it is stable, and clients compare it (or the
// code after the prefix), never the title or detail. docs/errors.md lists
// every code.
const TypeBase = "https://abe.dev/errors/"

// The codes of error classes: a problem's type is TypeBase + code, and the
// SDK exposes the code as error.code. Realtime error messages use the same
// codes for the same classes (forbidden, unauthorized, token_expired,
// token_revoked, rate_limited, bad_filter, internal). A code, once
// published, never changes meaning; new classes get new codes.
const (
	// 400
	CodeBadRequest    = "bad_request"    // a malformed query parameter or request
	CodeMalformedBody = "malformed_body" // the body is not one valid JSON value
	CodeUnknownField  = "unknown_field"  // the body has a field the endpoint does not know
	CodeBadFilter     = "bad_filter"     // the filter expression does not compile
	CodeInvalidData   = "invalid_data"   // a value the database cannot store (NUL, bad Unicode)
	CodeInvalidLink   = "invalid_link"   // a verification or reset link that is used, expired or wrong
	// 401
	CodeUnauthorized        = "unauthorized"          // no access token where one is needed
	CodeInvalidToken        = "invalid_token"         // a malformed or forged access token
	CodeTokenExpired        = "token_expired"         // an access token past its expiry: refresh it
	CodeTokenRevoked        = "token_revoked"         // an access token of a session that ended
	CodeInvalidCredentials  = "invalid_credentials"   // wrong email or password
	CodeInvalidRefreshToken = "invalid_refresh_token" // a refresh token that is unknown or expired
	CodeTokenReused         = "token_reused"          // a rotated refresh token presented again
	CodeInvalidMFAToken     = "invalid_mfa_token"     // an mfa_token that is used, expired or wrong
	CodeInvalidMFACode      = "invalid_mfa_code"      // a wrong TOTP or recovery code
	// 403
	CodeForbidden          = "forbidden"           // a rule refuses the request
	CodePermissionRequired = "permission_required" // the caller's roles lack a permission
	CodeMFARequired        = "mfa_required"        // a permission this session has only after MFA
	CodeEmailNotVerified   = "email_not_verified"  // login needs a verified email
	CodeOriginNotAllowed   = "origin_not_allowed"  // a browser origin not in server.cors
	// 404, 405
	CodeNotFound         = "not_found"
	CodeNoSuchEndpoint   = "no_such_endpoint" // no route has this path: a wrong URL or an older server
	CodeMethodNotAllowed = "method_not_allowed"
	// 408
	CodeTimeout = "timeout"
	// 409
	CodeConflict        = "conflict"         // the resource's state does not allow this
	CodeVersionConflict = "version_conflict" // If-Match (or version) is stale; current holds the record
	CodeAlreadyExists   = "already_exists"   // the id, email or name is taken
	CodeNotUnique       = "not_unique"       // a unique field's value is taken
	CodeStillReferenced = "still_referenced" // records point at the record (on_delete: restrict)
	CodeWriteConflict   = "write_conflict"   // a concurrent transaction won: retry as is
	// 410
	CodeChangesPruned = "changes_pruned" // the change log no longer holds that position
	// 413, 415, 422, 429
	CodeBodyTooLarge         = "body_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeValidation           = "validation" // invalid fields, named in errors
	CodeRateLimited          = "rate_limited"
	CodeAccountLocked        = "account_locked" // too many failed logins
	// 5xx
	CodeInternal       = "internal"
	CodeNotImplemented = "not_implemented"
	CodeUnavailable    = "unavailable" // the database is down or the node is full: retry after Retry-After
)

// statusCodes are the codes of problems that name none.
var statusCodes = map[int]string{
	http.StatusBadRequest:            CodeBadRequest,
	http.StatusUnauthorized:          CodeUnauthorized,
	http.StatusForbidden:             CodeForbidden,
	http.StatusNotFound:              CodeNotFound,
	http.StatusMethodNotAllowed:      CodeMethodNotAllowed,
	http.StatusRequestTimeout:        CodeTimeout,
	http.StatusConflict:              CodeConflict,
	http.StatusGone:                  CodeChangesPruned,
	http.StatusRequestEntityTooLarge: CodeBodyTooLarge,
	http.StatusUnsupportedMediaType:  CodeUnsupportedMediaType,
	http.StatusUnprocessableEntity:   CodeValidation,
	http.StatusTooManyRequests:       CodeRateLimited,
	http.StatusInternalServerError:   CodeInternal,
	http.StatusNotImplemented:        CodeNotImplemented,
	http.StatusServiceUnavailable:    CodeUnavailable,
}

// StatusCode is the code of a problem of this status that names none.
func StatusCode(status int) string {
	if c, ok := statusCodes[status]; ok {
		return c
	}
	if status >= 500 {
		return CodeInternal
	}
	return CodeBadRequest
}

// TypeURI is the problem type of a code.
func TypeURI(code string) string { return TypeBase + code }

// CodeOf is the code of a problem type URI, or "" for another type.
func CodeOf(typeURI string) string {
	c, ok := strings.CutPrefix(typeURI, TypeBase)
	if !ok {
		return ""
	}
	return c
}
