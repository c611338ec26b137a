package adminui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func testHandler(t *testing.T) *Handler {
	t.Helper()
	h, err := newHandler(fstest.MapFS{
		"index.html":            {Data: []byte("<!doctype html><title>console</title>")},
		"assets/index-Ab12.js":  {Data: []byte("console.log(1)")},
		"assets/index-Cd34.css": {Data: []byte("body{}")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func do(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestServe: the index for every app path, never cached; hashed assets
// immutable; the strict CSP on every answer; /_ sent to /_/.
func TestServe(t *testing.T) {
	t.Parallel()
	h := testHandler(t)
	for _, p := range []string{"/_/", "/_/users", "/_/users/0193abc", "/_/index.html", "/_/../_/roles"} {
		rec := do(h, "GET", p)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "<title>console</title>") || rec.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s = %d %q %q", p, rec.Code, rec.Header(), rec.Body)
		}
	}
	rec := do(h, "GET", "/_/assets/index-Ab12.js")
	if rec.Code != 200 || rec.Body.String() != "console.log(1)" || rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("an asset: %d %q", rec.Code, rec.Header())
	}
	if again := do(h, "GET", "/_/assets/index-Ab12.js", "If-None-Match", rec.Header().Get("ETag")); again.Code != http.StatusNotModified {
		t.Errorf("a revalidated asset: %d", again.Code)
	}
	if rec := do(h, "GET", "/_/assets/index-Old0.js"); rec.Code != 404 {
		t.Errorf("a stale asset: %d, want 404 rather than the index as a script", rec.Code)
	}
	if rec := do(h, "GET", "/_"); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/_/" {
		t.Errorf("GET /_ = %d %q", rec.Code, rec.Header())
	}
	if rec := do(h, "POST", "/_/users"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d", rec.Code)
	}
	want := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws://example.com wss://example.com; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	for _, p := range []string{"/_/", "/_/assets/index-Cd34.css", "/_"} {
		if got := do(h, "GET", p).Header().Get("Content-Security-Policy"); got != want {
			t.Errorf("CSP of %s = %q", p, got)
		}
	}
}

// TestCSPHost: a forged Host cannot add a source to the policy.
func TestCSPHost(t *testing.T) {
	t.Parallel()
	got := CSP("evil.com; script-src *")
	if strings.Contains(got, "script-src *") || strings.Count(got, ";") != 7 {
		t.Errorf("CSP = %q", got)
	}
}

// TestEmbedded: the committed build is embedded and has its index.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	rec := do(h, "GET", "/_/")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `src="/_/assets/`) {
		t.Errorf("GET /_/ = %d %q", rec.Code, rec.Body)
	}
}
