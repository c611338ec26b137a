package openapi

// maxBatch is the most operations one batch may hold, as the server
// enforces.
const maxBatch = 100

// batch adds POST /api/batch and its schemas, which name the collections.
func (g *generator) batch(paths *object) error {
	collections := make([]any, len(g.cfg.Collections))
	for i, c := range g.cfg.Collections {
		collections[i] = c.Name
	}
	if err := g.addSchema("BatchOp", "the built-in schema BatchOp", closed(obj(
		"collection", obj("type", "string", "enum", collections),
		"action", obj("enum", []any{"create", "update", "replace", "delete"}),
		"id", obj("type", "string", "format", "uuid", "description", "The record; for create, optional."),
		"version", obj("type", "integer", "description", "Makes the operation conditional on this version, as If-Match does."),
		"data", obj("type", "object", "description", "The body of a create, replace or update: the collection's Create or Update schema."),
		"ops", obj("type", "array", "items", ref("Op"), "description", "Operations, for an update instead of data."),
	), "collection", "action")); err != nil {
		return err
	}
	if err := g.addSchema("BatchRequest", "the built-in schema BatchRequest", closed(obj(
		"ops", obj("type", "array", "items", ref("BatchOp"), "maxItems", maxBatch),
	), "ops")); err != nil {
		return err
	}
	if err := g.addSchema("BatchAnswer", "the built-in schema BatchAnswer", open(obj(
		"results", arrayOf(open(obj(
			"status", obj("type", "integer", "description", "The status the operation would have had alone."),
			"record", obj("type", "object", "description", "The record written; left out for deletes."),
		), "status")),
	), "results")); err != nil {
		return err
	}

	failed := problemResponse("The batch failed and nothing was written; index names the operation that failed.",
		obj("allOf", []any{problem(), obj("required", []any{"index"})}))
	paths.set("/api/batch", obj("post", operation("batch", "batch", "Run several writes in one transaction").
		set("description", "All of the operations happen, or none: each is checked by its collection's rules, in order.").
		set("requestBody", jsonBody(ref("BatchRequest"))).
		set("responses", responses(obj(
			"200", jsonResponse("Every operation succeeded, results in order.", ref("BatchAnswer")),
			"400", failed,
			"401", responseRef("Unauthorized"),
			"403", failed,
			"404", failed,
			"409", failed,
		), 413, 415).set("422", failed).set("429", responseRef("TooManyRequests")))))
	return nil
}

// tokenAnswer is a successful login, registration or refresh.
func tokenAnswer(description string) *object {
	return obj(
		"description", description+" The refresh token is also set as the abe_refresh cookie (HttpOnly, Path=/api/auth).",
		"headers", obj("Set-Cookie", obj("schema", str())),
		"content", obj("application/json", obj("schema", ref("TokenAnswer"))),
	)
}

// refreshCookie is the cookie browsers send instead of a refresh_token.
func refreshCookie() *object {
	return obj("name", "abe_refresh", "in", "cookie",
		"description", "The refresh token, for browsers; used when the body has none.",
		"schema", str())
}

// optionalBody is a JSON body that may be left out.
func optionalBody(s any) *object {
	return obj("required", false, "content", obj("application/json", obj("schema", s)))
}

// tokenQuery is the token of a link in an email.
func tokenQuery() *object {
	return obj("name", "token", "in", "query", "required", true, "description", "The token of the emailed link.", "schema", str())
}

