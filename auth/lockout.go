package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/internal/httpx"
)

// attemptState is what the login attempts of one email and one IP say.
type attemptState struct {
	lockFailures  int // failures of the email within the lockout window
	delayFailures int // failures of the email within the delay window
	lastFailure   *time.Time
	ipFailures    int // distinct emails that failed from the IP within the delay window
	ipLast        *time.Time
	lockedUntil   *time.Time
}

// attemptsQuery reads the counters. Failures of an email count since its
// last successful login. From an IP, the distinct emails that failed
// count: one person's typos are the account's business, many accounts
// failing from one address is what an IP throttle is for. They do not
// reset, or an attacker could clear them with an account of its own.
const attemptsQuery = `
WITH last_ok AS (
  SELECT coalesce(max(at), '-infinity'::timestamptz) AS t FROM abe.login_attempts WHERE email = $1 AND succeeded
)
SELECT
  (SELECT count(*) FROM abe.login_attempts a, last_ok WHERE a.email = $1 AND NOT a.succeeded AND a.at > last_ok.t AND a.at > $3),
  (SELECT count(*) FROM abe.login_attempts a, last_ok WHERE a.email = $1 AND NOT a.succeeded AND a.at > last_ok.t AND a.at > $4),
  (SELECT max(a.at) FROM abe.login_attempts a, last_ok WHERE a.email = $1 AND NOT a.succeeded AND a.at > last_ok.t AND a.at > least($3, $4)),
  (SELECT count(DISTINCT email) FROM abe.login_attempts WHERE ip = $2 AND NOT succeeded AND at > $4),
  (SELECT max(at) FROM abe.login_attempts WHERE ip = $2 AND NOT succeeded AND at > $4),
  (SELECT locked_until FROM abe.login_locks WHERE email = $1)`

func (s *Service) attemptArgs(email, ip string) []any {
	l := s.cfg.Lockout
	now := s.now()
	return []any{email, ip, now.Add(-time.Duration(l.Window)), now.Add(-time.Duration(l.DelayWindow))}
}

func (st *attemptState) dest() []any {
	return []any{&st.lockFailures, &st.delayFailures, &st.lastFailure, &st.ipFailures, &st.ipLast, &st.lockedUntil}
}

// loginState reads the attempt counters and the account in one round
// trip.
func (s *Service) loginState(ctx context.Context, email, ip string) (attemptState, *User, error) {
	var st attemptState
	var u *User
	var b pgx.Batch
	b.Queue(attemptsQuery, s.attemptArgs(email, ip)...).QueryRow(func(row pgx.Row) error {
		return row.Scan(st.dest()...)
	})
	b.Queue(`SELECT `+userColumns+` FROM abe.users u WHERE lower(u.email) = $1`, email).QueryRow(func(row pgx.Row) error {
		var err error
		u, err = scanUser(row)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
	if err := s.db.SendBatch(ctx, &b).Close(); err != nil {
		return st, nil, fmt.Errorf("read login state: %w", err)
	}
	return st, u, nil
}

// delayFor is how long to wait after n failures: base x 2^(n-1), capped.
func (s *Service) delayFor(n int) time.Duration {
	l := s.cfg.Lockout
	if n <= 0 {
		return 0
	}
	d := time.Duration(l.DelayBase) * time.Duration(math.Pow(2, float64(min(n-1, 30))))
	return min(d, time.Duration(l.DelayMax))
}

// throttled answers an attempt that comes too early, before the password
// is checked: the account is locked, or the progressive delay of the
// email or, past auth.lockout.ip_threshold, of the IP has not passed.
// Emails without an account are counted and answered alike, so the
// answer tells nothing about them.
func (s *Service) throttled(st attemptState) error {
	now := s.now()
	if st.lockedUntil != nil && now.Before(*st.lockedUntil) {
		wait := st.lockedUntil.Sub(now)
		return errTooMany(wait, httpx.CodeAccountLocked, fmt.Sprintf("too many failed attempts: login to this account is locked; try again in %s, or ask an administrator to unlock it", humanDuration(wait)))
	}
	var wait time.Duration
	if st.lastFailure != nil && st.delayFailures > 0 {
		wait = max(wait, st.lastFailure.Add(s.delayFor(st.delayFailures)).Sub(now))
	}
	if past := st.ipFailures - s.cfg.Lockout.IPThreshold + 1; st.ipLast != nil && past > 0 {
		wait = max(wait, st.ipLast.Add(s.delayFor(past)).Sub(now))
	}
	if wait > 0 {
		return errTooMany(wait, httpx.CodeRateLimited, fmt.Sprintf("too many failed attempts: wait %s before trying again", humanDuration(wait)))
	}
	return nil
}

// lock locks logins to an email for the lockout duration.
func (s *Service) lock(ctx context.Context, db dbtx, email string) (time.Time, error) {
	now := s.now()
	until := now.Add(time.Duration(s.cfg.Lockout.Duration))
	_, err := db.Exec(ctx, `INSERT INTO abe.login_locks (email, locked_at, locked_until) VALUES ($1, $2, $3)
		ON CONFLICT (email) DO UPDATE SET locked_at = $2, locked_until = $3`, email, now, until)
	if err != nil {
		return until, fmt.Errorf("lock %s: %w", email, err)
	}
	return until, nil
}

func (s *Service) recordAttempt(ctx context.Context, db dbtx, email, ip string, ok bool) error {
	_, err := db.Exec(ctx, `INSERT INTO abe.login_attempts (email, ip, succeeded, at) VALUES ($1, $2, $3, $4)`, email, ip, ok, s.now())
	if err != nil {
		return fmt.Errorf("record login attempt: %w", err)
	}
	return nil
}

// UnlockUser is Unlock for callers outside a request, such as the CLI.
func (s *Service) UnlockUser(ctx context.Context, userID, by string) error {
	return s.unlock(ctx, client{}, userID, by)
}

// unlock clears the failed attempts an account's lock is computed from,
// so it really is unlocked, and records who did it.
func (s *Service) unlock(ctx context.Context, c client, userID, by string) error {
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	return inTxPool(ctx, s, func(db dbtx) error {
		email := normalizeEmail(u.Email)
		tag, err := db.Exec(ctx, `DELETE FROM abe.login_attempts WHERE email = $1 AND NOT succeeded`, email)
		if err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		if _, err := db.Exec(ctx, `DELETE FROM abe.login_locks WHERE email = $1`, email); err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		return s.record(ctx, db, c, u.ID, EventUnlocked, map[string]any{"by": by, "actor": by, "cleared_attempts": tag.RowsAffected()})
	})
}

func humanDuration(d time.Duration) string {
	switch {
	case d <= time.Second:
		return "1 second"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int(math.Ceil(d.Seconds())))
	case d < 2*time.Minute:
		return "1 minute"
	default:
		return fmt.Sprintf("%d minutes", int(math.Ceil(d.Minutes())))
	}
}
