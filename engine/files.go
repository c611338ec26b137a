package engine

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/engine/ops"
	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/internal/storage"
	"github.com/abe-stack/abe/schema"
)

// The files of file fields, at /api/collections/{c}/records/{id}/files/{field}:
//
//	POST   .../files/{field}              upload (multipart, part "file"): sets a
//	                                      single field, appends to a many field
//	GET    .../files/{field}[/{name}]     download; ?token= for a signed URL
//	DELETE .../files/{field}[/{name}]     remove
//	GET    .../files/{field}[/{name}]/url a signed URL: {url, expires_at}
//
// An upload is a write of the record: the update rule and the field's
// update rule decide, with the new name in record and the field in
// changes, and the version grows. A download is a read: the read rule and
// the field's read rule decide, and what they refuse is 404.

// fileRoutes mounts the file endpoints under a collection's route.
func (e *Engine) fileRoutes(r chi.Router) {
	r.Route("/records/{id}/files/{field}", func(r chi.Router) {
		r.Post("/", e.handleUpload)
		r.Get("/", e.handleDownload)
		r.Head("/", e.handleDownload)
		r.Delete("/", e.handleFileDelete)
		r.Get("/url", e.handleFileURL)
		r.Get("/{name}", e.handleDownload)
		r.Head("/{name}", e.handleDownload)
		r.Delete("/{name}", e.handleFileDelete)
		r.Get("/{name}/url", e.handleFileURL)
	})
}

// multipartSlack is what a multipart body may hold besides the file: the
// boundaries and part headers.
const multipartSlack = 64 << 10

// fileTarget finds the collection and file field a request names.
func (e *Engine) fileTarget(r *http.Request) (*coll, *column, error) {
	co, err := e.collOf(r)
	if err != nil {
		return nil, nil, err
	}
	name := chi.URLParam(r, "field")
	col := co.byName[name]
	if col == nil || col.field == nil || col.field.Type != schema.File {
		return nil, nil, errStatus(http.StatusNotFound, "%s has no file field %q", co.name, name)
	}
	if e.cfg.Storage == nil {
		return nil, nil, errStatus(http.StatusNotImplemented, "file storage is not configured on this server")
	}
	return co, col, nil
}

// maxFileSize is the largest file a field takes.
func (e *Engine) maxFileSize(col *column) int64 {
	return cmp.Or(col.field.MaxSize, int64(e.cfg.Schema.Storage.MaxSize), schema.DefaultStorageMaxSize)
}

// accepts tells whether a field takes a file of the sniffed type ct.
func accepts(f *schema.Field, ct string) bool {
	if len(f.MIMETypes) == 0 {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	for _, want := range f.MIMETypes {
		if want == mt || strings.HasSuffix(want, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(want, "*")) {
			return true
		}
	}
	return false
}

// fileNames lists the names a file field's value holds.
func fileNames(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []string:
		return x
	}
	return nil
}

// checkFileValues refuses file names a client writes itself: a file field
// holds only names the upload endpoint made, so a JSON write may keep or
// remove them but never add one; else a client could point its record at
// another record's file and read that through its own rules. uploading is
// the field an upload is setting, exempt.
func (co *coll) checkFileValues(vals, before Record, uploading string) error {
	var fields []httpx.FieldError
	for i := range co.columns {
		col := &co.columns[i]
		v, ok := vals[col.name]
		if !ok || col.field == nil || col.field.Type != schema.File || col.name == uploading {
			continue
		}
		had := fileNames(before[col.name])
		for _, name := range fileNames(v) {
			if !slices.Contains(had, name) {
				fields = append(fields, httpx.FieldError{Field: col.name,
					Message: "files are added by uploading them to POST /api/collections/" + co.name + "/records/{id}/files/" + col.name + "; a write may only keep or remove them"})
				break
			}
		}
	}
	if len(fields) > 0 {
		return &bodyError{status: http.StatusUnprocessableEntity, detail: "the record has invalid fields", fields: fields}
	}
	return nil
}

