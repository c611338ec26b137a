// Package jobs is abe's background job queue: River, in the app's
// database. It runs the mail it is given and the periodic tasks the other
// packages register (pruning, file cleanup), retries failures with
// backoff, keeps what failed for good (discarded) for admins to see and
// retry, and lets running jobs finish on shutdown.
package jobs

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/abe-stack/abe/internal/mail"
	"github.com/abe-stack/abe/schema"
)

// Schema is where River's tables live: with abe's own, apart from the
// collections.
const Schema = "abe"

// Config is what the queue needs.
type Config struct {
	Pool     *pgxpool.Pool
	Settings schema.Jobs
	// Mailer sends the mail jobs.
	Mailer mail.Mailer
	// SealKey (32 bytes) encrypts mail bodies while they wait in the
	// table: they hold password reset and verification links.
	SealKey []byte
	Logger  *slog.Logger
	// RetryPolicy replaces River's backoff (attempt^4 seconds); tests
	// use one that does not wait.
	RetryPolicy river.ClientRetryPolicy
}

// Queue is the job queue of one node.
type Queue struct {
	cfg     Config
	log     *slog.Logger
	seal    cipher.AEAD
	workers *river.Workers

	mu       sync.Mutex
	tasks    map[string]TaskFunc
	periodic []*river.PeriodicJob
	client   *river.Client[pgx.Tx]
	started  bool
}

// TaskFunc is a periodic task, run as a job.
type TaskFunc func(ctx context.Context) error

// New prepares a queue; Start runs it. Until then it can take tasks and
// insert jobs.
func New(cfg Config) (*Queue, error) {
	if len(cfg.SealKey) != 32 {
		return nil, errors.New("jobs: the seal key must be 32 bytes")
	}
	block, err := aes.NewCipher(cfg.SealKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &Queue{cfg: cfg, log: log, seal: aead, workers: river.NewWorkers(), tasks: map[string]TaskFunc{}}
	river.AddWorker(q.workers, &mailWorker{q: q})
	river.AddWorker(q.workers, &taskWorker{q: q})
	q.client, err = q.newClient(false)
	if err != nil {
		return nil, err
	}
	return q, nil
}

// newClient makes a River client; working clients fetch and run jobs,
// the others only insert and manage them.
func (q *Queue) newClient(working bool) (*river.Client[pgx.Tx], error) {
	s := q.cfg.Settings
	rc := &river.Config{
		Schema:                      Schema,
		Logger:                      q.log.With(slog.String("component", "jobs")),
		MaxAttempts:                 s.MaxAttempts,
		JobTimeout:                  time.Duration(s.Timeout),
		RescueStuckJobsAfter:        time.Duration(s.RescueAfter),
		CompletedJobRetentionPeriod: time.Duration(s.CompletedRetention),
		DiscardedJobRetentionPeriod: time.Duration(s.DiscardedRetention),
		Workers:                     q.workers,
		RetryPolicy:                 q.cfg.RetryPolicy,
	}
	if working {
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: s.Workers}}
		rc.PeriodicJobs = q.periodic
	}
	c, err := river.NewClient(riverpgxv5.New(q.cfg.Pool), rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: make the River client: %w", err)
	}
	return c, nil
}

// Every runs fn as a job every interval, on one node of the deployment at
// a time (River's leader), starting soon after start (or, for a task
// registered on a running queue, soon after it is registered). name
// identifies the task; it must be registered under the same name on every
// node, once.
func (q *Queue) Every(name string, interval time.Duration, fn TaskFunc) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.tasks[name]; ok {
		return fmt.Errorf("jobs: task %s is registered twice", name)
	}
	job := river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) {
			return TaskArgs{Name: name}, &river.InsertOpts{MaxAttempts: 3}
		}, &river.PeriodicJobOpts{ID: name, RunOnStart: true})
	if q.started {
		// The task worker is registered already: the running client only
		// needs the schedule.
		if _, err := q.client.PeriodicJobs().AddSafely(job); err != nil {
			return fmt.Errorf("jobs: task %s: %w", name, err)
		}
	}
	q.tasks[name] = fn
	q.periodic = append(q.periodic, job)
	return nil
}

