package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// User is an account, as the API shows it.
type User struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	EmailVerified bool      `json:"email_verified"`
	MFAEnabled    bool      `json:"mfa_enabled"`
	Roles         []string  `json:"roles"`
	Version       int64     `json:"version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`

	passwordHash string
}

// ErrNotFound is returned when an account does not exist.
var ErrNotFound = errors.New("not found")

// ErrEmailTaken is returned when an account with the email exists.
var ErrEmailTaken = errors.New("an account with this email already exists")

const userColumns = `u.id, u.email, u.name, u.email_verified, u.version, u.created_at, u.updated_at, coalesce(u.password_hash, ''),
	coalesce((SELECT array_agg(r.role ORDER BY r.role) FROM abe.user_roles r WHERE r.user_id = u.id), '{}'),
	EXISTS (SELECT 1 FROM abe.mfa_totp m WHERE m.user_id = u.id AND m.enabled_at IS NOT NULL)`

func scanUser(row pgx.Row) (*User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.EmailVerified, &u.Version, &u.CreatedAt, &u.UpdatedAt, &u.passwordHash, &u.Roles, &u.MFAEnabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// normalizeEmail is the form emails are compared in.
func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func (s *Service) userByEmail(ctx context.Context, db dbtx, email string) (*User, error) {
	return scanUser(db.QueryRow(ctx, `SELECT `+userColumns+` FROM abe.users u WHERE lower(u.email) = $1`, normalizeEmail(email)))
}

// UserByID returns the account with id.
func (s *Service) UserByID(ctx context.Context, id string) (*User, error) {
	return s.userByID(ctx, s.db, id)
}

func (s *Service) userByID(ctx context.Context, db dbtx, id string) (*User, error) {
	u, err := scanUser(db.QueryRow(ctx, `SELECT `+userColumns+` FROM abe.users u WHERE u.id = $1`, id))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "22P02" { // not a uuid
		return nil, ErrNotFound
	}
	return u, err
}

// UserByEmail returns the account with email.
func (s *Service) UserByEmail(ctx context.Context, email string) (*User, error) {
	return s.userByEmail(ctx, s.db, email)
}

// CreateUserOpts are the parts of a new account.
type CreateUserOpts struct {
	Email, Password, Name string
	// Roles replace the default roles when set.
	Roles []string
	// Verified marks the email as verified (accounts made by admins).
	Verified bool
	// NoPassword makes an account without a password when Password is
	// empty: it can sign in only after a password reset.
	NoPassword bool

	// created, when set, records the creation in its transaction (an
	// admin's user_created event).
	created func(ctx context.Context, db dbtx, u *User) error
}

// CreateUser makes an account after checking the email and the password
// policy; the roles default to those marked default in abe.yaml.
func (s *Service) CreateUser(ctx context.Context, o CreateUserOpts) (*User, error) {
	if msg := checkEmail(o.Email); msg != "" {
		return nil, &FieldError{Field: "email", Message: msg}
	}
	noPassword := o.NoPassword && o.Password == ""
	if msg := s.policy.Check(o.Password, o.Email, o.Name); msg != "" && !noPassword {
		return nil, &FieldError{Field: "password", Message: msg}
	}
	roles := o.Roles
	if roles == nil {
		roles = s.roles.defaults()
	}
	for _, r := range roles {
		if !s.roles.exists(r) {
			return nil, &FieldError{Field: "roles", Message: fmt.Sprintf("unknown role %q", r)}
		}
	}
	var hash *string
	if !noPassword {
		h, err := s.hasher.Hash(ctx, o.Password)
		if err != nil {
			return nil, err
		}
		hash = &h
	}
	var u *User
	err := inTx(ctx, s.db, func(tx pgx.Tx) error {
		var id string
		now := s.now()
		err := tx.QueryRow(ctx, `INSERT INTO abe.users (email, name, password_hash, email_verified, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT ((lower(email))) DO NOTHING RETURNING id`,
			strings.TrimSpace(o.Email), strings.TrimSpace(o.Name), hash, o.Verified, now).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrEmailTaken
		}
		if err != nil {
			return err
		}
		for _, r := range roles {
			if _, err := tx.Exec(ctx, `INSERT INTO abe.user_roles (user_id, role, granted_at) VALUES ($1, $2, $3)`, id, r, now); err != nil {
				return err
			}
		}
		if u, err = s.userByID(ctx, tx, id); err != nil || o.created == nil {
			return err
		}
		return o.created(ctx, tx, u)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func checkEmail(email string) string {
	e := strings.TrimSpace(email)
	at := strings.LastIndexByte(e, '@')
	switch {
	case e == "":
		return "is required"
	case len(e) > 254:
		return "is longer than 254 characters"
	case at < 1 || at == len(e)-1 || strings.ContainsAny(e, " \t\r\n<>(),;:\"[]\\") || !strings.Contains(e[at:], "."):
		return "is not an email address"
	}
	return ""
}

// setPassword replaces a user's password hash.
func setPassword(ctx context.Context, db dbtx, userID, hash string, now time.Time) error {
	_, err := db.Exec(ctx, `UPDATE abe.users SET password_hash = $2, version = version + 1, updated_at = $3 WHERE id = $1`, userID, hash, now)
	return err
}

// ListUsers lists accounts by id, optionally those whose email contains
// emailLike, and the cursor of the next page.
func (s *Service) ListUsers(ctx context.Context, emailLike, after string, limit int) ([]*User, string, error) {
	q := `SELECT ` + userColumns + ` FROM abe.users u WHERE ($1 = '' OR u.email ILIKE '%' || $1 || '%') AND ($2 = '' OR u.id > $2::uuid) ORDER BY u.id LIMIT $3`
	like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(emailLike)
	rows, err := s.db.Query(ctx, q, like, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var users []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	next := ""
	if len(users) > limit {
		users = users[:limit]
		next = users[limit-1].ID
	}
	if users == nil {
		users = []*User{}
	}
	return users, next, nil
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
