package auth

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// inRequest marks the context of a test request, so acquireCounter counts
// the database work of the handler and nothing in the background.
type inRequest struct{}

// acquireCounter counts the connections taken from the pool under a
// context marked inRequest: every query, batch and transaction takes one.
type acquireCounter struct{ n *atomic.Int64 }

func (c acquireCounter) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	if ctx.Value(inRequest{}) != nil {
		c.n.Add(1)
	}
	return ctx
}
func (acquireCounter) TraceAcquireEnd(context.Context, *pgxpool.Pool, pgxpool.TraceAcquireEndData) {}
func (acquireCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (acquireCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestForgotPasswordSameWork: the handler of password/forgot does the same
// work for an email with an account and one without, so neither its
// answer nor its timing tells them apart: no database access at all, and
// one step handed to the outbox. The lookup, the token and the mail happen
// there, and only the known email gets a mail (TestForgotAndResetPassword
// follows it through the real outbox to a reset).
func TestForgotPasswordSameWork(t *testing.T) {
	t.Parallel()
	var acquired atomic.Int64
	cfg, err := pgxpool.ParseConfig(testDB(t).Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = acquireCounter{&acquired}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := newEnv(t, &envOpts{db: pool})
	e.register("ann@example.test")

	call := func(path, body string) (int, string) {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r = r.WithContext(context.WithValue(r.Context(), inRequest{}, true))
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	// The counter sees a handler's database work: a login has some.
	acquired.Store(0)
	if code, _ := call("/api/auth/login", `{"email":"ann@example.test","password":"`+goodPassword+`"}`); code != 200 || acquired.Load() == 0 {
		t.Fatalf("login: %d, %d connections", code, acquired.Load())
	}

	// Hold the outbox, to see what the handler leaves there.
	held := newOutbox(e.mail, e.s.log)
	e.s.outbox = held
	var steps []outgoing
	var answers []string
	for _, email := range []string{"ann@example.test", "nobody@example.test", "ANN@Example.test", "nobody-else@example.test"} {
		acquired.Store(0)
		code, body := call("/api/auth/password/forgot", `{"email":"`+email+`"}`)
		if code != 202 {
			t.Fatalf("%s: %d %s", email, code, body)
		}
		if n := acquired.Load(); n != 0 {
			t.Errorf("%s: the handler took %d database connections, want none", email, n)
		}
		if len(held.queue) != 1 {
			t.Fatalf("%s: %d items queued, want 1", email, len(held.queue))
		}
		g := <-held.queue
		if g.msg != nil || g.step == nil || g.what != "password reset" {
			t.Errorf("%s: queued %+v, want a password reset step", email, g)
		}
		steps = append(steps, g)
		answers = append(answers, strings.Split(body, `"request_id"`)[0])
	}
	for _, a := range answers[1:] {
		if a != answers[0] {
			t.Errorf("answers differ: %q and %q", answers[0], a)
		}
	}
	var tokens int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM abe.email_tokens WHERE kind = 'reset_password'`).Scan(&tokens); err != nil || tokens != 0 {
		t.Fatalf("tokens written before the steps ran: %d %v", tokens, err)
	}

	// The steps: the known email gets a token and a mail, the unknown one
	// nothing.
	for i, g := range steps {
		m, err := g.step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		known := i%2 == 0
		if known != (m != nil) {
			t.Fatalf("step %d: mail %v, want one: %v", i, m, known)
		}
		if m != nil && (m.To[0] != "ann@example.test" || !strings.Contains(m.Text, "token=")) {
			t.Errorf("step %d: %v %s", i, m.To, m.Text)
		}
	}
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM abe.email_tokens WHERE kind = 'reset_password'`).Scan(&tokens); err != nil || tokens != 2 {
		t.Fatalf("tokens after the steps: %d %v", tokens, err)
	}
}
