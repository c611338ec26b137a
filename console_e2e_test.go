package abe_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/abe-stack/abe"
)

// TestConsoleServed: a real app serves the embedded console at /_/ with
// its CSP, sends /_ there, and the API keeps its paths.
func TestConsoleServed(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t)
	cfg.Database.URL = migratedURL(t, cfg)
	app, err := abe.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, p := range []string{"/_/", "/_/users", "/_/roles/editor"} {
		res, body := get(p)
		csp := res.Header.Get("Content-Security-Policy")
		if res.StatusCode != 200 || !strings.Contains(body, `src="/_/assets/`) || res.Header.Get("Cache-Control") != "no-cache" ||
			!strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s = %d %q", p, res.StatusCode, res.Header)
		}
	}
	if res, _ := get("/_"); res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/_/" {
		t.Errorf("GET /_ = %d %q", res.StatusCode, res.Header)
	}
	// The API wins over the console's index fallback.
	if res, body := get("/api/openapi.json"); res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || strings.Contains(body, "<!doctype") {
		t.Errorf("GET /api/openapi.json = %d %q", res.StatusCode, res.Header)
	}
	if res, body := get("/api/admin/console-nope"); res.StatusCode != 404 || strings.Contains(body, "<!doctype") {
		t.Errorf("an unknown API path = %d %q", res.StatusCode, body)
	}
	if res, _ := get("/api/admin/users"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/admin/users without a token = %d", res.StatusCode)
	}
}
