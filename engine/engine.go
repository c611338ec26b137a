package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/internal/storage"
	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
)

// Config is what the engine needs.
type Config struct {
	Schema *schema.Config
	Rules  *rules.Engine
	// BodyLimit caps request bodies.
	BodyLimit int64
	// Retention is how long the change log keeps changes.
	Retention time.Duration
	// Dev adds the denying rule to 403 answers.
	Dev bool
	// Storage keeps the files of file fields; without it their endpoints
	// answer 501.
	Storage storage.Storage
}

// Engine serves records.
type Engine struct {
	db    *pgxpool.Pool
	cfg   Config
	rules *rules.Engine
	colls map[string]*coll
	log   *slog.Logger
	now   func() time.Time
	// committed is Options.Committed, or nothing.
	committed func()
	// hooks is Options.Hooks, or the engine's own.
	hooks *Hooks
	// urlKey signs download URLs.
	urlKey []byte
	// readRoutes serve the reads the rules playground runs as another
	// principal (explain.go).
	readRoutesOnce sync.Once
	readRoutes     http.Handler
	// bufs are the buffers answers are encoded in (buffer, release).
	bufs sync.Pool
}

// maxPooledBuffer bounds what a buffer may hold to go back to the pool,
// so that one large answer does not keep its memory for good.
const maxPooledBuffer = 64 << 10

// buffer is an empty buffer to encode an answer in; release gives it
// back once its bytes have been written.
func (e *Engine) buffer() *bytes.Buffer {
	if b, ok := e.bufs.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

func (e *Engine) release(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	e.bufs.Put(b)
}

// Options are the engine's collaborators.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Committed is called after each write commits, to wake realtime at
	// once where the change log's NOTIFY does not reach (the memory and
	// redis brokers). It must not block.
	Committed func()
	// Hooks holds the write hooks; one registry shared by the engines of
	// successive reloads keeps registrations across them. nil gives the
	// engine a registry of its own.
	Hooks *Hooks
}

// New prepares the engine for every collection of cfg.Schema.
func New(db *pgxpool.Pool, cfg Config, opts *Options) (*Engine, error) {
	e := &Engine{db: db, cfg: cfg, rules: cfg.Rules, colls: map[string]*coll{}, log: slog.New(slog.DiscardHandler), now: time.Now}
	if opts != nil {
		if opts.Logger != nil {
			e.log = opts.Logger
		}
		if opts.Now != nil {
			e.now = opts.Now
		}
		e.committed = opts.Committed
		e.hooks = opts.Hooks
	}
	if e.hooks == nil {
		e.hooks = NewHooks()
	}
	if e.cfg.BodyLimit == 0 {
		e.cfg.BodyLimit = schema.DefaultBodyLimit
	}
	e.urlKey = deriveFileKey(cfg.Schema.Auth.Secret)
	for _, c := range cfg.Schema.Collections {
		co := newColl(cfg.Schema, c)
		var err error
		if co.create, err = newValidator(co, true); err != nil {
			return nil, err
		}
		if co.update, err = newValidator(co, false); err != nil {
			return nil, err
		}
		e.colls[c.Name] = co
	}
	return e, nil
}

// dbtx runs queries on a pool or in a transaction.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// caller is who makes a request, as rules see them, with the request's
// load memo.
type caller struct {
	principal *rules.Principal
	// auth is the principal as auth knows it, for hooks.
	auth    *auth.Principal
	request rules.Request
	// bypass skips every rule and field rule: only the admin records API
	// sets it (admin.go), from a context key no request can carry.
	bypass bool
}

func (e *Engine) callerOf(r *http.Request) *caller {
	c := &caller{request: rules.Request{Method: r.Method, IP: httpx.ClientIPString(r), Time: e.now()}, bypass: adminMode(r.Context())}
	c.setPrincipal(auth.PrincipalFrom(r.Context()))
	return c
}

func (c *caller) setPrincipal(p *auth.Principal) {
	if p != nil {
		c.auth = p
		c.principal = &rules.Principal{ID: p.UserID, Email: p.Email, Roles: p.Roles, Verified: p.Verified, MFA: p.MFA, Permissions: p.Permissions}
	}
}

