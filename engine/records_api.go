package engine

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/rules"
)

// Records reads and writes records from Go as one principal. Everything a
// request of that principal meets applies: the rules and field rules
// (unless it is the system), validation, versions, the hooks, the change
// log and so realtime. Records of a hook's event share its transaction;
// others run each write in a transaction of its own, or the writes of
// Tx in one.
type Records struct {
	e  *Engine
	c  *caller
	tx pgx.Tx // nil: each write in its own transaction
}

// As reads and writes as p (nil is anonymous), with p's rules.
func (e *Engine) As(p *auth.Principal) *Records {
	c := &caller{request: rules.Request{Time: e.now()}}
	c.setPrincipal(p)
	return &Records{e: e, c: c}
}

// AsSystem reads and writes as the system: no rule and no field rule
// applies, as in the admin records API.
func (e *Engine) AsSystem() *Records { return &Records{e: e, c: systemCaller(e)} }

// RecordsOf reads and writes as the caller of r (its principal, method
// and client IP, as rules see them): what a custom route needs to act for
// its caller.
func (e *Engine) RecordsOf(r *http.Request) *Records { return &Records{e: e, c: e.callerOf(r)} }

// Tx runs fn with Records whose writes share one transaction: all of them
// happen, or none. The after-hooks run once it committed.
func (rs *Records) Tx(ctx context.Context, fn func(ctx context.Context, rs *Records) error) error {
	if rs.tx != nil {
		return fn(ctx, rs)
	}
	return rs.e.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return fn(ctx, &Records{e: rs.e, c: rs.c, tx: tx})
	})
}

func (rs *Records) coll(name string) (*coll, error) {
	co := rs.e.colls[name]
	if co == nil {
		return nil, errStatus(http.StatusNotFound, "no collection %q", name)
	}
	return co, nil
}

func (rs *Records) db() dbtx {
	if rs.tx != nil {
		return rs.tx
	}
	return rs.e.db
}

// write runs fn in rs's transaction, or in one of its own.
func (rs *Records) write(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	if rs.tx != nil {
		return fn(ctx, rs.tx)
	}
	return rs.e.inTx(ctx, fn)
}

// visible is rec without the fields the caller's field read rules hide.
func (rs *Records) visible(ctx context.Context, co *coll, loads *rules.Loads, rec Record) (Record, error) {
	v, err := rs.e.viewOf(ctx, co, rs.c, loads, rec, nil)
	if err != nil || len(v.hidden) == 0 {
		return rec, err
	}
	for _, f := range v.hidden {
		delete(rec, f)
	}
	return rec, nil
}

// Get reads a record; one the caller may not read is ErrorStatus 404,
// like one that does not exist.
func (rs *Records) Get(ctx context.Context, collection, id string) (Record, error) {
	co, err := rs.coll(collection)
	if err != nil {
		return nil, err
	}
	loads := rs.e.loads(ctx, rs.db())
	rec, err := rs.e.get(ctx, rs.db(), co, rs.c, loads, id, false)
	if err != nil {
		return nil, err
	}
	return rs.visible(ctx, co, loads, rec)
}

// ListQuery is what List reads: the filter and sort of the list API
// (docs/records.md), and at most Limit records (0 is the API's default,
// at most 500).
type ListQuery struct {
	Filter string
	Sort   string
	Limit  int
}

// List reads the first records of a collection that the caller may list
// and q matches.
func (rs *Records) List(ctx context.Context, collection string, q ListQuery) ([]Record, error) {
	co, err := rs.coll(collection)
	if err != nil {
		return nil, err
	}
	params := url.Values{}
	if q.Filter != "" {
		params.Set("filter", q.Filter)
	}
	if q.Sort != "" {
		params.Set("sort", q.Sort)
	}
	if q.Limit != 0 {
		params.Set("limit", strconv.Itoa(q.Limit))
	}
	lr, err := rs.e.parseListQuery(co, params)
	if err != nil {
		return nil, err
	}
	sql, args, nMasked, err := rs.e.listQuery(co, rs.c, lr)
	if err != nil {
		return nil, err
	}
	rows, err := rs.db().Query(ctx, sql, args.Args...)
	if err != nil {
		return nil, err
	}
	sc := co.newScanner()
	masked := make([]any, nMasked)
	for i := range masked {
		sc.ptrs = append(sc.ptrs, &masked[i])
	}
	var recs []Record
	for rows.Next() {
		rec, err := co.scanWith(sc, rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		recs = append(recs, rec)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(recs) > lr.limit {
		recs = recs[:lr.limit]
	}
	loads := rs.e.loads(ctx, rs.db())
	for i, rec := range recs {
		if recs[i], err = rs.visible(ctx, co, loads, rec); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// Create creates a record from data (field values as JSON carries them,
// or Go values that encode to them; "id" may choose its id).
func (rs *Records) Create(ctx context.Context, collection string, data map[string]any) (Record, error) {
	co, err := rs.coll(collection)
	if err != nil {
		return nil, err
	}
	body, err := jsonCopy(data)
	if err != nil {
		return nil, err
	}
	if body == nil {
		body = map[string]any{}
	}
	var rec Record
	err = rs.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rec, err = rs.e.create(ctx, tx, co, rs.c, body)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rs.visible(ctx, co, rs.e.loads(ctx, rs.db()), rec)
}

// Update changes the fields of data; a "version" in data makes it
// conditional, as If-Match does (a stale one is ErrorStatus 409).
func (rs *Records) Update(ctx context.Context, collection, id string, data map[string]any) (Record, error) {
	co, err := rs.coll(collection)
	if err != nil {
		return nil, err
	}
	patch, err := jsonCopy(data)
	if err != nil {
		return nil, err
	}
	var rec Record
	err = rs.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rec, err = rs.e.update(ctx, tx, co, rs.c, id, change{patch: patch}, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rs.visible(ctx, co, rs.e.loads(ctx, rs.db()), rec)
}

// Delete deletes a record.
func (rs *Records) Delete(ctx context.Context, collection, id string) error {
	co, err := rs.coll(collection)
	if err != nil {
		return err
	}
	return rs.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return rs.e.delete(ctx, tx, co, rs.c, id, nil)
	})
}

// WriteError answers err as the records API would: the engine's errors
// and a hook's refusal with their problem+json, anything else as a 500
// with a generic message, logged.
func (e *Engine) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e.writeError(w, r, err)
}

// ErrorStatus is the HTTP status the records API answers err with: 404
// for a record that does not exist or the caller may not read, 403 for a
// rule's refusal, 409 for a stale version, 422 for invalid fields, a
// hook's chosen status, 500 for anything else.
func ErrorStatus(err error) int {
	var ae *apiError
	var be *bodyError
	var fe *rules.FilterError
	if p, ok := httpx.Refusal(err); ok {
		return p.Status
	}
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &ae):
		return ae.status
	case errors.As(err, &be):
		return be.status
	case errors.As(err, &fe):
		return http.StatusBadRequest
	}
	if p := (&Engine{}).pgProblem(err); p != nil {
		return p.Status
	}
	return http.StatusInternalServerError
}
