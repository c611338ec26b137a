package abe

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/engine"
)

// The hooks of a Go program that embeds abe (docs/hooks.md). They are
// registered on the App, after New and before Run; the registry outlives
// reloads of abe.yaml.

// RecordEvent is a record write as a hook sees it: the collection, the
// operation, the record before and after, the principal and the write's
// transaction (see engine.WriteEvent for the forms the records take).
type RecordEvent = engine.WriteEvent

// RecordHook is a hook of record writes.
type RecordHook = func(ctx context.Context, ev *RecordEvent) error

// Records reads and writes records as one principal, or as the system.
type Records = engine.Records

// ListQuery is what Records.List reads: a filter, a sort, a limit.
type ListQuery = engine.ListQuery

// AllCollections registers a record hook for every collection.
const AllCollections = ""

// HookError refuses a write, a login or a registration from a
// before-hook: the client gets a problem+json answer with Status (400
// when it is not in 400-599), Code as its type (the status's when empty
// or not lower_snake_case) and Message as its detail, sent as is. Any other
// error of a hook is a 500 with a generic message, logged with the request
// id: nothing of it reaches the client.
type HookError struct {
	Status  int
	Code    string
	Message string
}

// Refuse is a HookError with status and message.
func Refuse(status int, message string) *HookError {
	return &HookError{Status: status, Message: message}
}

func (e *HookError) Error() string { return e.Message }

// Refusal is the answer the hook chose.
func (e *HookError) Refusal() (status int, code, detail string) { return e.Status, e.Code, e.Message }

// OnBeforeCreate registers fn to run before a create on collection
// (AllCollections for every one), inside the write's transaction, before
// validation and the rules: it may change ev.After (the record as the
// caller sent it), refuse with a HookError, or write other records in the
// same transaction through ev.Records() (as the caller) or ev.AsSystem().
func (a *App) OnBeforeCreate(collection string, fn RecordHook) {
	a.onRecord(true, collection, engine.OpCreate, fn)
}

// OnBeforeUpdate is OnBeforeCreate for updates: ev.Before is the stored
// record, ev.After the record the change proposes.
func (a *App) OnBeforeUpdate(collection string, fn RecordHook) {
	a.onRecord(true, collection, engine.OpUpdate, fn)
}

// OnBeforeDelete is OnBeforeCreate for deletes: ev.Before is the stored
// record; there is nothing to change, only to refuse or to write.
func (a *App) OnBeforeDelete(collection string, fn RecordHook) {
	a.onRecord(true, collection, engine.OpDelete, fn)
}

// OnAfterCreate registers fn to run once a create committed, before the
// client is answered. It cannot undo the write: its error is logged.
func (a *App) OnAfterCreate(collection string, fn RecordHook) {
	a.onRecord(false, collection, engine.OpCreate, fn)
}

// OnAfterUpdate is OnAfterCreate for updates.
func (a *App) OnAfterUpdate(collection string, fn RecordHook) {
	a.onRecord(false, collection, engine.OpUpdate, fn)
}

// OnAfterDelete is OnAfterCreate for deletes.
func (a *App) OnAfterDelete(collection string, fn RecordHook) {
	a.onRecord(false, collection, engine.OpDelete, fn)
}

func (a *App) onRecord(before bool, collection, op string, fn RecordHook) {
	if collection == "*" {
		collection = AllCollections
	}
	if collection != AllCollections && a.cur.Load().cfg.Collection(collection) == nil {
		// A typo would otherwise never run; the collection may still come
		// with a reload.
		a.log.Warn("a hook is registered on a collection abe.yaml does not declare", slog.String("collection", collection))
	}
	if before {
		a.hooks.OnBefore(collection, op, fn)
	} else {
		a.hooks.OnAfter(collection, op, fn)
	}
}

// OnBeforeLogin registers fn to run when a login's password was right,
// before its session (or MFA challenge) begins; a HookError refuses it.
func (a *App) OnBeforeLogin(fn auth.LoginHook) { a.auth.OnBeforeLogin(fn) }

// OnAfterLogin registers fn to run once a login started a session (after
// MFA where the account has it); its error is logged.
func (a *App) OnAfterLogin(fn auth.LoginHook) { a.auth.OnAfterLogin(fn) }

// OnBeforeRegister registers fn to run before POST /api/auth/register
// makes an account; it may change ev.Name, or refuse with a HookError.
func (a *App) OnBeforeRegister(fn auth.RegisterHook) { a.auth.OnBeforeRegister(fn) }

// OnAfterRegister registers fn to run once a registration made its
// account; its error is logged.
func (a *App) OnAfterRegister(fn auth.RegisterHook) { a.auth.OnAfterRegister(fn) }

// Records reads and writes records as the caller of r, with its rules:
// what a custom route (Options.Routes) needs to act for its caller.
// auth.PrincipalFrom(r.Context()) is the caller itself (nil when
// anonymous).
func (a *App) Records(r *http.Request) *engine.Records { return a.Engine().RecordsOf(r) }

// System reads and writes records as the system: no rule applies.
func (a *App) System() *engine.Records { return a.Engine().AsSystem() }

// WriteError answers err as the records API does: the engine's errors and
// a HookError with their problem+json, anything else with a generic 500,
// logged.
func (a *App) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	a.Engine().WriteError(w, r, err)
}

// Every runs fn every interval through the job queue (River): on one
// node of the deployment at a time, soon after it is registered and then
// every interval, retried when it fails (three attempts), each run a job
// in /api/admin/jobs and `abe jobs list`. name identifies the task (under
// "app.", apart from abe's own); register it under the same name on every
// node, once. fn may use the App (System, Pool) freely.
func (a *App) Every(name string, interval time.Duration, fn func(ctx context.Context) error) error {
	if name == "" || interval <= 0 || fn == nil {
		return fmt.Errorf("a periodic task needs a name, a positive interval and a function")
	}
	return a.queue.Every("app."+name, interval, fn)
}
