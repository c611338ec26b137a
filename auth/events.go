package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Security event types.
const (
	EventRegistered      = "registered"
	EventLoginSucceeded  = "login_succeeded"
	EventLoginFailed     = "login_failed"
	EventLockout         = "lockout"
	EventUnlocked        = "unlocked"
	EventTokenReuse      = "token_reuse"
	EventLogout          = "logout"
	EventLogoutAll       = "logout_all"
	EventPasswordChanged = "password_changed"
	EventPasswordReset   = "password_reset"
	EventEmailVerified   = "email_verified"
	EventRoleCreated     = "role_created"
	EventRoleUpdated     = "role_updated"
	EventRoleDeleted     = "role_deleted"
	EventRoleAssigned    = "role_assigned"
	EventRoleRemoved     = "role_removed"
	// Admin actions on accounts.
	EventUserCreated    = "user_created"
	EventSessionRevoked = "session_revoked"
	EventAdminLogoutAll = "admin_logout_all"
	EventAdminVerified  = "email_verified_by_admin"
)

// likeEscaper makes a string match itself in a LIKE pattern.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Event is an entry of the audit trail.
type Event struct {
	ID        int64          `json:"id"`
	UserID    *string        `json:"user_id"`
	Type      string         `json:"type"`
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	Details   map[string]any `json:"details"`
	At        time.Time      `json:"at"`
}

// client is who made a request: recorded with events and attempts.
type client struct {
	ip, userAgent string
}

// maxUserAgent bounds what a client can make us store.
const maxUserAgent = 512

func (s *Service) record(ctx context.Context, db dbtx, c client, userID, typ string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	d, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("encode event details: %w", err)
	}
	var uid *string
	if userID != "" {
		uid = &userID
	}
	ua := c.userAgent
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	_, err = db.Exec(ctx, `INSERT INTO abe.security_events (user_id, type, ip, user_agent, details, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		uid, typ, c.ip, ua, d, s.now())
	if err != nil {
		return fmt.Errorf("record %s event: %w", typ, err)
	}
	if s.onEvent != nil {
		s.onEvent(typ)
	}
	return nil
}

// EventFilter selects events; zero fields select everything.
type EventFilter struct {
	UserID, Type string
	Since, Until time.Time
	// Before is the cursor: events older than this id.
	Before int64
	Limit  int
}

// Events lists events newest first, and the cursor of the next page ("" at
// the end).
func (s *Service) Events(ctx context.Context, f EventFilter) ([]Event, string, error) {
	q := `SELECT id, user_id::text, type, ip, user_agent, details, at FROM abe.security_events WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.UserID != "" {
		q += " AND user_id = " + arg(f.UserID)
	}
	if prefix, ok := strings.CutSuffix(f.Type, "*"); ok {
		// A trailing * selects a family of types (admin.*); LIKE's own
		// wildcards in the prefix match themselves.
		q += " AND type LIKE " + arg(likeEscaper.Replace(prefix)+"%")
	} else if f.Type != "" {
		q += " AND type = " + arg(f.Type)
	}
	if !f.Since.IsZero() {
		q += " AND at >= " + arg(f.Since)
	}
	if !f.Until.IsZero() {
		q += " AND at < " + arg(f.Until)
	}
	if f.Before > 0 {
		q += " AND id < " + arg(f.Before)
	}
	q += " ORDER BY id DESC LIMIT " + arg(f.Limit+1)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list security events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var e Event
		err := row.Scan(&e.ID, &e.UserID, &e.Type, &e.IP, &e.UserAgent, &e.Details, &e.At)
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list security events: %w", err)
	}
	next := ""
	if len(events) > f.Limit {
		events = events[:f.Limit]
		next = strconv.FormatInt(events[len(events)-1].ID, 10)
	}
	return events, next, nil
}