// AddWorker registers the worker of another package's job kind. It must
// be called before Start, on every node, as the queue cannot otherwise
// tell an unknown kind from one whose worker is not yet registered.
func AddWorker[T river.JobArgs](q *Queue, w river.Worker[T]) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		var args T
		return fmt.Errorf("jobs: worker of %s registered after the queue started", args.Kind())
	}
	if err := river.AddWorkerSafely(q.workers, w); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	return nil
}

// Seal encrypts plain for a job's args, bound to label (what it is): what
// waits in the table may be read by more people (backups, admins listing
// jobs) than it is meant for. A field named "sealed" is never shown in
// the admin job list.
func (q *Queue) Seal(plain []byte, label string) []byte {
	nonce := make([]byte, q.seal.NonceSize())
	_, _ = rand.Read(nonce) //nolint:errcheck // crypto/rand does not fail
	return q.seal.Seal(nonce, nonce, plain, []byte(label))
}

// ErrUnsealable is sealed data that does not open with this node's key
// (auth.secret changed) or was damaged: no retry helps.
var ErrUnsealable = errors.New("the sealed data does not open with this node's key")

// Open decrypts what Seal sealed under the same label.
func (q *Queue) Open(sealed []byte, label string) ([]byte, error) {
	n := q.seal.NonceSize()
	if len(sealed) < n {
		return nil, ErrUnsealable
	}
	plain, err := q.seal.Open(nil, sealed[:n], sealed[n:], []byte(label))
	if err != nil {
		return nil, ErrUnsealable
	}
	return plain, nil
}

// Start runs the queue's workers until Stop.
func (q *Queue) Start(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		return nil
	}
	c, err := q.newClient(true)
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	q.client, q.started = c, true
	return nil
}

// Stop lets running jobs finish until ctx is done, then cancels them;
// River puts a cancelled job back to be retried, so none is lost.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	c, started := q.client, q.started
	q.mu.Unlock()
	if !started {
		return nil
	}
	err := c.Stop(ctx)
	if err == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.StopAndCancel(cctx); err != nil {
		return fmt.Errorf("jobs: stop: %w", err)
	}
	return nil
}

// Client is the River client, for listing and managing jobs.
func (q *Queue) Client() *river.Client[pgx.Tx] {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.client
}