// authPaths adds the account endpoints under /api/auth.
func authPaths(paths *object) {
	paths.set("/api/auth/register", obj("post", operation("register", "auth", "Create an account").
		set("security", public()).
		set("requestBody", jsonBody(ref("RegisterRequest"))).
		set("responses", responses(obj(
			"201", tokenAnswer("The account, logged in."),
			"202", jsonResponse("With auth.require_email_verification: a link was mailed to complete the registration (the same answer when the email is taken).", ref("StatusAnswer")),
		), 400, 409, 413, 415, 422, 429))))
	paths.set("/api/auth/login", obj("post", operation("login", "auth", "Log in with email and password").
		set("security", public()).
		set("description", "For an account with two-factor authentication the answer is an MFAChallenge instead of tokens: send its mfa_token with a code to /api/auth/mfa/verify.").
		set("requestBody", jsonBody(ref("LoginRequest"))).
		set("responses", responses(obj("200", obj(
			"description", "Logged in (the refresh token is also set as the abe_refresh cookie), or a second factor is needed.",
			"headers", obj("Set-Cookie", obj("schema", str())),
			"content", obj("application/json", obj("schema", obj("oneOf", []any{ref("TokenAnswer"), ref("MFAChallenge")}))),
		)), 400, 401, 403, 413, 415, 422, 429))))
	paths.set("/api/auth/mfa/verify", obj("post", operation("verifyMFA", "auth", "Complete a login with a code or a recovery code").
		set("description", "The mfa_token works for one successful verify, expires after auth.mfa.challenge_ttl and ends after 5 wrong codes. Wrong codes count as failed logins of the account.").
		set("security", public()).
		set("requestBody", jsonBody(ref("MFAVerifyRequest"))).
		set("responses", responses(obj("200", tokenAnswer("Logged in; access tokens carry amr [pwd, otp].")), 400, 401, 413, 415, 422, 429))))
	paths.set("/api/auth/mfa/totp/setup", obj("post", operation("setupTOTP", "auth", "Start enrolling an authenticator app").
		set("description", "Makes a pending secret; nothing is enforced until enable. A second setup while one is pending needs restart: true.").
		set("requestBody", optionalBody(ref("TOTPSetupRequest"))).
		set("responses", responses(obj("200", jsonResponse("The secret, its otpauth URL and a QR code.", ref("TOTPSetup"))), 400, 401, 409, 413, 415, 429))))
	paths.set("/api/auth/mfa/totp/enable", obj("post", operation("enableTOTP", "auth", "Turn two-factor authentication on with a code").
		set("requestBody", jsonBody(ref("CodeRequest"))).
		set("responses", responses(obj("200", jsonResponse("On; the recovery codes are shown this once.", ref("MFAEnabled"))), 400, 401, 409, 413, 415, 422, 429))))
	paths.set("/api/auth/mfa/totp/disable", obj("post", operation("disableTOTP", "auth", "Turn two-factor authentication off").
		set("requestBody", jsonBody(ref("MFADisableRequest"))).
		set("responses", responses(obj("204", emptyResponse("Off.")), 400, 401, 403, 409, 413, 415, 422, 429))))
	paths.set("/api/auth/mfa/recovery-codes", obj("post", operation("regenerateRecoveryCodes", "auth", "Replace the recovery codes").
		set("requestBody", jsonBody(ref("CodeRequest"))).
		set("responses", responses(obj("200", jsonResponse("The new codes; the old ones no longer work.", ref("RecoveryCodes"))), 400, 401, 409, 413, 415, 422, 429))))
	paths.set("/api/auth/refresh", obj("post", operation("refresh", "auth", "Trade a refresh token for new tokens").
		set("description", "The refresh token is rotated on every use; presenting a used one after a short grace period revokes the whole session.").
		set("security", public()).
		set("parameters", []any{refreshCookie()}).
		set("requestBody", optionalBody(ref("RefreshTokenRequest"))).
		set("responses", responses(obj("200", tokenAnswer("New tokens.")), 400, 401, 413, 415, 429))))
	paths.set("/api/auth/logout", obj("post", operation("logout", "auth", "End this session").
		set("security", optionalBearer()).
		set("parameters", []any{refreshCookie()}).
		set("requestBody", optionalBody(ref("RefreshTokenRequest"))).
		set("responses", responses(obj("204", emptyResponse("Logged out; the refresh token and the access token are revoked.")), 400, 401, 413, 415, 429))))
	paths.set("/api/auth/logout-all", obj("post", operation("logoutAll", "auth", "End every session of the account").
		set("responses", responses(obj("204", emptyResponse("Every session ended.")), 401, 429))))
	paths.set("/api/auth/me", obj("get", operation("me", "auth", "The caller's account").
		set("responses", responses(obj("200", jsonResponse("The account.", ref("User"))), 401, 429))))
	paths.set("/api/auth/password", obj("post", operation("changePassword", "auth", "Change the password").
		set("requestBody", jsonBody(ref("ChangePasswordRequest"))).
		set("responses", responses(obj("204", emptyResponse("Changed; other sessions ended.")), 400, 401, 413, 415, 422, 429))))
	paths.set("/api/auth/password/forgot", obj("post", operation("forgotPassword", "auth", "Mail a password reset link").
		set("security", public()).
		set("requestBody", jsonBody(ref("ForgotPasswordRequest"))).
		set("responses", responses(obj("202", jsonResponse("The same answer whether or not the email has an account.", ref("StatusAnswer"))), 400, 413, 415, 422, 429))))
	paths.set("/api/auth/password/reset", obj(
		"get", operation("resetPasswordPage", "auth", "The page with the new-password form").
			set("security", public()).
			set("parameters", []any{tokenQuery()}).
			set("responses", obj("200", htmlResponse("The form."))),
		"post", operation("resetPassword", "auth", "Set a new password with a reset token").
			set("security", public()).
			set("requestBody", obj("required", true, "content", obj(
				"application/json", obj("schema", ref("ResetPasswordRequest")),
				"application/x-www-form-urlencoded", obj("schema", ref("ResetPasswordRequest")),
			))).
			set("responses", responses(obj(
				"200", htmlResponse("The form of the reset page was sent: a page saying how it went."),
				"204", emptyResponse("Changed; every session ended."),
			), 400, 413, 415, 422, 429)),
	))
	paths.set("/api/auth/verify-email", obj(
		"get", operation("verifyEmailPage", "auth", "Verify an email from the emailed link").
			set("security", public()).
			set("parameters", []any{tokenQuery()}).
			set("responses", obj("200", htmlResponse("A page saying whether the email is verified."))),
		"post", operation("verifyEmail", "auth", "Verify an email with its token").
			set("security", public()).
			set("requestBody", jsonBody(ref("VerifyEmailRequest"))).
			set("responses", responses(obj("200", jsonResponse("The verified account.", ref("User"))), 400, 413, 415, 422, 429)),
	))
	paths.set("/api/auth/verify-email/send", obj("post", operation("sendVerificationEmail", "auth", "Mail a new verification link").
		set("responses", responses(obj("202", jsonResponse("A new link is on its way.", ref("StatusAnswer"))), 401, 429))))
	paths.set("/api/auth/jwks.json", obj("get", operation("jwks", "auth", "The public keys that verify access tokens").
		set("security", public()).
		set("responses", obj("200", jsonResponse("The keys; none when tokens are signed with HS256.", ref("JWKS"))))))
}

