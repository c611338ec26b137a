package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/internal/httpx"
)

// TokenAnswer is what login and refresh answer.
type TokenAnswer struct {
	User         *User  `json:"user"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	// Challenge, when set, is the whole answer: the login needs a second
	// factor before tokens are given.
	Challenge *MFAChallenge `json:"-"`
}

func (s *Service) answer(u *User, refresh, family string, now time.Time, mfa bool) (*TokenAnswer, error) {
	access, exp, err := s.issueAccess(u, family, now, mfa)
	if err != nil {
		return nil, err
	}
	return &TokenAnswer{User: u, AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", ExpiresIn: int(exp.Sub(now).Seconds())}, nil
}

// startSession begins a refresh token family for u: one login, one family.
// mfa records that the login passed a second factor, for every access
// token of the session.
func (s *Service) startSession(ctx context.Context, db dbtx, u *User, c client, mfa bool) (*TokenAnswer, error) {
	now := s.now()
	family := uuid.Must(uuid.NewV7()).String()
	token, hash := newOpaqueToken()
	_, err := db.Exec(ctx, `INSERT INTO abe.refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at, ip, user_agent, mfa)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		uuid.Must(uuid.NewV7()), family, u.ID, hash, now, now.Add(s.refreshTTL), c.ip, truncate(c.userAgent, maxUserAgent), mfa)
	if err != nil {
		return nil, fmt.Errorf("start session: %w", err)
	}
	return s.answer(u, token, family, now, mfa)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// refreshRow is a stored refresh token.
type refreshRow struct {
	id, family, user string
	expiresAt        time.Time
	usedAt           *time.Time
	replacedBy       *string
	sealed           []byte
	revokedAt        *time.Time
	mfa              bool
}

func scanRefresh(row pgx.Row) (*refreshRow, error) {
	var r refreshRow
	err := row.Scan(&r.id, &r.family, &r.user, &r.expiresAt, &r.usedAt, &r.replacedBy, &r.sealed, &r.revokedAt, &r.mfa)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return &r, err
}

const refreshColumns = `id::text, family_id::text, user_id::text, expires_at, used_at, replaced_by::text, successor_sealed, revoked_at, mfa`

var errRefreshInvalid = errUnauthenticated(httpx.CodeInvalidRefreshToken, "the refresh token is invalid or has expired; log in again")

