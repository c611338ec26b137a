// Package hosting serves a directory of static files, the web app of an
// abe backend, from disk on every request: a rebuilt file is served at
// once, without a restart, and nothing is held in memory.
//
// Every access goes through an os.Root opened on the directory, so no
// path and no symbolic link reaches a file outside it. Dotfiles, directory
// listings and the reserved paths of the API are never served. Files get
// an ETag from their modification time and size, so http.ServeContent
// answers If-None-Match with 304 and Range with parts; a precompressed
// sibling (.br, .gz) is sent to clients that accept it.
package hosting

import (
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/abe-stack/abe/internal/httpx"
)

// Config configures a Handler.
type Config struct {
	// Dir is the directory served at /.
	Dir string
	// SPA answers page navigations that match no file with Dir's
	// index.html.
	SPA bool
	// ServiceWorker is the path of the service worker in Dir (like
	// sw.js), sent with no-cache.
	ServiceWorker string
	// MaxAge is how long browsers may cache files that are neither hashed
	// assets nor HTML nor the service worker; 0 is no-cache.
	MaxAge time.Duration
	// CSP replaces DefaultCSP.
	CSP string
	// Dev sends no-cache for every file without a hash in its name.
	Dev bool
	// Reserved are paths never served from Dir, each with everything
	// below it: /api covers /api/anything (not /apis). They get NotFound.
	Reserved []string
	// NotFound answers what is not a file; nil is httpx.NotFound.
	NotFound http.Handler
}

// Handler serves the files of a directory.
type Handler struct {
	cfg      Config
	notFound http.Handler
}

// New checks that the directory exists and returns its handler.
func New(cfg Config) (*Handler, error) {
	fi, err := os.Stat(cfg.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("hosting.dir: the directory %s does not exist; build the web app into it (like `npm run build`), or correct the path (a relative one is relative to abe.yaml)", cfg.Dir)
	case err != nil:
		return nil, fmt.Errorf("hosting.dir: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("hosting.dir: %s is a file, not a directory", cfg.Dir)
	}
	cfg.ServiceWorker = strings.TrimPrefix(cfg.ServiceWorker, "/")
	h := &Handler{cfg: cfg, notFound: cfg.NotFound}
	if h.notFound == nil {
		h.notFound = http.HandlerFunc(httpx.NotFound)
	}
	return h, nil
}

// Cache-Control values.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheNone      = "no-cache"
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.Reserved(r.URL.Path) {
		h.notFound.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpx.WriteProblem(w, r, httpx.Problem{Status: http.StatusMethodNotAllowed, Code: httpx.CodeMethodNotAllowed,
			Detail: r.Method + " is not allowed on " + r.URL.Path + "; hosted files take GET, HEAD"})
		return
	}
	name, dir, ok := Clean(r.URL.Path, r.URL.RawPath)
	if !ok {
		h.notFound.ServeHTTP(w, r)
		return
	}
	// Opened per request: a directory replaced by a build (rm -rf dist)
	// is the new one at the next request.
	root, err := os.OpenRoot(h.cfg.Dir)
	if err != nil {
		h.notFound.ServeHTTP(w, r)
		return
	}
	defer root.Close()
	f, fi := open(root, name)
	if f != nil && fi.IsDir() {
		f.Close()
		f = nil
		index := path.Join(name, "index.html")
		if g, gi := open(root, index); g != nil && gi.Mode().IsRegular() {
			if !dir && name != "." {
				// /docs is /docs/, so that the page's relative links
				// resolve inside it.
				g.Close()
				u := url.URL{Path: r.URL.Path + "/", RawQuery: r.URL.RawQuery}
				http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
				return
			}
			f, fi, name = g, gi, index
		} else if g != nil {
			g.Close()
		}
	} else if f != nil && (dir || !fi.Mode().IsRegular()) {
		// a file asked for as a directory (/app.js/), or a device
		f.Close()
		f = nil
	}
	if f == nil {
		if !h.cfg.SPA || !spaRequest(r, name) {
			h.notFound.ServeHTTP(w, r)
			return
		}
		if f, fi = open(root, "index.html"); f == nil || !fi.Mode().IsRegular() {
			if f != nil {
				f.Close()
			}
			h.notFound.ServeHTTP(w, r)
			return
		}
		name = "index.html"
	}
	defer func() { f.Close() }()

	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp(r))
	hd.Set("Cache-Control", h.cacheControl(name))
	hd.Add("Vary", "Accept-Encoding")
	ctype := contentType(name)
	if ctype != "" {
		hd.Set("Content-Type", ctype)
	}
	etag := etagOf(fi, "")
	// A Range counts bytes of one representation; the uncompressed file
	// is the one every client can ask parts of.
	if ctype != "" && r.Header.Get("Range") == "" {
		for _, enc := range acceptedEncodings(r.Header.Get("Accept-Encoding")) {
			c, ci := open(root, name+encodings[enc])
			if c == nil {
				continue
			}
			// A sibling older than its file was left by an earlier build.
			if !ci.Mode().IsRegular() || ci.ModTime().Before(fi.ModTime()) {
				c.Close()
				continue
			}
			f.Close()
			f, fi, etag = c, ci, etagOf(ci, enc)
			hd.Set("Content-Encoding", enc)
			break
		}
	}
	hd.Set("ETag", etag)
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// open opens name in root, or returns nil when it cannot be had: missing,
// refused by the root (a symbolic link leading out of it), unreadable.
func open(root *os.Root, name string) (*os.File, fs.FileInfo) {
	f, err := root.Open(name)
	if err != nil {
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil
	}
	return f, fi
}

