package auth

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/abe-stack/abe/internal/httpx"
)

// Permissions the auth endpoints need.
const (
	PermUsersManage  = "users:manage"
	PermRolesManage  = "roles:manage"
	PermSecurityRead = "security:read"
	// PermJobsManage lists, retries and cancels background jobs.
	PermJobsManage = "jobs:manage"
	// PermConsole opens the admin console and its read-only views (the
	// overview, the schema, the realtime inspector).
	PermConsole       = "admin:console"
	refreshCookieName = "abe_refresh"
	refreshCookiePath = "/api/auth"
)

// Routes mounts /api/auth and the auth part of /api/admin.
func (s *Service) Routes(r chi.Router) {
	r.Route("/api/auth", func(r chi.Router) {
		r.Post("/register", s.handleRegister)
		r.Post("/login", s.handleLogin)
		r.Post("/refresh", s.handleRefresh)
		r.Post("/logout", s.handleLogout)
		r.Post("/password/forgot", s.handleForgot)
		r.Post("/password/reset", s.handleReset)
		r.Get("/password/reset", s.pageReset)
		r.Post("/verify-email", s.handleVerify)
		r.Get("/verify-email", s.pageVerify)
		r.Get("/jwks.json", s.handleJWKS)
		r.Group(func(r chi.Router) {
			r.Use(s.RequireAuth)
			r.Get("/me", s.handleMe)
			r.Post("/logout-all", s.handleLogoutAll)
			r.Post("/password", s.handleChangePassword)
			r.Post("/verify-email/send", s.handleSendVerification)
			r.Post("/mfa/totp/setup", s.handleTOTPSetup)
			r.Post("/mfa/totp/enable", s.handleTOTPEnable)
			r.Post("/mfa/totp/disable", s.handleTOTPDisable)
			r.Post("/mfa/recovery-codes", s.handleRecoveryCodes)
		})
		r.Post("/mfa/verify", s.handleMFAVerify)
	})
	r.Route("/api/admin", func(r chi.Router) {
		r.With(s.RequirePermission(PermSecurityRead)).Get("/security-events", s.handleEvents)
		r.With(s.RequirePermission(PermUsersManage)).Get("/users", s.handleListUsers)
		r.With(s.RequirePermission(PermUsersManage)).Post("/users/{id}/unlock", s.handleUnlock)
		r.With(s.RequirePermission(PermUsersManage)).Delete("/users/{id}/mfa", s.handleResetMFA)
		r.With(s.RequirePermission(PermUsersManage)).Get("/users/{id}/roles", s.handleUserRoles)
		r.With(s.RequirePermission(PermUsersManage)).Post("/users/{id}/roles", s.handleAssignRole)
		r.With(s.RequirePermission(PermUsersManage)).Delete("/users/{id}/roles/{role}", s.handleRemoveRole)
		s.adminRoutes(r)
		r.Route("/roles", func(r chi.Router) {
			r.Use(s.RequirePermission(PermRolesManage))
			r.Get("/", s.handleListRoles)
			r.Post("/", s.handleCreateRole)
			r.Get("/{name}", s.handleGetRole)
			r.Get("/{name}/users", s.handleRoleUsers)
			r.Patch("/{name}", s.handleUpdateRole)
			r.Delete("/{name}", s.handleDeleteRole)
		})
	})
}

// readJSON decodes a request body into v, or answers the problem with it:
// malformed JSON, unknown fields, or text with a NUL character, which no
// column can hold.
func (s *Service) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	p := httpx.ReadJSON(w, r, v, s.limit)
	if p == nil {
		p = httpx.CheckText(v)
	}
	if p != nil {
		httpx.WriteProblem(w, r, *p)
		return false
	}
	return true
}

func (s *Service) setRefreshCookie(w http.ResponseWriter, r *http.Request, token string) {
	c := &http.Cookie{Name: refreshCookieName, Value: token, Path: refreshCookiePath, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: !s.dev || httpx.IsHTTPS(r), MaxAge: int(s.refreshTTL.Seconds())}
	if token == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func (s *Service) tokens(w http.ResponseWriter, r *http.Request, status int, a *TokenAnswer) {
	s.setRefreshCookie(w, r, a.RefreshToken)
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, status, a)
}

func (s *Service) handleRegister(w http.ResponseWriter, r *http.Request) {
	var req RegisterRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	a, err := s.Register(r.Context(), req, clientOf(r))
	switch {
	case err != nil:
		s.writeError(w, r, err)
	case a == nil:
		httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "verification_sent",
			"detail": "check your email: the link in it completes the registration"})
	default:
		s.tokens(w, r, http.StatusCreated, a)
	}
}

