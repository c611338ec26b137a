package abe

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/abe-stack/abe/auth"
)

// adminRoutes mounts the admin console's read-only views of this node
// (docs/admin-api.md): the overview, the schema and the realtime inspector.
// The inspector shows what another principal may read, so it needs the
// rules playground's permission too.
func (a *App) adminRoutes(r chi.Router) {
	console := a.auth.RequirePermission(auth.PermConsole)
	r.With(console).Get("/api/admin/overview", a.handleOverview)
	r.With(console).Get("/api/admin/schema", a.handleSchema)
	r.With(console, a.auth.RequirePermission(auth.PermRulesExplain)).Get("/api/admin/realtime/inspect", func(w http.ResponseWriter, r *http.Request) {
		a.hub.ServeInspect(w, r) // the hub is made after the first routes
	})
}
