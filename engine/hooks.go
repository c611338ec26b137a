package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/engine/ops"
	"github.com/abe-stack/abe/internal/httpx"
)

// Write operations, as WriteEvent.Op names them.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// WriteEvent is one record written, as a hook sees it.
//
// In a before-hook, Before and After are JSON values (what a client sends:
// float64 numbers, RFC 3339 strings for timestamps, []any lists), and
// After is the record the write proposes, which the hook may change in
// place; ID is empty on a create that did not choose its id, and Version
// is the stored one. In the written hook and the after-hooks they are the
// rows as stored (Go values, as rules see them) and Version is the new
// one (the old one on delete).
type WriteEvent struct {
	Collection string
	Op         string // "create", "update" or "delete"
	ID         string
	Version    int64
	Before     Record // nil on create
	After      Record // nil on delete
	// Tx is the write's transaction; nil in an after-hook, which runs
	// once it committed.
	Tx pgx.Tx
	// Principal is who writes: nil when anonymous or the system.
	Principal *auth.Principal
	// System tells a write no rule applies to: the admin records API
	// (Principal is the admin) or a write as the system (Principal nil).
	System bool

	e *Engine
	c *caller
}

// Records reads and writes records as the writer of the event (its rules
// apply), in the event's transaction: what the hook writes commits or
// rolls back with the event's write, and runs the hooks of its own.
func (ev *WriteEvent) Records() *Records { return &Records{e: ev.e, c: ev.c, tx: ev.Tx} }

// AsSystem reads and writes records as the system (no rule applies), in
// the event's transaction.
func (ev *WriteEvent) AsSystem() *Records { return &Records{e: ev.e, c: systemCaller(ev.e), tx: ev.Tx} }

// WrittenFunc is a hook that runs inside a write's transaction once the
// row is final.
type WrittenFunc func(ctx context.Context, ev *WriteEvent) error

// HookFunc is a before- or after-hook of record writes.
type HookFunc func(ctx context.Context, ev *WriteEvent) error

type scopedHook struct {
	collection, op string // "" matches all
	fn             HookFunc
}

// Hooks holds the hooks of record writes. It is shared by the engines one
// App builds (Options.Hooks): a reload of abe.yaml builds a new Engine,
// and the hooks registered before it must go on running.
type Hooks struct {
	mu      sync.RWMutex
	written []WrittenFunc
	before  []scopedHook
	after   []scopedHook
}

// NewHooks returns an empty registry.
func NewHooks() *Hooks { return &Hooks{} }

// OnWritten registers fn to run inside the write's transaction after the
// row is final; an error rolls the write back.
func (h *Hooks) OnWritten(fn WrittenFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.written = append(h.written, fn)
}

// OnBefore registers fn to run inside the write's transaction before
// validation and the rules, for op ("create", "update", "delete"; ""
// for all) on collection ("" for all). It may change ev.After, refuse
// with an error (abe.HookError chooses the answer; any other error is a
// 500), or write other records through ev.Records or ev.AsSystem.
func (h *Hooks) OnBefore(collection, op string, fn HookFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.before = append(h.before, scopedHook{collection, op, fn})
}

// OnAfter registers fn to run once the write committed, for op on
// collection ("" for all). It cannot undo the write: its error is logged.
func (h *Hooks) OnAfter(collection, op string, fn HookFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.after = append(h.after, scopedHook{collection, op, fn})
}

func (h *Hooks) match(list []scopedHook, collection, op string) []HookFunc {
	var out []HookFunc
	for _, s := range list {
		if (s.collection == "" || s.collection == collection) && (s.op == "" || s.op == op) {
			out = append(out, s.fn)
		}
	}
	return out
}

func (h *Hooks) lookup(collection, op string) (before []HookFunc, written []WrittenFunc, after []HookFunc) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.match(h.before, collection, op), h.written, h.match(h.after, collection, op)
}

// OnWritten registers fn to run inside the write's transaction after the
// row is final; an error rolls the write back. It registers on the
// engine's Hooks, so with a shared registry (Options.Hooks) fn outlives
// this engine.
func (e *Engine) OnWritten(fn func(ctx context.Context, ev *WriteEvent) error) {
	e.hooks.OnWritten(fn)
}