// adminPaths adds the administration endpoints under /api/admin.
func adminPaths(paths *object) {
	needs := func(perm string) string { return "Needs the " + perm + " permission." }
	paths.set("/api/admin/users", obj("post", createUser(needs("users:manage")), "get", operation("listUsers", "admin", "List accounts").
		set("description", needs("users:manage")).
		set("parameters", []any{
			queryParam("email", "Only the accounts whose email contains this, without case.", str()),
			paramRef("Limit"),
			queryParam("cursor", "The next_cursor of the previous page.", uuid()),
		}).
		set("responses", responses(obj("200", jsonResponse("A page of accounts, each with its lockout state.", adminUserPage())), 400, 401, 403, 429))))
	paths.set("/api/admin/users/{id}/unlock", obj(
		"parameters", []any{paramRef("UserId")},
		"post", operation("unlockUser", "admin", "Lift a lockout after failed logins").
			set("description", needs("users:manage")).
			set("responses", responses(obj("204", emptyResponse("Unlocked.")), 401, 403, 404, 429)),
	))
	paths.set("/api/admin/users/{id}/mfa", obj(
		"parameters", []any{paramRef("UserId")},
		"delete", operation("resetMFA", "admin", "Turn off a user's two-factor authentication").
			set("description", needs("users:manage")+" For a user who lost the device; their sessions end.").
			set("responses", responses(obj("204", emptyResponse("Off.")), 401, 403, 404, 409, 429)),
	))
	paths.set("/api/admin/users/{id}/roles", obj(
		"parameters", []any{paramRef("UserId")},
		"get", operation("listUserRoles", "admin", "The roles of an account").
			set("description", needs("users:manage")).
			set("responses", responses(obj("200", jsonResponse("The roles.", ref("UserRoles"))), 401, 403, 404, 429)),
		"post", operation("assignUserRole", "admin", "Give an account a role").
			set("description", needs("users:manage")).
			set("requestBody", jsonBody(ref("AssignRoleRequest"))).
			set("responses", responses(obj("204", emptyResponse("Assigned.")), 400, 401, 403, 404, 413, 415, 422, 429)),
	))
	paths.set("/api/admin/users/{id}/roles/{role}", obj(
		"parameters", []any{paramRef("UserId"), pathParam("role", "The role's name.", str())},
		"delete", operation("removeUserRole", "admin", "Take a role from an account").
			set("description", needs("users:manage")).
			set("responses", responses(obj("204", emptyResponse("Removed.")), 401, 403, 404, 429)),
	))
	paths.set("/api/admin/roles", obj(
		"get", operation("listRoles", "admin", "List roles").
			set("description", needs("roles:manage")).
			set("responses", responses(obj("200", jsonResponse("Every role.", ref("RoleList"))), 401, 403, 429)),
		"post", operation("createRole", "admin", "Create a role").
			set("description", needs("roles:manage")).
			set("requestBody", jsonBody(ref("NewRole"))).
			set("responses", responses(obj("201", obj(
				"description", "The new role.",
				"headers", obj("Location", headerRef("Location")),
				"content", obj("application/json", obj("schema", ref("Role"))),
			)), 400, 401, 403, 409, 413, 415, 422, 429)),
	))
	paths.set("/api/admin/roles/{name}", obj(
		"parameters", []any{pathParam("name", "The role's name.", str())},
		"get", operation("getRole", "admin", "Read a role").
			set("description", needs("roles:manage")).
			set("responses", responses(obj("200", jsonResponse("The role.", ref("Role"))), 401, 403, 404, 429)),
		"patch", operation("updateRole", "admin", "Change a role").
			set("description", needs("roles:manage")+" Roles declared in abe.yaml are read-only here (409).").
			set("requestBody", jsonBody(ref("RolePatch"))).
			set("responses", responses(obj("200", jsonResponse("The role as changed.", ref("Role"))), 400, 401, 403, 404, 409, 413, 415, 422, 429)),
		"delete", operation("deleteRole", "admin", "Delete a role").
			set("description", needs("roles:manage")+" Roles declared in abe.yaml cannot be deleted (409).").
			set("responses", responses(obj("204", emptyResponse("Deleted.")), 401, 403, 404, 409, 429)),
	))
	paths.set("/api/admin/security-events", obj("get", operation("listSecurityEvents", "admin", "The audit trail, newest first").
		set("description", needs("security:read")).
		set("parameters", []any{
			queryParam("user_id", "Only events of this account.", uuid()),
			queryParam("type", "Only events of this type, like login_failed; a trailing * selects a prefix, like role_*.", str()),
			queryParam("since", "Only events at or after this time.", dateTime()),
			queryParam("until", "Only events before this time.", dateTime()),
			paramRef("Limit"),
			paramRef("Cursor"),
		}).
		set("responses", responses(obj("200", jsonResponse("A page of events.", ref("SecurityEventPage"))), 400, 401, 403, 429))))
	adminAccountPaths(paths, needs)
	paths.set("/api/admin/rules/explain", obj("post", operation("explainRule", "admin", "Why a rule allows or refuses an operation for a principal").
		set("description", needs("rules:explain")+" The rules playground: evaluates, never writes; for reads it also gives the real API's answer as the principal. Each call is a rules_explained security event.").
		set("requestBody", jsonBody(ref("ExplainRequest"))).
		set("responses", responses(obj("200", jsonResponse("The explanation.", ref("ExplainAnswer"))), 400, 401, 403, 404, 413, 415, 422, 429))))

	// The admin console's views of the node: overview, schema, realtime
	// inspector (docs/admin-api.md).
	count := obj("type", "integer", "minimum", 0)
	rule := obj("type", []any{"string", "null"}, "description", "The CEL expression; null denies everyone but holders of *.")
	paths.set("/api/admin/overview", obj("get", operation("adminOverview", "admin", "The state of this node at a glance").
		set("description", needs("admin:console")+" Readiness as /readyz checks it, HTTP requests and 5xx answers of each of the last 60 whole minutes, realtime connections and subscriptions, and the job queue.").
		set("responses", responses(obj("200", jsonResponse("The overview.", open(obj(
			"version", str(),
			"started_at", dateTime(),
			"ready", open(obj(
				"status", obj("enum", []any{"ok", "degraded", "down"}, "description", "down: a required dependency is down (/readyz answers 503); degraded: another one is."),
				"checks", arrayOf(open(obj("name", str(), "status", obj("enum", []any{"up", "down"}), "required", boolean(),
					"latency_ms", obj("type", "number"), "error", str()), "name", "status", "required")),
			), "status", "checks"),
			"http", open(obj("minutes", arrayOf(open(obj("at", dateTime(), "requests", count, "errors", count), "at", "requests", "errors"))), "minutes"),
			"realtime", open(obj("connections", count, "subscriptions", count), "connections", "subscriptions"),
			"jobs", obj("type", []any{"object", "null"}, "description", "null when the queue cannot be counted.", "properties", obj(
				"available", count, "running", count, "retryable", count, "scheduled", count, "discarded", count,
				"cancelled", count, "completed", count, "failures_last_hour", count)),
		), "version", "started_at", "ready", "http", "realtime", "jobs"))), 401, 403, 429))))
	paths.set("/api/admin/schema", obj("get", operation("adminSchema", "admin", "The collections in force and the migration the database needs").
		set("description", needs("admin:console")+" The collections as abe.yaml declares them (after the latest reload), and plan: what `abe migrate plan` prints for the running database.").
		set("responses", responses(obj("200", jsonResponse("The schema.", open(obj(
			"config_path", str(),
			"collections", arrayOf(open(obj(
				"name", str(), "renamed_from", str(), "realtime", boolean(), "line", integer(),
				"fields", arrayOf(open(obj("name", str(), "type", str(), "required", boolean(), "unique", boolean(), "many", boolean(),
					"nullable", boolean(), "default", obj(), "min", obj("type", "number"), "max", obj("type", "number"), "pattern", str(),
					"values", arrayOf(str()), "collection", str(), "on_delete", str(), "renamed_from", str(), "max_size", integer(),
					"mime_types", arrayOf(str())), "name", "type")),
				"indexes", arrayOf(open(obj("name", str(), "fields", arrayOf(str()), "unique", boolean()), "fields")),
				"rules", open(obj("list", rule, "read", rule, "create", rule, "update", rule, "delete", rule)),
				"field_rules", obj("type", "object", "additionalProperties", open(obj("read", rule, "update", rule))),
				"files", arrayOf(open(obj("field", str(), "many", boolean(), "max_size", integer(), "mime_types", arrayOf(str())), "field", "max_size")),
			), "name", "fields", "indexes", "rules", "field_rules", "files")),
			"plan", open(obj(
				"in_sync", boolean(),
				"text", obj("type", "string", "description", "What `abe migrate plan` prints."),
				"steps", arrayOf(open(obj("kind", str(), "summary", str(), "sql", arrayOf(str()), "destructive", boolean(), "warning", str()), "kind", "summary", "sql")),
				"statements", arrayOf(str()),
				"error", obj("type", "string", "description", "Why there is no plan (the database is down, live objects conflict)."),
			), "in_sync", "text", "steps", "statements"),
		), "config_path", "collections", "plan"))), 401, 403, 429))))
	paths.set("/api/admin/realtime/inspect", obj("get", operation("inspectRealtime", "admin", "Stream a collection's realtime events as a principal receives them").
		set("description", needs("admin:console")+" "+needs("rules:explain")+" A text/event-stream: first the subscription's ack, then each event of the realtime protocol (docs/realtime.md) as that principal would receive it, its seq as the event id; comments keep it open. It ends when the client goes or the admin's token expires or is revoked. Each call is a realtime_inspected security event.").
		set("parameters", []any{
			obj("name", "collection", "in", "query", "required", true, "description", "A collection with realtime: true.", "schema", str()),
			queryParam("filter", "A filter, as in a subscribe message.", str()),
			obj("name", "as", "in", "query", "required", true, "description", "anonymous, user:<id> or roles:<a,b>.", "schema", str()),
		}).
		set("responses", responses(obj("200", obj("description", "The stream.", "content", obj("text/event-stream", obj("schema", str())))), 400, 401, 403, 429))))
	adminRecordPaths(paths, needs("records:admin"))
}

