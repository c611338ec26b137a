package abe_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/internal/hosting"
	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/schema"
)

// TestHosting: with hosting.dir, the app is served at / and every path
// no route takes, and the API keeps every path it has and answers its
// unknown ones as before.
func TestHosting(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"index.html":               "<!doctype html><title>todo</title>",
		"assets/index-DiwrgTda.js": "console.log(1)",
		"sw.js":                    "// worker",
		// A build that tries to shadow the API gets nowhere.
		"api/openapi.json": "SHADOW", "healthz": "SHADOW", "readyz/index.html": "SHADOW", "metrics": "SHADOW", "_/index.html": "SHADOW",
	})
	cfg := loadExample(t)
	cfg.Hosting.Dir, cfg.Hosting.SPA = dir, true
	cfg.Database.URL = migratedURL(t, cfg)
	app, err := abe.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)

	get := func(method, path, accept string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Accept", accept)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if strings.Contains(string(b), "SHADOW") {
			t.Errorf("%s %s served a file over the API", method, path)
		}
		return res, string(b)
	}
	const html = "text/html,application/xhtml+xml,*/*;q=0.8"
	for _, path := range []string{"/", "/projects/42", "/settings"} {
		res, body := get("GET", path, html)
		if res.StatusCode != 200 || !strings.Contains(body, "<title>todo</title>") || res.Header.Get("Cache-Control") != "no-cache" ||
			res.Header.Get("Content-Security-Policy") != hosting.DefaultCSP(strings.TrimPrefix(srv.URL, "http://")) {
			t.Errorf("GET %s = %d %q %q", path, res.StatusCode, res.Header, body)
		}
	}
	if res, _ := get("GET", "/assets/index-DiwrgTda.js", "*/*"); res.StatusCode != 200 || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("an asset: %d %q", res.StatusCode, res.Header)
	}
	// The API's own answers, untouched.
	for _, c := range []struct {
		path   string
		status int
		ctype  string
	}{
		{"/healthz", 200, "application/json"},
		{"/readyz", 200, "application/json"},
		{"/metrics", 200, "text/plain"},
		{"/api/openapi.json", 200, "application/json"},
		{"/api/unknown", 404, httpx.ContentTypeProblem},
		{"/api/collections/nope/records", 404, httpx.ContentTypeProblem},
		{"/api/collections/todos/records/not-a-uuid", 0, httpx.ContentTypeProblem},
		{"/healthz/x", 404, httpx.ContentTypeProblem},
		{"/.env", 404, httpx.ContentTypeProblem},
	} {
		res, body := get("GET", c.path, html)
		if c.status != 0 && res.StatusCode != c.status || !strings.HasPrefix(res.Header.Get("Content-Type"), c.ctype) || strings.Contains(body, "<title>") {
			t.Errorf("GET %s = %d %q, want %d %s", c.path, res.StatusCode, res.Header.Get("Content-Type"), c.status, c.ctype)
		}
		if strings.HasPrefix(c.path, "/api/") && res.Header.Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'none'" {
			t.Errorf("GET %s: the API's policy became %q", c.path, res.Header.Get("Content-Security-Policy"))
		}
	}
	// The console keeps /_/, whatever the hosted build holds there.
	if res, body := get("GET", "/_/", html); res.StatusCode != 200 || !strings.Contains(body, "<title>") ||
		res.Header.Get("Content-Security-Policy") == hosting.DefaultCSP(strings.TrimPrefix(srv.URL, "http://")) {
		t.Errorf("GET /_/ = %d %q, want the console under its own policy", res.StatusCode, res.Header)
	}
	if res, _ := get("POST", "/healthz", html); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d", res.StatusCode)
	}
	if res, _ := get("POST", "/projects", html); res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /projects = %d %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

// TestHostingDirMissing: a hosting.dir that is not there stops the start
// before the database is dialled, naming the directory.
func TestHostingDirMissing(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t)
	cfg.Hosting.Dir = filepath.Join(t.TempDir(), "web", "dist")
	cfg.Database.URL = "postgres://127.0.0.1:1/none?connect_timeout=1"
	_, err := abe.New(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), cfg.Hosting.Dir) || !strings.Contains(err.Error(), "hosting.dir") {
		t.Fatalf("got %v, want an error naming %s", err, cfg.Hosting.Dir)
	}
}

// TestHostingSpendsNoRateLimit: the hosted app's files and the console's
// stand outside the API's rate limit, so a page load of many assets leaves
// the API calls their budget; /metrics counts them under routes "hosting"
// and "console".
func TestHostingSpendsNoRateLimit(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"index.html": "<!doctype html><title>app</title>", "assets/a-1.js": "1", "assets/b-2.js": "2"})
	cfg := loadExample(t)
	cfg.Hosting.Dir, cfg.Hosting.SPA = dir, true
	rl := &cfg.Server.RateLimit
	rl.Disabled, rl.Requests, rl.Burst, rl.Window = false, 3, 3, schema.Duration(time.Hour)
	cfg.Database.URL = migratedURL(t, cfg)
	app, err := abe.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)
	status := func(path string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Accept", "text/html,*/*;q=0.8") // as a browser navigates
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 20 {
		for _, p := range []string{"/", "/assets/a-1.js", "/assets/b-2.js", "/some/page", "/_/", "/_/users"} {
			if s := status(p); s != http.StatusOK {
				t.Fatalf("load %d, GET %s = %d", i, p, s)
			}
		}
	}
	// The burst of 3 is the API's, untouched by 80 file requests and 40 of the console.
	for i := range 3 {
		if s := status("/api/collections/todos/records"); s == http.StatusTooManyRequests {
			t.Fatalf("API call %d after the page loads = 429", i+1)
		}
	}
	if s := status("/api/collections/todos/records"); s != http.StatusTooManyRequests {
		t.Errorf("the fourth API call = %d, want 429: the limit is on", s)
	}
	res, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(b), `abe_http_requests_total{method="GET",route="hosting",status="200"} 80`) {
		t.Errorf("/metrics has no 80 hosting requests:\n%s", grepLines(string(b), "abe_http_requests_total"))
	}
	if !strings.Contains(string(b), `abe_http_requests_total{method="GET",route="console",status="200"} 40`) {
		t.Errorf("/metrics has no 40 console requests:\n%s", grepLines(string(b), "abe_http_requests_total"))
	}
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// writeFiles makes a directory of files, by slash-separated path.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
