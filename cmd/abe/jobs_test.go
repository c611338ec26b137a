package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/internal/pg/pgtest"
)

// stallingSMTP is an SMTP server whose first delivery never finishes: it
// holds the message until the test ends, as a server would when the
// sender dies mid-transfer. Later deliveries are accepted.
type stallingSMTP struct {
	port     int
	mu       sync.Mutex
	attempts int
	started  chan struct{} // the first delivery began
	accepted chan string   // subjects of accepted messages
	release  chan struct{}
}

func startStallingSMTP(t *testing.T) *stallingSMTP {
	t.Helper()
	s := &stallingSMTP{started: make(chan struct{}), accepted: make(chan string, 10), release: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &stallSession{s: s}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) //nolint:errcheck // ends when the test closes it
	}()
	t.Cleanup(func() {
		close(s.release)
		srv.Close()
		<-done
	})
	return s
}

type stallSession struct{ s *stallingSMTP }

func (ss *stallSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *stallSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *stallSession) Reset()                               {}
func (ss *stallSession) Logout() error                        { return nil }

func (ss *stallSession) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	s.attempts++
	first := s.attempts == 1
	s.mu.Unlock()
	if first {
		close(s.started)
		<-s.release
		return fmt.Errorf("never accepted")
	}
	subject := ""
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "Subject: "); ok {
			subject = strings.TrimSpace(v)
			break
		}
	}
	s.accepted <- subject
	return nil
}

