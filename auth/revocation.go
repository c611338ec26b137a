package auth

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// revocations is the in-memory view of abe.revocations: revoked access
// tokens (jti) and sessions (refresh families), each until the last access
// token it could cover expires. Checking a token is two map lookups; the
// database is the shared truth, and NOTIFY abe_revocations tells every
// node to read what is new.
type revocations struct {
	db  *pgxpool.Pool
	now func() time.Time
	log *slog.Logger

	mu     sync.RWMutex
	jti    map[string]time.Time
	sid    map[string]time.Time
	lastID int64
	// reloaded signals each completed load, for tests.
	reloaded chan struct{}
}

func newRevocations(db *pgxpool.Pool, now func() time.Time, log *slog.Logger) *revocations {
	return &revocations{db: db, now: now, log: log, jti: map[string]time.Time{}, sid: map[string]time.Time{},
		reloaded: make(chan struct{}, 1)}
}

// has reports whether the token jti, or its session sid, is revoked.
func (r *revocations) has(jti, sid string) bool {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	if exp, ok := r.jti[jti]; ok && now.Before(exp) {
		return true
	}
	if exp, ok := r.sid[sid]; ok && now.Before(exp) {
		return true
	}
	return false
}

// add records revocations made by this node at once, without waiting for
// the notification to come back.
func (r *revocations) add(jti, sid string, exp time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if jti != "" {
		r.jti[jti] = exp
	}
	if sid != "" {
		r.sid[sid] = exp
	}
}

// load reads the revocations added since the last load and forgets the
// expired ones.
func (r *revocations) load(ctx context.Context) error {
	r.mu.RLock()
	last := r.lastID
	r.mu.RUnlock()
	rows, err := r.db.Query(ctx, `SELECT id, coalesce(jti::text, ''), coalesce(family_id::text, ''), expires_at
		FROM abe.revocations WHERE id > $1 AND expires_at > $2 ORDER BY id`, last, r.now())
	if err != nil {
		return err
	}
	type rev struct {
		id       int64
		jti, sid string
		exp      time.Time
	}
	revs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rev, error) {
		var v rev
		err := row.Scan(&v.id, &v.jti, &v.sid, &v.exp)
		return v, err
	})
	if err != nil {
		return err
	}
	now := r.now()
	r.mu.Lock()
	for _, v := range revs {
		if v.jti != "" {
			r.jti[v.jti] = v.exp
		}
		if v.sid != "" {
			r.sid[v.sid] = v.exp
		}
		r.lastID = max(r.lastID, v.id)
	}
	for k, exp := range r.jti {
		if !now.Before(exp) {
			delete(r.jti, k)
		}
	}
	for k, exp := range r.sid {
		if !now.Before(exp) {
			delete(r.sid, k)
		}
	}
	r.mu.Unlock()
	select {
	case r.reloaded <- struct{}{}:
	default:
	}
	return nil
}