// adminRecordPaths adds the admin records API (docs/admin-api.md,
// "Records"): the shapes of /api/collections/{name}/records for every
// collection, with no rule applied.
func adminRecordPaths(paths *object, needs string) {
	const base = "/api/admin/collections/{name}/records"
	name := pathParam("name", "The collection.", str())
	record := obj("type", "object", "description", "A record of the collection, every field included (no field read rule applies).")
	desc := func(s string) string {
		return needs + " No rule and no field rule applies; validation, versions, the change log and realtime do. " + s
	}
	write := func(event string) string {
		return "Each success is an " + event + " security event with the admin as actor."
	}
	one := obj("description", "The record.", "headers", obj("ETag", headerRef("ETag")), "content", obj("application/json", obj("schema", record)))
	conflict := problemResponse("The version is stale; current holds the record as it is now, every field included.", problem())
	paths.set(base, obj(
		"get", operation("adminListRecords", "admin", "List any collection's records, past its rules").
			set("description", desc("Each request is an admin.records.read security event with the collection and the filter.")).
			set("parameters", []any{name,
				queryParam("filter", "A CEL expression over the fields, as for /api/collections/{name}/records; it sees every field.", str()),
				queryParam("sort", "Keys separated by commas, - for descending; -created_at by default.", str()),
				paramRef("Limit"), paramRef("Cursor"),
				queryParam("fields", "Only these fields, separated by commas.", str()),
				queryParam("expand", "Relation fields whose records to embed, separated by commas.", str()),
				queryParam("count", "Also count every matching record, as total.", boolean()),
			}).
			set("responses", responses(obj("200", jsonResponse("A page of records.", open(obj(
				"items", arrayOf(record),
				"next_cursor", obj("type", []any{"string", "null"}),
				"total", obj("type", "integer", "minimum", 0),
			), "items", "next_cursor"))), 400, 401, 403, 404, 429)),
		"post", operation("adminCreateRecord", "admin", "Create a record in any collection, past its rules").
			set("description", desc("An id may be sent. "+write("admin.record.create"))).
			set("parameters", []any{name}).
			set("requestBody", jsonBody(obj("type", "object"))).
			set("responses", responses(obj("201", obj("description", "The new record.",
				"headers", obj("ETag", headerRef("ETag"), "Location", headerRef("Location")),
				"content", obj("application/json", obj("schema", record)))), 400, 401, 403, 404, 409, 413, 415, 422, 429)),
	))
	paths.set(base+"/{id}", obj(
		"get", operation("adminGetRecord", "admin", "Read any record, every field included").
			set("description", desc("Each request is an admin.records.read security event.")).
			set("parameters", []any{name, paramRef("RecordId"), paramRef("IfNoneMatch")}).
			set("responses", responses(obj("200", one, "304", obj("description", "Not modified.")), 400, 401, 403, 404, 429)),
		"patch", operation("adminUpdateRecord", "admin", "Change any record, past its rules").
			set("description", desc("A partial object or {ops: [...]}. "+write("admin.record.update"))).
			set("parameters", []any{name, paramRef("RecordId"), paramRef("IfMatch")}).
			set("requestBody", jsonBody(obj("oneOf", []any{obj("type", "object"), ref("PatchOps")}))).
			set("responses", responses(obj("200", one, "409", conflict), 400, 401, 403, 404, 413, 415, 422, 429)),
		"put", operation("adminReplaceRecord", "admin", "Replace any record, past its rules").
			set("description", desc(write("admin.record.update"))).
			set("parameters", []any{name, paramRef("RecordId"), paramRef("IfMatch")}).
			set("requestBody", jsonBody(obj("type", "object"))).
			set("responses", responses(obj("200", one, "409", conflict), 400, 401, 403, 404, 413, 415, 422, 429)),
		"delete", operation("adminDeleteRecord", "admin", "Delete any record, past its rules").
			set("description", desc(write("admin.record.delete"))).
			set("parameters", []any{name, paramRef("RecordId"), paramRef("IfMatch")}).
			set("responses", responses(obj("204", emptyResponse("Deleted."), "409", conflict), 400, 401, 403, 404, 429)),
	))
	field := pathParam("field", "The file field.", str())
	file := obj("description", "The file.", "content", obj("application/octet-stream", obj("schema", obj("type", "string", "format", "binary"))))
	paths.set(base+"/{id}/files/{field}", obj(
		"post", operation("adminUploadFile", "admin", "Upload a file into any record's file field").
			set("description", desc("multipart/form-data, as for /api/collections/{name}/records/{id}/files/{field}. "+write("admin.record.update"))).
			set("parameters", []any{name, paramRef("RecordId"), field, paramRef("IfMatch")}).
			set("requestBody", obj("required", true, "content", obj("multipart/form-data", obj("schema", obj("type", "object"))))).
			set("responses", responses(obj("201", one, "409", conflict), 400, 401, 403, 404, 413, 415, 422, 429)),
		"get", operation("adminDownloadFile", "admin", "Download the file of any record's single file field").
			set("description", desc("Each request is an admin.records.read security event.")).
			set("parameters", []any{name, paramRef("RecordId"), field}).
			set("responses", responses(obj("200", file), 401, 403, 404, 429)),
		"delete", operation("adminDeleteFile", "admin", "Clear any record's single file field").
			set("description", desc(write("admin.record.update"))).
			set("parameters", []any{name, paramRef("RecordId"), field, paramRef("IfMatch")}).
			set("responses", responses(obj("200", one, "409", conflict), 400, 401, 403, 404, 429)),
	))
	fileName := pathParam("file", "The stored name of one file of a many-file field.", str())
	paths.set(base+"/{id}/files/{field}/{file}", obj(
		"get", operation("adminDownloadNamedFile", "admin", "Download one file of any record's file field").
			set("description", desc("Each request is an admin.records.read security event.")).
			set("parameters", []any{name, paramRef("RecordId"), field, fileName}).
			set("responses", responses(obj("200", file), 401, 403, 404, 429)),
		"delete", operation("adminDeleteNamedFile", "admin", "Remove one file of any record's file field").
			set("description", desc(write("admin.record.update"))).
			set("parameters", []any{name, paramRef("RecordId"), field, fileName, paramRef("IfMatch")}).
			set("responses", responses(obj("200", one, "409", conflict), 400, 401, 403, 404, 429)),
	))
}

