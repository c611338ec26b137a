package hosting

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/internal/httpx"
)

// site lays out a web app's build, with a secret beside (outside) it.
func site(t *testing.T) (dir, outside string) {
	t.Helper()
	base := t.TempDir()
	dir, outside = filepath.Join(base, "dist"), filepath.Join(base, "private")
	files := map[string]string{
		"index.html":                  "<!doctype html><title>app</title>",
		"sw.js":                       "self.addEventListener('fetch', () => {})",
		"app-3f9a1c2b.js":             "console.log('app')",
		"assets/index-DiwrgTda.js":    "console.log('vite')",
		"assets/index-DiwrgTda.js.br": "BROTLI-BYTES",
		"assets/index-DiwrgTda.js.gz": "GZIP-BYTES",
		"assets/style-Bq1x2y3z.css":   "body{}",
		"logo.png":                    "\x89PNG\r\n\x1a\n",
		"robots.txt":                  "User-agent: *",
		"docs/index.html":             "<!doctype html><title>docs</title>",
		"empty/.keep":                 "",
		".env":                        "SECRET=in-root-dotfile",
		".git/config":                 "[core] secret",
		"assets/.hidden.js":           "HIDDEN-CONTENT",
		"../private/secret.txt":       "TOP-SECRET",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Siblings are never older than their file.
	old := time.Now().Add(-time.Hour)
	for _, name := range []string{"assets/index-DiwrgTda.js"} {
		if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"leak":          outside,                              // a directory out of the root
		"leak.txt":      filepath.Join(outside, "secret.txt"), // a file out of the root
		"relleak.txt":   "../private/secret.txt",
		"robots2.txt":   "robots.txt", // inside the root: fine
		"assets/up.txt": "../robots.txt",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, outside
}

func serve(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	cfg.Reserved = []string{"/api", "/_", "/healthz", "/readyz", "/metrics"}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpx.SecurityHeaders(h))
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status int
	header http.Header
	body   string
}

// raw sends a request line as written, unnormalised by any client, so
// that attacks reach the server byte for byte.
func raw(t *testing.T, srv *httptest.Server, method, target string, header map[string]string) reply {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() + "\r\nConnection: close\r\n")
	for k, v := range header {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, srv.URL, nil)
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{res.StatusCode, res.Header, string(body)}
}

