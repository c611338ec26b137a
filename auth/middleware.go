package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/abe-stack/abe/internal/httpx"
)

// Authenticate reads a bearer token when the request has one and puts its
// principal in the request context. A request without a token goes on
// anonymous; one with a bad token (malformed, forged, expired, revoked) is
// answered 401 at once, so a client never mistakes a broken session for
// anonymous access.
func (s *Service) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			s.writeError(w, r, errUnauthenticated(httpx.CodeInvalidToken, "the Authorization header must be \"Bearer <access token>\""))
			return
		}
		p, err := s.VerifyAccess(strings.TrimSpace(token))
		if err != nil {
			code := httpx.CodeInvalidToken
			if te, ok := errors.AsType[*TokenError](err); ok && te.Code != "" {
				code = te.Code
			}
			s.writeError(w, r, errUnauthenticated(code, err.Error()))
			return
		}
		// Roles are read now, so a change applies to tokens already out.
		if err := s.RefreshRoles(r.Context(), p); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// RequireAuth answers 401 to anonymous requests.
func (s *Service) RequireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if PrincipalFrom(r.Context()) == nil {
			s.writeError(w, r, errNoToken("this endpoint needs an access token: send Authorization: Bearer <access token>"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequirePermission answers 401 to anonymous requests and 403 to
// principals whose roles lack perm. It is the one place permission checks
// on endpoints happen.
func (s *Service) RequirePermission(perm string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return s.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := PrincipalFrom(r.Context())
			if !s.HasPermission(p, perm) {
				if s.grantsWithMFA(r.Context(), p, perm) {
					s.writeError(w, r, errCode(http.StatusForbidden, httpx.CodeMFARequired,
						"this needs the permission %s, which your roles grant only in a session signed in with two-factor authentication: log in again with it", perm))
					return
				}
				s.writeError(w, r, errCode(http.StatusForbidden, httpx.CodePermissionRequired, "this needs the permission %s, which none of your roles grants", perm))
				return
			}
			next.ServeHTTP(w, r)
		}))
	}
}

// grantsWithMFA tells whether p's roles would grant perm in a session
// that passed a second factor (auth.require_mfa_for_roles).
func (s *Service) grantsWithMFA(ctx context.Context, p *Principal, perm string) bool {
	if p == nil || p.MFA || len(s.cfg.RequireMFAForRoles) == 0 {
		return false
	}
	roles, err := s.roles.of(ctx, p.UserID)
	if err != nil {
		return false // the refusal stands; it only names another reason
	}
	perms := s.roles.permissions(roles)
	return slices.Contains(perms, "*") || slices.Contains(perms, perm)
}

// RateKey identifies a client for rate limits: the user when the request
// is authenticated, else its IP.
func RateKey(r *http.Request) string {
	if p := PrincipalFrom(r.Context()); p != nil {
		return "user:" + p.UserID
	}
	return "ip:" + httpx.ClientIPString(r)
}

// IsAuthRequest tells the rate limiter which requests are in the stricter
// auth class.
func IsAuthRequest(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/auth/") && r.Method != http.MethodGet
}

func clientOf(r *http.Request) client {
	return client{ip: httpx.ClientIPString(r), userAgent: r.UserAgent()}
}
