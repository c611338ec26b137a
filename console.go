package abe

import (
	"github.com/go-chi/chi/v5"

	adminui "github.com/abe-stack/abe/admin-ui"
)

// consoleRoutes mounts the admin console (admin-ui/, docs/admin-console.md)
// at /_/, with /_ redirected there. It is static files only: every
// permission is checked by the admin API the console calls.
func consoleRoutes(r chi.Router) {
	h := adminui.Serve()
	r.Handle("/_", h)
	r.Handle("/_/*", h)
}
