package abe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/engine"
	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/internal/redistest"
	"github.com/abe-stack/abe/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m, redistest.StopShared) }

func loadExample(t *testing.T) *schema.Config {
	t.Helper()
	cfg, err := schema.Load("examples/todo/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Secret = strings.Repeat("s", 40)
	return cfg
}

// migratedURL is a database with the todo example applied, cloned from a
// template keyed by everything the migration depends on.
func migratedURL(t testing.TB, cfg *schema.Config) string {
	t.Helper()
	key := "abe-app-" + schema.Desired(cfg).Schema
	for _, m := range abe.Migrations() {
		key += "/" + m.Key() + ":" + m.Checksum()
	}
	plan, err := schema.Diff(schema.Desired(cfg), &schema.Catalog{Tables: map[string]*schema.Table{}, Triggers: map[string]*schema.Trigger{}, Applied: map[string]schema.AppliedMigration{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	key += "/" + plan.Checksum() + fmt.Sprint(engine.TableTriggers())
	for _, r := range cfg.Roles {
		key += fmt.Sprintf("/%s%v%v", r.Name, r.Permissions, r.Default)
	}
	return pgtest.NewURL(t, &pgtest.Options{Template: key, Setup: func(ctx context.Context, url string) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		_, err = abe.NewMigrator(cfg, "test").Apply(ctx, pool, nil)
		return err
	}})
}

// syncBuffer is a log sink tests can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newApp(t *testing.T, opts *abe.Options) (*abe.App, *syncBuffer) {
	t.Helper()
	cfg := loadExample(t)
	cfg.Database.URL = migratedURL(t, cfg)
	logs := &syncBuffer{}
	if opts == nil {
		opts = &abe.Options{}
	}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	app, err := abe.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	return app, logs
}

func do(t *testing.T, h http.Handler, method, path string, header http.Header) (*http.Response, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	var body map[string]any
	if strings.Contains(res.Header.Get("Content-Type"), "json") {
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
		}
	}
	return res, body
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	app, logs := newApp(t, nil)
	h := app.Handler()
	for _, tc := range []struct {
		name, method, path string
		header             http.Header
		status             int
		contentType        string
		check              func(t *testing.T, res *http.Response, body map[string]any)
	}{
		{name: "healthz", method: "GET", path: "/healthz", status: 200, contentType: "application/json",
			check: func(t *testing.T, _ *http.Response, body map[string]any) {
				if body["status"] != "ok" {
					t.Errorf("body %v", body)
				}
			}},
		{name: "readyz", method: "GET", path: "/readyz", status: 200, contentType: "application/json",
			check: func(t *testing.T, _ *http.Response, body map[string]any) {
				db := body["checks"].(map[string]any)["database"].(map[string]any)
				if body["status"] != "ready" || db["status"] != "up" {
					t.Errorf("body %v", body)
				}
			}},
		{name: "config schema", method: "GET", path: "/api/schema/config.json", status: 200, contentType: "application/schema+json"},
		{name: "unknown route", method: "GET", path: "/nope", status: 404, contentType: "application/problem+json",
			check: func(t *testing.T, res *http.Response, body map[string]any) {
				if body["status"] != float64(404) || body["title"] != "Not Found" || body["request_id"] != res.Header.Get("X-Request-Id") {
					t.Errorf("problem %v", body)
				}
			}},
		{name: "wrong method", method: "POST", path: "/healthz", status: 405, contentType: "application/problem+json"},
		{name: "request id kept", method: "GET", path: "/healthz", header: http.Header{"X-Request-Id": {"abc-123"}}, status: 200,
			check: func(t *testing.T, res *http.Response, _ map[string]any) {
				if got := res.Header.Get("X-Request-Id"); got != "abc-123" {
					t.Errorf("request id %q", got)
				}
			}},
		{name: "request id replaced when unsafe", method: "GET", path: "/healthz", header: http.Header{"X-Request-Id": {"a b\nc"}}, status: 200,
			check: func(t *testing.T, res *http.Response, _ map[string]any) {
				if got := res.Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \n") {
					t.Errorf("request id %q", got)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := do(t, h, tc.method, tc.path, tc.header)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.contentType != "" && res.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("content type %q, want %q", res.Header.Get("Content-Type"), tc.contentType)
			}
			if tc.check != nil {
				tc.check(t, res, body)
			}
		})
	}
	if !strings.Contains(logs.String(), `"request_id":"abc-123"`) {
		t.Errorf("request logs do not carry the request id:\n%s", logs)
	}
}

func TestReadyzReportsDatabaseDown(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t, nil)
	app.Pool().Close()
	res, body := do(t, app.Handler(), "GET", "/readyz", nil)
	db := body["checks"].(map[string]any)["database"].(map[string]any)
	if res.StatusCode != http.StatusServiceUnavailable || db["status"] != "down" || db["error"] == "" {
		t.Fatalf("status %d body %v", res.StatusCode, body)
	}
}

func TestPanicsBecomeProblems(t *testing.T) {
	t.Parallel()
	app, logs := newApp(t, &abe.Options{Routes: func(r chi.Router) {
		r.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("secret internal detail") })
	}})
	res, body := do(t, app.Handler(), "GET", "/boom", nil)
	if res.StatusCode != 500 || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if strings.Contains(body["detail"].(string), "secret") {
		t.Errorf("the panic value reached the client: %v", body)
	}
	if l := logs.String(); !strings.Contains(l, "secret internal detail") || !strings.Contains(l, "goroutine") {
		t.Errorf("the panic and its stack are not logged:\n%s", l)
	}
	if res, _ := do(t, app.Handler(), "GET", "/healthz", nil); res.StatusCode != 200 {
		t.Errorf("server unhealthy after a panic: %d", res.StatusCode)
	}
}

func TestNewRefusesDrift(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t)
	cfg.Database.URL = pgtest.NewURL(t, nil) // empty database
	_, err := abe.New(context.Background(), cfg, nil)
	var drift *abe.DriftError
	if !errors.As(err, &drift) || !strings.Contains(err.Error(), "create table todos") || !strings.Contains(err.Error(), "--migrate") {
		t.Fatalf("got %v, want a DriftError listing the steps", err)
	}
	// --migrate applies and starts.
	app, err := abe.New(context.Background(), cfg, &abe.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	app.Close()
}

func TestNewUnreachableDatabase(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := loadExample(t)
	cfg.Database.URL = "postgres://abe:hunter2@" + addr + "/app"
	_, err = abe.New(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "is PostgreSQL running") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v, want an explanation without the password", err)
	}
}

func TestListenAddressInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = abe.Listen(ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "server.listen") {
		t.Fatalf("got %v", err)
	}
}

// notifyListener tells when the server closes it.
type notifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *notifyListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}

// TestGracefulShutdown cancels the server while a request is in flight:
// the request completes, new connections are refused, Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	app, _ := newApp(t, &abe.Options{Routes: func(r chi.Router) {
		r.Get("/slow", func(w http.ResponseWriter, _ *http.Request) {
			close(entered)
			<-release
			_, _ = io.WriteString(w, "done")
		})
	}})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &notifyListener{Listener: inner, closed: make(chan struct{})}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get(url + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		got <- result{string(b), err}
	}()
	<-entered
	cancel()

	// Shutdown closes the listener first; then new connections fail.
	<-ln.closed
	if conn, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		conn.Close()
		t.Fatal("the listener still accepts connections after shutdown began")
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	if r := <-got; r.err != nil || r.body != "done" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
