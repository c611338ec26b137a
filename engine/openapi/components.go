package openapi

import "fmt"

// errorResponse is a shared problem answer of one status.
type errorResponse struct {
	code        int
	name        string
	description string
	// header names a component header the answer carries, if any.
	header, headerName string
}

// errorResponses are the problem answers operations refer to by status.
func errorResponses() []errorResponse {
	return []errorResponse{
		{code: 400, name: "BadRequest", description: "The request is malformed: invalid JSON, unknown fields, or an invalid parameter."},
		{code: 401, name: "Unauthorized", description: "Missing, invalid or expired credentials.",
			header: "WWW-Authenticate", headerName: "WWWAuthenticate"},
		{code: 403, name: "Forbidden", description: "The rules or the caller's permissions do not allow this, or the email is not verified."},
		{code: 404, name: "NotFound", description: "Not found, or not readable by the caller."},
		{code: 409, name: "Conflict", description: "Conflicts with what is stored: a taken unique value or email, or a stale version."},
		{code: 410, name: "Gone", description: "The change log no longer keeps changes this old: refetch the records, then follow the changes from the newest position."},
		{code: 413, name: "PayloadTooLarge", description: "The body is over server.body_limit."},
		{code: 415, name: "UnsupportedMediaType", description: "The body is not application/json."},
		{code: 422, name: "UnprocessableEntity", description: "Invalid fields; errors names each of them."},
		{code: 429, name: "TooManyRequests", description: "Throttled: a rate limit or the delay after failed logins.",
			header: "Retry-After", headerName: "RetryAfter"},
	}
}

// errorResponseName is the component name of the problem answer of code.
func errorResponseName(code int) string {
	for _, r := range errorResponses() {
		if r.code == code {
			return r.name
		}
	}
	// Operations are written in this package with the codes above; another
	// code is a mistake here, not in the configuration.
	panic(fmt.Sprintf("openapi: no shared response for status %d", code))
}

func (r errorResponse) response() *object {
	resp := obj("description", r.description)
	if r.header != "" {
		resp.set("headers", obj(r.header, headerRef(r.headerName)))
	}
	return resp.set("content", obj("application/problem+json", obj("schema", problem())))
}

// problemResponse is an application/problem+json answer.
func problemResponse(description string, s any) *object {
	return obj("description", description, "content", obj("application/problem+json", obj("schema", s)))
}

// problem refers to the Problem schema.
func problem() *object { return ref("Problem") }

// sharedHeaders are the response headers operations refer to.
func sharedHeaders() *object {
	return obj(
		"ETag", obj("description", `The record's version, quoted: "<version>". Send it back in If-Match or If-None-Match.`,
			"schema", obj("type", "string", "pattern", `^"[0-9]+"$`)),
		"Location", obj("description", "The URL of the new resource.",
			"schema", obj("type", "string", "format", "uri-reference")),
		"WWWAuthenticate", obj("description", `Bearer error="invalid_token" when a token was sent and refused.`,
			"schema", obj("type", "string")),
		"RetryAfter", obj("description", "Seconds to wait before trying again.",
			"schema", obj("type", "integer", "minimum", 0)),
	)
}

// sharedParameters are the parameters several operations take.
func sharedParameters() *object {
	return obj(
		"RecordId", pathParam("id", "The record's id.", uuid()),
		"UserId", pathParam("id", "The account's id.", uuid()),
		"IfMatch", obj("name", "If-Match", "in", "header",
			"description", `Makes the write conditional on the version: "<version>" as the ETag gave it. A stale version answers 409 with the current record. Without it, the write applies to the current row.`,
			"schema", obj("type", "string")),
		"IfNoneMatch", obj("name", "If-None-Match", "in", "header",
			"description", `The ETag of a copy the client holds; if the record still has that version, the answer is 304 without a body.`,
			"schema", obj("type", "string")),
		"Cursor", queryParam("cursor", "The next_cursor of the previous page.", obj("type", "string")),
		"Limit", queryParam("limit", "How many items a page holds at most.",
			obj("type", "integer", "minimum", 1, "maximum", 500, "default", 50)),
	)
}

func uuid() *object { return obj("type", "string", "format", "uuid") }

