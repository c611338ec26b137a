package engine

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/rules"
)

// The admin records API (docs/admin-api.md, "Records") serves
// /api/admin/collections/{name}/records with the public API's own
// handlers, in admin mode: no rule and no field rule applies, while
// validation, versions, the change log (and so realtime) and file storage
// do. Admin mode is a value under an unexported context key that only
// AdminRoutes puts there, behind its guard; nothing a request carries
// (header, query, token claim) can set it.

// PermRecordsAdmin is the permission of the admin records API; "*" holds it.
const PermRecordsAdmin = "records:admin"

// Security event types of the admin records API.
const (
	EventAdminRecordCreate = "admin.record.create"
	EventAdminRecordUpdate = "admin.record.update"
	EventAdminRecordDelete = "admin.record.delete"
	EventAdminRecordsRead  = "admin.records.read"
)

// AdminAudit records the admin's actions as security events;
// *auth.Service is one. Writes are recorded in their own transaction.
type AdminAudit interface {
	RecordAdminAction(r *http.Request, typ string, details map[string]any) error
	RecordAdminActionTx(ctx context.Context, tx pgx.Tx, r *http.Request, typ string, details map[string]any) error
}

var _ AdminAudit = (*auth.Service)(nil)

type adminModeKey struct{}

// adminMode reports whether ctx is a request of the admin records API.
func adminMode(ctx context.Context) bool {
	on, _ := ctx.Value(adminModeKey{}).(bool)
	return on
}

// AdminRoutes mounts /api/admin/collections/{collection}/records behind
// guard (the permission check, PermRecordsAdmin), recording each request
// in audit.
func (e *Engine) AdminRoutes(r chi.Router, guard func(http.Handler) http.Handler, audit AdminAudit) {
	read := e.auditRead(audit)
	write := func(typ string) func(http.Handler) http.Handler { return auditWrite(audit, typ) }
	e.hooks.onWrittenOnce(recordAdminWrite)
	r.Route("/api/admin/collections/{collection}", func(r chi.Router) {
		// The guard runs first: a caller without the permission learns
		// nothing, not even which collections exist.
		r.Use(guard, enterAdminMode)
		r.With(read).Get("/records", e.handleList)
		r.With(write(EventAdminRecordCreate)).Post("/records", e.handleCreate)
		r.With(read).Get("/records/{id}", e.handleGet)
		r.With(write(EventAdminRecordUpdate)).Patch("/records/{id}", e.handlePatch)
		r.With(write(EventAdminRecordUpdate)).Put("/records/{id}", e.handlePut)
		r.With(write(EventAdminRecordDelete)).Delete("/records/{id}", e.handleDelete)
		r.Route("/records/{id}/files/{field}", func(r chi.Router) {
			r.With(write(EventAdminRecordUpdate)).Post("/", e.handleUpload)
			r.With(read).Get("/", e.handleDownload)
			r.With(read).Head("/", e.handleDownload)
			r.With(write(EventAdminRecordUpdate)).Delete("/", e.handleFileDelete)
			r.With(read).Get("/{name}", e.handleDownload)
			r.With(read).Head("/{name}", e.handleDownload)
			r.With(write(EventAdminRecordUpdate)).Delete("/{name}", e.handleFileDelete)
		})
	})
}

func enterAdminMode(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), adminModeKey{}, true)))
	})
}

// actor is the admin's user id.
func actor(r *http.Request) string {
	if p := auth.PrincipalFrom(r.Context()); p != nil {
		return p.UserID
	}
	return ""
}

// auditRead records one admin.records.read event per read request of a
// collection that exists, before it is answered: a read the trail cannot
// hold is not served.
func (e *Engine) auditRead(audit AdminAudit) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := chi.URLParam(r, "collection")
			if e.colls[name] != nil {
				details := map[string]any{"actor": actor(r), "collection": name, "filter": r.URL.Query().Get("filter")}
				if id := chi.URLParam(r, "id"); id != "" {
					details["record_id"] = id
				}
				if err := audit.RecordAdminAction(r, EventAdminRecordsRead, details); err != nil {
					e.writeError(w, r, err)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// adminWrite is a write request of the admin records API: the row it
// writes records it as a security event inside the write's transaction
// (recordAdminWrite, a written hook).
type adminWrite struct {
	audit AdminAudit
	typ   string
	r     *http.Request
	// in is the transaction the request's own row was recorded in: rows
	// that hooks write beside it are not the admin's write. (An upload
	// writes twice, first in a transaction it rolls back.)
	in pgx.Tx
}

type adminWriteKey struct{}

// auditWrite marks a write request so that the row it writes is recorded
// as typ in the write's own transaction: the event commits with the write,
// and a write the trail cannot hold is rolled back (500).
func auditWrite(audit AdminAudit, typ string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			aw := &adminWrite{audit: audit, typ: typ, r: r}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), adminWriteKey{}, aw)))
		})
	}
}

// recordAdminWrite records ev in its transaction when ctx is an admin
// write: the record's id and the version written (for a delete, the
// version it had).
func recordAdminWrite(ctx context.Context, ev *WriteEvent) error {
	aw, _ := ctx.Value(adminWriteKey{}).(*adminWrite)
	if aw == nil || ev.Tx == nil || aw.in == ev.Tx {
		return nil
	}
	r := aw.r
	if ev.Collection != chi.URLParam(r, "collection") {
		return nil
	}
	if id := chi.URLParam(r, "id"); id != "" && !strings.EqualFold(id, ev.ID) {
		return nil
	}
	aw.in = ev.Tx
	d := map[string]any{"actor": actor(r), "collection": ev.Collection, "record_id": ev.ID, "version": ev.Version}
	if f := chi.URLParam(r, "field"); f != "" {
		d["field"] = f
	}
	if err := aw.audit.RecordAdminActionTx(ctx, ev.Tx, r, aw.typ, d); err != nil {
		return fmt.Errorf("record the admin write: %w", err)
	}
	return nil
}

// onWrittenOnce registers fn unless the registry holds it: the engines a
// reload builds share one registry, and each mounts the admin routes.
func (h *Hooks) onWrittenOnce(fn WrittenFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := reflect.ValueOf(fn).Pointer()
	for _, f := range h.written {
		if reflect.ValueOf(f).Pointer() == p {
			return
		}
	}
	h.written = append(h.written, fn)
}

// allow is the rule's decision on op, or yes in admin mode.
func (e *Engine) allow(ctx context.Context, c *caller, collection string, op rules.Op, in *rules.Input, loads *rules.Loads) (rules.Decision, error) {
	if c.bypass {
		return rules.Decision{Allowed: true}, nil
	}
	return e.rules.Allow(ctx, collection, op, in, loads)
}

// deniedUpdates is the fields whose update rules deny the change, or none
// in admin mode.
func (e *Engine) deniedUpdates(ctx context.Context, c *caller, collection string, in *rules.Input, loads *rules.Loads) ([]string, error) {
	if c.bypass {
		return nil, nil
	}
	return e.rules.DeniedUpdates(ctx, collection, in, loads)
}

// listPredicate is the list rule as SQL, or TRUE in admin mode.
func (e *Engine) listPredicate(collection string, c *caller, in *rules.SQLInput, q *rules.SQL) (string, error) {
	if c.bypass {
		return "TRUE", nil
	}
	return e.rules.ListPredicate(collection, in, q)
}