// Refresh rotates a refresh token: the presented token is kept as used and
// a new one replaces it. A used token presented again within the grace
// window (a client retrying a lost answer, or two tabs racing) gets the
// family's current token, so the family never branches; after the window
// it is taken as stolen: the whole family is revoked, with its access
// tokens, and a token_reuse event is recorded.
func (s *Service) Refresh(ctx context.Context, token string, c client) (*TokenAnswer, error) {
	if token == "" || len(token) > 128 {
		return nil, errRefreshInvalid
	}
	var answer *TokenAnswer
	var refusal error
	err := inTxPool(ctx, s, func(db dbtx) error {
		now := s.now()
		// FOR UPDATE serialises concurrent refreshes of one token.
		r, err := scanRefresh(db.QueryRow(ctx, `SELECT `+refreshColumns+` FROM abe.refresh_tokens WHERE token_hash = $1 FOR UPDATE`, hashToken(token)))
		if err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		switch {
		case r == nil, r.revokedAt != nil, !now.Before(r.expiresAt):
			refusal = errRefreshInvalid
			return nil
		case r.usedAt != nil && now.Sub(*r.usedAt) > s.grace:
			refusal = errUnauthenticated(httpx.CodeTokenReused, "this refresh token was already used, so it may have been stolen: the session has been ended; log in again")
			if err := s.revokeFamilies(ctx, db, []string{r.family}); err != nil {
				return err
			}
			return s.record(ctx, db, c, r.user, EventTokenReuse, map[string]any{"family": r.family, "used_at": r.usedAt})
		}
		u, err := s.userByID(ctx, db, r.user)
		if err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		if r.usedAt != nil {
			answer, err = s.currentOfFamily(ctx, db, r, u, now)
			var ae *apiError
			if errors.As(err, &ae) {
				refusal, err = ae, nil
			}
			return err
		}
		next, hash := newOpaqueToken()
		nextID := uuid.Must(uuid.NewV7()).String()
		if _, err := db.Exec(ctx, `INSERT INTO abe.refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at, ip, user_agent, mfa)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, nextID, r.family, r.user, hash, now, now.Add(s.refreshTTL), c.ip, truncate(c.userAgent, maxUserAgent), r.mfa); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		if _, err := db.Exec(ctx, `UPDATE abe.refresh_tokens SET used_at = $2, replaced_by = $3, successor_sealed = $4 WHERE id = $1`,
			r.id, now, nextID, s.sealToken(next)); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		answer, err = s.answer(u, next, r.family, now, r.mfa)
		return err
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	return answer, nil
}

// currentOfFamily follows a used token to the family's current token and
// answers with it again.
// The refusal, when there is one, is an *apiError.
func (s *Service) currentOfFamily(ctx context.Context, db dbtx, r *refreshRow, u *User, now time.Time) (*TokenAnswer, error) {
	prev := r
	for hops := 0; prev.replacedBy != nil && hops < 100; hops++ {
		next, err := scanRefresh(db.QueryRow(ctx, `SELECT `+refreshColumns+` FROM abe.refresh_tokens WHERE id = $1`, *prev.replacedBy))
		if err != nil {
			return nil, fmt.Errorf("refresh: %w", err)
		}
		if next == nil || next.revokedAt != nil || !now.Before(next.expiresAt) {
			return nil, errRefreshInvalid
		}
		if next.usedAt == nil {
			token, err := s.unsealToken(prev.sealed)
			if err != nil {
				// Sealed under another auth.secret: the retry cannot be
				// answered, but it is no theft either.
				return nil, errRefreshInvalid
			}
			return s.answer(u, token, r.family, now, r.mfa)
		}
		prev = next
	}
	return nil, errRefreshInvalid
}

// revokeFamilies ends sessions: their refresh tokens stop working, and
// their access tokens are refused on every node until they would have
// expired anyway.
func (s *Service) revokeFamilies(ctx context.Context, db dbtx, families []string) error {
	if len(families) == 0 {
		return nil
	}
	now := s.now()
	until := now.Add(s.accessTTL)
	if _, err := db.Exec(ctx, `UPDATE abe.refresh_tokens SET revoked_at = $2 WHERE family_id = ANY($1) AND revoked_at IS NULL`, families, now); err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO abe.revocations (family_id, expires_at) SELECT f, $2 FROM unnest($1::uuid[]) AS f`, families, until); err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	for _, f := range families {
		s.revoked.add("", f, until)
	}
	note(db, busRevocations, "")
	return nil
}

// revokeUserSessions ends every session of a user but keep (which may be
// "").
func (s *Service) revokeUserSessions(ctx context.Context, db dbtx, userID, keep string) (int, error) {
	rows, err := db.Query(ctx, `SELECT DISTINCT family_id::text FROM abe.refresh_tokens
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND family_id::text <> $3`, userID, s.now(), keep)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	families, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	return len(families), s.revokeFamilies(ctx, db, families)
}

// revokeAccess denies one access token until it expires.
func (s *Service) revokeAccess(ctx context.Context, db dbtx, p *Principal) error {
	if _, err := db.Exec(ctx, `INSERT INTO abe.revocations (jti, expires_at) VALUES ($1, $2)`, p.TokenID, p.ExpiresAt); err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	s.revoked.add(p.TokenID, "", p.ExpiresAt)
	note(db, busRevocations, "")
	return nil
}

// Logout ends the session of a refresh token and, when the request carried
// one, revokes its access token. Unknown tokens are ignored: logging out
// twice is not an error.
func (s *Service) Logout(ctx context.Context, refresh string, p *Principal, c client) error {
	return inTxPool(ctx, s, func(db dbtx) error {
		var families []string
		userID := ""
		if refresh != "" && len(refresh) <= 128 {
			r, err := scanRefresh(db.QueryRow(ctx, `SELECT `+refreshColumns+` FROM abe.refresh_tokens WHERE token_hash = $1`, hashToken(refresh)))
			if err != nil {
				return fmt.Errorf("logout: %w", err)
			}
			// A refresh token of another user cannot end their session.
			if r != nil && (p == nil || p.UserID == r.user) {
				families, userID = append(families, r.family), r.user
			}
		}
		if p != nil {
			families, userID = append(families, p.SessionID), p.UserID
			if err := s.revokeAccess(ctx, db, p); err != nil {
				return err
			}
		}
		if err := s.revokeFamilies(ctx, db, families); err != nil {
			return err
		}
		if userID == "" {
			return nil
		}
		return s.record(ctx, db, c, userID, EventLogout, nil)
	})
}

// LogoutAll ends every session of the principal's user.
func (s *Service) LogoutAll(ctx context.Context, p *Principal, c client) error {
	return inTxPool(ctx, s, func(db dbtx) error {
		n, err := s.revokeUserSessions(ctx, db, p.UserID, "")
		if err != nil {
			return err
		}
		if err := s.revokeAccess(ctx, db, p); err != nil {
			return err
		}
		return s.record(ctx, db, c, p.UserID, EventLogoutAll, map[string]any{"sessions": n})
	})
}