// healthPaths adds the probes, which need no token.
func healthPaths(paths *object) {
	paths.set("/healthz", obj("get", operation("healthz", "health", "Liveness: the process answers").
		set("security", public()).
		set("responses", obj("200", jsonResponse("Alive.", ref("Health"))))))
	paths.set("/readyz", obj("get", operation("readyz", "health", "Readiness: the dependencies answer").
		set("security", public()).
		set("responses", obj(
			"200", jsonResponse("Ready.", ref("Readiness")),
			"503", jsonResponse("A dependency is down; checks says which.", ref("Readiness")),
		))))
}

// adminAccountPaths adds the admin console's account endpoints
// (docs/admin-api.md: Access, Users, Roles).
func adminAccountPaths(paths *object, needs func(string) string) {
	manage := needs("users:manage")
	paths.set("/api/admin/console", obj("get", operation("adminConsole", "admin", "The signed-in admin and what they may do").
		set("description", needs("admin:console")).
		set("responses", responses(obj("200", jsonResponse("The admin, their permissions, and whether their roles need MFA.", open(obj(
			"user", ref("User"),
			"permissions", arrayOf(str()),
			"mfa_required", obj("type", "boolean", "description", "One of their roles is in auth.require_mfa_for_roles."),
		), "user", "permissions", "mfa_required"))), 401, 403, 429))))
	adminAccountDetailPaths(paths, manage, needs)
}

