package schema

import (
	"path/filepath"
	"testing"
	"time"
)

func TestHostingSettings(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("/srv/app/abe.yaml", []byte("hosting:\n  dir: web/dist\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Hosting
	if h.SPA || h.ServiceWorker != DefaultServiceWorker || h.MaxAge == nil || time.Duration(*h.MaxAge) != DefaultHostingMaxAge || h.CSP != "" {
		t.Errorf("defaults: %+v", h)
	}
	if got := cfg.HostingDir(); got != filepath.FromSlash("/srv/app/web/dist") {
		t.Errorf("dir %s, want it beside the configuration file", got)
	}
	if cfg, err = Parse("abe.yaml", nil, nil); err != nil || cfg.HostingDir() != "" {
		t.Errorf("without the section nothing is hosted: %q %v", cfg.HostingDir(), err)
	}
	// Every setting has its variable; a leading slash of the worker's
	// path is dropped, and 0s is a max age of its own, not the default.
	cfg, err = Parse("abe.yaml", nil, []string{"ABE_HOSTING_DIR=/var/www/app", "ABE_HOSTING_SPA=true",
		"ABE_HOSTING_SERVICE_WORKER=/app/worker.js", "ABE_HOSTING_MAX_AGE=0s", "ABE_HOSTING_CSP=default-src 'self'"})
	if err != nil {
		t.Fatal(err)
	}
	h = cfg.Hosting
	if cfg.HostingDir() != "/var/www/app" || !h.SPA || h.ServiceWorker != "app/worker.js" || *h.MaxAge != 0 || h.CSP != "default-src 'self'" {
		t.Errorf("from the environment: %+v", h)
	}
}