// TestJobSurvivesACrash kills abe (SIGKILL) while it sends a mail job:
// after a restart the job runs again and the mail is delivered once.
func TestJobSurvivesACrash(t *testing.T) {
	t.Parallel()
	smtpSrv := startStallingSMTP(t)
	dir := t.TempDir()
	example, err := os.ReadFile("../../examples/todo/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "abe.yaml")
	extra := fmt.Sprintf(`
mail:
  from: "abe <no-reply@abe.test>"
  providers:
    - { type: smtp, host: 127.0.0.1, port: %d, tls: none }
jobs:
  timeout: 20s
  rescue_after: 21s
`, smtpSrv.port)
	if err := os.WriteFile(cfg, append(example, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	dbURL := pgtest.NewURL(t, nil)
	env := []string{"DATABASE_URL=" + dbURL, "ABE_AUTH_SECRET=" + strings.Repeat("s", 40)}
	if out, code := runBin(t, env, "migrate", "apply", "--config", cfg); code != 0 {
		t.Fatal(out)
	}
	a := startBin(t, env, "serve", "--config", cfg)
	if code, body := post(t, a.url+"/api/auth/register", `{"email":"ann@example.test","password":"long enough pass phrase 9"}`); code != 201 {
		t.Fatalf("register: %d %s", code, body)
	}
	select {
	case <-smtpSrv.started:
	case <-time.After(time.Minute):
		t.Fatalf("the verification mail never reached the SMTP server:\n%s", a.output.all.String())
	}
	job := killMidJob(t, a, dbURL, `kind = 'mail.send'`)
	job.awaitRescuable(21 * time.Second)
	b := startBin(t, env, "serve", "--config", cfg)
	select {
	case subject := <-smtpSrv.accepted:
		if !strings.Contains(subject, "erif") {
			t.Fatalf("delivered %q", subject)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the job did not run again after the restart:\n%s", b.output.all.String())
	}
	job.awaitCompleted(2)
	select {
	case subject := <-smtpSrv.accepted:
		t.Fatalf("a second delivery: %q", subject)
	default:
	}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestJobsCLI(t *testing.T) {
	dbURL := pgtest.NewURL(t, nil)
	env := map[string]string{"DATABASE_URL": dbURL, "ABE_AUTH_SECRET": strings.Repeat("s", 40)}
	cfg := "../../examples/todo/abe.yaml"
	if _, _, err := run(t, env, "migrate", "apply", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, env, "jobs", "list", "--config", cfg); err != nil || !strings.Contains(out, "No jobs.") {
		t.Fatalf("list, empty: %q %v", out, err)
	}
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var id int64
	if err := db.QueryRow(context.Background(), `INSERT INTO abe.river_job (kind, args, max_attempts, attempt, state, finalized_at, errors)
		VALUES ('task', '{"name":"x"}', 3, 3, 'discarded', now(), ARRAY['{"at":"2026-01-01T00:00:00Z","attempt":3,"error":"boom"}'::jsonb]) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	sid := fmt.Sprint(id)
	if out, _, err := run(t, env, "jobs", "list", "--config", cfg, "--state", "discarded"); err != nil || !strings.Contains(out, sid) || !strings.Contains(out, "boom") {
		t.Fatalf("list discarded: %q %v", out, err)
	}
	if _, _, err := run(t, env, "jobs", "list", "--config", cfg, "--state", "dead"); err == nil || !strings.Contains(err.Error(), "not one of") {
		t.Fatalf("list with a bad state: %v", err)
	}
	if out, _, err := run(t, env, "jobs", "retry", "--config", cfg, sid); err != nil || !strings.Contains(out, "available") {
		t.Fatalf("retry: %q %v", out, err)
	}
	if out, _, err := run(t, env, "jobs", "cancel", "--config", cfg, sid); err != nil || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: %q %v", out, err)
	}
	if _, _, err := run(t, env, "jobs", "retry", "--config", cfg, "999999"); err == nil || !strings.Contains(err.Error(), "no job") {
		t.Fatalf("retry an unknown job: %v", err)
	}
	if _, _, err := run(t, env, "jobs", "retry", "--config", cfg, "abc"); err == nil {
		t.Fatal("retry of a non-number worked")
	}
}

// crashedJob is a River job whose node was killed while it ran.
type crashedJob struct {
	t     *testing.T
	db    *pgx.Conn
	where string // selects the job in abe.river_job
	args  []any
}

// killMidJob kills a with SIGKILL, as a crash would, while the job that
// where selects runs, and checks that the job is left running at its
// first attempt.
func killMidJob(t *testing.T, a *server, dbURL, where string, args ...any) *crashedJob {
	t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	j := &crashedJob{t: t, db: db, where: where, args: args}
	if s, n := j.state(); s != "running" || n != 1 {
		t.Fatalf("after the crash the job is %s (attempt %d), want running at attempt 1", s, n)
	}
	return j
}

func (j *crashedJob) state() (string, int) {
	j.t.Helper()
	var s string
	var attempt int
	if err := j.db.QueryRow(context.Background(), `SELECT state::text, attempt FROM abe.river_job WHERE `+j.where, j.args...).Scan(&s, &attempt); err != nil {
		j.t.Fatal(err)
	}
	return s, attempt
}

// awaitRescuable waits until the job has run longer than rescueAfter in
// the database's own clock: a node that starts then rescues it.
func (j *crashedJob) awaitRescuable(rescueAfter time.Duration) {
	j.t.Helper()
	for {
		var stuck bool
		q := fmt.Sprintf(`SELECT attempted_at < now() - interval '%d milliseconds' FROM abe.river_job WHERE %s`, rescueAfter.Milliseconds(), j.where)
		if err := j.db.QueryRow(context.Background(), q, j.args...).Scan(&stuck); err != nil {
			j.t.Fatal(err)
		}
		if stuck {
			return
		}
		time.Sleep(200 * time.Millisecond) // the condition is the passing of time itself
	}
}

// awaitCompleted waits until the job completed, and checks it did at attempt.
func (j *crashedJob) awaitCompleted(attempt int) {
	j.t.Helper()
	for {
		if s, n := j.state(); s == "completed" {
			if n != attempt {
				j.t.Fatalf("completed at attempt %d, want %d", n, attempt)
			}
			return
		}
		time.Sleep(50 * time.Millisecond) // polling the job's row
	}
}
