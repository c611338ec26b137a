package jobs

import (
	"context"
	"fmt"
	"time"
)

// Counts are how many jobs the queue holds in each state, and how many
// attempts failed recently (the admin console's overview).
type Counts struct {
	Available int64 `json:"available"`
	Running   int64 `json:"running"`
	Retryable int64 `json:"retryable"`
	Scheduled int64 `json:"scheduled"`
	Discarded int64 `json:"discarded"`
	Cancelled int64 `json:"cancelled"`
	Completed int64 `json:"completed"`
	// FailuresLastHour counts the failed attempts (River's errors of a
	// job, one per failed attempt) since the time Counts was given.
	FailuresLastHour int64 `json:"failures_last_hour"`
}

// Counts counts the jobs by state and the attempts that failed since.
func (q *Queue) Counts(ctx context.Context, since time.Time) (Counts, error) {
	var c Counts
	byState := map[string]*int64{"available": &c.Available, "running": &c.Running, "retryable": &c.Retryable,
		"scheduled": &c.Scheduled, "discarded": &c.Discarded, "cancelled": &c.Cancelled, "completed": &c.Completed}
	rows, err := q.cfg.Pool.Query(ctx, `SELECT state::text, count(*) FROM abe.river_job GROUP BY 1`)
	if err != nil {
		return c, fmt.Errorf("count jobs by state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return c, fmt.Errorf("count jobs by state: %w", err)
		}
		if p := byState[state]; p != nil {
			*p = n
		}
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("count jobs by state: %w", err)
	}
	// A job attempted before since cannot have failed after it.
	err = q.cfg.Pool.QueryRow(ctx, `SELECT count(*) FROM abe.river_job j, unnest(j.errors) e
		WHERE j.attempted_at >= $1 AND (e->>'at')::timestamptz >= $1`, since).Scan(&c.FailuresLastHour)
	if err != nil {
		return c, fmt.Errorf("count failed attempts: %w", err)
	}
	return c, nil
}