// Check reports whether the queue's tables answer, for /readyz.
func (q *Queue) Check(ctx context.Context) error {
	var n int
	return q.cfg.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM abe.river_job LIMIT 1) j`).Scan(&n)
}

// Migrations are River's migrations as abe system migrations (component
// jobs), so `abe migrate` makes the queue's tables with the rest, in
// schema abe. River's own bookkeeping (river_migration) is kept too.
func Migrations() []schema.Migration {
	m, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return nil // only for a driver River does not know
	}
	var out []schema.Migration
	for _, v := range m.AllVersions() {
		sql := strings.ReplaceAll(v.SQLUp, "/* TEMPLATE: schema */", Schema+".")
		if v.Version < 5 {
			sql += fmt.Sprintf("\nINSERT INTO %s.river_migration (version) VALUES (%d);\n", Schema, v.Version)
		} else {
			sql += fmt.Sprintf("\nINSERT INTO %s.river_migration (line, version) VALUES ('main', %d);\n", Schema, v.Version)
		}
		out = append(out, schema.Migration{Component: "jobs", Version: v.Version, Name: "River: " + strings.ReplaceAll(v.Name, "_", " "), SQL: sql, OwnTx: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// MailArgs is a mail job. The message is sealed: the table may be read by
// more people (backups, admins) than the mail's recipient.
type MailArgs struct {
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Sealed  []byte   `json:"sealed"`
}

// Kind implements river.JobArgs.
func (MailArgs) Kind() string { return "mail.send" }

// Send queues m; it is sent by the first node to get to it, retried with
// backoff while every provider fails.
func (q *Queue) Send(ctx context.Context, m *mail.Message) error {
	args, err := q.mailArgs(m)
	if err != nil {
		return err
	}
	if _, err := q.Client().Insert(ctx, args, nil); err != nil {
		return fmt.Errorf("queue mail to %s: %w", strings.Join(m.To, ", "), err)
	}
	return nil
}

// SendTx queues m in tx: the mail goes if and only if tx commits.
func (q *Queue) SendTx(ctx context.Context, tx pgx.Tx, m *mail.Message) error {
	args, err := q.mailArgs(m)
	if err != nil {
		return err
	}
	if _, err := q.Client().InsertTx(ctx, tx, args, nil); err != nil {
		return fmt.Errorf("queue mail to %s: %w", strings.Join(m.To, ", "), err)
	}
	return nil
}

func (q *Queue) mailArgs(m *mail.Message) (MailArgs, error) {
	plain, err := json.Marshal(m)
	if err != nil {
		return MailArgs{}, fmt.Errorf("encode mail: %w", err)
	}
	nonce := make([]byte, q.seal.NonceSize())
	_, _ = rand.Read(nonce) //nolint:errcheck // crypto/rand does not fail
	return MailArgs{To: m.To, Subject: m.Subject, Sealed: q.seal.Seal(nonce, nonce, plain, []byte("abe mail"))}, nil
}

type mailWorker struct {
	river.WorkerDefaults[MailArgs]
	q *Queue
}

func (w *mailWorker) Work(ctx context.Context, job *river.Job[MailArgs]) error {
	n := w.q.seal.NonceSize()
	s := job.Args.Sealed
	if len(s) < n {
		return river.JobCancel(errors.New("the sealed message is damaged"))
	}
	plain, err := w.q.seal.Open(nil, s[:n], s[n:], []byte("abe mail"))
	if err != nil {
		// Sealed under another key (auth.secret changed): no retry helps.
		return river.JobCancel(fmt.Errorf("the message does not open with this node's key: %w", err))
	}
	var m mail.Message
	if err := json.Unmarshal(plain, &m); err != nil {
		return river.JobCancel(fmt.Errorf("decode mail: %w", err))
	}
	return w.q.cfg.Mailer.Send(ctx, &m)
}

// TaskArgs is a run of a periodic task.
type TaskArgs struct {
	Name string `json:"name"`
}

// Kind implements river.JobArgs.
func (TaskArgs) Kind() string { return "task" }

type taskWorker struct {
	river.WorkerDefaults[TaskArgs]
	q *Queue
}

func (w *taskWorker) Work(ctx context.Context, job *river.Job[TaskArgs]) error {
	w.q.mu.Lock()
	fn := w.q.tasks[job.Args.Name]
	w.q.mu.Unlock()
	if fn == nil {
		// Another version of abe queued it; this one has no such task.
		return river.JobCancel(fmt.Errorf("no task %q on this node", job.Args.Name))
	}
	return fn(ctx)
}

// Pending is an unfinished job.
type Pending struct {
	ID          int64
	State       string
	ScheduledAt time.Time
}

// EarlierPending finds the first job of kind with an id below before,
// not finished (available, pending, retryable, running or scheduled),
// whose args contain match (JSON containment, served by River's index on
// args); nil when there is none. Jobs that must run in order (a webhook's
// deliveries for one record) wait for it.
func (q *Queue) EarlierPending(ctx context.Context, kind string, before int64, match map[string]string) (*Pending, error) {
	m, err := json.Marshal(match)
	if err != nil {
		return nil, fmt.Errorf("jobs: encode %v: %w", match, err)
	}
	var p Pending
	err = q.cfg.Pool.QueryRow(ctx, `SELECT id, state::text, scheduled_at FROM `+Schema+`.river_job
		WHERE kind = $1 AND args @> $2::jsonb AND id < $3
		  AND state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
		ORDER BY id LIMIT 1`, kind, string(m), before).Scan(&p.ID, &p.State, &p.ScheduledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: look for earlier %s jobs: %w", kind, err)
	}
	return &p, nil
}
