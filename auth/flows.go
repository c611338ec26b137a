package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/internal/mail"
)

// RegisterRequest is the body of POST /api/auth/register.
type RegisterRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// Register makes an account and sends a verification mail. It answers
// with tokens, unless auth.require_email_verification is on: then new and
// taken emails get the same answer (nil, nil), and the owner of a taken
// email gets a mail saying someone tried.
func (s *Service) Register(ctx context.Context, req RegisterRequest, c client) (*TokenAnswer, error) {
	if err := s.beforeRegister(ctx, &req, c); err != nil {
		return nil, err
	}
	if len(req.Name) > 200 {
		return nil, &FieldError{Field: "name", Message: "is longer than 200 characters"}
	}
	u, err := s.CreateUser(ctx, CreateUserOpts{Email: req.Email, Password: req.Password, Name: req.Name})
	if errors.Is(err, ErrEmailTaken) && s.cfg.RequireEmailVerification {
		if existing, err := s.UserByEmail(ctx, req.Email); err == nil {
			m, err := s.renderMail(kindAccountExists, existing.Email,
				mailData{Name: existing.Name, Email: existing.Email, Link: strings.ReplaceAll(s.cfg.Links.ResetPassword, "?token={token}", "")})
			if err != nil {
				return nil, err
			}
			s.outbox.enqueue(m)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var answer *TokenAnswer
	var m *mail.Message
	err = inTxPool(ctx, s, func(db dbtx) error {
		if err := s.record(ctx, db, c, u.ID, EventRegistered, nil); err != nil {
			return err
		}
		if m, err = s.verificationMail(ctx, db, u); err != nil {
			return err
		}
		if s.cfg.RequireEmailVerification {
			return nil
		}
		answer, err = s.startSession(ctx, db, u, c, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.outbox.enqueue(m)
	s.afterRegister(ctx, u, c)
	return answer, nil
}

// LoginRequest is the body of POST /api/auth/login.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Login checks a password, throttled per account and per IP. Unknown
// emails and wrong passwords take the same work and get the same answer.
func (s *Service) Login(ctx context.Context, req LoginRequest, c client) (*TokenAnswer, error) {
	email := normalizeEmail(req.Email)
	if email == "" || len(email) > 254 || req.Password == "" || len(req.Password) > 4*s.policy.MaxLength {
		return nil, errInvalidCredentials
	}
	st, u, err := s.loginState(ctx, email, c.ip)
	if err != nil {
		return nil, err
	}
	if err := s.throttled(st); err != nil {
		return nil, err
	}
	hash, userID := "", ""
	if u != nil {
		hash, userID = u.passwordHash, u.ID
	}
	ok, rehash, err := s.hasher.Verify(ctx, req.Password, hash)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if !ok {
		err := s.inBatch(ctx, func(db dbtx) error {
			if err := s.recordAttempt(ctx, db, email, c.ip, false); err != nil {
				return err
			}
			if err := s.record(ctx, db, c, userID, EventLoginFailed, map[string]any{"email": email}); err != nil {
				return err
			}
			if st.lockFailures+1 >= s.cfg.Lockout.MaxFailures {
				until, err := s.lock(ctx, db, email)
				if err != nil {
					return err
				}
				return s.record(ctx, db, c, userID, EventLockout, map[string]any{"email": email, "until": until})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials
	}
	if s.cfg.RequireEmailVerification && !u.EmailVerified {
		return nil, errCode(http.StatusForbidden, httpx.CodeEmailNotVerified, "verify your email before logging in: open the link we sent to %s, or ask for a new one", u.Email)
	}
	if err := s.beforeLogin(ctx, u, email, c); err != nil {
		return nil, err
	}
	var alert *mail.Message
	if !u.MFAEnabled {
		// Read before the batch, which cannot read: the login's own
		// session must not count as an earlier one.
		if alert, err = s.newDeviceAlert(ctx, s.db, u, c); err != nil {
			return nil, err
		}
	}
	var answer *TokenAnswer
	err = s.inBatch(ctx, func(db dbtx) error {
		if rehash {
			if h, err := s.hasher.Hash(ctx, req.Password); err == nil {
				if err := setPassword(ctx, db, u.ID, h, s.now()); err != nil {
					return err
				}
			}
		}
		if u.MFAEnabled {
			// The password was right, but the login is not done: no
			// success is recorded yet, so failure counters stand while
			// codes are tried.
			ch, err := s.newChallenge(ctx, db, u, c)
			answer = &TokenAnswer{User: u, Challenge: ch}
			return err
		}
		if err := s.recordAttempt(ctx, db, email, c.ip, true); err != nil {
			return err
		}
		if err := s.record(ctx, db, c, u.ID, EventLoginSucceeded, nil); err != nil {
			return err
		}
		answer, err = s.startSession(ctx, db, u, c, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.outbox.sendAlert(alert)
	if answer.Challenge == nil {
		s.afterLogin(ctx, u, false, c)
	}
	return answer, nil
}

// Email token kinds.
const (
	kindVerifyEmail   = "verify_email"
	kindResetPassword = "reset_password"
)

// verificationMail makes a verification link for u and the mail that
// carries it. Callers queue the mail once their transaction commits, so no
// link is ever sent for a token that was rolled back.
func (s *Service) verificationMail(ctx context.Context, db dbtx, u *User) (*mail.Message, error) {
	token, err := s.newEmailToken(ctx, db, u.ID, u.Email, kindVerifyEmail, time.Duration(s.cfg.VerifyTokenTTL))
	if err != nil {
		return nil, err
	}
	return s.renderMail(kindVerifyEmail, u.Email,
		mailData{Name: u.Name, Email: u.Email, Link: link(s.cfg.Links.VerifyEmail, token), TTL: humanTTL(time.Duration(s.cfg.VerifyTokenTTL))})
}

// SendVerification sends a new verification link to the principal.
func (s *Service) SendVerification(ctx context.Context, p *Principal) error {
	u, err := s.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	if u.EmailVerified {
		return errStatus(http.StatusConflict, "the email %s is already verified", u.Email)
	}
	m, err := s.verificationMail(ctx, s.db, u)
	if err != nil {
		return err
	}
	s.outbox.enqueue(m)
	return nil
}

func (s *Service) newEmailToken(ctx context.Context, db dbtx, userID, email, kind string, ttl time.Duration) (string, error) {
	token, hash := newOpaqueToken()
	now := s.now()
	_, err := db.Exec(ctx, `INSERT INTO abe.email_tokens (id, user_id, kind, token_hash, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		uuid.Must(uuid.NewV7()), userID, kind, hash, email, now, now.Add(ttl))
	if err != nil {
		return "", fmt.Errorf("make %s token: %w", kind, err)
	}
	return token, nil
}

var errLinkInvalid = errCode(http.StatusBadRequest, httpx.CodeInvalidLink, "this link is invalid, was already used, or has expired; ask for a new one")

// useEmailToken spends a single-use token of kind and returns its user. A
// token only works for the address it was sent to.
func (s *Service) useEmailToken(ctx context.Context, db dbtx, token, kind string) (*User, error) {
	if token == "" || len(token) > 128 {
		return nil, errLinkInvalid
	}
	var userID, email string
	err := db.QueryRow(ctx, `UPDATE abe.email_tokens SET used_at = $3 WHERE token_hash = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3
		RETURNING user_id::text, email`, hashToken(token), kind, s.now()).Scan(&userID, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errLinkInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("use %s token: %w", kind, err)
	}
	u, err := s.userByID(ctx, db, userID)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(u.Email, email) {
		return nil, errLinkInvalid
	}
	return u, nil
}

// VerifyEmail marks the email of a verification token's user as verified.
func (s *Service) VerifyEmail(ctx context.Context, token string, c client) (*User, error) {
	var u *User
	err := inTxPool(ctx, s, func(db dbtx) error {
		var err error
		if u, err = s.useEmailToken(ctx, db, token, kindVerifyEmail); err != nil {
			return err
		}
		if u.EmailVerified {
			return nil
		}
		if _, err := db.Exec(ctx, `UPDATE abe.users SET email_verified = true, version = version + 1, updated_at = $2 WHERE id = $1`, u.ID, s.now()); err != nil {
			return fmt.Errorf("verify email: %w", err)
		}
		u.EmailVerified = true
		return s.record(ctx, db, c, u.ID, EventEmailVerified, map[string]any{"email": u.Email})
	})
	return u, err
}

// ForgotPassword sends a reset link when the email has an account. The
// answer must not tell whether it has one, by its content or its timing,
// so the handler does the same for every well-formed email: it hands the
// email to the outbox, whose background step looks the account up, writes
// the token and makes the mail (see resetMail).
func (s *Service) ForgotPassword(ctx context.Context, email string, c client) error {
	email = normalizeEmail(email)
	if msg := checkEmail(email); msg != "" {
		return &FieldError{Field: "email", Message: msg}
	}
	s.outbox.later("password reset", func(ctx context.Context) (*mail.Message, error) {
		return s.resetMail(ctx, email)
	})
	return nil
}

// resetMail makes a reset token for the account of email and the mail
// that carries it, in one statement that inserts a token only when the
// account exists; without one it returns no mail.
func (s *Service) resetMail(ctx context.Context, email string) (*mail.Message, error) {
	token, hash := newOpaqueToken()
	now := s.now()
	ttl := time.Duration(s.cfg.ResetTokenTTL)
	var name, address string
	err := s.db.QueryRow(ctx, `INSERT INTO abe.email_tokens (id, user_id, kind, token_hash, email, created_at, expires_at)
		SELECT $1, u.id, 'reset_password', $2, u.email, $3, $4 FROM abe.users u WHERE lower(u.email) = $5
		RETURNING (SELECT name FROM abe.users WHERE id = user_id), email`,
		uuid.Must(uuid.NewV7()), hash, now, now.Add(ttl), email).Scan(&name, &address)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("forgot password: %w", err)
	}
	return s.renderMail(kindResetPassword, address,
		mailData{Name: name, Email: address, Link: link(s.cfg.Links.ResetPassword, token), TTL: humanTTL(ttl)})
}

// ResetPassword sets a new password with a reset token, ends every session
// of the user, and spends their other reset links.
func (s *Service) ResetPassword(ctx context.Context, token, password string, c client) error {
	return inTxPool(ctx, s, func(db dbtx) error {
		u, err := s.useEmailToken(ctx, db, token, kindResetPassword)
		if err != nil {
			return err
		}
		if msg := s.policy.Check(password, u.Email, u.Name); msg != "" {
			return &FieldError{Field: "password", Message: msg}
		}
		hash, err := s.hasher.Hash(ctx, password)
		if err != nil {
			return err
		}
		now := s.now()
		if err := setPassword(ctx, db, u.ID, hash, now); err != nil {
			return err
		}
		// Following the link proved the address is theirs.
		if _, err := db.Exec(ctx, `UPDATE abe.users SET email_verified = true WHERE id = $1`, u.ID); err != nil {
			return err
		}
		if _, err := db.Exec(ctx, `UPDATE abe.email_tokens SET used_at = $2 WHERE user_id = $1 AND kind = 'reset_password' AND used_at IS NULL`, u.ID, now); err != nil {
			return err
		}
		n, err := s.revokeUserSessions(ctx, db, u.ID, "")
		if err != nil {
			return err
		}
		return s.record(ctx, db, c, u.ID, EventPasswordReset, map[string]any{"sessions_ended": n})
	})
}

// ChangePasswordRequest is the body of POST /api/auth/password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// ChangePassword replaces the principal's password after checking the
// current one, and ends their other sessions.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, req ChangePasswordRequest, c client) error {
	u, err := s.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	if len(req.CurrentPassword) > 4*s.policy.MaxLength {
		return &FieldError{Field: "current_password", Message: "is wrong"}
	}
	ok, _, err := s.hasher.Verify(ctx, req.CurrentPassword, u.passwordHash)
	if err != nil {
		return err
	}
	if !ok {
		return &FieldError{Field: "current_password", Message: "is wrong"}
	}
	if msg := s.policy.Check(req.NewPassword, u.Email, u.Name); msg != "" {
		return &FieldError{Field: "new_password", Message: msg}
	}
	hash, err := s.hasher.Hash(ctx, req.NewPassword)
	if err != nil {
		return err
	}
	return inTxPool(ctx, s, func(db dbtx) error {
		if err := setPassword(ctx, db, u.ID, hash, s.now()); err != nil {
			return err
		}
		n, err := s.revokeUserSessions(ctx, db, u.ID, p.SessionID)
		if err != nil {
			return err
		}
		return s.record(ctx, db, c, u.ID, EventPasswordChanged, map[string]any{"other_sessions_ended": n})
	})
}

func humanTTL(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		if d == 24*time.Hour {
			return "1 day"
		}
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	default:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
}