func dateTime() *object { return obj("type", "string", "format", "date-time") }

func str() *object { return obj("type", "string") }

func integer() *object { return obj("type", "integer") }

func boolean() *object { return obj("type", "boolean") }

func arrayOf(items any) *object { return obj("type", "array", "items", items) }

// closed is an object schema that refuses members it does not name, as the
// server refuses unknown fields.
func closed(properties *object, required ...string) *object {
	return obj("type", "object", "required", stringList(required), "properties", properties, "additionalProperties", false)
}

// open is an object schema of an answer, which may gain members.
func open(properties *object, required ...string) *object {
	return obj("type", "object", "required", stringList(required), "properties", properties)
}

// stringList makes a JSON array of strings, or nil (left out) for none.
func stringList(list []string) any {
	if len(list) == 0 {
		return nil
	}
	out := make([]any, len(list))
	for i, n := range list {
		out[i] = n
	}
	return out
}

// sharedSchemas are the component schemas that do not depend on the
// configuration, in the order the document lists them.
func sharedSchemas() *object {
	return obj(
		"Problem", obj(
			"type", "object",
			"description", "An RFC 9457 problem detail: the body of every error answer.",
			"required", []any{"type", "title", "status"},
			"properties", obj(
				"type", obj("type", "string", "format", "uri", "description", "The error class, https://abe.dev/errors/<code>; the codes are listed in docs/errors.md."),
				"title", obj("type", "string", "description", "The status in words."),
				"status", obj("type", "integer", "minimum", 400, "maximum", 599),
				"detail", obj("type", "string", "description", "What went wrong and how to fix it."),
				"errors", obj("type", "array", "items", ref("FieldError"), "description", "Each invalid field."),
				"request_id", obj("type", "string", "description", "The id of the request in the server's logs."),
				"index", obj("type", "integer", "minimum", 0, "description", "In a batch: the index of the operation that failed."),
				"current", obj("description", "In a version conflict: the record as it is now, to merge with."),
			),
		),
		"FieldError", closed(obj(
			"field", obj("type", "string", "description", "The field, or a path into the body."),
			"message", str(),
		), "field", "message"),
		"OpPath", obj(
			"type", "array",
			"description", "A field, then keys and indexes inside a json field.",
			"minItems", 1,
			"items", obj("type", []any{"string", "integer"}),
		),
		"OpSet", closed(obj(
			"op", obj("const", "set"),
			"path", ref("OpPath"),
			"value", obj("description", "The new value; null clears it."),
		), "op", "path", "value"),
		"OpListInsert", closed(obj(
			"op", obj("const", "listInsert"),
			"path", ref("OpPath"),
			"value", obj("description", "The item; an equal item is removed first, so the op is idempotent."),
			"where", obj("description", "Where the item goes; default append.", "oneOf", []any{
				obj("enum", []any{"append", "prepend"}),
				closed(obj("before", obj("description", "Insert before this item.")), "before"),
				closed(obj("after", obj("description", "Insert after this item.")), "after"),
			}),
		), "op", "path", "value"),
		"OpListRemove", closed(obj(
			"op", obj("const", "listRemove"),
			"path", ref("OpPath"),
			"value", obj("description", "The item to remove."),
		), "op", "path", "value"),
		"Op", obj(
			"description", "One change to a record.",
			"oneOf", []any{ref("OpSet"), ref("OpListInsert"), ref("OpListRemove")},
			"discriminator", obj("propertyName", "op", "mapping", obj(
				"set", "#/components/schemas/OpSet",
				"listInsert", "#/components/schemas/OpListInsert",
				"listRemove", "#/components/schemas/OpListRemove",
			)),
		),
		"PatchOps", closed(obj("ops", arrayOf(ref("Op"))), "ops"),
		"User", open(obj(
			"id", uuid(),
			"email", obj("type", "string", "format", "email"),
			"name", str(),
			"email_verified", boolean(),
			"mfa_enabled", boolean(),
			"roles", arrayOf(str()),
			"version", integer(),
			"created_at", dateTime(),
			"updated_at", dateTime(),
		), "id", "email", "name", "email_verified", "roles", "version", "created_at", "updated_at"),
		"TokenAnswer", open(obj(
			"user", ref("User"),
			"access_token", obj("type", "string", "description", "A JWT for the Authorization header."),
			"refresh_token", obj("type", "string", "description", "Rotated on every refresh; also set as the abe_refresh cookie."),
			"token_type", obj("const", "Bearer"),
			"expires_in", obj("type", "integer", "description", "Seconds until the access token expires."),
		), "user", "access_token", "refresh_token", "token_type", "expires_in"),
		"MFAChallenge", open(obj(
			"mfa_required", obj("const", true),
			"mfa_token", obj("type", "string", "description", "Send it to /api/auth/mfa/verify with a code."),
			"methods", arrayOf(obj("enum", []any{"totp", "recovery_code"})),
			"expires_in", obj("type", "integer", "description", "Seconds the mfa_token stays valid."),
		), "mfa_required", "mfa_token", "methods", "expires_in"),
		"MFAVerifyRequest", closed(obj(
			"mfa_token", str(),
			"code", obj("type", "string", "pattern", "^[0-9 ]{6,8}$", "description", "The 6 digits the authenticator app shows."),
			"recovery_code", obj("type", "string", "description", "One of the recovery codes, like abcde-fghij."),
		), "mfa_token"),
		"TOTPSetupRequest", closed(obj("restart", obj("type", "boolean", "description", "Replace a pending setup with a new secret."))),
		"TOTPSetup", open(obj(
			"secret", obj("type", "string", "description", "The key in base32, for typing into an app."),
			"otpauth_url", obj("type", "string", "description", "The otpauth://totp/ URL the QR code holds."),
			"qr_code", obj("type", "string", "description", "A PNG data URL of the QR code."),
		), "secret", "otpauth_url", "qr_code"),
		"CodeRequest", closed(obj("code", obj("type", "string", "description", "The 6 digits the authenticator app shows.")), "code"),
		"MFADisableRequest", closed(obj(
			"password", str(),
			"code", obj("type", "string", "description", "The 6 digits the authenticator app shows."),
			"recovery_code", obj("type", "string", "description", "One of the recovery codes."),
		), "password"),
		"MFAEnabled", open(obj("enabled", obj("const", true), "recovery_codes", arrayOf(str())), "enabled", "recovery_codes"),
		"RecoveryCodes", open(obj("recovery_codes", arrayOf(str())), "recovery_codes"),
		"StatusAnswer", open(obj(
			"status", obj("type", "string", "description", "What happened, like verification_sent."),
			"detail", str(),
		), "status"),
		"RegisterRequest", closed(obj(
			"email", obj("type", "string", "format", "email"),
			"password", str(),
			"name", str(),
		), "email", "password"),
		"LoginRequest", closed(obj(
			"email", obj("type", "string", "format", "email"),
			"password", str(),
		), "email", "password"),
		"RefreshTokenRequest", closed(obj(
			"refresh_token", obj("type", "string", "description", "Leave out to use the abe_refresh cookie."),
		)),
		"ChangePasswordRequest", closed(obj("current_password", str(), "new_password", str()), "current_password", "new_password"),
		"ForgotPasswordRequest", closed(obj("email", obj("type", "string", "format", "email")), "email"),
		"ResetPasswordRequest", closed(obj("token", str(), "password", str()), "token", "password"),
		"VerifyEmailRequest", closed(obj("token", str()), "token"),
		"JWKS", open(obj("keys", arrayOf(open(obj(
			"kty", str(), "kid", str(), "alg", str(), "use", str(),
			"crv", str(), "x", str(), "y", str(), "n", str(), "e", str(),
		), "kty", "kid", "alg", "use"))), "keys"),
		"UserPage", open(obj(
			"items", arrayOf(ref("User")),
			"next_cursor", obj("type", "string", "description", "Empty on the last page."),
		), "items", "next_cursor"),
		"Role", open(obj(
			"name", str(),
			"description", str(),
			"permissions", arrayOf(str()),
			"default", obj("type", "boolean", "description", "Given to every new account."),
			"builtin", obj("type", "boolean", "description", "Declared in abe.yaml: it cannot be changed or deleted through the API."),
			"source", obj("enum", []any{"config", "api"}, "description", "config: declared in abe.yaml, read-only here; api: managed through the API."),
		), "name", "description", "permissions", "default", "builtin", "source"),
		"NewRole", closed(obj(
			"name", str(),
			"description", str(),
			"permissions", arrayOf(str()),
			"default", boolean(),
		), "name"),
		"RolePatch", closed(obj(
			"description", str(),
			"permissions", arrayOf(str()),
			"default", boolean(),
		)),
		"RoleList", open(obj("items", arrayOf(ref("Role"))), "items"),
		"UserRoles", open(obj("roles", arrayOf(str())), "roles"),
		"AssignRoleRequest", closed(obj("role", str()), "role"),
		"SecurityEvent", open(obj(
			"id", integer(),
			"user_id", obj("type", []any{"string", "null"}, "format", "uuid"),
			"type", obj("type", "string", "description", "registered, login_succeeded, login_failed, lockout, unlocked, token_reuse, logout, logout_all, password_changed, password_reset, email_verified, role_created, role_updated, role_deleted, role_assigned, role_removed, user_created, email_verified_by_admin, session_revoked, admin_logout_all, rules_explained or realtime_inspected; the events of admin actions have details.actor, the admin's user id."),
			"ip", str(),
			"user_agent", str(),
			"details", obj("type", "object"),
			"at", dateTime(),
		), "id", "user_id", "type", "ip", "user_agent", "details", "at"),
		"SecurityEventPage", open(obj(
			"items", arrayOf(ref("SecurityEvent")),
			"next_cursor", obj("type", "string", "description", "Empty on the last page."),
		), "items", "next_cursor"),
		"ExplainRequest", closed(obj(
			"collection", str(),
			"operation", obj("enum", []any{"list", "read", "create", "update", "delete"}),
			"principal", obj("description", `Exactly one of {"anonymous": true}, {"user_id"}, {"email"} or {"roles", "id"?}.`, "type", "object",
				"additionalProperties", false, "properties", obj(
					"anonymous", boolean(), "user_id", uuid(), "email", str(), "roles", arrayOf(str()), "id", uuid())),
			"record_id", str(),
			"body", obj("type", []any{"object", "null"}, "description", "create and update: the draft, or a partial record or {ops}."),
			"query", obj("type", "string", "description", "list and read: the request's query parameters."),
		), "collection", "operation", "principal"),
		"ExplainNode", open(obj(
			"id", integer(),
			"expr", str(),
			"start", integer(),
			"end", integer(),
			"evaluated", boolean(),
			"value", obj("description", "The subexpression's value, as JSON."),
			"error", str(),
			"children", arrayOf(ref("ExplainNode")),
		), "id", "expr", "start", "end", "evaluated", "value"),
		"ExplainAnswer", open(obj(
			"collection", str(),
			"operation", str(),
			"principal", obj("type", "object"),
			"record", obj("type", []any{"object", "null"}),
			"rule", str(),
			"allowed", boolean(),
			"reason", str(),
			"tree", obj("oneOf", []any{ref("ExplainNode"), obj("type", "null")}),
			"loads", arrayOf(obj("type", "object")),
			"read_rule", obj("type", "object"),
			"fields", arrayOf(obj("type", "object")),
			"hidden", arrayOf(str()),
			"refused", arrayOf(str()),
			"sql", obj("type", []any{"object", "null"}, "description", "list: {text, args}."),
			"api", obj("type", []any{"object", "null"}, "description", "list and read: {method, path, status, body}, the real API's answer as the principal; null for writes."),
			"notes", arrayOf(str()),
		), "collection", "operation", "principal", "rule", "allowed", "tree", "loads", "fields", "hidden", "refused", "sql", "api", "notes"),
		"Health", open(obj("status", obj("const", "ok")), "status"),
		"Readiness", open(obj(
			"status", obj("enum", []any{"ready", "unavailable"}),
			"checks", obj("type", "object", "additionalProperties", open(obj(
				"status", obj("enum", []any{"up", "down"}),
				"required", obj("type", "boolean", "description", "A required dependency that is down makes the node unavailable (503)."),
				"latency_ms", obj("type", "number"),
				"error", str(),
			), "status", "latency_ms")),
		), "status", "checks"),
	)
}
