package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/rules"
)

// The rules playground: POST /api/admin/rules/explain evaluates the rule
// of an operation as a chosen principal and says why it allows or refuses
// (docs/rules.md, "Rules playground API"). It runs the engine's own paths:
// the rule through rules.Explain, the list's SQL as listQuery builds it,
// the record a write would make as create and update make it, and for
// reads the real handler as that principal. It never writes: for create,
// update and delete only the rules are evaluated.

// Impersonator gives the playground its principals and records its uses;
// *auth.Service is one.
type Impersonator interface {
	Impersonate(ctx context.Context, im auth.Impersonation) (*auth.Principal, error)
	RecordAdminAction(r *http.Request, typ string, details map[string]any) error
}

var _ Impersonator = (*auth.Service)(nil)

// ExplainRoutes mounts POST /api/admin/rules/explain behind guard (the
// permission check).
func (e *Engine) ExplainRoutes(r chi.Router, guard func(http.Handler) http.Handler, im Impersonator) {
	r.With(guard).Post("/api/admin/rules/explain", func(w http.ResponseWriter, r *http.Request) { e.handleExplain(w, r, im) })
}

type explainRequest struct {
	Collection string              `json:"collection"`
	Operation  string              `json:"operation"`
	Principal  *auth.Impersonation `json:"principal"`
	RecordID   string              `json:"record_id"`
	// Body is the draft of a create or the change of an update (a partial
	// record or {"ops": [...]}).
	Body map[string]any `json:"body"`
	// Query holds the list or read request's parameters (filter=...&sort=...).
	Query string `json:"query"`
}

type explainAnswer struct {
	Collection string        `json:"collection"`
	Operation  string        `json:"operation"`
	Principal  principalView `json:"principal"`
	// Record is what the rule saw as record; Before and Changes, for
	// updates (and for creates, the defaults the field rules compare with).
	Record  map[string]any `json:"record"`
	Before  map[string]any `json:"before,omitempty"`
	Changes []string       `json:"changes,omitempty"`
	*rules.Explanation
	// ReadRule is, for update and delete, the read rule, which the record
	// must pass first (or the API answers 404).
	ReadRule *rules.Explanation `json:"read_rule,omitempty"`
	// Fields are the field rules: read rules for list and read, update
	// rules of the changed fields for create and update.
	Fields  []rules.FieldRule `json:"fields"`
	Hidden  []string          `json:"hidden"`
	Refused []string          `json:"refused"`
	SQL     *explainSQL       `json:"sql"`
	API     *explainAPI       `json:"api"`
	Notes   []string          `json:"notes"`
}

