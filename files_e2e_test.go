package abe_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/internal/storage"
	"github.com/abe-stack/abe/internal/storage/s3test"
	"github.com/abe-stack/abe/schema"
)

const filesYAML = `
storage:
  url_ttl: 1m
collections:
  albums:
    fields:
      owner:   { type: relation, collection: users, required: true }
      viewers: { type: relation, collection: users, many: true }
      title:   { type: text }
      cover:   { type: file, max_size: 64KiB, mime_types: [image/png, image/jpeg] }
      photos:  { type: file, many: true, max: 3, mime_types: ["image/*"] }
      doc:
        type: file
        rules:
          read: "auth.id == record.owner"
          update: "auth.id == before.owner"
    rules:
      list:   "auth != null"
      read:   "auth != null && (record.owner == auth.id || auth.id in record.viewers)"
      create: "auth != null && record.owner == auth.id"
      update: "auth != null && (record.owner == auth.id || auth.id in record.viewers)"
      delete: "auth != null && record.owner == auth.id"
  pages:
    fields:
      album: { type: relation, collection: albums, required: true, on_delete: cascade }
      scan:  { type: file }
    rules:
      read:   "auth != null"
      create: "auth != null"
      update: "auth != null"
`

// clock is a settable clock for the app.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fileWorld is a running app with the file collections on one backend,
// and a view of what that backend really holds.
type fileWorld struct {
	*world
	clock  *clock
	stored func() []string
	// store reaches the backend behind the app's back.
	store storage.Storage
}

// fileBackends runs the same scenario on local disk (set up from the
// configuration, as abe serve does) and on a real S3 API server.
var fileBackends = []struct {
	name string
	open func(t *testing.T, cfg *schema.Config, opts *abe.Options) (func() []string, storage.Storage)
}{
	{"local", func(t *testing.T, cfg *schema.Config, _ *abe.Options) (func() []string, storage.Storage) {
		dir := t.TempDir()
		cfg.Storage.Local.Root = dir
		store, err := storage.NewLocal(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		return func() []string {
			var out []string
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error { //nolint:errcheck // a test listing
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dir, p)
					out = append(out, filepath.ToSlash(rel))
				}
				return nil
			})
			return out
		}, store
	}},
	{"s3", func(t *testing.T, _ *schema.Config, opts *abe.Options) (func() []string, storage.Storage) {
		srv := s3test.Start(t)
		s, err := storage.NewS3(srv.Config)
		if err != nil {
			t.Fatal(err)
		}
		opts.Storage = s
		return func() []string { return srv.Keys(t) }, s
	}},
}

func newFileWorld(t *testing.T, backend int) *fileWorld {
	t.Helper()
	cfg, err := schema.Parse("abe.yaml", []byte(filesYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Secret = strings.Repeat("s", 40)
	clk := &clock{t: time.Now()}
	// No workers: the periodic clean-up of orphaned files runs on start, when
	// the queue elects its leader (seconds in), and would race the sweeps
	// this test makes itself.
	opts := &abe.Options{Now: clk.now, NoWorkers: true}
	stored, store := fileBackends[backend].open(t, cfg, opts)
	return &fileWorld{world: newWorldWith(t, cfg, opts), clock: clk, stored: stored, store: store}
}

// upload sends one multipart part named field ("file" for the file).
func (w *fileWorld) upload(who, path, part, filename, contentType string, body []byte, header map[string]string) reply {
	w.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("note", "parts other than file are skipped"); err != nil {
		w.t.Fatal(err)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": part, "filename": filename}))
	h.Set("Content-Type", contentType)
	pw, err := mw.CreatePart(h)
	if err != nil {
		w.t.Fatal(err)
	}
	pw.Write(body) //nolint:errcheck // a bytes.Buffer
	mw.Close()
	return w.raw(who, "POST", path, &buf, mw.FormDataContentType(), header)
}

func (w *fileWorld) expect(r reply, status int, what string) reply {
	w.t.Helper()
	if r.status != status {
		w.t.Fatalf("%s: %d, want %d: %.300s", what, r.status, status, r.raw)
	}
	return r
}

// unchanged fails when the backend holds other files than before.
func (w *fileWorld) unchanged(before []string, what string) {
	w.t.Helper()
	if now := w.stored(); !slices.Equal(now, before) {
		w.t.Errorf("%s changed what is stored: %v, was %v", what, now, before)
	}
}

func (w *fileWorld) pendingUploads() int {
	w.t.Helper()
	var n int
	if err := w.app.Pool().QueryRow(context.Background(), `SELECT count(*) FROM abe.file_deletions WHERE reason = 'upload'`).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *fileWorld) sweep() int {
	w.t.Helper()
	n, err := w.app.Engine().DeleteOrphanedFiles(context.Background(), 100)
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

var (
	pngData  = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 600)...)
	jpegData = append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), bytes.Repeat([]byte{9}, 300)...)
	gifData  = append([]byte("GIF89a"), bytes.Repeat([]byte{1}, 50)...)
)

