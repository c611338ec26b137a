package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/abe-stack/abe/engine/ops"
	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
)

// Routes mounts /api/collections and /api/batch.
func (e *Engine) Routes(r chi.Router) {
	r.Route("/api/collections/{collection}", func(r chi.Router) {
		r.Get("/records", e.handleList)
		r.Post("/records", e.handleCreate)
		r.Get("/records/{id}", e.handleGet)
		r.Patch("/records/{id}", e.handlePatch)
		r.Put("/records/{id}", e.handlePut)
		r.Delete("/records/{id}", e.handleDelete)
		r.Get("/changes", e.handleChanges)
		e.fileRoutes(r)
	})
	r.Post("/api/batch", e.handleBatch)
}

var errNotFound = errStatus(http.StatusNotFound, "no such record")

func (e *Engine) collOf(r *http.Request) (*coll, error) {
	name := chi.URLParam(r, "collection")
	co := e.colls[name]
	if co == nil {
		return nil, errStatus(http.StatusNotFound, "no collection %q", name)
	}
	return co, nil
}

// readBody decodes a JSON object body.
func (e *Engine) readBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	var body map[string]any
	if p := httpx.ReadJSON(w, r, &body, e.cfg.BodyLimit); p != nil {
		return nil, &apiError{status: p.Status, code: p.Code, detail: p.Detail, fields: p.Errors}
	}
	if body == nil {
		return nil, errStatus(http.StatusBadRequest, "the body must be a JSON object")
	}
	return body, nil
}

// ifMatch reads If-Match: "<version>". nil means unconditional.
func ifMatch(r *http.Request) (*int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return nil, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		return nil, errStatus(http.StatusBadRequest, `If-Match must be the record's version in quotes, like "3"`)
	}
	return &v, nil
}

func etag(rec Record) string { return `"` + strconv.FormatInt(rec.Version(), 10) + `"` }

// respond sends a record as the principal may see it.
func (e *Engine) respond(ctx context.Context, w http.ResponseWriter, co *coll, c *caller, loads *rules.Loads, rec Record, status int) error {
	return e.respondView(ctx, w, co, c, loads, rec, status, nil)
}

// respondView is respond with a projection or expansions (base).
func (e *Engine) respondView(ctx context.Context, w http.ResponseWriter, co *coll, c *caller, loads *rules.Loads, rec Record, status int, base *view) error {
	v, err := e.viewOf(ctx, co, c, loads, rec, base)
	if err != nil {
		return err
	}
	buf := e.buffer()
	defer e.release(buf)
	if err := co.appendJSON(buf, rec, v); err != nil {
		return err
	}
	// As Header().Set would, with canonical keys and one allocation for
	// the three values; each slice has its own capacity.
	hv := [...]string{"application/json", etag(rec), "no-cache"}
	vals := hv[:]
	h := w.Header()
	h["Content-Type"] = vals[0:1:1]
	h["Etag"] = vals[1:2:2]
	h["Cache-Control"] = vals[2:3:3]
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) //nolint:errcheck // the client went away
	return nil
}

// viewOf applies the field read rules to rec.
func (e *Engine) viewOf(ctx context.Context, co *coll, c *caller, loads *rules.Loads, rec Record, base *view) (*view, error) {
	v := &view{}
	if base != nil {
		*v = *base
	}
	if !c.bypass && e.rules.HasFieldReadRules(co.name) {
		hidden, err := e.rules.HiddenFields(ctx, co.name, c.input(rec, nil, nil), loads)
		if err != nil {
			return nil, err
		}
		v.hidden = hidden
	}
	return v, nil
}

