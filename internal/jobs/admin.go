package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/abe-stack/abe/internal/httpx"
)

// States are the states a job can be in, as River names them.
var States = []string{"available", "cancelled", "completed", "discarded", "pending", "retryable", "running", "scheduled"}

// Job is a job as admins see it. Args show what a job is (a mail's
// recipients and subject, a webhook's event), never what it sealed.
type Job struct {
	ID          int64           `json:"id"`
	Kind        string          `json:"kind"`
	State       string          `json:"state"`
	Queue       string          `json:"queue"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	Args        json.RawMessage `json:"args"`
	Errors      []AttemptError  `json:"errors"`
	CreatedAt   time.Time       `json:"created_at"`
	ScheduledAt time.Time       `json:"scheduled_at"`
	AttemptedAt *time.Time      `json:"attempted_at"`
	FinalizedAt *time.Time      `json:"finalized_at"`
}

// AttemptError is why one attempt failed.
type AttemptError struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
}

func jobOf(r *rivertype.JobRow) Job {
	j := Job{ID: r.ID, Kind: r.Kind, State: string(r.State), Queue: r.Queue, Attempt: r.Attempt, MaxAttempts: r.MaxAttempts,
		Args: r.EncodedArgs, CreatedAt: r.CreatedAt, ScheduledAt: r.ScheduledAt, AttemptedAt: r.AttemptedAt, FinalizedAt: r.FinalizedAt,
		Errors: []AttemptError{}}
	// What a job seals (a mail's body, a webhook's record) is not for
	// everyone who manages jobs; the rest of its args say what it is.
	var args map[string]json.RawMessage
	if json.Unmarshal(r.EncodedArgs, &args) == nil {
		if _, ok := args["sealed"]; ok {
			delete(args, "sealed")
			j.Args, _ = json.Marshal(args) //nolint:errcheck // raw values that were JSON
		}
	}
	for _, e := range r.Errors {
		j.Errors = append(j.Errors, AttemptError{At: e.At, Attempt: e.Attempt, Error: e.Error})
	}
	return j
}

// ListParams select jobs, newest first.
type ListParams struct {
	States []string
	Kinds  []string
	Limit  int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

// ErrBadCursor is a cursor that no page gave.
var ErrBadCursor = errors.New("the cursor is not one a page of jobs gave")

// List returns a page of jobs and the cursor of the next ("" at the end).
func (q *Queue) List(ctx context.Context, p ListParams) ([]Job, string, error) {
	lp := river.NewJobListParams().OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(p.Limit + 1)
	if len(p.States) > 0 {
		var st []rivertype.JobState
		for _, s := range p.States {
			st = append(st, rivertype.JobState(s))
		}
		lp = lp.States(st...)
	}
	if len(p.Kinds) > 0 {
		lp = lp.Kinds(p.Kinds...)
	}
	if p.Cursor != "" {
		var c river.JobListCursor
		if err := c.UnmarshalText([]byte(p.Cursor)); err != nil {
			return nil, "", ErrBadCursor
		}
		lp = lp.After(&c)
	}
	res, err := q.Client().JobList(ctx, lp)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	rows := res.Jobs
	next := ""
	if len(rows) > p.Limit {
		rows = rows[:p.Limit]
		text, err := river.JobListCursorFromJob(rows[len(rows)-1]).MarshalText()
		if err != nil {
			return nil, "", fmt.Errorf("list jobs: %w", err)
		}
		next = string(text)
	}
	out := make([]Job, 0, len(rows))
	for _, r := range rows {
		out = append(out, jobOf(r))
	}
	return out, next, nil
}

// ErrNotFound is a job id that names no job.
var ErrNotFound = errors.New("no such job")

// Retry makes a job run again now: a discarded, cancelled or completed
// one too.
func (q *Queue) Retry(ctx context.Context, id int64) (Job, error) {
	r, err := q.Client().JobRetry(ctx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		return Job{}, ErrNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("retry job %d: %w", id, err)
	}
	return jobOf(r), nil
}

// Cancel stops a job: one waiting will not run, one running is asked to
// stop. A finished job stays as it is.
func (q *Queue) Cancel(ctx context.Context, id int64) (Job, error) {
	r, err := q.Client().JobCancel(ctx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		return Job{}, ErrNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("cancel job %d: %w", id, err)
	}
	return jobOf(r), nil
}

// Routes mounts /api/admin/jobs behind guard (the permission check).
func (q *Queue) Routes(r chi.Router, guard func(http.Handler) http.Handler) {
	r.Route("/api/admin/jobs", func(r chi.Router) {
		r.Use(guard)
		r.Get("/", q.handleList)
		r.Post("/{id}/retry", q.handleAction(q.Retry))
		r.Post("/{id}/cancel", q.handleAction(q.Cancel))
	})
}

func (q *Queue) handleList(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	p := ListParams{Limit: 50, Cursor: v.Get("cursor")}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			httpx.Error(w, r, http.StatusBadRequest, "limit must be a whole number from 1 to 500")
			return
		}
		p.Limit = n
	}
	for _, s := range splitList(v.Get("state")) {
		if !slices.Contains(States, s) {
			httpx.Error(w, r, http.StatusBadRequest, fmt.Sprintf("state %q is not one of %s", s, strings.Join(States, ", ")))
			return
		}
		p.States = append(p.States, s)
	}
	p.Kinds = splitList(v.Get("kind"))
	jobs, next, err := q.List(r.Context(), p)
	switch {
	case errors.Is(err, ErrBadCursor):
		httpx.Error(w, r, http.StatusBadRequest, err.Error())
	case httpx.IsUnavailable(err):
		httpx.WriteProblem(w, r, httpx.Unavailable())
	case err != nil:
		q.log.ErrorContext(r.Context(), "list jobs", "error", err.Error())
		httpx.Error(w, r, http.StatusInternalServerError, "the jobs could not be listed; the error is logged")
	default:
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": jobs, "next_cursor": next})
	}
}

func (q *Queue) handleAction(do func(context.Context, int64) (Job, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
		if err != nil || id < 1 {
			httpx.Error(w, r, http.StatusNotFound, "no such job")
			return
		}
		j, err := do(r.Context(), id)
		switch {
		case errors.Is(err, ErrNotFound):
			httpx.Error(w, r, http.StatusNotFound, "no such job")
		case httpx.IsUnavailable(err):
			httpx.WriteProblem(w, r, httpx.Unavailable())
		case err != nil:
			q.log.ErrorContext(r.Context(), "job action", "error", err.Error())
			httpx.Error(w, r, http.StatusInternalServerError, "the job could not be changed; the error is logged")
		default:
			httpx.WriteJSON(w, http.StatusOK, j)
		}
	}
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Collector reports the number of jobs in each state at each scrape.
func (q *Queue) Collector() prometheus.Collector { return &stateCollector{q: q} }

var jobsDesc = prometheus.NewDesc("abe_jobs", "Jobs in the queue by state and kind.", []string{"state", "kind"}, nil)

type stateCollector struct{ q *Queue }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := c.q.cfg.Pool.Query(ctx, `SELECT state::text, kind, count(*) FROM abe.river_job GROUP BY 1, 2`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var state, kind string
		var n int64
		if err := rows.Scan(&state, &kind, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(jobsDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), state, kind)
	}
}
