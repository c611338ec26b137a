package auth

import (
	"context"
	"fmt"
	"time"
)

// Prune deletes what has outlived its use: refresh tokens past expiry
// (a rotated token matters for reuse detection only until it expires),
// revocations of access tokens that have expired anyway, login attempts
// older than every window that counts them, spent or expired email links
// and MFA challenges. The job queue runs it periodically.
func (s *Service) Prune(ctx context.Context) error {
	now := s.now()
	l := s.cfg.Lockout
	attempts := now.Add(-max(time.Duration(l.Window), time.Duration(l.DelayWindow), time.Duration(l.Duration)))
	for _, q := range []struct{ what, sql string }{
		{"refresh tokens", `DELETE FROM abe.refresh_tokens WHERE expires_at < $1`},
		{"revocations", `DELETE FROM abe.revocations WHERE expires_at < $1`},
		{"email links", `DELETE FROM abe.email_tokens WHERE expires_at < $1`},
		{"MFA challenges", `DELETE FROM abe.mfa_challenges WHERE expires_at < $1`},
		{"lockouts", `DELETE FROM abe.login_locks WHERE locked_until < $1`},
	} {
		if _, err := s.db.Exec(ctx, q.sql, now); err != nil {
			return fmt.Errorf("prune %s: %w", q.what, err)
		}
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM abe.login_attempts WHERE at < $1`, attempts); err != nil {
		return fmt.Errorf("prune login attempts: %w", err)
	}
	return nil
}