// attach is the change an upload makes: the new name in a single field,
// appended to a many field.
func attach(col *column, name string) change {
	if col.field.Many {
		return change{ops: []ops.Op{{Op: ops.OpListInsert, Path: []ops.PathElem{{Key: col.name}}, Value: name}}, fileField: col.name}
	}
	return change{patch: map[string]any{col.name: name}, fileField: col.name}
}

// errDryRun rolls back a transaction that only asked whether a write
// would be allowed.
var errDryRun = errors.New("dry run")

func (e *Engine) handleUpload(w http.ResponseWriter, r *http.Request) {
	co, col, err := e.fileTarget(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	version, err := ifMatch(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	ctx, c, id := r.Context(), e.callerOf(r), strings.ToLower(chi.URLParam(r, "id"))
	name := newFileName()
	ch := attach(col, name)

	// Before a byte is stored, the write runs and is rolled back: a caller
	// the rules refuse, a missing record, a stale version or a full list
	// is answered without reading the body.
	err = pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		if _, err := e.update(ctx, tx, co, c, id, ch, version); err != nil {
			return err
		}
		return errDryRun
	})
	if !errors.Is(err, errDryRun) {
		e.writeError(w, r, err)
		return
	}

	key := fileKey(id, name)
	if err := e.queueUpload(ctx, co, col, id, key); err != nil {
		e.writeError(w, r, err)
		return
	}
	if err := e.receive(w, r, col, key); err != nil {
		e.discardUpload(ctx, co, col, id, key)
		e.writeError(w, r, err)
		return
	}
	var rec Record
	err = e.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := claimUpload(ctx, tx, key); err != nil {
			return err
		}
		rec, err = e.update(ctx, tx, co, c, id, ch, version)
		return err
	})
	if err != nil {
		e.discardUpload(ctx, co, col, id, key)
		e.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/collections/"+co.name+"/records/"+id+"/files/"+col.name+"/"+name)
	if err := e.respond(ctx, w, co, c, e.loads(ctx, e.db), rec, http.StatusCreated); err != nil {
		e.writeError(w, r, err)
	}
}

// receive streams the "file" part of a multipart body into storage under
// key, checking its size as it goes and its type from its first bytes.
func (e *Engine) receive(w http.ResponseWriter, r *http.Request, col *column, key string) error {
	maxSize := e.maxFileSize(col)
	tooLarge := errStatus(http.StatusRequestEntityTooLarge, "the file is larger than %s allows (%d bytes)", col.name, maxSize)
	r.Body = http.MaxBytesReader(w, r.Body, maxSize+multipartSlack)
	mr, err := r.MultipartReader()
	if err != nil {
		return errStatus(http.StatusUnsupportedMediaType, "send the file as multipart/form-data, in a part named file")
	}
	malformed := func(err error) error {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge
		}
		return errStatus(http.StatusBadRequest, "the multipart body is malformed: %v", err)
	}
	var part io.Reader
	var original string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return errStatus(http.StatusBadRequest, "the body has no part named file")
		}
		if err != nil {
			return malformed(err)
		}
		if p.FormName() == "file" {
			part, original = p, p.FileName()
			break
		}
		// Other parts are read past; MaxBytesReader bounds them.
		if _, err := io.Copy(io.Discard, p); err != nil {
			return malformed(err)
		}
	}

	// The type is what the content is, whatever the name or the client
	// say: http.DetectContentType reads at most the first 512 bytes.
	head := make([]byte, 512)
	n, err := io.ReadFull(part, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed(err)
	}
	head = head[:n]
	ct := http.DetectContentType(head)
	if !accepts(col.field, ct) {
		mt, _, _ := mime.ParseMediaType(ct) //nolint:errcheck // DetectContentType's answers parse
		return &apiError{status: http.StatusUnsupportedMediaType, detail: "the file's content is " + mt + ", which " + col.name + " does not take",
			fields: []httpx.FieldError{{Field: col.name, Message: "takes " + strings.Join(col.field.MIMETypes, ", ")}}}
	}
	_, err = e.cfg.Storage.Put(r.Context(), key, io.MultiReader(bytes.NewReader(head), part), &storage.PutOptions{
		ContentType: ct, MaxSize: maxSize, Metadata: map[string]string{"filename": sanitizeFilename(original)},
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrTooLarge):
		return tooLarge
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge
	}
	if r.Context().Err() != nil {
		return r.Context().Err()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errStatus(http.StatusBadRequest, "the body ended in the middle of the file")
	}
	return err
}

