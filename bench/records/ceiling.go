package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe/schema"
)

// The ceiling's statements are the engine's (engine/records.go,
// engine/list.go) for this collection, character for character but for
// the list's WHERE: the owner comparison the list rule translates to, with
// no rule machinery.
const (
	selectList = `t."id"::text, t."version", t."created_at", t."updated_at", t."owner"::text, t."title", t."done"`
	getSQL     = `SELECT ` + selectList + ` FROM "public"."todos" t WHERE t.id = $1`
	lockSQL    = getSQL + ` FOR UPDATE`
	listSQL    = `SELECT ` + selectList + ` FROM "public"."todos" t WHERE t."owner" = $1 ORDER BY t."created_at" DESC, t."id" DESC LIMIT `
	createSQL  = `INSERT INTO "public"."todos" AS t ("owner", "title") VALUES ($1::uuid, $2::text) RETURNING ` + selectList
	updateSQL  = `UPDATE "public"."todos" AS t SET "title" = $1::text, version = t.version + 1, updated_at = now() WHERE t.id = $2 RETURNING ` + selectList
)

// ownerHeader carries the caller's user id to the ceiling, which has no
// tokens.
const ownerHeader = "X-Bench-Owner"

// todo is a record as the ceiling reads and answers it.
type todo struct {
	ID        string    `json:"id"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Owner     string    `json:"owner"`
	Title     string    `json:"title"`
	Done      bool      `json:"done"`
}

func scanTodo(row pgx.Row) (*todo, error) {
	var t todo
	err := row.Scan(&t.ID, &t.Version, &t.CreatedAt, &t.UpdatedAt, &t.Owner, &t.Title, &t.Done)
	return &t, err
}

// ceiling is the minimal server: net/http, pgx, encoding/json.
type ceiling struct {
	db *pgxpool.Pool
}

// serveCeiling serves the ceiling with a pool of abe's default size.
func serveCeiling(ctx context.Context, args []string) error {
	var f serveFlags
	fs := flag.NewFlagSet("serve-ceiling", flag.ContinueOnError)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	pc, err := pgxpool.ParseConfig(f.db)
	if err != nil {
		return fmt.Errorf("-db: %w", err)
	}
	pc.MaxConns = schema.DefaultMaxConns
	pc.ConnConfig.RuntimeParams["application_name"] = "abe-bench-ceiling"
	db, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("open the database: %w", err)
	}
	defer db.Close()
	c := &ceiling{db: db}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/collections/todos/records/{id}", c.get)
	mux.HandleFunc("GET /api/collections/todos/records", c.list)
	mux.HandleFunc("POST /api/collections/todos/records", c.create)
	mux.HandleFunc("PATCH /api/collections/todos/records/{id}", c.update)
	// The same server settings as abe.App.Serve.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	ln, ctx, err := f.listen(ctx)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func writeTodo(w http.ResponseWriter, t *todo, status int) {
	b, err := json.Marshal(t)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"`+strconv.FormatInt(t.Version, 10)+`"`)
	w.WriteHeader(status)
	_, _ = w.Write(b) //nolint:errcheck // the client went away
}

func fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		http.Error(w, "no such record", http.StatusNotFound)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (c *ceiling) get(w http.ResponseWriter, r *http.Request) {
	t, err := scanTodo(c.db.QueryRow(r.Context(), getSQL, r.PathValue("id")))
	if err == nil && t.Owner != r.Header.Get(ownerHeader) {
		err = pgx.ErrNoRows
	}
	if err != nil {
		fail(w, err)
		return
	}
	writeTodo(w, t, http.StatusOK)
}

func (c *ceiling) list(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			http.Error(w, "limit must be 1 to 500", http.StatusBadRequest)
			return
		}
		limit = n
	}
	rows, err := c.db.Query(r.Context(), listSQL+strconv.Itoa(limit+1), r.Header.Get(ownerHeader))
	if err != nil {
		fail(w, err)
		return
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*todo, error) { return scanTodo(row) })
	if err != nil {
		fail(w, err)
		return
	}
	page := struct {
		Items      []*todo `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := items[limit-1]
		b, _ := json.Marshal(map[string]any{"s": "-created_at,-id", "v": []any{last.CreatedAt, last.ID}}) //nolint:errcheck // plain values marshal
		cur := base64.RawURLEncoding.EncodeToString(b)
		page.NextCursor = &cur
	}
	b, err := json.Marshal(page)
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b) //nolint:errcheck // the client went away
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, schema.DefaultBodyLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "invalid body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func (c *ceiling) create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Owner string `json:"owner"`
		Title string `json:"title"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Owner != r.Header.Get(ownerHeader) || body.Title == "" {
		http.Error(w, "owner must be the caller and title is required", http.StatusUnprocessableEntity)
		return
	}
	var t *todo
	err := pgx.BeginFunc(r.Context(), c.db, func(tx pgx.Tx) error {
		var err error
		t, err = scanTodo(tx.QueryRow(r.Context(), createSQL, body.Owner, body.Title))
		return err
	})
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Location", "/api/collections/todos/records/"+t.ID)
	writeTodo(w, t, http.StatusCreated)
}

// errStale is a conditional update against a version that moved on.
var errStale = errors.New("stale version")

func (c *ceiling) update(w http.ResponseWriter, r *http.Request) {
	version, err := strconv.ParseInt(strings.Trim(r.Header.Get("If-Match"), `"`), 10, 64)
	if err != nil {
		http.Error(w, `If-Match must be "<version>"`, http.StatusBadRequest)
		return
	}
	var body struct {
		Title *string `json:"title"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Title == nil {
		http.Error(w, "title is required", http.StatusUnprocessableEntity)
		return
	}
	id, owner := r.PathValue("id"), r.Header.Get(ownerHeader)
	var t *todo
	err = pgx.BeginFunc(r.Context(), c.db, func(tx pgx.Tx) error {
		before, err := scanTodo(tx.QueryRow(r.Context(), lockSQL, id))
		switch {
		case err != nil:
			return err
		case before.Owner != owner:
			return pgx.ErrNoRows
		case before.Version != version:
			t = before
			return errStale
		}
		t, err = scanTodo(tx.QueryRow(r.Context(), updateSQL, *body.Title, id))
		return err
	})
	if errors.Is(err, errStale) {
		writeTodo(w, t, http.StatusConflict)
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	writeTodo(w, t, http.StatusOK)
}
