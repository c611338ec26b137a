package auth

import (
	"context"
	"slices"
	"time"
)

// Principal is who makes a request: the subject of a verified access
// token. Handlers read it with PrincipalFrom; it is nil for anonymous
// requests.
type Principal struct {
	UserID   string
	Email    string
	Verified bool
	// Roles are the user's roles now, read for each request (not those
	// the token was issued with), and Permissions what they grant.
	Roles       []string
	Permissions []string
	// MFA tells whether the session passed a second factor.
	MFA bool
	// SessionID is the refresh token family the access token came from.
	SessionID string
	// TokenID is the access token's jti.
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// HasRole reports whether p holds role.
func (p *Principal) HasRole(role string) bool {
	return p != nil && slices.Contains(p.Roles, role)
}

type ctxKey int

const principalKey ctxKey = iota

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the principal of a request, or nil when it is
// anonymous.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey).(*Principal)
	return p
}
