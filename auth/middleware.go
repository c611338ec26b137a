package auth

import (
	"net/http"
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
			s.writeError(w, r, errUnauthenticated("the Authorization header must be \"Bearer <access token>\""))
			return
		}
		p, err := s.VerifyAccess(strings.TrimSpace(token))
		if err != nil {
			s.writeError(w, r, errUnauthenticated(err.Error()))
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
			s.writeError(w, r, errUnauthenticated("this endpoint needs an access token: send Authorization: Bearer <access token>"))
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
			if !s.HasPermission(PrincipalFrom(r.Context()), perm) {
				httpx.Error(w, r, http.StatusForbidden, "this needs the permission "+perm+", which none of your roles grants")
				return
			}
			next.ServeHTTP(w, r)
		}))
	}
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