// Hooks is the engine's hook registry.
func (e *Engine) Hooks() *Hooks { return e.hooks }

// maxHookDepth bounds writes that hooks make from hooks: a hook that
// writes the record that runs it would otherwise never end.
const maxHookDepth = 8

type hookStateKey struct{}

// hookState is how deep hooks nest at a point of a write, and where the
// transaction keeps its events for the after-hooks.
type hookState struct {
	depth int
	after *afterList // nil outside inTx (an upload's dry run never commits)
}

// afterList is what one transaction's writes leave for after its commit:
// each event with the after-hooks registered when it was written.
type afterList struct {
	events []*WriteEvent
	fns    [][]HookFunc
}

func stateOf(ctx context.Context) *hookState {
	st, _ := ctx.Value(hookStateKey{}).(*hookState)
	if st == nil {
		return &hookState{}
	}
	return st
}

// inTx runs fn in a transaction, tells Committed when it committed, and
// then runs the after-hooks of what it wrote.
func (e *Engine) inTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	st := &hookState{depth: stateOf(ctx).depth, after: &afterList{}}
	ctx = context.WithValue(ctx, hookStateKey{}, st)
	if err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error { return fn(ctx, tx) }); err != nil {
		return err
	}
	if e.committed != nil {
		e.committed()
	}
	e.runAfter(ctx, st)
	return nil
}

// runAfter runs the after-hooks of a committed transaction, in the order
// its writes were made. The client's leaving must not cut them short.
func (e *Engine) runAfter(ctx context.Context, st *hookState) {
	if len(st.after.events) == 0 {
		return
	}
	// What after-hooks write runs in transactions of its own, one level
	// deeper.
	ctx = context.WithValue(context.WithoutCancel(ctx), hookStateKey{}, &hookState{depth: st.depth + 1})
	for i, ev := range st.after.events {
		for _, fn := range st.after.fns[i] {
			if err := e.safeHook(ctx, fn, ev); err != nil {
				e.log.ErrorContext(ctx, "an after-hook failed; the write stands", slog.String("collection", ev.Collection),
					slog.String("op", ev.Op), slog.String("id", ev.ID), slog.String("error", err.Error()),
					slog.String("request_id", httpx.RequestID(ctx)))
			}
		}
	}
}

// safeHook runs an after-hook; a panic in it is logged like an error,
// since the write it follows is committed and answered.
func (e *Engine) safeHook(ctx context.Context, fn HookFunc, ev *WriteEvent) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(ctx, ev)
}

// nested is ctx for the hooks of a write: one level deeper, with the same
// transaction's after list, or an error past maxHookDepth.
func nested(ctx context.Context) (context.Context, error) {
	st := stateOf(ctx)
	if st.depth >= maxHookDepth {
		return nil, fmt.Errorf("hooks wrote records from hooks more than %d levels deep", maxHookDepth)
	}
	return context.WithValue(ctx, hookStateKey{}, &hookState{depth: st.depth + 1, after: st.after}), nil
}

func (e *Engine) event(co *coll, c *caller, op string, tx pgx.Tx) *WriteEvent {
	return &WriteEvent{Collection: co.name, Op: op, Tx: tx, Principal: c.auth, System: c.bypass, e: e, c: c}
}

