package auth

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/jackc/pgx/v5"
)

// The rules playground (POST /api/admin/rules/explain, served by the
// engine) evaluates rules and runs reads as another principal. This file
// gives it the principals, as Authenticate would make them, and records
// each use in the security events.

// PermRulesExplain runs the rules playground: it shows what any principal
// may read, so it is a permission of its own.
const PermRulesExplain = "rules:explain"

// EventRulesExplained is a use of the rules playground.
const EventRulesExplained = "rules_explained"

// PrincipalOf is the principal of a session of u, as Authenticate makes
// it: u's roles now, and the second factor passed when u has one (a login
// cannot finish without it).
func (s *Service) PrincipalOf(ctx context.Context, u *User) (*Principal, error) {
	p := &Principal{UserID: u.ID, Email: u.Email, Verified: u.EmailVerified, MFA: u.MFAEnabled}
	if err := s.RefreshRoles(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// PrincipalWithRoles is a principal holding roles, with the permissions
// they grant and id as its user id ("" for none); it stands for a verified
// session that passed a second factor, so every role is in force. An
// unknown role is a *FieldError.
func (s *Service) PrincipalWithRoles(roles []string, id string) (*Principal, error) {
	for _, r := range roles {
		if !s.roles.exists(r) {
			return nil, &FieldError{Field: "principal.roles", Message: fmt.Sprintf("no role %q", r)}
		}
	}
	roles = slices.Clone(roles)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	perms := s.roles.permissions(roles)
	if perms == nil {
		perms = []string{}
	}
	return &Principal{UserID: id, Verified: true, MFA: true, Roles: roles, Permissions: perms}, nil
}

// RecordAdminAction records an action of the request's principal (an
// administrator) in the security events, with the request's IP and user
// agent; details name what it acted on.
func (s *Service) RecordAdminAction(r *http.Request, typ string, details map[string]any) error {
	return s.recordAdmin(r.Context(), s.db, r, typ, details)
}

// RecordAdminActionTx is RecordAdminAction inside tx, so the event
// commits or rolls back with the action it records (the admin records
// API's writes).
func (s *Service) RecordAdminActionTx(ctx context.Context, tx pgx.Tx, r *http.Request, typ string, details map[string]any) error {
	return s.recordAdmin(ctx, tx, r, typ, details)
}

func (s *Service) recordAdmin(ctx context.Context, db dbtx, r *http.Request, typ string, details map[string]any) error {
	by := ""
	if p := PrincipalFrom(r.Context()); p != nil {
		by = p.UserID
	}
	if details == nil {
		details = map[string]any{}
	}
	details["by"] = by
	return s.record(ctx, db, clientOf(r), by, typ, details)
}

// Impersonation names the principal the playground acts as: exactly one
// of anonymous, a user (by id or email), or a set of roles (with an
// optional user id).
type Impersonation struct {
	Anonymous bool     `json:"anonymous,omitempty"`
	UserID    string   `json:"user_id,omitempty"`
	Email     string   `json:"email,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	ID        string   `json:"id,omitempty"`
}

// Impersonate is the principal im names; nil is anonymous. A user who
// does not exist is ErrNotFound; a malformed im is a *FieldError.
func (s *Service) Impersonate(ctx context.Context, im Impersonation) (*Principal, error) {
	kinds := 0
	for _, set := range []bool{im.Anonymous, im.UserID != "", im.Email != "", im.Roles != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds != 1:
		return nil, &FieldError{Field: "principal", Message: `give exactly one of {"anonymous": true}, {"user_id": ...}, {"email": ...} or {"roles": [...], "id": ...}`}
	case im.ID != "" && im.Roles == nil:
		return nil, &FieldError{Field: "principal.id", Message: "goes with roles; for a user, give user_id"}
	case im.Anonymous:
		return nil, nil
	case im.Roles != nil:
		if im.ID != "" && !isUUID(im.ID) {
			return nil, &FieldError{Field: "principal.id", Message: "must be a user id (a UUID)"}
		}
		return s.PrincipalWithRoles(im.Roles, im.ID)
	}
	var u *User
	var err error
	if im.UserID != "" {
		if !isUUID(im.UserID) {
			return nil, &FieldError{Field: "principal.user_id", Message: "must be a user id (a UUID)"}
		}
		u, err = s.UserByID(ctx, im.UserID)
	} else {
		u, err = s.UserByEmail(ctx, im.Email)
	}
	if err != nil {
		return nil, err
	}
	return s.PrincipalOf(ctx, u)
}