// createUser is POST /api/admin/users, beside the list.
func createUser(manage string) *object {
	return operation("createUser", "admin", "Create an account").
		set("description", manage+" Without a password the account signs in only after a reset; without roles it gets the default ones. A user_created event.").
		set("requestBody", jsonBody(closed(obj(
			"email", obj("type", "string", "format", "email"),
			"password", obj("type", "string", "description", "Checked by the password policy of register."),
			"name", str(),
			"email_verified", boolean(),
			"roles", arrayOf(str()),
		), "email"))).
		set("responses", responses(obj("201", obj(
			"description", "The new account.",
			"headers", obj("Location", headerRef("Location")),
			"content", obj("application/json", obj("schema", ref("User"))),
		)), 400, 401, 403, 409, 413, 415, 422, 429))
}

// adminAccountDetailPaths adds the per-account and per-role endpoints of
// the console.
func adminAccountDetailPaths(paths *object, manage string, needs func(string) string) {
	session := open(obj(
		"id", obj("type", "string", "format", "uuid", "description", "The session (refresh token family)."),
		"created_at", dateTime(),
		"last_used_at", obj("type", "string", "format", "date-time", "description", "The last login or refresh."),
		"expires_at", dateTime(),
		"ip", obj("type", "string", "description", "Of the last login or refresh."),
		"user_agent", str(),
		"mfa", obj("type", "boolean", "description", "The session passed a second factor."),
	), "id", "created_at", "last_used_at", "expires_at", "ip", "user_agent", "mfa")
	paths.set("/api/admin/users/{id}", obj(
		"parameters", []any{paramRef("UserId")},
		"get", operation("getUser", "admin", "Read an account with its lockout state").
			set("description", manage).
			set("responses", responses(obj("200", jsonResponse("The account; recent_failures are the login_failed events that count toward its lock, newest first.",
				obj("allOf", []any{adminUser(), obj("type", "object", "required", []any{"recent_failures"},
					"properties", obj("recent_failures", arrayOf(ref("SecurityEvent"))))}))), 401, 403, 404, 429)),
	))
	paths.set("/api/admin/users/{id}/verify", obj(
		"parameters", []any{paramRef("UserId")},
		"post", operation("verifyUser", "admin", "Mark an account's email verified").
			set("description", manage+" An email_verified_by_admin event.").
			set("responses", responses(obj("200", jsonResponse("The account.", ref("User"))), 401, 403, 404, 429)),
	))
	paths.set("/api/admin/users/{id}/sessions", obj(
		"parameters", []any{paramRef("UserId")},
		"get", operation("listUserSessions", "admin", "An account's live sessions").
			set("description", manage).
			set("responses", responses(obj("200", jsonResponse("One per live refresh token family, the last used first.",
				open(obj("items", arrayOf(session)), "items"))), 401, 403, 404, 429)),
	))
	paths.set("/api/admin/users/{id}/sessions/{session}", obj(
		"parameters", []any{paramRef("UserId"), pathParam("session", "The session's id.", uuid())},
		"delete", operation("revokeUserSession", "admin", "End one session of an account").
			set("description", manage+" Its refresh token and access tokens are refused on every node. 404 for a session of another account or one that ended. A session_revoked event.").
			set("responses", responses(obj("204", emptyResponse("Ended.")), 401, 403, 404, 429)),
	))
	paths.set("/api/admin/users/{id}/logout-all", obj(
		"parameters", []any{paramRef("UserId")},
		"post", operation("logoutUserEverywhere", "admin", "End every session of an account").
			set("description", manage+" An admin_logout_all event.").
			set("responses", responses(obj("200", jsonResponse("How many sessions ended.", open(obj("revoked", integer()), "revoked"))), 401, 403, 404, 429)),
	))
	paths.set("/api/admin/roles/{name}/users", obj(
		"parameters", []any{pathParam("name", "The role's name.", str())},
		"get", operation("listRoleUsers", "admin", "The holders of a role").
			set("description", needs("roles:manage")).
			set("parameters", []any{paramRef("Limit"), queryParam("cursor", "The next_cursor of the previous page.", uuid())}).
			set("responses", responses(obj("200", jsonResponse("A page of accounts.", ref("UserPage"))), 400, 401, 403, 404, 429)),
	))
}

// adminUser is a User with its lockout state, as the admin list and get
// answer it.
func adminUser() *object {
	return obj("allOf", []any{ref("User"), obj("type", "object", "required", []any{"locked_until", "failed_attempts"}, "properties", obj(
		"locked_until", obj("type", []any{"string", "null"}, "format", "date-time", "description", "When the lock ends; null when not locked."),
		"failed_attempts", obj("type", "integer", "description", "Failed logins within auth.lockout.window since the last login or unlock."),
	))})
}

func adminUserPage() *object {
	return open(obj("items", arrayOf(adminUser()), "next_cursor", obj("type", "string", "description", "Empty on the last page.")), "items", "next_cursor")
}