// Reserved tells whether p is one of the reserved paths or below one:
// never served from Dir.
func (h *Handler) Reserved(p string) bool {
	for _, r := range h.cfg.Reserved {
		if rest, ok := strings.CutPrefix(p, r); ok && (rest == "" || rest[0] == '/') {
			return true
		}
	}
	return false
}

// spaRequest tells whether a request that matched no file is a page
// navigation of a single-page app: GET or HEAD, accepting HTML, for a
// path without a file extension (a missing /logo.png stays a 404).
func spaRequest(r *http.Request, name string) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(r.Header.Get("Accept"), "text/html") && navigation(name)
}

func (h *Handler) cacheControl(name string) string {
	switch {
	case hashed(name):
		return cacheImmutable
	case strings.HasSuffix(name, ".html") || name == h.cfg.ServiceWorker:
		return cacheNone
	case h.cfg.Dev || h.cfg.MaxAge < time.Second:
		return cacheNone
	}
	return "public, max-age=" + strconv.FormatInt(int64(h.cfg.MaxAge/time.Second), 10)
}

// etagOf is a strong validator from the modification time and size of
// the file (and the encoding of a precompressed one): a rebuilt file
// gets a new one without its bytes being read.
func etagOf(fi fs.FileInfo, enc string) string {
	tag := `"` + strconv.FormatInt(fi.ModTime().UnixNano(), 36) + "-" + strconv.FormatInt(fi.Size(), 36)
	if enc != "" {
		tag += "-" + enc
	}
	return tag + `"`
}

// types are the media types of files a web app is made of that Go's
// table may lack on a system without /etc/mime.types.
var types = map[string]string{
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".html":        "text/html; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".svg":         "image/svg+xml",
	".wasm":        "application/wasm",
	".woff2":       "font/woff2",
	".woff":        "font/woff",
	".ico":         "image/x-icon",
	".txt":         "text/plain; charset=utf-8",
}

// contentType is the media type of name by its extension, or "" when it
// has none known (ServeContent then sniffs the content).
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := types[ext]; ok {
		return t
	}
	return mime.TypeByExtension(ext)
}