func (e *Engine) runBefore(ctx context.Context, fns []HookFunc, ev *WriteEvent) error {
	ctx, err := nested(ctx)
	if err != nil {
		return err
	}
	for _, fn := range fns {
		if err := fn(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// beforeCreate runs the before-hooks of a create on the body the caller
// sent, and gives the body the hooks leave.
func (e *Engine) beforeCreate(ctx context.Context, tx pgx.Tx, co *coll, c *caller, body map[string]any) (map[string]any, error) {
	fns, _, _ := e.hooks.lookup(co.name, OpCreate)
	if len(fns) == 0 {
		return body, nil
	}
	after, err := jsonCopy(body)
	if err != nil {
		return nil, err
	}
	ev := e.event(co, c, OpCreate, tx)
	ev.ID, _ = body["id"].(string)
	ev.After = after
	if err := e.runBefore(ctx, fns, ev); err != nil {
		return nil, err
	}
	if ev.After == nil {
		return nil, errors.New("a before-create hook set After to nil")
	}
	return jsonCopy(ev.After)
}

// beforeUpdate runs the before-hooks of an update on the record the
// change proposes, and gives the change the hooks leave: the fields that
// differ from before, as if the caller had sent them.
func (e *Engine) beforeUpdate(ctx context.Context, tx pgx.Tx, co *coll, c *caller, before Record, ch change) (change, error) {
	fns, _, _ := e.hooks.lookup(co.name, OpUpdate)
	if len(fns) == 0 {
		return ch, nil
	}
	base := co.jsonForm(before)
	var proposed map[string]any
	if ch.ops != nil {
		var err error
		if proposed, err = ops.ApplyAll(base, ch.ops); err != nil {
			return change{}, opError(err)
		}
	} else {
		proposed = maps.Clone(base)
		if ch.replace {
			for _, f := range co.cfg.Fields {
				proposed[f.Name] = defaultJSON(f, e.now())
			}
		}
		maps.Copy(proposed, ch.patch)
	}
	ev := e.event(co, c, OpUpdate, tx)
	ev.ID, ev.Version = before.ID(), before.Version()
	var err error
	if ev.Before, err = jsonCopy(base); err != nil {
		return change{}, err
	}
	if ev.After, err = jsonCopy(proposed); err != nil {
		return change{}, err
	}
	if err := e.runBefore(ctx, fns, ev); err != nil {
		return change{}, err
	}
	if ev.After == nil {
		return change{}, errors.New("a before-update hook set After to nil")
	}
	out, err := jsonCopy(ev.After)
	if err != nil {
		return change{}, err
	}
	if base, err = jsonCopy(base); err != nil {
		return change{}, err
	}
	patch := map[string]any{}
	for k, v := range out {
		if old, ok := base[k]; !ok || !reflect.DeepEqual(old, v) {
			patch[k] = v
		}
	}
	return change{patch: patch, fileField: ch.fileField}, nil
}

// beforeDelete runs the before-hooks of a delete.
func (e *Engine) beforeDelete(ctx context.Context, tx pgx.Tx, co *coll, c *caller, before Record) error {
	fns, _, _ := e.hooks.lookup(co.name, OpDelete)
	if len(fns) == 0 {
		return nil
	}
	ev := e.event(co, c, OpDelete, tx)
	ev.ID, ev.Version = before.ID(), before.Version()
	var err error
	if ev.Before, err = jsonCopy(co.jsonForm(before)); err != nil {
		return err
	}
	return e.runBefore(ctx, fns, ev)
}

// runWritten runs the written hooks on a row that passed its rules and is
// final in tx, and keeps the event for the after-hooks: every write path
// (REST, ops, batch, files, the admin records API, the Go API) comes
// through create, update or delete, which call it. Writes Postgres makes
// itself (a cascading delete, a set_null) reach the change log but not
// these hooks.
func (e *Engine) runWritten(ctx context.Context, tx pgx.Tx, co *coll, c *caller, op string, before, after Record) error {
	_, written, afterFns := e.hooks.lookup(co.name, op)
	if len(written) == 0 && len(afterFns) == 0 {
		return nil
	}
	ev := e.event(co, c, op, tx)
	ev.Before, ev.After = before, after
	if after != nil {
		ev.ID, ev.Version = after.ID(), after.Version()
	} else {
		ev.ID, ev.Version = before.ID(), before.Version()
	}
	if len(written) > 0 {
		hctx, err := nested(ctx)
		if err != nil {
			return err
		}
		for _, fn := range written {
			if err := fn(hctx, ev); err != nil {
				return err
			}
		}
	}
	if st := stateOf(ctx); len(afterFns) > 0 && st.after != nil {
		done := *ev
		done.Tx = nil
		st.after.events = append(st.after.events, &done)
		st.after.fns = append(st.after.fns, afterFns)
	}
	return nil
}

// jsonCopy is a deep copy of m as encoding/json decodes it: what the
// validator reads, whatever Go values a hook put in.
func jsonCopy(m map[string]any) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("a hook left a record that is not JSON: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("a hook left a record that is not JSON: %w", err)
	}
	return out, nil
}