type principalView struct {
	Anonymous   bool     `json:"anonymous"`
	ID          string   `json:"id"`
	Email       string   `json:"email"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
	Verified    bool     `json:"verified"`
	MFA         bool     `json:"mfa"`
}

type explainSQL struct {
	Text string `json:"text"`
	Args []any  `json:"args"`
}

type explainAPI struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

func (e *Engine) handleExplain(w http.ResponseWriter, r *http.Request, im Impersonator) {
	var req explainRequest
	var ans *explainAnswer
	var err error
	if p := httpx.ReadJSON(w, r, &req, e.cfg.BodyLimit); p != nil {
		err = &apiError{status: p.Status, code: p.Code, detail: p.Detail, fields: p.Errors}
	} else {
		ans, err = e.explainRequest(r, im, &req)
	}
	status := http.StatusOK
	if err != nil {
		if p := e.problem(err, r); p != nil {
			status = p.Status
		}
	}
	// Every use is in the audit trail, refused ones too; an answer that
	// cannot be recorded is not given.
	details := map[string]any{"collection": req.Collection, "operation": req.Operation, "record_id": req.RecordID, "principal": req.Principal, "status": status}
	if ans != nil {
		details["as"] = ans.Principal.ID
	}
	if rerr := im.RecordAdminAction(r, auth.EventRulesExplained, details); rerr != nil {
		e.writeError(w, r, rerr)
		return
	}
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, ans)
}

var explainMethods = map[rules.Op]string{rules.List: http.MethodGet, rules.Read: http.MethodGet,
	rules.Create: http.MethodPost, rules.Update: http.MethodPatch, rules.Delete: http.MethodDelete}

func (e *Engine) explainRequest(r *http.Request, im Impersonator, req *explainRequest) (*explainAnswer, error) {
	ctx := r.Context()
	co := e.colls[req.Collection]
	if co == nil {
		return nil, errStatus(http.StatusNotFound, "no collection %q", req.Collection)
	}
	op := rules.Op(req.Operation)
	method, ok := explainMethods[op]
	if !ok {
		return nil, &apiError{status: http.StatusBadRequest, detail: "operation must be list, read, create, update or delete",
			fields: []httpx.FieldError{{Field: "operation", Message: "must be list, read, create, update or delete"}}}
	}
	if req.Principal == nil {
		return nil, &apiError{status: http.StatusBadRequest, detail: `principal is required: {"anonymous": true}, {"user_id": ...}, {"email": ...} or {"roles": [...], "id": ...}`,
			fields: []httpx.FieldError{{Field: "principal", Message: "is required"}}}
	}
	p, err := im.Impersonate(ctx, *req.Principal)
	if err != nil {
		return nil, impersonationError(err, req.Principal)
	}
	if req.RecordID == "" && (op == rules.Read || op == rules.Update || op == rules.Delete) {
		return nil, &apiError{status: http.StatusBadRequest, detail: "record_id is required for " + string(op),
			fields: []httpx.FieldError{{Field: "record_id", Message: "is required"}}}
	}
	if req.RecordID != "" && op == rules.Create {
		return nil, &apiError{status: http.StatusBadRequest, detail: "record_id is not for create: a client's own id goes in the body, as id",
			fields: []httpx.FieldError{{Field: "record_id", Message: "is not for create"}}}
	}
	if req.Body != nil && op != rules.Create && op != rules.Update {
		return nil, &apiError{status: http.StatusBadRequest, detail: "body is only for create and update",
			fields: []httpx.FieldError{{Field: "body", Message: "is only for create and update"}}}
	}
	query, err := url.ParseQuery(req.Query)
	if err != nil || (req.Query != "" && op != rules.List && op != rules.Read) {
		return nil, &apiError{status: http.StatusBadRequest, detail: "query must be the parameters of a list or read request, like filter=done%20%3D%3D%20false&sort=-created_at",
			fields: []httpx.FieldError{{Field: "query", Message: "is not a list or read query"}}}
	}

	// The request the principal would make, which the checks read as the
	// real handlers do (its method, the client's IP, now).
	path := "/api/collections/" + co.name + "/records"
	if req.RecordID != "" && op != rules.List && op != rules.Create {
		path += "/" + url.PathEscape(req.RecordID)
	}
	target := path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	as, err := http.NewRequestWithContext(asPrincipal(ctx, p), method, target, nil)
	if err != nil {
		return nil, err
	}
	c := e.callerOf(as)
	ld := &loader{e: e, db: e.db}
	ans := &explainAnswer{Collection: co.name, Operation: string(op), Principal: viewPrincipal(p),
		Fields: []rules.FieldRule{}, Hidden: []string{}, Refused: []string{}, Notes: []string{}}

	var stored Record
	if req.RecordID != "" {
		m, err := ld.Load(ctx, co.name, req.RecordID)
		if err != nil {
			return nil, err
		}
		if m == nil {
			return nil, &apiError{status: http.StatusNotFound, detail: "no record " + req.RecordID + " in " + co.name,
				fields: []httpx.FieldError{{Field: "record_id", Message: "no such record"}}}
		}
		stored = m
	}

	switch op {
	case rules.List, rules.Read:
		if err := e.explainRead(ctx, as, co, c, ld, op, stored, ans); err != nil {
			return nil, err
		}
	case rules.Create:
		body := req.Body
		if body == nil {
			body = map[string]any{}
		}
		vals, err := co.create.check(body)
		if err != nil {
			return nil, err
		}
		if err := co.checkFileValues(vals, nil, ""); err != nil {
			return nil, err
		}
		rec := e.provisional(co, vals)
		defaults, changes := e.createChanges(co, rec, vals)
		ans.Record, ans.Before, ans.Changes = co.jsonForm(rec), co.jsonForm(defaults), changes
		if ans.Explanation, err = e.rules.Explain(ctx, co.name, op, c.input(rec, nil, nil), ld); err != nil {
			return nil, err
		}
		if err := e.explainUpdates(ctx, co, c.input(rec, defaults, changes), ld, ans); err != nil {
			return nil, err
		}
		if err := e.explainRelations(ctx, co, c, rec, nil, ans); err != nil {
			return nil, err
		}
		ans.Notes = append(ans.Notes, "nothing was written: the record is the one the body would make, with its defaults, before the database gives it an id; the field update rules apply to the fields the body sets to other than their defaults")
	case rules.Update:
		if req.Body == nil {
			return nil, &apiError{status: http.StatusBadRequest, detail: "body is required for update: a partial record or {\"ops\": [...]}",
				fields: []httpx.FieldError{{Field: "body", Message: "is required"}}}
		}
		ch, err := co.changeOf(req.Body)
		if err != nil {
			return nil, err
		}
		after, changes, err := e.changed(co, stored.ID(), stored, ch)
		if err != nil {
			return nil, err
		}
		ans.Record, ans.Before, ans.Changes = co.jsonForm(after), co.jsonForm(stored), changes
		if ans.ReadRule, err = e.rules.Explain(ctx, co.name, rules.Read, c.input(stored, nil, nil), ld); err != nil {
			return nil, err
		}
		if ans.Explanation, err = e.rules.Explain(ctx, co.name, op, c.input(after, stored, changes), ld); err != nil {
			return nil, err
		}
		if err := e.explainUpdates(ctx, co, c.input(after, stored, changes), ld, ans); err != nil {
			return nil, err
		}
		if err := e.explainRelations(ctx, co, c, after, stored, ans); err != nil {
			return nil, err
		}
		if len(changes) == 0 {
			ans.Notes = append(ans.Notes, "the body changes nothing: the API would answer the record as it is without checking the update rule")
		}
		ans.Notes = append(ans.Notes, "nothing was written: the update is evaluated, never run")
	case rules.Delete:
		ans.Record = co.jsonForm(stored)
		var err error
		if ans.ReadRule, err = e.rules.Explain(ctx, co.name, rules.Read, c.input(stored, nil, nil), ld); err != nil {
			return nil, err
		}
		if ans.Explanation, err = e.rules.Explain(ctx, co.name, op, c.input(stored, nil, nil), ld); err != nil {
			return nil, err
		}
		ans.Notes = append(ans.Notes, "nothing was deleted: the delete is evaluated, never run")
	}
	if ans.ReadRule != nil && !ans.ReadRule.Allowed {
		ans.Notes = append(ans.Notes, "the read rule refuses the record, so the API answers 404 before the "+string(op)+" rule is asked")
	}
	if op != rules.List && op != rules.Read {
		ans.Notes = append(ans.Notes, "api is null: the playground impersonates for reading only, never for writing")
	}
	return ans, nil
}

// explainRead explains a list or a read, runs it as the principal, and for
// a list shows its SQL.
func (e *Engine) explainRead(ctx context.Context, as *http.Request, co *coll, c *caller, ld rules.Loader, op rules.Op, stored Record, ans *explainAnswer) error {
	var err error
	if ans.Explanation, err = e.rules.Explain(ctx, co.name, op, c.input(stored, nil, nil), ld); err != nil {
		return err
	}
	if stored != nil {
		ans.Record = co.jsonForm(stored)
		if ans.Fields, err = e.rules.ExplainFieldRules(ctx, co.name, "read", c.input(stored, nil, nil), ld); err != nil {
			return err
		}
		for _, f := range ans.Fields {
			if !f.Allowed {
				ans.Hidden = append(ans.Hidden, f.Field)
			}
		}
	}
	if op == rules.List {
		lr, err := e.parseList(co, as)
		if err != nil {
			return err
		}
		sql, q, _, err := e.listQuery(co, c, lr)
		if err != nil {
			return err
		}
		args := q.Args
		if args == nil {
			args = []any{}
		}
		ans.SQL = &explainSQL{Text: sql, Args: args}
		if stored == nil {
			// Without a record the rule is a condition on rows: it refuses
			// only when it is false for every row.
			pred, err := e.rules.ListPredicate(co.name, &rules.SQLInput{Auth: c.principal, Request: c.request}, &rules.SQL{})
			if err != nil {
				return err
			}
			ans.Allowed = pred != "FALSE"
			ans.Reason = ""
			if !ans.Allowed {
				ans.Reason = "the rule is false for every record"
			}
			ans.Notes = append(ans.Notes, "no record_id: the rule was evaluated with record null, and allowed says whether the list can return any record; the sql shows which it returns; field rules need a record")
		}
	}
	ans.API = e.runAs(as)
	return nil
}

// explainUpdates explains the field update rules of the changed fields.
func (e *Engine) explainUpdates(ctx context.Context, co *coll, in *rules.Input, ld rules.Loader, ans *explainAnswer) error {
	var err error
	if ans.Fields, err = e.rules.ExplainFieldRules(ctx, co.name, "update", in, ld); err != nil {
		return err
	}
	for _, f := range ans.Fields {
		if !f.Allowed {
			ans.Refused = append(ans.Refused, f.Field)
		}
	}
	return nil
}

// explainRelations notes a relation the write would set to a record the
// principal may not read, which the API answers as a missing one (422).
func (e *Engine) explainRelations(ctx context.Context, co *coll, c *caller, rec, before Record, ans *explainAnswer) error {
	err := e.checkRelations(ctx, e.db, co, c, e.loads(ctx, e.db), rec, before)
	var ae *apiError
	if errors.As(err, &ae) && len(ae.fields) > 0 {
		ans.Notes = append(ans.Notes, "the API would refuse the write with 422: "+ae.fields[0].Field+" points at a record that does not exist or that the principal may not read")
		return nil
	}
	return err
}

// runAs sends a read through the records routes as the request's
// principal, and keeps the answer.
func (e *Engine) runAs(as *http.Request) *explainAPI {
	e.readRoutesOnce.Do(func() {
		r := chi.NewRouter()
		r.NotFound(httpx.NotFound)
		r.MethodNotAllowed(httpx.MethodNotAllowed)
		r.Get("/api/collections/{collection}/records", e.handleList)
		r.Get("/api/collections/{collection}/records/{id}", e.handleGet)
		e.readRoutes = r
	})
	rec := &recorder{header: http.Header{}}
	e.readRoutes.ServeHTTP(rec, as)
	body := rec.body.Bytes()
	if !json.Valid(body) {
		body, _ = json.Marshal(rec.body.String()) //nolint:errcheck // a string marshals
	}
	return &explainAPI{Method: as.Method, Path: as.URL.RequestURI(), Status: rec.status, Body: body}
}

// asPrincipal is ctx as a request of p (nil: anonymous) would carry it,
// outside the admin route.
func asPrincipal(ctx context.Context, p *auth.Principal) context.Context {
	ctx = context.WithValue(ctx, chi.RouteCtxKey, (*chi.Context)(nil))
	return auth.WithPrincipal(ctx, p)
}

func viewPrincipal(p *auth.Principal) principalView {
	if p == nil {
		return principalView{Anonymous: true, Roles: []string{}, Permissions: []string{}}
	}
	v := principalView{ID: p.UserID, Email: p.Email, Roles: slices.Clone(p.Roles), Permissions: slices.Clone(p.Permissions), Verified: p.Verified, MFA: p.MFA}
	if v.Roles == nil {
		v.Roles = []string{}
	}
	if v.Permissions == nil {
		v.Permissions = []string{}
	}
	return v
}

func impersonationError(err error, im *auth.Impersonation) error {
	var fe *auth.FieldError
	switch {
	case errors.As(err, &fe):
		return &apiError{status: http.StatusBadRequest, detail: "invalid principal: " + fe.Message, fields: []httpx.FieldError{{Field: fe.Field, Message: fe.Message}}}
	case errors.Is(err, auth.ErrNotFound):
		who := "id " + im.UserID
		if im.Email != "" {
			who = "email " + im.Email
		}
		return &apiError{status: http.StatusNotFound, detail: "no user with " + who,
			fields: []httpx.FieldError{{Field: "principal", Message: "no such user"}}}
	}
	return err
}

// recorder keeps an answer of the records routes.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