// fileRef is a file a request names, after the rules allowed it.
type fileRef struct {
	co   *coll
	col  *column
	rec  Record
	name string
}

func (f *fileRef) key() string { return fileKey(f.rec.ID(), f.name) }

// readable finds the file a request names, as the caller may read it:
// the read rule and the field's read rule decide, and what they refuse is
// 404. The name is from the path, or the single field's value.
func (e *Engine) readable(r *http.Request, co *coll, col *column) (*fileRef, error) {
	ctx, c := r.Context(), e.callerOf(r)
	loads := e.loads(ctx, e.db)
	rec, err := e.get(ctx, e.db, co, c, loads, chi.URLParam(r, "id"), false)
	if err != nil {
		return nil, err
	}
	v, err := e.viewOf(ctx, co, c, loads, rec, nil)
	if err != nil {
		return nil, err
	}
	if slices.Contains(v.hidden, col.name) {
		return nil, errStatus(http.StatusNotFound, "no such file")
	}
	return pick(co, col, rec, chi.URLParam(r, "name"))
}

// pick is the file name names in rec's field, or the field's only file.
func pick(co *coll, col *column, rec Record, name string) (*fileRef, error) {
	names := fileNames(rec[col.name])
	if name == "" {
		if col.field.Many {
			return nil, errStatus(http.StatusBadRequest, "%s holds several files: name one, .../files/%s/{name}", col.name, col.name)
		}
		if len(names) == 0 {
			return nil, errStatus(http.StatusNotFound, "%s holds no file", col.name)
		}
		name = names[0]
	}
	// A name the server did not make (written into the column by hand)
	// names no file it stored.
	if !slices.Contains(names, name) || !isFileName(name) {
		return nil, errStatus(http.StatusNotFound, "no such file")
	}
	return &fileRef{co: co, col: col, rec: rec, name: name}, nil
}

func (e *Engine) handleDownload(w http.ResponseWriter, r *http.Request) {
	co, col, err := e.fileTarget(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	var f *fileRef
	cache := "private, no-cache"
	if tok := r.URL.Query().Get("token"); tok != "" {
		var exp time.Time
		if f, exp, err = e.signedFile(r, co, col, tok); err != nil {
			e.writeError(w, r, err)
			return
		}
		// The link itself expires; a browser may keep what it read until then.
		cache = "private, max-age=" + strconv.Itoa(max(int(exp.Sub(e.now()).Seconds()), 0))
	} else if f, err = e.readable(r, co, col); err != nil {
		e.writeError(w, r, err)
		return
	}
	body, info, err := e.cfg.Storage.Get(r.Context(), f.key())
	if err != nil {
		if errors.Is(err, storage.ErrNotExist) {
			e.log.WarnContext(r.Context(), "a record holds a file storage does not have", slog.String("key", f.key()))
			err = errStatus(http.StatusNotFound, "no such file")
		}
		e.writeError(w, r, err)
		return
	}
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", info.ContentType)
	kind := "attachment"
	if _, ok := r.URL.Query()["download"]; !ok && inline(info.ContentType) {
		kind = "inline"
	}
	h.Set("Content-Disposition", contentDisposition(kind, cmp.Or(info.Metadata["filename"], f.name)))
	// A file's name changes with its content, so its name is its ETag.
	h.Set("ETag", `"`+f.name+`"`)
	h.Set("Cache-Control", cache)
	// Should a browser open an uploaded page, it runs nothing.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if rs, ok := body.(io.ReadSeeker); ok {
		http.ServeContent(w, r, "", info.ModTime, rs)
		return
	}
	h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	if r.Method != http.MethodHead {
		io.Copy(w, body) //nolint:errcheck // the client went away
	}
}

