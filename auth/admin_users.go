package auth

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/internal/httpx"
)

// Session is a live refresh-token family, as the admin API shows it.
type Session struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	MFA        bool      `json:"mfa"`
}

// adminRoutes mounts the console's account endpoints under /api/admin.
func (s *Service) adminRoutes(r chi.Router) {
	r.With(s.RequirePermission(PermConsole)).Get("/console", s.handleConsole)
	r.Group(func(r chi.Router) {
		r.Use(s.RequirePermission(PermUsersManage))
		r.Post("/users", s.handleCreateUser)
		r.Get("/users/{id}", s.handleGetUser)
		r.Post("/users/{id}/verify", s.handleAdminVerify)
		r.Get("/users/{id}/sessions", s.handleSessions)
		r.Delete("/users/{id}/sessions/{session}", s.handleRevokeSession)
		r.Post("/users/{id}/logout-all", s.handleAdminLogoutAll)
	})
}

func (s *Service) handleConsole(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	u, err := s.UserByID(r.Context(), p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	mfa := slices.ContainsFunc(p.Roles, func(role string) bool { return slices.Contains(s.cfg.RequireMFAForRoles, role) })
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"user": u, "permissions": p.Permissions, "mfa_required": mfa})
}

// createUserBody is POST /api/admin/users.
type createUserBody struct {
	Email         string   `json:"email"`
	Password      string   `json:"password"`
	Name          string   `json:"name"`
	EmailVerified bool     `json:"email_verified"`
	Roles         []string `json:"roles"`
}

func (s *Service) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	var b createUserBody
	if !s.readJSON(w, r, &b) {
		return
	}
	actor := PrincipalFrom(r.Context()).UserID
	created := func(ctx context.Context, db dbtx, u *User) error {
		return s.record(ctx, db, clientOf(r), u.ID, EventUserCreated,
			map[string]any{"actor": actor, "roles": u.Roles, "password": b.Password != ""})
	}
	u, err := s.CreateUser(r.Context(), CreateUserOpts{Email: b.Email, Password: b.Password, Name: b.Name,
		Roles: b.Roles, Verified: b.EmailVerified, NoPassword: true, created: created})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/admin/users/"+u.ID)
	httpx.WriteJSON(w, http.StatusCreated, u)
}

// userParam is the account named by the path, or a 404 answered.
func (s *Service) userParam(w http.ResponseWriter, r *http.Request) (*User, bool) {
	id := chi.URLParam(r, "id")
	var u *User
	var err error
	if isUUID(id) {
		u, err = s.UserByID(r.Context(), id)
	} else {
		err = ErrNotFound
	}
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return u, true
}

