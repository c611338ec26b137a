package engine

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Write operations, as WriteEvent.Op names them.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// WriteEvent is one record written, as a hook sees it.
type WriteEvent struct {
	Collection string
	Op         string // "create", "update" or "delete"
	ID         string
	Version    int64
	Before     Record // nil on create
	After      Record // nil on delete
	Tx         pgx.Tx
}

// WrittenFunc is a hook that runs inside a write's transaction once the
// row is final.
type WrittenFunc func(ctx context.Context, ev *WriteEvent) error

// Hooks holds the hooks of record writes. It is shared by the engines one
// App builds (Options.Hooks): a reload of abe.yaml builds a new Engine,
// and the hooks registered before it must go on running.
type Hooks struct {
	mu      sync.RWMutex
	written []WrittenFunc
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

// OnWritten registers fn to run inside the write's transaction after the
// row is final; an error rolls the write back. It registers on the
// engine's Hooks, so with a shared registry (Options.Hooks) fn outlives
// this engine.
func (e *Engine) OnWritten(fn func(ctx context.Context, ev *WriteEvent) error) {
	e.hooks.OnWritten(fn)
}

// Hooks is the engine's hook registry.
func (e *Engine) Hooks() *Hooks { return e.hooks }

// runWritten runs the written hooks on a row that passed its rules and is
// final in tx: every write path (REST, ops, batch, files, the admin
// records API) comes through create, update or delete, which call it.
// Writes Postgres makes itself (a cascading delete, a set_null) reach the
// change log but not these hooks.
func (e *Engine) runWritten(ctx context.Context, tx pgx.Tx, co *coll, op string, before, after Record) error {
	e.hooks.mu.RLock()
	fns := e.hooks.written
	e.hooks.mu.RUnlock()
	if len(fns) == 0 {
		return nil
	}
	ev := &WriteEvent{Collection: co.name, Op: op, Before: before, After: after, Tx: tx}
	if after != nil {
		ev.ID, ev.Version = after.ID(), after.Version()
	} else {
		ev.ID, ev.Version = before.ID(), before.Version()
	}
	for _, fn := range fns {
		if err := fn(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}
