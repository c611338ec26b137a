package jobs

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe/internal/mail"
)

// TestAdminDuringOutage: when the database cannot be reached, the jobs
// admin API answers 503 with Retry-After, not 500.
func TestAdminDuringOutage(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	cfg, err := pgxpool.ParseConfig(testDB(t).Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			return nil, errors.New("connection refused (the test's outage)")
		}
		return dial(ctx, network, addr)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	q := newQueue(t, pool, &mail.Console{}, 3)
	r := chi.NewRouter()
	q.Routes(r, func(next http.Handler) http.Handler { return next })
	call := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	if w := call("GET", "/api/admin/jobs"); w.Code != 200 {
		t.Fatalf("before the outage: %d %s", w.Code, w.Body)
	}
	down.Store(true)
	pool.Reset()
	for _, c := range []struct{ method, path string }{{"GET", "/api/admin/jobs"}, {"POST", "/api/admin/jobs/1/retry"}, {"POST", "/api/admin/jobs/1/cancel"}} {
		if w := call(c.method, c.path); w.Code != 503 || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s: %d %v %s", c.method, c.path, w.Code, w.Header(), w.Body)
		}
	}
}