func TestFiles(t *testing.T) {
	t.Parallel()
	for i, b := range fileBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			testFiles(t, newFileWorld(t, i))
		})
	}
}

func testFiles(t *testing.T, w *fileWorld) {
	albums := "/api/collections/albums/records"
	a := w.mustDo(ann, "POST", albums, map[string]any{"owner": w.ids[ann], "viewers": []string{w.ids[bob]}, "title": "Summer"}, 201)
	id := a.str("id")
	files := albums + "/" + id + "/files/"
	empty := w.stored()

	// Upload: the record's update rule decides, before the body is read.
	w.expect(w.upload("", files+"cover", "file", "a.png", "image/png", pngData, nil), 404, "anonymous upload")
	w.expect(w.upload(carol, files+"cover", "file", "a.png", "image/png", pngData, nil), 404, "upload by a stranger")
	w.expect(w.upload(bob, files+"doc", "file", "a.png", "image/png", pngData, nil), 403, "upload denied by the field's update rule")
	w.expect(w.upload(ann, files+"title", "file", "a.png", "image/png", pngData, nil), 404, "upload to a text field")
	w.expect(w.upload(ann, files+"cover", "file", "a.png", "image/png", pngData, map[string]string{"If-Match": `"7"`}), 409, "stale If-Match")
	w.unchanged(empty, "refused uploads")

	up := w.expect(w.upload(ann, files+"cover", "file", "../../etc/pass\u202ewd\"\r\n.png", "text/plain", pngData, nil), 201, "upload")
	name := up.str("cover")
	if len(name) != 26 || up.body["version"] != float64(2) || up.header.Get("Location") != files+"cover/"+name || up.header.Get("ETag") != `"2"` {
		t.Fatalf("upload answer: %v %s", up.header, up.raw)
	}
	if st := w.stored(); len(st) == 0 || !slices.ContainsFunc(st, func(k string) bool { return k == id+"/"+name }) {
		t.Fatalf("stored %v, want the key %s/%s", st, id, name)
	}
	if w.pendingUploads() != 0 {
		t.Error("a finished upload is still queued for deletion")
	}

	// Download: the read rule and the field read rule decide.
	for _, path := range []string{files + "cover", files + "cover/" + name} {
		d := w.expect(w.raw(ann, "GET", path, nil, "", nil), 200, "download")
		if d.raw != string(pngData) || d.header.Get("Content-Type") != "image/png" || d.header.Get("ETag") != `"`+name+`"` ||
			!strings.HasPrefix(d.header.Get("Cache-Control"), "private") || !strings.Contains(d.header.Get("Content-Security-Policy"), "sandbox") {
			t.Fatalf("download %s: %v %.80q", path, d.header, d.raw)
		}
		// The client's name, out of its path, without the hidden
		// right-to-left override, quotes and line breaks made safe.
		cd := d.header.Get("Content-Disposition")
		kind, params, err := mime.ParseMediaType(cd)
		if err != nil || kind != "inline" || params["filename"] != `passwd".png` || !strings.Contains(cd, `filename="passwd_.png"`) {
			t.Errorf("Content-Disposition %q: %v %v", cd, params, err)
		}
	}
	if cd := w.raw(ann, "GET", files+"cover?download", nil, "", nil).header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
		t.Errorf("?download: %s", cd)
	}
	w.expect(w.raw(bob, "GET", files+"cover", nil, "", nil), 200, "download by a viewer")
	w.expect(w.raw(carol, "GET", files+"cover", nil, "", nil), 404, "download by a stranger")
	w.expect(w.raw("", "GET", files+"cover", nil, "", nil), 404, "anonymous download")
	w.expect(w.raw(ann, "GET", files+"cover", nil, "", map[string]string{"If-None-Match": `"` + name + `"`}), 304, "If-None-Match")
	rg := w.expect(w.raw(ann, "GET", files+"cover", nil, "", map[string]string{"Range": "bytes=0-3"}), 206, "range")
	if rg.raw != "\x89PNG" || rg.header.Get("Content-Range") != fmt.Sprintf("bytes 0-3/%d", len(pngData)) {
		t.Errorf("range: %q %v", rg.raw, rg.header)
	}
	if h := w.expect(w.raw(ann, "HEAD", files+"cover", nil, "", nil), 200, "HEAD"); h.header.Get("Content-Length") != fmt.Sprint(len(pngData)) || h.raw != "" {
		t.Errorf("HEAD: %v %q", h.header, h.raw)
	}

	// Type and size: sniffed from the content, checked before anything is
	// kept; the name and the part's type do not count.
	before := w.stored()
	r := w.expect(w.upload(ann, files+"cover", "file", "photo.png", "image/png", []byte("<html><script>alert(1)</script>"), nil), 415, "HTML named .png")
	if !strings.Contains(r.str("detail"), "text/html") {
		t.Errorf("wrong type: %s", r.raw)
	}
	w.expect(w.upload(ann, files+"cover", "file", "anim.gif", "image/png", gifData, nil), 415, "a gif where png and jpeg are asked")
	big := append(slices.Clone(pngData), make([]byte, 100<<10)...)
	w.expect(w.upload(ann, files+"cover", "file", "big.png", "image/png", big, nil), 413, "too large")
	w.expect(w.upload(ann, files+"cover", "other", "a.png", "image/png", pngData, nil), 400, "no part named file")
	w.expect(w.raw(ann, "POST", files+"cover", strings.NewReader(`{"file":"x"}`), "application/json", nil), 415, "not multipart")
	w.unchanged(before, "refused uploads")
	if w.pendingUploads() != 0 {
		t.Error("a refused upload is still queued")
	}
	if got := w.mustDo(ann, "GET", albums+"/"+id, nil, 200); got.str("cover") != name || got.body["version"] != float64(2) {
		t.Errorf("a refused upload changed the record: %s", got.raw)
	}

	// File fields are not written with JSON: a client could point its
	// record at a file of another record.
	for _, v := range []any{"../../../etc/passwd", "aaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		w.mustDo(ann, "PATCH", albums+"/"+id, map[string]any{"cover": v}, 422)
		w.mustDo(ann, "POST", albums, map[string]any{"owner": w.ids[ann], "cover": v}, 422)
	}
	w.mustDo(ann, "PATCH", albums+"/"+id, map[string]any{"title": "Summer!", "cover": name}, 200) // kept as it is
	for _, p := range []string{"cover/..%2f..%2fetc%2fpasswd", "cover/%2e%2e", "cover/" + strings.ToUpper(name), "cover/x%00y"} {
		w.expect(w.raw(ann, "GET", files+p, nil, "", nil), 404, "traversal "+p)
	}
	w.expect(w.raw(ann, "GET", albums+"/..%2f..%2f/files/cover", nil, "", nil), 404, "traversal in the id")
	// A value written into the column behind the engine's back opens nothing.
	if _, err := w.app.Pool().Exec(context.Background(), `UPDATE public.albums SET doc = '../../../etc/passwd' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	w.expect(w.raw(ann, "GET", files+"doc", nil, "", nil), 404, "a hand-written value")
	w.mustDo(ann, "PATCH", albums+"/"+id, map[string]any{"doc": nil}, 200)
	if n := w.sweep(); n != 1 { // nothing to delete, but done with
		t.Errorf("swept %d, want 1", n)
	}

	// Field read rules: bob may read the album but not doc.
	doc := w.expect(w.upload(ann, files+"doc", "file", "notes.txt", "text/plain", []byte("private notes\n"), nil), 201, "doc upload")
	dname := doc.str("doc")
	w.expect(w.raw(bob, "GET", files+"doc", nil, "", nil), 404, "doc by bob")
	w.expect(w.raw(bob, "GET", files+"doc/url", nil, "", nil), 404, "doc URL by bob")
	if d := w.expect(w.raw(ann, "GET", files+"doc/"+dname, nil, "", nil), 200, "doc by ann"); d.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("doc: %v", d.header)
	}

	// Signed URLs: for <img src>, no Authorization needed until they expire.
	su := w.expect(w.raw(bob, "GET", files+"cover/url", nil, "", nil), 200, "signed URL")
	link, exp := su.str("url"), su.str("expires_at")
	if !strings.HasPrefix(link, "http://127.0.0.1:8090/api/") { // server.public_url
		t.Errorf("url %s", link)
	}
	at, err := time.Parse(time.RFC3339, exp)
	if err != nil || at.Sub(w.clock.now()) > time.Minute || at.Sub(w.clock.now()) < 50*time.Second {
		t.Errorf("expires_at %s: %v", exp, err)
	}
	u, err := url.Parse(link)
	if err != nil || u.Path != files+"cover/"+name || u.Query().Get("token") == "" {
		t.Fatalf("url %s: %v", link, err)
	}
	tok := u.Query().Get("token")
	signed := u.Path + "?token=" + url.QueryEscape(tok)
	if d := w.expect(w.raw("", "GET", signed, nil, "", nil), 200, "signed download"); d.raw != string(pngData) || !strings.Contains(d.header.Get("Cache-Control"), "max-age=") {
		t.Errorf("signed: %v", d.header)
	}
	forged := []byte(tok)
	forged[len(forged)-2] ^= 1
	for what, p := range map[string]string{
		"forged":          u.Path + "?token=" + url.QueryEscape(string(forged)),
		"another field":   files + "doc/" + dname + "?token=" + url.QueryEscape(tok),
		"another expiry":  u.Path + "?token=" + url.QueryEscape("9999999999"+tok[strings.IndexByte(tok, '.'):]),
		"not a token":     u.Path + "?token=abc",
		"another record":  albums + "/00000000-0000-7000-8000-000000000000/files/cover/" + name + "?token=" + url.QueryEscape(tok),
		"empty signature": u.Path + "?token=" + url.QueryEscape(tok[:strings.IndexByte(tok, '.')+1]),
	} {
		w.expect(w.raw("", "GET", p, nil, "", nil), 403, what)
	}
	w.clock.add(61 * time.Second)
	if r := w.expect(w.raw("", "GET", signed, nil, "", nil), 403, "expired"); !strings.Contains(r.str("detail"), "expired") {
		t.Errorf("expired: %s", r.raw)
	}

	// Replacing a file: the old one stops opening, and the clean-up
	// removes it from storage.
	link2 := w.expect(w.raw(ann, "GET", files+"cover/url", nil, "", nil), 200, "signed URL").str("url")
	rep := w.expect(w.upload(ann, files+"cover", "file", "b.jpg", "image/jpeg", jpegData, nil), 201, "replace")
	name2 := rep.str("cover")
	u2, err := url.Parse(link2)
	if err != nil {
		t.Fatal(err)
	}
	w.expect(w.raw("", "GET", u2.RequestURI(), nil, "", nil), 404, "a signed URL of a replaced file")
	w.expect(w.raw(ann, "GET", files+"cover/"+name, nil, "", nil), 404, "the replaced file")
	if !slices.Contains(w.stored(), id+"/"+name) {
		t.Error("the replaced file went before the clean-up")
	}
	if n := w.sweep(); n != 1 {
		t.Errorf("swept %d files, want 1", n)
	}
	if slices.Contains(w.stored(), id+"/"+name) || !slices.Contains(w.stored(), id+"/"+name2) {
		t.Errorf("after the clean-up: %v", w.stored())
	}

	// Many files: appended up to max, each named.
	var photos []string
	for _, data := range [][]byte{pngData, jpegData, gifData} {
		p := w.expect(w.upload(bob, files+"photos", "file", "p", "application/octet-stream", data, nil), 201, "photo")
		list, _ := p.body["photos"].([]any)
		photos = append(photos, list[len(list)-1].(string))
	}
	before = w.stored()
	w.expect(w.upload(bob, files+"photos", "file", "p.png", "image/png", pngData, nil), 422, "a fourth photo")
	w.unchanged(before, "a refused fourth photo")
	w.expect(w.raw(bob, "GET", files+"photos", nil, "", nil), 400, "many without a name")
	if d := w.expect(w.raw(bob, "GET", files+"photos/"+photos[2], nil, "", nil), 200, "a photo"); d.raw != string(gifData) || d.header.Get("Content-Type") != "image/gif" {
		t.Errorf("photo: %v", d.header)
	}
	rm := w.expect(w.raw(bob, "DELETE", files+"photos/"+photos[0], nil, "", nil), 200, "remove a photo")
	if list, _ := rm.body["photos"].([]any); len(list) != 2 || list[0] != photos[1] {
		t.Errorf("after removing: %s", rm.raw)
	}
	w.expect(w.raw(bob, "DELETE", files+"photos/"+photos[0], nil, "", nil), 404, "remove it again")

	// Delete: the update rule decides; the file goes at the clean-up.
	w.expect(w.raw(carol, "DELETE", files+"cover", nil, "", nil), 404, "delete by a stranger")
	w.expect(w.raw(bob, "DELETE", files+"doc", nil, "", nil), 403, "delete denied by the field's update rule")
	del := w.expect(w.raw(ann, "DELETE", files+"cover", nil, "", nil), 200, "delete")
	if del.body["cover"] != nil {
		t.Errorf("after delete: %s", del.raw)
	}
	w.expect(w.raw(ann, "GET", files+"cover", nil, "", nil), 404, "a deleted file")
	if n := w.sweep(); n != 2 { // cover and the removed photo
		t.Errorf("swept %d, want 2", n)
	}

	// Deleting the record, and by cascade its pages, lets go of every file.
	pg := w.mustDo(ann, "POST", "/api/collections/pages/records", map[string]any{"album": id}, 201)
	w.expect(w.upload(ann, "/api/collections/pages/records/"+pg.str("id")+"/files/scan", "file", "scan.pdf", "", []byte("%PDF-1.4 scan"), nil), 201, "scan")
	w.mustDo(ann, "DELETE", albums+"/"+id, nil, 204)
	if n := w.sweep(); n != 4 { // two photos, doc and the page's scan
		t.Errorf("swept %d, want 4", n)
	}
	if st := w.stored(); len(st) != 0 {
		t.Errorf("left in storage: %v", st)
	}
	if n := w.sweep(); n != 0 {
		t.Errorf("a second sweep found %d", n)
	}
}

// TestFileUploadAbandoned: a file whose upload never committed (the server
// died mid-way) is removed once its grace is over, and only then.
func TestFileUploadAbandoned(t *testing.T) {
	t.Parallel()
	for i, b := range fileBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			w := newFileWorld(t, i)
			ctx := context.Background()
			a := w.mustDo(ann, "POST", "/api/collections/albums/records", map[string]any{"owner": w.ids[ann]}, 201)
			key := a.str("id") + "/abandonedabandonedabandone"
			if _, err := w.app.Pool().Exec(ctx, `INSERT INTO abe.file_deletions (key, collection, record_id, field, reason, due_at)
				VALUES ($1, 'albums', $2, 'cover', 'upload', now() + interval '1 hour')`, key, a.str("id")); err != nil {
				t.Fatal(err)
			}
			if _, err := w.store.Put(ctx, key, bytes.NewReader(pngData), nil); err != nil {
				t.Fatal(err)
			}
			if n := w.sweep(); n != 0 {
				t.Errorf("an upload within its grace was swept (%d)", n)
			}
			if _, err := w.app.Pool().Exec(ctx, `UPDATE abe.file_deletions SET due_at = now() - interval '1 second'`); err != nil {
				t.Fatal(err)
			}
			if n := w.sweep(); n != 1 {
				t.Errorf("swept %d, want 1", n)
			}
			if st := w.stored(); len(st) != 0 {
				t.Errorf("left: %v", st)
			}
		})
	}
}