func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	a, err := s.Login(r.Context(), req, clientOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if a.Challenge != nil {
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, a.Challenge)
		return
	}
	s.tokens(w, r, http.StatusOK, a)
}

// tokenBody is the body of refresh and logout; the token may come from the
// cookie instead, and then the body may be empty.
type tokenBody struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Service) refreshToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	var body tokenBody
	if r.ContentLength != 0 {
		if !s.readJSON(w, r, &body) {
			return "", false
		}
	}
	if body.RefreshToken == "" {
		if c, err := r.Cookie(refreshCookieName); err == nil {
			body.RefreshToken = c.Value
		}
	}
	return body.RefreshToken, true
}

func (s *Service) handleRefresh(w http.ResponseWriter, r *http.Request) {
	token, ok := s.refreshToken(w, r)
	if !ok {
		return
	}
	if token == "" {
		s.writeError(w, r, errNoToken("send the refresh token as {\"refresh_token\": ...} or in the abe_refresh cookie"))
		return
	}
	a, err := s.Refresh(r.Context(), token, clientOf(r))
	if err != nil {
		s.setRefreshCookie(w, r, "")
		s.writeError(w, r, err)
		return
	}
	s.tokens(w, r, http.StatusOK, a)
}

func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) {
	token, ok := s.refreshToken(w, r)
	if !ok {
		return
	}
	if err := s.Logout(r.Context(), token, PrincipalFrom(r.Context()), clientOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.setRefreshCookie(w, r, "")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleLogoutAll(w http.ResponseWriter, r *http.Request) {
	if err := s.LogoutAll(r.Context(), PrincipalFrom(r.Context()), clientOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.setRefreshCookie(w, r, "")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleMe(w http.ResponseWriter, r *http.Request) {
	u, err := s.UserByID(r.Context(), PrincipalFrom(r.Context()).UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, u)
}

func (s *Service) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	var req ChangePasswordRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	if err := s.ChangePassword(r.Context(), PrincipalFrom(r.Context()), req, clientOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleForgot(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email string `json:"email"`
	}
	if !s.readJSON(w, r, &req) {
		return
	}
	if err := s.ForgotPassword(r.Context(), req.Email, clientOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "sent_if_registered",
		"detail": "if an account has this email, a reset link is on its way"})
}

type resetBody struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

func (s *Service) handleReset(w http.ResponseWriter, r *http.Request) {
	if isForm(r) {
		s.formReset(w, r)
		return
	}
	var req resetBody
	if !s.readJSON(w, r, &req) {
		return
	}
	if err := s.ResetPassword(r.Context(), req.Token, req.Password, clientOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleVerify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if !s.readJSON(w, r, &req) {
		return
	}
	u, err := s.VerifyEmail(r.Context(), req.Token, clientOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, u)
}

func (s *Service) handleSendVerification(w http.ResponseWriter, r *http.Request) {
	if err := s.SendVerification(r.Context(), PrincipalFrom(r.Context())); err != nil {
		s.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "sent"})
}

func (s *Service) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"keys": s.keys.JWKS()})
}

// page is a list answer.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func queryLimit(r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 50, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 1 && n <= 500
}

func (s *Service) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := EventFilter{UserID: q.Get("user_id"), Type: q.Get("type")}
	var ok bool
	if f.Limit, ok = queryLimit(r); !ok {
		httpx.Error(w, r, http.StatusBadRequest, "limit must be a whole number from 1 to 500")
		return
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				httpx.Error(w, r, http.StatusBadRequest, name+" must be an RFC 3339 time, like 2024-01-31T09:00:00Z")
				return
			}
			*dst = t
		}
	}
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			httpx.Error(w, r, http.StatusBadRequest, "cursor must be the next_cursor of a previous page")
			return
		}
		f.Before = n
	}
	if f.UserID != "" && !isUUID(f.UserID) {
		httpx.Error(w, r, http.StatusBadRequest, "user_id must be a user id (a UUID)")
		return
	}
	events, next, err := s.Events(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, page[Event]{Items: events, NextCursor: next})
}

func (s *Service) handleListUsers(w http.ResponseWriter, r *http.Request) {
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
	users, next, err := s.ListUsers(r.Context(), r.URL.Query().Get("email"), cursor, limit)
	var items []AdminUser
	if err == nil {
		items, err = s.withLockState(r.Context(), users)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, page[AdminUser]{Items: items, NextCursor: next})
}