func (s *Service) handleAdminVerify(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userParam(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	err := inTxPool(ctx, s, func(db dbtx) error {
		if _, err := db.Exec(ctx, `UPDATE abe.users SET email_verified = true, version = version + 1, updated_at = $2 WHERE id = $1`, u.ID, s.now()); err != nil {
			return fmt.Errorf("verify %s: %w", u.ID, err)
		}
		return s.record(ctx, db, clientOf(r), u.ID, EventAdminVerified, map[string]any{"actor": PrincipalFrom(ctx).UserID})
	})
	if err == nil {
		u, err = s.UserByID(ctx, u.ID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, u)
}

// sessions lists a user's live sessions: families with a token that is
// neither used, revoked nor expired. The current token was made at the
// family's last use (each refresh rotates it).
func (s *Service) sessions(ctx context.Context, userID string) ([]Session, error) {
	rows, err := s.db.Query(ctx, `SELECT cur.family_id::text, first.created_at, cur.created_at, cur.expires_at, cur.ip, cur.user_agent, cur.mfa
		FROM abe.refresh_tokens cur
		JOIN LATERAL (SELECT min(created_at) AS created_at FROM abe.refresh_tokens f WHERE f.family_id = cur.family_id) first ON true
		WHERE cur.user_id = $1 AND cur.used_at IS NULL AND cur.revoked_at IS NULL AND cur.expires_at > $2
		ORDER BY cur.created_at DESC`, userID, s.now())
	if err != nil {
		return nil, fmt.Errorf("list sessions of %s: %w", userID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Session, error) {
		var v Session
		err := row.Scan(&v.ID, &v.CreatedAt, &v.LastUsedAt, &v.ExpiresAt, &v.IP, &v.UserAgent, &v.MFA)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions of %s: %w", userID, err)
	}
	return out, nil
}

func (s *Service) handleSessions(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userParam(w, r)
	if !ok {
		return
	}
	list, err := s.sessions(r.Context(), u.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
}

// RevokeSession ends one live session of a user: its refresh token and
// its access tokens stop working. A session of another user, or one
// already ended, is ErrNotFound, and nothing is revoked.
func (s *Service) RevokeSession(ctx context.Context, userID, sessionID string, c client, actor string) error {
	if !isUUID(sessionID) {
		return ErrNotFound
	}
	return inTxPool(ctx, s, func(db dbtx) error {
		var live bool
		if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM abe.refresh_tokens WHERE family_id = $1 AND user_id = $2
			AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3)`, sessionID, userID, s.now()).Scan(&live); err != nil {
			return fmt.Errorf("revoke session %s: %w", sessionID, err)
		}
		if !live {
			return ErrNotFound
		}
		if err := s.revokeFamilies(ctx, db, []string{sessionID}); err != nil {
			return fmt.Errorf("revoke session %s: %w", sessionID, err)
		}
		return s.record(ctx, db, c, userID, EventSessionRevoked, map[string]any{"actor": actor, "session": sessionID})
	})
}

func (s *Service) handleRevokeSession(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userParam(w, r)
	if !ok {
		return
	}
	if err := s.RevokeSession(r.Context(), u.ID, chi.URLParam(r, "session"), clientOf(r), PrincipalFrom(r.Context()).UserID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleAdminLogoutAll(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userParam(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	var n int
	err := inTxPool(ctx, s, func(db dbtx) error {
		var err error
		if n, err = s.revokeUserSessions(ctx, db, u.ID, ""); err != nil {
			return err
		}
		return s.record(ctx, db, clientOf(r), u.ID, EventAdminLogoutAll, map[string]any{"actor": PrincipalFrom(ctx).UserID, "sessions": n})
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

func (s *Service) handleRoleUsers(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if _, ok := s.roleNamed(name); !ok {
		httpx.Error(w, r, http.StatusNotFound, "no such role")
		return
	}
	limit, ok := queryLimit(r)
	if !ok {
		httpx.Error(w, r, http.StatusBadRequest, "limit must be a whole number from 1 to 500")
		return
	}
	cursor := r.URL.Query().Get("cursor")
	if cursor != "" && !isUUID(cursor) {
		httpx.Error(w, r, http.StatusBadRequest, "cursor must be the next_cursor of a previous page")
		return
	}
	rows, err := s.db.Query(r.Context(), `SELECT `+userColumns+` FROM abe.users u
		WHERE EXISTS (SELECT 1 FROM abe.user_roles ur WHERE ur.user_id = u.id AND ur.role = $1) AND ($2 = '' OR u.id > $2::uuid)
		ORDER BY u.id LIMIT $3`, name, cursor, limit+1)
	var users []*User
	if err == nil {
		users, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*User, error) { return scanUser(row) })
	}
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list holders of role %s: %w", name, err))
		return
	}
	next := ""
	if len(users) > limit {
		users = users[:limit]
		next = users[limit-1].ID
	}
	if users == nil {
		users = []*User{}
	}
	httpx.WriteJSON(w, http.StatusOK, page[*User]{Items: users, NextCursor: next})
}

// AdminUser is an account as the admin API shows it: the user and the
// state of its lockout.
type AdminUser struct {
	*User
	// LockedUntil is when the account's lock ends; nil when it is not
	// locked.
	LockedUntil *time.Time `json:"locked_until"`
	// FailedAttempts are the failed logins that count toward the lock:
	// within auth.lockout.window, since the last success or unlock.
	FailedAttempts int `json:"failed_attempts"`
}

// userDetail is GET /api/admin/users/{id}.
type userDetail struct {
	AdminUser
	RecentFailures []Event `json:"recent_failures"`
}

// withLockState reads the lockout state of accounts in one query, from the
// same tables (by email) the lock is computed from.
func (s *Service) withLockState(ctx context.Context, users []*User) ([]AdminUser, error) {
	emails := make([]string, len(users))
	for i, u := range users {
		emails[i] = normalizeEmail(u.Email)
	}
	now := s.now()
	rows, err := s.db.Query(ctx, `SELECT e.email,
		  (SELECT l.locked_until FROM abe.login_locks l WHERE l.email = e.email AND l.locked_until > $2),
		  (SELECT count(*) FROM abe.login_attempts a WHERE a.email = e.email AND NOT a.succeeded AND a.at > $3
		     AND a.at > (SELECT coalesce(max(ok.at), '-infinity') FROM abe.login_attempts ok WHERE ok.email = e.email AND ok.succeeded))
		FROM unnest($1::text[]) AS e(email)`, emails, now, now.Add(-time.Duration(s.cfg.Lockout.Window)))
	if err != nil {
		return nil, fmt.Errorf("read lockout state: %w", err)
	}
	type state struct {
		until *time.Time
		n     int
	}
	states := map[string]state{}
	for rows.Next() {
		var email string
		var st state
		if err := rows.Scan(&email, &st.until, &st.n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read lockout state: %w", err)
		}
		states[email] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read lockout state: %w", err)
	}
	out := make([]AdminUser, len(users))
	for i, u := range users {
		st := states[emails[i]]
		out[i] = AdminUser{User: u, LockedUntil: st.until, FailedAttempts: st.n}
	}
	return out, nil
}

// recentFailures are the login_failed events of an account that count
// toward its lock: within the lockout window, after its last successful
// login and last unlock, newest first.
func (s *Service) recentFailures(ctx context.Context, userID string) ([]Event, error) {
	since := s.now().Add(-time.Duration(s.cfg.Lockout.Window))
	var last *time.Time
	if err := s.db.QueryRow(ctx, `SELECT max(at) FROM abe.security_events WHERE user_id = $1 AND type = ANY($2)`,
		userID, []string{EventLoginSucceeded, EventUnlocked}).Scan(&last); err != nil {
		return nil, fmt.Errorf("recent failures of %s: %w", userID, err)
	}
	if last != nil && last.After(since) {
		since = *last
	}
	events, _, err := s.Events(ctx, EventFilter{UserID: userID, Type: EventLoginFailed, Since: since.Add(time.Microsecond), Limit: 500})
	if err != nil {
		return nil, fmt.Errorf("recent failures of %s: %w", userID, err)
	}
	if events == nil {
		events = []Event{}
	}
	return events, nil
}

func (s *Service) handleGetUser(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userParam(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	list, err := s.withLockState(ctx, []*User{u})
	var failures []Event
	if err == nil {
		failures, err = s.recentFailures(ctx, u.ID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, userDetail{AdminUser: list[0], RecentFailures: failures})
}
