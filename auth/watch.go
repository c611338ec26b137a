package auth

import (
	"context"
	"sync"
)

// This file serves holders of long-lived principals, like realtime
// sockets: a request checks its token once, a socket must notice later
// that the token was revoked or the user's roles changed.

// Authorize verifies an access token and reads the user's roles now, as
// Authenticate does for a request.
func (s *Service) Authorize(ctx context.Context, token string) (*Principal, error) {
	p, err := s.VerifyAccess(token)
	if err != nil {
		return nil, err
	}
	if err := s.RefreshRoles(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// RefreshRoles sets p's roles and permissions to the user's roles now,
// less those that need a second factor p's session did not pass.
func (s *Service) RefreshRoles(ctx context.Context, p *Principal) error {
	roles, err := s.roles.of(ctx, p.UserID)
	if err != nil {
		return err
	}
	roles = s.effectiveRoles(roles, p.MFA)
	p.Roles, p.Permissions = roles, s.roles.permissions(roles)
	return nil
}

// Revoked reports whether p's token or its session has been revoked
// since it was verified.
func (s *Service) Revoked(p *Principal) bool {
	return s.revoked.has(p.TokenID, p.SessionID)
}

// OnInvalidate registers fn to be called after revocations or roles
// change, on this node or another, and after every resync. fn runs on the
// listener's goroutine and must not block.
func (s *Service) OnInvalidate(fn func()) {
	s.watchers.mu.Lock()
	s.watchers.fns = append(s.watchers.fns, fn)
	s.watchers.mu.Unlock()
}

type watchers struct {
	mu  sync.Mutex
	fns []func()
}

func (w *watchers) notify() {
	w.mu.Lock()
	fns := w.fns
	w.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}