func (s *Service) handleUnlock(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !isUUID(id) {
		httpx.Error(w, r, http.StatusNotFound, "no such account")
		return
	}
	if err := s.unlock(r.Context(), clientOf(r), id, PrincipalFrom(r.Context()).UserID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleListRoles(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": s.Roles()})
}

func (s *Service) handleGetRole(w http.ResponseWriter, r *http.Request) {
	role, ok := s.roleNamed(chi.URLParam(r, "name"))
	if !ok {
		httpx.Error(w, r, http.StatusNotFound, "no such role")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, role)
}

func (s *Service) handleCreateRole(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name        string   `json:"name"`
		Description string   `json:"description"`
		Permissions []string `json:"permissions"`
		Default     bool     `json:"default"`
	}
	if !s.readJSON(w, r, &req) {
		return
	}
	role, err := s.CreateRole(r.Context(), Role{Name: req.Name, Description: req.Description, Permissions: req.Permissions, Default: req.Default},
		clientOf(r), PrincipalFrom(r.Context()).UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/admin/roles/"+role.Name)
	httpx.WriteJSON(w, http.StatusCreated, role)
}

func (s *Service) handleUpdateRole(w http.ResponseWriter, r *http.Request) {
	var patch RolePatch
	if !s.readJSON(w, r, &patch) {
		return
	}
	role, err := s.UpdateRole(r.Context(), chi.URLParam(r, "name"), patch, clientOf(r), PrincipalFrom(r.Context()).UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, role)
}

func (s *Service) handleDeleteRole(w http.ResponseWriter, r *http.Request) {
	if err := s.DeleteRole(r.Context(), chi.URLParam(r, "name"), clientOf(r), PrincipalFrom(r.Context()).UserID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleUserRoles(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !isUUID(id) {
		httpx.Error(w, r, http.StatusNotFound, "no such account")
		return
	}
	roles, err := s.UserRoles(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"roles": roles})
}

func (s *Service) handleAssignRole(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	var req struct {
		Role string `json:"role"`
	}
	if !s.readJSON(w, r, &req) {
		return
	}
	if !isUUID(id) {
		httpx.Error(w, r, http.StatusNotFound, "no such account")
		return
	}
	if err := s.AssignRole(r.Context(), id, req.Role, clientOf(r), PrincipalFrom(r.Context()).UserID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleRemoveRole(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !isUUID(id) {
		httpx.Error(w, r, http.StatusNotFound, "no such account")
		return
	}
	if err := s.RemoveRole(r.Context(), id, chi.URLParam(r, "role"), clientOf(r), PrincipalFrom(r.Context()).UserID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleTOTPSetup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Restart bool `json:"restart"`
	}
	if r.ContentLength != 0 && !s.readJSON(w, r, &req) {
		return
	}
	setup, err := s.SetupTOTP(r.Context(), PrincipalFrom(r.Context()), req.Restart)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, setup)
}

// codeBody is a body with a code from the authenticator app.
type codeBody struct {
	Code string `json:"code"`
}

func (s *Service) handleTOTPEnable(w http.ResponseWriter, r *http.Request) {
	var req codeBody
	if !s.readJSON(w, r, &req) {
		return
	}
	codes, err := s.EnableTOTP(r.Context(), PrincipalFrom(r.Context()), req.Code, clientOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"enabled": true, "recovery_codes": codes})
}

func (s *Service) handleTOTPDisable(w http.ResponseWriter, r *http.Request) {
	var req DisableTOTPRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	if err := s.DisableTOTP(r.Context(), PrincipalFrom(r.Context()), req, clientOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	var req codeBody
	if !s.readJSON(w, r, &req) {
		return
	}
	codes, err := s.RegenerateRecoveryCodes(r.Context(), PrincipalFrom(r.Context()), req.Code, clientOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"recovery_codes": codes})
}

func (s *Service) handleMFAVerify(w http.ResponseWriter, r *http.Request) {
	var req VerifyMFARequest
	if !s.readJSON(w, r, &req) {
		return
	}
	a, err := s.VerifyMFA(r.Context(), req, clientOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.tokens(w, r, http.StatusOK, a)
}

func (s *Service) handleResetMFA(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !isUUID(id) {
		httpx.Error(w, r, http.StatusNotFound, "no such account")
		return
	}
	if err := s.resetMFA(r.Context(), clientOf(r), id, PrincipalFrom(r.Context()).UserID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
