// Package adminui serves the admin console (docs/admin-console.md): the
// single-page app Vite builds into dist/, embedded in the binary so that
// `go build` needs no Node. scripts/test rebuilds dist/ and fails when the
// committed files differ from the build.
package adminui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// Prefix is where the console is mounted.
const Prefix = "/_/"

// file is one built file, read once: embedded files cannot change.
type file struct {
	data []byte
	etag string
	// immutable: its name carries a hash of its content (Vite's assets/).
	immutable bool
}

// Handler serves the console below Prefix: the built files, index.html for
// every other path (the app routes in the browser), /_ redirected to /_/.
type Handler struct {
	files map[string]file
	index file
}

// New reads the embedded build.
func New() (*Handler, error) {
	return fromEmbed()
}

// Serve is New for a router: a build that cannot be read (dist/ without
// index.html) answers 503 on every console path instead of stopping abe,
// whose API does not need the console.
func Serve() http.Handler {
	h, err := New()
	if err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		})
	}
	return h
}

func fromEmbed() (*Handler, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, fmt.Errorf("admin console: %w", err)
	}
	return newHandler(sub)
}

func newHandler(fsys fs.FS) (*Handler, error) {
	h := &Handler{files: map[string]file{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		sum := sha256.Sum256(data)
		h.files[p] = file{data: data, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`, immutable: strings.HasPrefix(p, "assets/")}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("admin console: %w", err)
	}
	idx, ok := h.files["index.html"]
	if !ok {
		return nil, fmt.Errorf("admin console: the build has no index.html (run npm run build in admin-ui)")
	}
	h.index = idx
	return h, nil
}

// CSP is the console's policy, for host (the request's Host): only its own
// scripts, styles and API (and the realtime socket on the same host), no
// inline code, never framed. The host is filtered to the characters a host
// has, so a forged Host header cannot widen the policy.
func CSP(host string) string {
	host = strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' {
			return c
		}
		return -1
	}, host)
	connect := "'self'"
	if host != "" {
		connect += " ws://" + host + " wss://" + host
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src " + connect +
		"; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", CSP(r.Host))
	hdr.Set("X-Frame-Options", "DENY")
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(r.URL.Path, Prefix)), "/")
	f, ok := h.files[name]
	if !ok || name == "index.html" {
		if strings.HasPrefix(name, "assets/") {
			// A stale hashed name: index.html in its place would run as a
			// script of the wrong type; a 404 says what happened.
			http.NotFound(w, r)
			return
		}
		f, name = h.index, "index.html"
	}
	if f.immutable {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// index.html names the current assets: always ask again.
		hdr.Set("Cache-Control", "no-cache")
	}
	hdr.Set("ETag", f.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
}