func TestServe(t *testing.T) {
	t.Parallel()
	dir, _ := site(t)
	srv := serve(t, Config{Dir: dir, ServiceWorker: "sw.js", MaxAge: 5 * time.Minute})
	html := map[string]string{"Accept": "text/html,application/xhtml+xml"}
	for _, c := range []struct {
		name, method, target string
		header               map[string]string
		status               int
		body, ctype, cache   string
	}{
		{"the index", "GET", "/", html, 200, "<title>app</title>", "text/html; charset=utf-8", "no-cache"},
		{"index.html by name", "GET", "/index.html", nil, 200, "<title>app</title>", "text/html; charset=utf-8", "no-cache"},
		{"the service worker", "GET", "/sw.js", nil, 200, "self.addEventListener", "text/javascript; charset=utf-8", "no-cache"},
		{"a hashed asset", "GET", "/app-3f9a1c2b.js", nil, 200, "console.log('app')", "text/javascript; charset=utf-8", cacheImmutable},
		{"a Vite asset", "GET", "/assets/style-Bq1x2y3z.css", nil, 200, "body{}", "text/css; charset=utf-8", cacheImmutable},
		{"another file", "GET", "/robots.txt", nil, 200, "User-agent", "text/plain; charset=utf-8", "public, max-age=300"},
		{"an image", "GET", "/logo.png", nil, 200, "PNG", "image/png", "public, max-age=300"},
		{"a symlink inside the root", "GET", "/robots2.txt", nil, 200, "User-agent", "text/plain; charset=utf-8", "public, max-age=300"},
		{"a symlink up but inside", "GET", "/assets/up.txt", nil, 200, "User-agent", "text/plain; charset=utf-8", "public, max-age=300"},
		{"a directory's index", "GET", "/docs/", html, 200, "<title>docs</title>", "text/html; charset=utf-8", "no-cache"},
		{"HEAD", "HEAD", "/app-3f9a1c2b.js", nil, 200, "", "text/javascript; charset=utf-8", cacheImmutable},
		{"a query string", "GET", "/robots.txt?v=2", nil, 200, "User-agent", "text/plain; charset=utf-8", "public, max-age=300"},
	} {
		r := raw(t, srv, c.method, c.target, c.header)
		if r.status != c.status || !strings.Contains(r.body, c.body) || r.header.Get("Content-Type") != c.ctype || r.header.Get("Cache-Control") != c.cache {
			t.Errorf("%s: %s %s = %d %q %q %q, want %d %q %q %q", c.name, c.method, c.target, r.status,
				r.header.Get("Content-Type"), r.header.Get("Cache-Control"), r.body, c.status, c.ctype, c.cache, c.body)
		}
		if c.method == "HEAD" && (r.body != "" || r.header.Get("Content-Length") != "18") {
			t.Errorf("%s: body %q, length %q", c.name, r.body, r.header.Get("Content-Length"))
		}
		if r.header.Get("ETag") == "" || !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s: ETag %q, Vary %q", c.name, r.header.Get("ETag"), r.header.Get("Vary"))
		}
		want := DefaultCSP(srv.Listener.Addr().String())
		if r.header.Get("Content-Security-Policy") != want || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: CSP %q", c.name, r.header.Get("Content-Security-Policy"))
		}
	}
	// A directory is itself with a slash, so relative links resolve.
	if r := raw(t, srv, "GET", "/docs?x=1", nil); r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/docs/?x=1" {
		t.Errorf("/docs: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestRefused: what may never be served is a 404 (a problem, like every
// unknown path of the API), and no byte of it leaks.
func TestRefused(t *testing.T) {
	t.Parallel()
	dir, _ := site(t)
	srv, spa := serve(t, Config{Dir: dir}), serve(t, Config{Dir: dir, SPA: true})
	for _, target := range []string{
		"/../private/secret.txt", "/%2e%2e/private/secret.txt", "/%2E%2E/%2E%2E/private/secret.txt",
		"/..%2fprivate%2fsecret.txt", "/assets%2f..%2f..%2fprivate%2fsecret.txt", "/docs%2Findex.html",
		"/..%5cprivate%5csecret.txt", "/\\..\\private\\secret.txt", "/assets/../../private/secret.txt",
		"//private/secret.txt", "/./index.html", "/docs//index.html", "/%00", "/index.html%00.js",
		"/.env", "/.git/config", "/.git/", "/assets/.hidden.js", "/%2eenv", "/%2egit/config",
		"/leak/secret.txt", "/leak.txt", "/relleak.txt", "/leak/",
		"/empty/", "/empty", "/assets/", "/assets", "/app-3f9a1c2b.js/",
		"/%252e%252e/private/secret.txt", "/..;/private/secret.txt",
		"/nothing-here.js", "/missing.png",
	} {
		for _, method := range []string{"GET", "HEAD"} {
			r := raw(t, srv, method, target, map[string]string{"Accept": "text/html"})
			if r.status != http.StatusNotFound && r.status != http.StatusBadRequest {
				t.Errorf("%s %s = %d, want 404 (or 400 from net/http)\n%s", method, target, r.status, r.body)
			}
			if leaks(r.body) || strings.Contains(r.body, "<title>") {
				t.Errorf("%s %s leaked %q", method, target, r.body)
			}
			if r.status == http.StatusNotFound && method == "GET" && r.header.Get("Content-Type") != httpx.ContentTypeProblem {
				t.Errorf("%s %s: Content-Type %q, want problem+json", method, target, r.header.Get("Content-Type"))
			}
			// With the fallback on, a navigation may get the app's
			// index, never what it asked for.
			r = raw(t, spa, method, target, map[string]string{"Accept": "text/html"})
			if r.status == 200 && method == "GET" && !strings.Contains(r.body, "<title>app</title>") ||
				r.status != 200 && r.status != http.StatusNotFound && r.status != http.StatusBadRequest ||
				leaks(r.body) || strings.Contains(r.body, "<title>docs") {
				t.Errorf("spa: %s %s = %d %q", method, target, r.status, r.body)
			}
		}
	}
	srv = spa
	// The paths of the API are never the app's, even as navigations.
	for _, target := range []string{"/api", "/api/", "/api/unknown", "/api/collections/nope/records", "/_/", "/_", "/_/users",
		"/healthz", "/healthz/x", "/readyz", "/metrics", "/metrics/"} {
		r := raw(t, srv, "GET", target, map[string]string{"Accept": "text/html"})
		if r.status != http.StatusNotFound || r.header.Get("Content-Type") != httpx.ContentTypeProblem || strings.Contains(r.body, "<title>") {
			t.Errorf("GET %s = %d %q %q, want a 404 problem", target, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
	if r := raw(t, srv, "GET", "/apis", map[string]string{"Accept": "text/html"}); r.status != 200 || !strings.Contains(r.body, "<title>app</title>") {
		t.Errorf("/apis is no API path: %d %q", r.status, r.body)
	}
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		r := raw(t, srv, method, "/index.html", map[string]string{"Content-Length": "0"})
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /index.html = %d, Allow %q", method, r.status, r.header.Get("Allow"))
		}
	}
}

// leaks tells whether a body holds a byte of what must not be served.
func leaks(body string) bool {
	for _, s := range []string{"TOP-SECRET", "in-root-dotfile", "[core]", "HIDDEN-CONTENT"} {
		if strings.Contains(body, s) {
			return true
		}
	}
	return false
}

func TestSPAFallback(t *testing.T) {
	t.Parallel()
	dir, _ := site(t)
	on := serve(t, Config{Dir: dir, SPA: true})
	off := serve(t, Config{Dir: dir})
	html := map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
	for _, c := range []struct {
		method, target string
		header         map[string]string
		on, off        int
	}{
		{"GET", "/projects/42", html, 200, 404},
		{"HEAD", "/projects/42", html, 200, 404},
		{"GET", "/settings", html, 200, 404},
		{"GET", "/projects/42", map[string]string{"Accept": "application/json"}, 404, 404},
		{"GET", "/projects/42", nil, 404, 404},
		{"GET", "/missing.png", html, 404, 404},
		{"GET", "/assets/gone-3f9a1c2b.js", html, 404, 404},
		{"GET", "/api/unknown", html, 404, 404},
		{"GET", "/.env", html, 404, 404},
		{"GET", "/empty", html, 200, 404},
	} {
		for srv, want := range map[*httptest.Server]int{on: c.on, off: c.off} {
			r := raw(t, srv, c.method, c.target, c.header)
			if r.status != want {
				t.Errorf("spa=%v %s %s = %d, want %d", srv == on, c.method, c.target, r.status, want)
			}
			if r.status == 200 && (r.header.Get("Cache-Control") != "no-cache" || r.header.Get("Content-Type") != "text/html; charset=utf-8" ||
				(c.method == "GET" && !strings.Contains(r.body, "<title>app</title>"))) {
				t.Errorf("%s %s: the fallback is not the index: %q %q", c.method, c.target, r.header, r.body)
			}
		}
	}
}

func TestPrecompressed(t *testing.T) {
	t.Parallel()
	dir, _ := site(t)
	srv := serve(t, Config{Dir: dir})
	const js = "/assets/index-DiwrgTda.js"
	etags := map[string]string{}
	for _, c := range []struct{ accept, enc, body string }{
		{"gzip, deflate, br, zstd", "br", "BROTLI-BYTES"},
		{"br;q=0.5, gzip", "gzip", "GZIP-BYTES"},
		{"gzip", "gzip", "GZIP-BYTES"},
		{"x-gzip", "gzip", "GZIP-BYTES"},
		{"br;q=0, gzip;q=0", "", "console.log('vite')"},
		{"*", "br", "BROTLI-BYTES"},
		{"*;q=0", "", "console.log('vite')"},
		{"identity", "", "console.log('vite')"},
		{"", "", "console.log('vite')"},
	} {
		r := raw(t, srv, "GET", js, map[string]string{"Accept-Encoding": c.accept})
		if r.status != 200 || r.header.Get("Content-Encoding") != c.enc || r.body != c.body ||
			r.header.Get("Content-Type") != "text/javascript; charset=utf-8" || r.header.Get("Vary") != "Accept-Encoding" || r.header.Get("Cache-Control") != cacheImmutable {
			t.Errorf("Accept-Encoding %q: %d %q %q", c.accept, r.status, r.header, r.body)
		}
		if prev, ok := etags[c.enc]; ok && prev != r.header.Get("ETag") || !ok && slicesContains(etags, r.header.Get("ETag")) {
			t.Errorf("Accept-Encoding %q: ETag %q, want one per encoding: %v", c.accept, r.header.Get("ETag"), etags)
		}
		etags[c.enc] = r.header.Get("ETag")
	}
	// A Range is a part of the file itself, never of a compressed copy.
	r := raw(t, srv, "GET", js, map[string]string{"Accept-Encoding": "br, gzip", "Range": "bytes=0-6"})
	if r.status != http.StatusPartialContent || r.body != "console" || r.header.Get("Content-Encoding") != "" || r.header.Get("Content-Range") != "bytes 0-6/19" {
		t.Errorf("Range: %d %q %q", r.status, r.header, r.body)
	}
	// 304 for the compressed representation the client holds.
	r = raw(t, srv, "GET", js, map[string]string{"Accept-Encoding": "br", "If-None-Match": etags["br"]})
	if r.status != http.StatusNotModified || r.body != "" {
		t.Errorf("If-None-Match of br: %d %q", r.status, r.body)
	}
	// A sibling older than its file is left from an earlier build.
	if err := os.WriteFile(filepath.Join(dir, "assets/index-DiwrgTda.js"), []byte("console.log('new')"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, s := range []string{".br", ".gz"} {
		if err := os.Chtimes(filepath.Join(dir, "assets/index-DiwrgTda.js"+s), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if r := raw(t, srv, "GET", js, map[string]string{"Accept-Encoding": "br, gzip"}); r.body != "console.log('new')" || r.header.Get("Content-Encoding") != "" {
		t.Errorf("a stale sibling was served: %q %q", r.header, r.body)
	}
}

func slicesContains(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

// TestConditionalAndRange: ETags answer If-None-Match with 304; Range
// gets parts; a rebuilt file is served at once, with a new ETag (abe dev
// reloads the app without a restart).
func TestConditionalAndRange(t *testing.T) {
	t.Parallel()
	dir, _ := site(t)
	srv := serve(t, Config{Dir: dir, Dev: true, MaxAge: time.Hour})
	r := raw(t, srv, "GET", "/robots.txt", nil)
	etag := r.header.Get("ETag")
	if r.status != 200 || !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") || r.header.Get("Cache-Control") != "no-cache" || r.header.Get("Last-Modified") == "" {
		t.Fatalf("GET: %d %q (dev: no-cache for unhashed files)", r.status, r.header)
	}
	if r := raw(t, srv, "GET", "/robots.txt", map[string]string{"If-None-Match": etag}); r.status != http.StatusNotModified || r.body != "" || r.header.Get("ETag") != etag {
		t.Errorf("If-None-Match: %d %q", r.status, r.header)
	}
	if r := raw(t, srv, "HEAD", "/robots.txt", map[string]string{"If-None-Match": `"other", ` + etag}); r.status != http.StatusNotModified {
		t.Errorf("If-None-Match with a list, HEAD: %d", r.status)
	}
	if r := raw(t, srv, "GET", "/robots.txt", map[string]string{"Range": "bytes=5-9"}); r.status != http.StatusPartialContent || r.body != "agent" || r.header.Get("Content-Range") != "bytes 5-9/13" {
		t.Errorf("Range: %d %q %q", r.status, r.header, r.body)
	}
	if r := raw(t, srv, "GET", "/robots.txt", map[string]string{"Range": "bytes=0-0,-1"}); r.status != http.StatusPartialContent || !strings.HasPrefix(r.header.Get("Content-Type"), "multipart/byteranges") {
		t.Errorf("two ranges: %d %q", r.status, r.header)
	}
	if r := raw(t, srv, "GET", "/robots.txt", map[string]string{"Range": "bytes=100-"}); r.status != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("a range past the end: %d", r.status)
	}
	if r := raw(t, srv, "GET", "/robots.txt", map[string]string{"Range": "bytes=0-3", "If-Range": `"stale"`}); r.status != 200 || r.body != "User-agent: *" {
		t.Errorf("If-Range with a stale tag sends the whole file: %d %q", r.status, r.body)
	}
	// Rebuilt: the next request has it.
	if err := os.WriteFile(filepath.Join(dir, "robots.txt"), []byte("Disallow: /"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "robots.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	r = raw(t, srv, "GET", "/robots.txt", map[string]string{"If-None-Match": etag})
	if r.status != 200 || r.body != "Disallow: /" || r.header.Get("ETag") == etag {
		t.Errorf("after a rebuild: %d %q %q", r.status, r.header.Get("ETag"), r.body)
	}
	// Even the whole directory replaced.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if r := raw(t, srv, "GET", "/", nil); r.status != http.StatusNotFound {
		t.Errorf("without the directory: %d", r.status)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>v2</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := raw(t, srv, "GET", "/", nil); r.status != 200 || r.body != "<p>v2</p>" {
		t.Errorf("the new directory: %d %q", r.status, r.body)
	}
}

func TestCSP(t *testing.T) {
	t.Parallel()
	dir, _ := site(t)
	own := serve(t, Config{Dir: dir, CSP: "default-src 'self'; connect-src 'self' wss://app.example.com"})
	if r := raw(t, own, "GET", "/", nil); r.header.Get("Content-Security-Policy") != "default-src 'self'; connect-src 'self' wss://app.example.com" {
		t.Errorf("a configured policy: %q", r.header.Get("Content-Security-Policy"))
	}
	for host, ws := range map[string]bool{
		"127.0.0.1:8090": true, "app.example.com": true, "[::1]:8090": true, "localhost": true,
		"evil.test; script-src *": false, "a'b": false, "": false, "x:1:2": false,
	} {
		csp := DefaultCSP(host)
		if got := strings.Contains(csp, "ws://"+host+" wss://"+host+";"); got != ws {
			t.Errorf("host %q: %s", host, csp)
		}
		if strings.Count(csp, ";") != 11 || strings.Contains(csp, "*") || !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("host %q widened the policy: %s", host, csp)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "web", "dist")
	if _, err := New(Config{Dir: missing}); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a missing directory: %v", err)
	}
	file := filepath.Join(t.TempDir(), "index.html")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Dir: file}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file: %v", err)
	}
}

func TestHashed(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"app-3f9a1c2b.js": true, "assets/index-DiwrgTda.js": true, "assets/index-DiwrgTda.js.map": true,
		"main.8e1f0a7c.css": true, "chunk-ABCD1234.mjs": true, "assets/logo-a1b2c3d4e5.svg": true,
		"index.html": false, "sw.js": false, "my-component.js": false, "app-Settings.js": false,
		"jquery-3.7.1.min.js": false, "app-abcdefgh.js": false, "app-3f9a1c2.js": false, "3f9a1c2b.js": false,
		"-3f9a1c2b.js": false, "app-3f9a1c2b": false, "logo.png": false,
	} {
		if got := hashed(name); got != want {
			t.Errorf("hashed(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestAcceptedEncodings(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{
		"": "", "gzip, deflate, br": "br gzip", "gzip;q=1.0, br;q=0.9": "gzip br", "br;q=0": "",
		"*": "br gzip", "gzip, *;q=0": "gzip", "BR": "br", "br;q=abc": "", "deflate": "", "gzip;q=0.001": "gzip",
	} {
		if got := strings.Join(acceptedEncodings(header), " "); got != want {
			t.Errorf("%q: %q, want %q", header, got, want)
		}
	}
}
