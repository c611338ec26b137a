package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/abe-stack/abe/internal/mail"
	"github.com/abe-stack/abe/internal/mail/smtptest"
	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testDB is a database with River's tables, made by the migrations abe
// applies (each in its own transaction, as abe migrate does).
func testDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	key := "abe-jobs"
	for _, m := range Migrations() {
		key += "/" + m.Checksum()
	}
	return pgtest.New(t, &pgtest.Options{Template: key, Setup: func(ctx context.Context, url string) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, `CREATE SCHEMA abe`); err != nil {
			return err
		}
		for _, m := range Migrations() {
			if _, err := pool.Exec(ctx, m.SQL); err != nil {
				return err
			}
		}
		return nil
	}})
}

// noWait retries at once.
type noWait struct{}

func (noWait) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

func newQueue(t *testing.T, db *pgxpool.Pool, mailer mail.Mailer, attempts int) *Queue {
	t.Helper()
	q, err := New(Config{Pool: db, Mailer: mailer, SealKey: bytes.Repeat([]byte{7}, 32), RetryPolicy: noWait{},
		Settings: schema.Jobs{Workers: 4, MaxAttempts: attempts, Timeout: schema.Duration(10 * time.Second), RescueAfter: schema.Duration(time.Hour),
			CompletedRetention: schema.Duration(time.Hour), DiscardedRetention: schema.Duration(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func start(t *testing.T, q *Queue) {
	t.Helper()
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
}

// await polls the job table until cond holds for the job.
func await(t *testing.T, q *Queue, id int64, what string, cond func(j Job) bool) Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := q.Client().JobGet(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j := jobOf(r); cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d never became %s: %+v", id, what, jobOf(r))
		}
		time.Sleep(20 * time.Millisecond) // polling a table; nothing to wait on
	}
}

// TestMailThroughTheQueue sends through a real SMTP server; the body
// waits in the table sealed.
func TestMailThroughTheQueue(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	srv := smtptest.Start(t, nil)
	mailer, err := mail.New(mail.Config{From: "abe <no-reply@abe.test>", Providers: []mail.Provider{{Type: "smtp", Host: srv.Host, Port: srv.Port, TLS: "none"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, db, mailer, 5)
	// Queued before the workers start: nothing is lost while a node boots.
	if err := q.Send(context.Background(), &mail.Message{To: []string{"ann@example.test"}, Subject: "Reset your password",
		Text: "https://app.test/reset?token=very-secret-token"}); err != nil {
		t.Fatal(err)
	}
	var raw string
	if err := db.QueryRow(context.Background(), `SELECT args::text FROM abe.river_job WHERE kind = 'mail.send'`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, "very-secret-token") || !strings.Contains(raw, "ann@example.test") {
		t.Fatalf("the queued mail is not sealed: %s", raw)
	}
	start(t, q)
	got := srv.Next(t, 30*time.Second)
	if got.Header.Get("Subject") != "Reset your password" || !strings.Contains(got.Raw, "very-secret-token") {
		t.Fatalf("delivered: %s", got.Raw)
	}
}

// failing is a mailer that fails n times, then sends.
type failing struct {
	left atomic.Int32
	sent chan *mail.Message
}

func (f *failing) Send(_ context.Context, m *mail.Message) error {
	if f.left.Add(-1) >= 0 {
		return errors.New("every provider is down")
	}
	f.sent <- m
	return nil
}

// TestRetriesThenDead: a failing job is retried, recorded attempt by
// attempt, and lands in the discarded state after max_attempts; an admin
// sees it and retries it, and it completes.
func TestRetriesThenDead(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	f := &failing{sent: make(chan *mail.Message, 1)}
	f.left.Store(3)
	q := newQueue(t, db, f, 3)
	start(t, q)
	res, err := q.Client().Insert(context.Background(), mustArgs(t, q, "bob@example.test"), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := res.Job.ID
	dead := await(t, q, id, "discarded", func(j Job) bool { return j.State == "discarded" })
	if dead.Attempt != 3 || len(dead.Errors) != 3 || !strings.Contains(dead.Errors[2].Error, "every provider is down") {
		t.Fatalf("discarded job: %+v", dead)
	}

	// The admin API, behind its guard.
	r := chi.NewRouter()
	guard := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get("X-Admin") != "yes" {
				http.Error(w, "no", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	q.Routes(r, guard)
	call := func(method, path string, admin bool) (int, map[string]any) {
		req := httptest.NewRequest(method, path, nil)
		if admin {
			req.Header.Set("X-Admin", "yes")
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, body
	}
	if code, _ := call("GET", "/api/admin/jobs?state=discarded", false); code != 403 {
		t.Fatalf("without the permission: %d", code)
	}
	code, body := call("GET", "/api/admin/jobs?state=discarded", true)
	items, _ := body["items"].([]any)
	if code != 200 || len(items) != 1 {
		t.Fatalf("list discarded: %d %v", code, body)
	}
	item := items[0].(map[string]any)
	if args, _ := json.Marshal(item["args"]); strings.Contains(string(args), "sealed") || !strings.Contains(string(args), "bob@example.test") {
		t.Fatalf("mail job args shown to admins: %s", args)
	}
	for _, bad := range []string{"/api/admin/jobs?state=dead", "/api/admin/jobs?limit=0", "/api/admin/jobs?cursor=nonsense"} {
		if code, _ := call("GET", bad, true); code != 400 {
			t.Errorf("GET %s: %d", bad, code)
		}
	}
	if code, _ := call("POST", "/api/admin/jobs/999999/retry", true); code != 404 {
		t.Errorf("retry an unknown job: %d", code)
	}
	if code, _ := call("POST", "/api/admin/jobs/"+itoa(id)+"/retry", true); code != 200 {
		t.Fatalf("retry: %d", code)
	}
	select {
	case m := <-f.sent:
		if m.To[0] != "bob@example.test" {
			t.Fatalf("sent %+v", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the retried job did not send")
	}
	await(t, q, id, "completed", func(j Job) bool { return j.State == "completed" })

	// Cancel: a job scheduled for later never runs.
	later, err := q.Client().Insert(context.Background(), mustArgs(t, q, "carol@example.test"), &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := call("POST", "/api/admin/jobs/"+itoa(later.Job.ID)+"/cancel", true); code != 200 || body["state"] != "cancelled" {
		t.Fatalf("cancel: %d %v", code, body)
	}
}

func mustArgs(t *testing.T, q *Queue, to string) MailArgs {
	t.Helper()
	a, err := q.mailArgs(&mail.Message{To: []string{to}, Subject: "Hello", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPeriodicTask: a task registered with Every runs on start, one
// registered on the running queue (an embedding program's, after abe.New)
// soon after; a name is taken once.
func TestPeriodicTask(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	q := newQueue(t, db, nil, 3)
	ran := make(chan struct{}, 1)
	if err := q.Every("test.tick", time.Hour, func(context.Context) error {
		select {
		case ran <- struct{}{}:
		default:
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start(t, q)
	select {
	case <-ran:
	case <-time.After(30 * time.Second):
		t.Fatal("the periodic task did not run on start")
	}
	late := make(chan struct{}, 1)
	if err := q.Every("late", time.Hour, func(context.Context) error {
		select {
		case late <- struct{}{}:
		default:
		}
		return nil
	}); err != nil {
		t.Fatalf("a task registered after start: %v", err)
	}
	select {
	case <-late:
	case <-time.After(30 * time.Second):
		t.Fatal("the task registered after start did not run")
	}
	if err := q.Every("late", time.Hour, func(context.Context) error { return nil }); err == nil {
		t.Fatal("a task name was taken twice")
	}
}