// get reads a record the caller may read; one it may not is "not found",
// so that existence does not leak.
func (e *Engine) get(ctx context.Context, db dbtx, co *coll, c *caller, loads *rules.Loads, id string, lock bool) (Record, error) {
	if !isUUID(id) {
		return nil, errNotFound
	}
	q := `SELECT ` + co.selectList + ` FROM ` + co.table + ` t WHERE t.id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	rec, err := co.scan(db.QueryRow(ctx, q, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	d, err := e.allow(ctx, c, co.name, rules.Read, c.input(rec, nil, nil), loads)
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		return nil, errNotFound
	}
	return rec, nil
}

func (e *Engine) handleGet(w http.ResponseWriter, r *http.Request) {
	co, err := e.collOf(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	c := e.callerOf(r)
	loads := e.loads(r.Context(), e.db)
	rec, err := e.get(r.Context(), e.db, co, c, loads, chi.URLParam(r, "id"), false)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	fields, err := fieldsParam(co, q.Get("fields"))
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	exp, err := e.expandParam(co, q.Get("expand"))
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, etag(rec)) {
		w.Header().Set("ETag", etag(rec))
		w.WriteHeader(http.StatusNotModified)
		return
	}
	base := &view{fields: fields}
	if len(exp) > 0 {
		all, err := e.expandAll(r.Context(), co, c, loads, []Record{rec}, exp)
		if err != nil {
			e.writeError(w, r, err)
			return
		}
		base.expand = all[0]
	}
	if err := e.respondView(r.Context(), w, co, c, loads, rec, http.StatusOK, base); err != nil {
		e.writeError(w, r, err)
	}
}

// create inserts a record and checks the create rule against it as
// stored (with its defaults); a refusal rolls the insert back.
func (e *Engine) create(ctx context.Context, tx pgx.Tx, co *coll, c *caller, body map[string]any) (Record, error) {
	body, err := e.beforeCreate(ctx, tx, co, c, body)
	if err != nil {
		return nil, err
	}
	vals, err := co.create.check(body)
	if err != nil {
		return nil, err
	}
	if err := co.checkFileValues(vals, nil, ""); err != nil {
		return nil, err
	}
	var cols, ph []string
	var args []any
	for _, col := range co.columns {
		v, ok := vals[col.name]
		if !ok {
			continue
		}
		cols = append(cols, quote(col.name))
		args = append(args, param(&col, v))
		ph = append(ph, "$"+strconv.Itoa(len(args))+"::"+col.pgType)
	}
	q := `INSERT INTO ` + co.table + ` AS t DEFAULT VALUES RETURNING ` + co.selectList
	if len(cols) > 0 {
		q = `INSERT INTO ` + co.table + ` AS t (` + strings.Join(cols, ", ") + `) VALUES (` + strings.Join(ph, ", ") + `) RETURNING ` + co.selectList
	}
	rec, err := co.scan(tx.QueryRow(ctx, q, args...))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "23") {
			// A constraint failed before the rule ran. Telling a caller
			// the rule would refuse that a relation target is missing or
			// a unique value is taken would let them probe records they
			// may not read, so they hear only the refusal.
			return nil, e.refuseProvisional(ctx, co, c, vals, err)
		}
		return nil, err
	}
	loads := e.loads(ctx, tx)
	d, err := e.allow(ctx, c, co.name, rules.Create, c.input(rec, nil, nil), loads)
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		return nil, e.denied(co.name, rules.Create, d)
	}
	// After the rule, as a missing relation's answer comes after it too.
	if err := e.checkRelations(ctx, tx, co, c, loads, rec, nil); err != nil {
		return nil, err
	}
	if err := e.checkCreateFields(ctx, co, c, loads, rec, vals); err != nil {
		return nil, err
	}
	if err := e.runWritten(ctx, tx, co, c, OpCreate, nil, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// refuseProvisional checks the create rule against the record as the
// caller sent it, with the declared defaults, after the insert failed. It
// answers the refusal if the rule denies, else the insert's error.
func (e *Engine) refuseProvisional(ctx context.Context, co *coll, c *caller, vals Record, insertErr error) error {
	rec := e.provisional(co, vals)
	// The transaction is aborted: rules read outside it.
	d, err := e.allow(ctx, c, co.name, rules.Create, c.input(rec, nil, nil), e.loads(ctx, e.db))
	if err != nil || !d.Allowed {
		return e.denied(co.name, rules.Create, d)
	}
	return insertErr
}

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// param converts a Record value into what pgx binds for the column.
func param(c *column, v any) any {
	if c.kind == "json" {
		if v == nil {
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil
		}
		return string(b)
	}
	return v
}

func (e *Engine) handleCreate(w http.ResponseWriter, r *http.Request) {
	co, err := e.collOf(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	body, err := e.readBody(w, r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	c := e.callerOf(r)
	var rec Record
	err = e.inTx(r.Context(), func(ctx context.Context, tx pgx.Tx) error {
		rec, err = e.create(ctx, tx, co, c, body)
		return err
	})
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	prefix := "/api/collections/"
	if c.bypass {
		prefix = "/api/admin/collections/"
	}
	w.Header().Set("Location", prefix+co.name+"/records/"+rec.ID())
	if err := e.respond(r.Context(), w, co, c, e.loads(r.Context(), e.db), rec, http.StatusCreated); err != nil {
		e.writeError(w, r, err)
	}
}

// change is an update: a partial object, operations, or (replace) a whole
// record.
type change struct {
	patch   map[string]any
	ops     []ops.Op
	replace bool
	// fileField is the file field an upload sets: it alone may take a
	// name the client did not have.
	fileField string
}

// update applies a change to the locked current row. With a version it is
// all or nothing against that version (409 with the current record when
// stale); without, it merges into whatever is current.
func (e *Engine) update(ctx context.Context, tx pgx.Tx, co *coll, c *caller, id string, ch change, version *int64) (Record, error) {
	version, err := bodyVersion(ch.patch, version)
	if err != nil {
		return nil, err
	}
	loads := e.loads(ctx, tx)
	before, err := e.get(ctx, tx, co, c, loads, id, true)
	if err != nil {
		return nil, err
	}
	if version != nil && *version != before.Version() {
		return nil, e.conflict(ctx, co, c, loads, before)
	}
	if ch, err = e.beforeUpdate(ctx, tx, co, c, before, ch); err != nil {
		return nil, err
	}
	after, changes, err := e.changed(co, id, before, ch)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return before, nil
	}
	in := c.input(after, before, changes)
	d, err := e.allow(ctx, c, co.name, rules.Update, in, loads)
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		return nil, e.denied(co.name, rules.Update, d)
	}
	denied, err := e.deniedUpdates(ctx, c, co.name, in, loads)
	if err != nil {
		return nil, err
	}
	if err := deniedFields(denied); err != nil {
		return nil, err
	}
	if err := e.checkRelations(ctx, tx, co, c, loads, after, before); err != nil {
		return nil, err
	}
	var set []string
	var args []any
	for _, name := range changes {
		col := co.byName[name]
		args = append(args, param(col, after[name]))
		set = append(set, quote(name)+" = $"+strconv.Itoa(len(args))+"::"+col.pgType)
	}
	args = append(args, id)
	q := `UPDATE ` + co.table + ` AS t SET ` + strings.Join(set, ", ") + `, version = t.version + 1, updated_at = now() WHERE t.id = $` +
		strconv.Itoa(len(args)) + ` RETURNING ` + co.selectList
	rec, err := co.scan(tx.QueryRow(ctx, q, args...))
	if err != nil {
		return nil, err
	}
	if err := e.runWritten(ctx, tx, co, c, OpUpdate, before, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// changed is the record a change makes of before, and the names of the
// fields it changes; the rule checks and the playground (explain.go) see
// it before anything is written.
func (e *Engine) changed(co *coll, id string, before Record, ch change) (Record, []string, error) {
	patch := ch.patch
	if ch.ops != nil {
		after, err := ops.ApplyAll(co.jsonForm(before), ch.ops)
		if err != nil {
			return nil, nil, opError(err)
		}
		patch = map[string]any{}
		for _, name := range ops.Changed(co.jsonForm(before), after) {
			patch[name] = after[name]
		}
	}
	if ch.replace {
		// A replacement sets every field, as a create would: what it
		// leaves out takes its default, or is cleared.
		full := map[string]any{}
		for _, f := range co.cfg.Fields {
			full[f.Name] = defaultJSON(f, e.now())
		}
		for k, v := range patch {
			full[k] = v
		}
		patch = full
	}
	if idv, ok := patch["id"]; ok {
		if s, _ := idv.(string); !strings.EqualFold(s, id) {
			return nil, nil, &apiError{status: http.StatusBadRequest, detail: "the id of a record cannot change", fields: []httpx.FieldError{{Field: "id", Message: "must be the record's id"}}}
		}
	}
	vals, err := co.update.check(patch)
	if err != nil {
		return nil, nil, err
	}
	if err := co.checkFileValues(vals, before, ch.fileField); err != nil {
		return nil, nil, err
	}
	after := Record{}
	for k, v := range before {
		after[k] = v
	}
	var changes []string
	for _, col := range co.columns {
		if col.field == nil {
			continue
		}
		if v, ok := vals[col.name]; ok && !equal(v, before[col.name]) {
			after[col.name] = v
			changes = append(changes, col.name)
		}
	}
	return after, changes, nil
}

// conflict is the 409 of a stale version, carrying the record as it is
// now, as the principal may see it, so the client can merge.
func (e *Engine) conflict(ctx context.Context, co *coll, c *caller, loads *rules.Loads, current Record) error {
	v, err := e.viewOf(ctx, co, c, loads, current, nil)
	if err != nil {
		return err
	}
	body, err := co.encode(current, v)
	if err != nil {
		return err
	}
	return &apiError{status: http.StatusConflict, code: httpx.CodeVersionConflict, current: body,
		detail: fmt.Sprintf("the record has changed since the version you sent: it is at version %d, shown in current; merge and retry with If-Match: \"%d\"", current.Version(), current.Version())}
}

// bodyVersion reads the version of an update body, which a client sends
// back with the record it read: it makes the write conditional, as
// If-Match does (which it must agree with when both are sent). null or
// no version leaves the write as it was.
func bodyVersion(body map[string]any, ifMatch *int64) (*int64, error) {
	raw, ok := body["version"]
	if !ok || raw == nil {
		return ifMatch, nil
	}
	f, isNum := raw.(float64)
	if !isNum || f < 1 || f != math.Trunc(f) || f > maxSafeInteger {
		return nil, &apiError{status: http.StatusBadRequest, detail: "version must be the version of the record you read (a whole number from 1), which makes the write conditional like If-Match; leave it out for an unconditional write",
			fields: []httpx.FieldError{{Field: "version", Message: "must be a whole number from 1"}}}
	}
	v := int64(f)
	if ifMatch != nil && *ifMatch != v {
		return nil, &apiError{status: http.StatusBadRequest, detail: fmt.Sprintf("the body's version (%d) and If-Match (%d) disagree; send one of them", v, *ifMatch),
			fields: []httpx.FieldError{{Field: "version", Message: "must equal If-Match"}}}
	}
	return &v, nil
}

// defaultJSON is a field's default as a client would send it (nil for
// none), for a replacement that leaves the field out.
func defaultJSON(f *schema.Field, now time.Time) any {
	switch v := f.Default.(type) {
	case nil:
		return nil
	case int64:
		return float64(v)
	case string:
		if f.Type == schema.Timestamp && v == "now" {
			return now.UTC().Format(time.RFC3339Nano)
		}
	case []any:
		out := make([]any, len(v))
		for i, it := range v {
			if n, ok := it.(int64); ok {
				out[i] = float64(n)
			} else {
				out[i] = it
			}
		}
		return out
	}
	return f.Default
}

func opError(err error) error {
	var de *ops.DecodeError
	if errors.As(err, &de) {
		return errStatus(http.StatusBadRequest, "%s", de.Error())
	}
	var ae *ops.ApplyError
	if errors.As(err, &ae) {
		return errStatus(http.StatusUnprocessableEntity, "%s", ae.Error())
	}
	return errStatus(http.StatusUnprocessableEntity, "%s", err.Error())
}

// readChange reads a PATCH body: {"ops": [...]} or a partial record.
func (e *Engine) readChange(w http.ResponseWriter, r *http.Request, co *coll) (change, error) {
	body, err := e.readBody(w, r)
	if err != nil {
		return change{}, err
	}
	return co.changeOf(body)
}

// changeOf reads a PATCH body: {"ops": [...]} or a partial record.
func (co *coll) changeOf(body map[string]any) (change, error) {
	if raw, ok := body["ops"]; ok && len(body) == 1 && co.byName["ops"] == nil {
		b, err := json.Marshal(raw)
		if err != nil {
			return change{}, errStatus(http.StatusBadRequest, "invalid ops")
		}
		list, err := ops.Decode(b)
		if err != nil {
			return change{}, opError(err)
		}
		return change{ops: list}, nil
	}
	return change{patch: body}, nil
}

func (e *Engine) handlePatch(w http.ResponseWriter, r *http.Request) { e.handleUpdate(w, r, false) }
func (e *Engine) handlePut(w http.ResponseWriter, r *http.Request)   { e.handleUpdate(w, r, true) }

func (e *Engine) handleUpdate(w http.ResponseWriter, r *http.Request, replace bool) {
	co, err := e.collOf(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	version, err := ifMatch(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	var ch change
	if replace {
		body, err := e.readBody(w, r)
		if err != nil {
			e.writeError(w, r, err)
			return
		}
		ch = change{patch: body, replace: true}
	} else if ch, err = e.readChange(w, r, co); err != nil {
		e.writeError(w, r, err)
		return
	}
	c := e.callerOf(r)
	var rec Record
	err = e.inTx(r.Context(), func(ctx context.Context, tx pgx.Tx) error {
		rec, err = e.update(ctx, tx, co, c, chi.URLParam(r, "id"), ch, version)
		return err
	})
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	if err := e.respond(r.Context(), w, co, c, e.loads(r.Context(), e.db), rec, http.StatusOK); err != nil {
		e.writeError(w, r, err)
	}
}

// delete removes a record the delete rule allows; on_delete of the
// relations pointing at it applies in the same transaction.
func (e *Engine) delete(ctx context.Context, tx pgx.Tx, co *coll, c *caller, id string, version *int64) error {
	loads := e.loads(ctx, tx)
	before, err := e.get(ctx, tx, co, c, loads, id, true)
	if err != nil {
		return err
	}
	if version != nil && *version != before.Version() {
		return e.conflict(ctx, co, c, loads, before)
	}
	if err := e.beforeDelete(ctx, tx, co, c, before); err != nil {
		return err
	}
	d, err := e.allow(ctx, c, co.name, rules.Delete, c.input(before, nil, nil), loads)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return e.denied(co.name, rules.Delete, d)
	}
	if _, err = tx.Exec(ctx, `DELETE FROM `+co.table+` WHERE id = $1`, id); err != nil {
		return err
	}
	return e.runWritten(ctx, tx, co, c, OpDelete, before, nil)
}

func (e *Engine) handleDelete(w http.ResponseWriter, r *http.Request) {
	co, err := e.collOf(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	version, err := ifMatch(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	c := e.callerOf(r)
	err = e.inTx(r.Context(), func(ctx context.Context, tx pgx.Tx) error {
		return e.delete(ctx, tx, co, c, chi.URLParam(r, "id"), version)
	})
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