// systemCaller writes as the system: no principal, no rule.
func systemCaller(e *Engine) *caller {
	return &caller{request: rules.Request{Time: e.now()}, bypass: true}
}

func (c *caller) input(rec, before Record, changes []string) *rules.Input {
	return &rules.Input{Auth: c.principal, Record: rec, Before: before, Changes: changes, Request: c.request}
}

// loader reads records for get() and exists() in rules, through db (a
// transaction sees its own writes).
type loader struct {
	e  *Engine
	db dbtx
}

// Load implements rules.Loader.
func (l *loader) Load(ctx context.Context, collection, id string) (map[string]any, error) {
	if !isUUID(id) {
		return nil, nil
	}
	if collection == schema.UsersCollection {
		var email, name string
		var verified bool
		err := l.db.QueryRow(ctx, `SELECT email, name, email_verified FROM abe.users WHERE id = $1`, id).Scan(&email, &name, &verified)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"id": id, "email": email, "name": name, "email_verified": verified}, nil
	}
	co := l.e.colls[collection]
	if co == nil {
		return nil, nil
	}
	rec, err := co.scan(l.db.QueryRow(ctx, `SELECT `+co.selectList+` FROM `+co.table+` t WHERE t.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return rec, err
}

func (e *Engine) loads(ctx context.Context, db dbtx) *rules.Loads {
	return rules.NewLoads(ctx, &loader{e: e, db: db})
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case r >= '0' && r <= '9', r >= 'a' && r <= 'f', r >= 'A' && r <= 'F':
		default:
			return false
		}
	}
	return true
}

// apiError is an error with the answer the client gets.
type apiError struct {
	status int
	// code is the error class (httpx.Code*); empty means the status's.
	code    string
	detail  string
	fields  []httpx.FieldError
	current rawRecord // 409: the record as it is now
}

func (e *apiError) Error() string { return e.detail }

func errStatus(status int, format string, args ...any) *apiError {
	return &apiError{status: status, detail: fmt.Sprintf(format, args...)}
}

// denied explains a rule's refusal: in development the rule and its
// reason too.
func (e *Engine) denied(collection string, op rules.Op, d rules.Decision) *apiError {
	msg := fmt.Sprintf("the %s rule of %s does not allow this", op, collection)
	if e.cfg.Dev && d.Reason != "" {
		msg += fmt.Sprintf(" (%s", d.Reason)
		if d.Rule != "" {
			msg += "; rule: " + d.Rule
		}
		msg += ")"
	}
	return &apiError{status: http.StatusForbidden, code: httpx.CodeForbidden, detail: msg}
}

// writeError is the one place engine errors become answers; Postgres
// errors are translated, never shown.
func (e *Engine) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := e.problem(err, r)
	if p == nil {
		return
	}
	httpx.WriteProblem(w, r, *p)
}

func (e *Engine) problem(err error, r *http.Request) *httpx.Problem {
	var ae *apiError
	var be *bodyError
	var fe *rules.FilterError
	if p, ok := httpx.Refusal(err); ok {
		// A hook's refusal, with the answer it chose.
		return &p
	}
	switch {
	case errors.As(err, &ae):
		p := &httpx.Problem{Status: ae.status, Code: ae.code, Detail: ae.detail, Errors: ae.fields}
		if ae.current != nil {
			p.Current = ae.current
		}
		return p
	case errors.As(err, &be):
		// A 400 of the validator is always an unknown field.
		code := httpx.CodeValidation
		if be.status == http.StatusBadRequest {
			code = httpx.CodeUnknownField
		}
		return &httpx.Problem{Status: be.status, Code: code, Detail: be.detail, Errors: be.fields}
	case errors.As(err, &fe):
		return &httpx.Problem{Status: http.StatusBadRequest, Code: httpx.CodeBadFilter, Detail: fe.Error()}
	case errors.Is(err, context.Canceled):
		return nil
	}
	if p := e.pgProblem(err); p != nil {
		return p
	}
	switch {
	case r.Context().Err() != nil:
		return nil // the client went away
	case httpx.IsDataException(err):
		p := httpx.InvalidData()
		return &p
	case httpx.IsUnavailable(err):
		p := httpx.Unavailable()
		return &p
	}
	e.log.ErrorContext(r.Context(), "records request failed", slog.String("error", err.Error()),
		slog.String("path", r.URL.Path), slog.String("request_id", httpx.RequestID(r.Context())))
	return &httpx.Problem{Status: http.StatusInternalServerError, Detail: "the server failed to answer this request; it has been logged with the request id"}
}

// pgProblem translates what Postgres refuses into answers that name the
// field, without Postgres's words.
func (e *Engine) pgProblem(err error) *httpx.Problem {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil
	}
	co, field := e.constraintField(pgErr)
	switch pgErr.Code {
	case "23505": // unique_violation
		if strings.HasSuffix(pgErr.ConstraintName, "_pkey") {
			return &httpx.Problem{Status: http.StatusConflict, Code: httpx.CodeAlreadyExists, Detail: "a record with this id exists", Errors: []httpx.FieldError{{Field: "id", Message: "is taken"}}}
		}
		return &httpx.Problem{Status: http.StatusConflict, Code: httpx.CodeNotUnique, Detail: "another record has this value", Errors: []httpx.FieldError{{Field: field, Message: "must be unique: another record has this value"}}}
	case "23503": // foreign_key_violation
		// Deleting a record others point at (on_delete: restrict).
		if strings.HasPrefix(pgErr.Message, "update or delete on table") {
			return &httpx.Problem{Status: http.StatusConflict, Code: httpx.CodeStillReferenced, Detail: fmt.Sprintf("records of %s still point at this record (field %s); delete or change them first", collName(co, pgErr), field)}
		}
		if m := manyRestrictRE.FindStringSubmatch(pgErr.Message); m != nil {
			return &httpx.Problem{Status: http.StatusConflict, Code: httpx.CodeStillReferenced, Detail: fmt.Sprintf("records of %s still point at this record (field %s); delete or change them first", m[2], m[1])}
		}
		ae := errNoSuchRecord(field)
		return &httpx.Problem{Status: ae.status, Detail: ae.detail, Errors: ae.fields}
	case "23514": // check_violation
		return &httpx.Problem{Status: http.StatusUnprocessableEntity, Detail: "the record has invalid fields", Errors: []httpx.FieldError{{Field: field, Message: "is out of the allowed range or form"}}}
	case "23502": // not_null_violation
		return &httpx.Problem{Status: http.StatusUnprocessableEntity, Detail: "the record has invalid fields", Errors: []httpx.FieldError{{Field: pgErr.ColumnName, Message: "is required"}}}
	case "40001", "40P01": // serialization failure, deadlock
		return &httpx.Problem{Status: http.StatusConflict, Code: httpx.CodeWriteConflict, Detail: "the write conflicted with another one; retry it"}
	}
	return nil
}

// manyRestrictRE reads the error of a many-relation's restrict trigger.
var manyRestrictRE = regexp.MustCompile(`^delete on table "[^"]+" violates many-relation "([^"]+)" of "[^"]+"\."([^"]+)"`)

func collName(co *coll, pgErr *pgconn.PgError) string {
	if co != nil {
		return co.name
	}
	return pgErr.TableName
}

// constraintField finds the collection and field of a constraint from
// abe's naming: <collection>_<field>_<kind>.
func (e *Engine) constraintField(pgErr *pgconn.PgError) (*coll, string) {
	name := pgErr.ConstraintName
	if pgErr.ColumnName != "" {
		return e.colls[pgErr.TableName], pgErr.ColumnName
	}
	co := e.colls[pgErr.TableName]
	if co != nil {
		for _, c := range co.columns {
			if strings.HasPrefix(name, co.name+"_"+c.name+"_") {
				return co, c.name
			}
		}
	}
	return co, name
}