// inline tells whether a browser may show a file of type ct itself:
// media and plain text. Anything else (HTML, XML, scripts) is offered as
// a download, so an upload can never act as a page of this origin.
func inline(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case mt == "image/svg+xml":
		return false
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"),
		mt == "application/pdf", mt == "text/plain":
		return true
	}
	return false
}

// signedFile checks a download token and finds its file. The token stands
// for the rules that allowed it to be made; the file must still be the
// record's, so a replaced or removed file stops opening.
func (e *Engine) signedFile(r *http.Request, co *coll, col *column, tok string) (*fileRef, time.Time, error) {
	id, name := strings.ToLower(chi.URLParam(r, "id")), chi.URLParam(r, "name")
	exp, err := checkFileToken(e.urlKey, tok, co.name, id, col.name, name, e.now())
	if err != nil {
		return nil, time.Time{}, errStatus(http.StatusForbidden, "%s", err.Error())
	}
	if !isUUID(id) || name == "" {
		return nil, time.Time{}, errStatus(http.StatusNotFound, "no such file")
	}
	rec, err := co.scan(e.db.QueryRow(r.Context(), `SELECT `+co.selectList+` FROM `+co.table+` t WHERE t.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, time.Time{}, errStatus(http.StatusNotFound, "no such file")
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	f, err := pick(co, col, rec, name)
	return f, exp, err
}

func (e *Engine) handleFileURL(w http.ResponseWriter, r *http.Request) {
	co, col, err := e.fileTarget(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	f, err := e.readable(r, co, col)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	ttl := cmp.Or(time.Duration(e.cfg.Schema.Storage.URLTTL), schema.DefaultStorageURLTTL)
	exp := e.now().Add(ttl).Truncate(time.Second)
	id := f.rec.ID()
	u := e.cfg.Schema.Server.PublicURL + "/api/collections/" + co.name + "/records/" + id + "/files/" + col.name + "/" + f.name +
		"?token=" + fileToken(e.urlKey, co.name, id, col.name, f.name, exp)
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"url": u, "expires_at": exp.UTC().Format(time.RFC3339)})
}

func (e *Engine) handleFileDelete(w http.ResponseWriter, r *http.Request) {
	co, col, err := e.fileTarget(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	version, err := ifMatch(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	ctx, c, id, name := r.Context(), e.callerOf(r), chi.URLParam(r, "id"), chi.URLParam(r, "name")
	var rec Record
	err = e.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		cur, err := e.get(ctx, tx, co, c, e.loads(ctx, tx), id, true)
		if err != nil {
			return err
		}
		var ch change
		switch {
		case col.field.Many && name == "":
			ch = change{patch: map[string]any{col.name: []any{}}}
		case col.field.Many:
			if !slices.Contains(fileNames(cur[col.name]), name) {
				return errStatus(http.StatusNotFound, "no such file")
			}
			ch = change{ops: []ops.Op{{Op: ops.OpListRemove, Path: []ops.PathElem{{Key: col.name}}, Value: name}}}
		default:
			if name != "" && !slices.Contains(fileNames(cur[col.name]), name) {
				return errStatus(http.StatusNotFound, "no such file")
			}
			ch = change{patch: map[string]any{col.name: nil}}
		}
		rec, err = e.update(ctx, tx, co, c, id, ch, version)
		return err
	})
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	// The file itself goes when the clean-up job runs: the write queued it.
	if err := e.respond(ctx, w, co, c, e.loads(ctx, e.db), rec, http.StatusOK); err != nil {
		e.writeError(w, r, err)
	}
}

// deriveFileKey makes the key that signs download URLs from the auth
// secret, so every node signs alike; without a secret (an embedder that
// gave none) a random key makes links work on this node only.
func deriveFileKey(secret string) []byte {
	if secret == "" {
		k := make([]byte, 32)
		rand.Read(k)
		return k
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("abe file download links"))
	return m.Sum(nil)
}
