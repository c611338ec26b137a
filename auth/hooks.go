package auth

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/abe-stack/abe/internal/httpx"
)

// LoginEvent is a login as a hook sees it.
type LoginEvent struct {
	// Email is the address the client sent, trimmed and lower-cased.
	Email string
	// User is the account. A before-login hook runs once its password
	// was checked (and its email verified, where that is required), before
	// a session or an MFA challenge begins.
	User *User
	// MFA tells that the session began after a second factor
	// (after-login only).
	MFA           bool
	IP, UserAgent string
}

// RegisterEvent is a registration (POST /api/auth/register) as a hook
// sees it.
type RegisterEvent struct {
	// Email is the address the client sent.
	Email string
	// Name is the name the client sent; a before-register hook may
	// change it.
	Name string
	// User is the account made (after-register only).
	User          *User
	IP, UserAgent string
}

// LoginHook and RegisterHook are hooks of logins and registrations.
type (
	LoginHook    func(ctx context.Context, ev *LoginEvent) error
	RegisterHook func(ctx context.Context, ev *RegisterEvent) error
)

// hooks are the login and registration hooks of the service.
type hooks struct {
	mu                            sync.RWMutex
	beforeLogin, afterLogin       []LoginHook
	beforeRegister, afterRegister []RegisterHook
}

// OnBeforeLogin registers fn to run before a login with the right
// password starts a session (or an MFA challenge). An error refuses the
// login: a refusal error (abe.HookError) with the answer it chose, any
// other with a 500, logged. Nothing is recorded as a failed login.
func (s *Service) OnBeforeLogin(fn LoginHook) {
	s.addHook(func(h *hooks) { h.beforeLogin = append(h.beforeLogin, fn) })
}

// OnAfterLogin registers fn to run once a login started a session, with
// or without MFA. Its error is logged; the login stands.
func (s *Service) OnAfterLogin(fn LoginHook) {
	s.addHook(func(h *hooks) { h.afterLogin = append(h.afterLogin, fn) })
}

// OnBeforeRegister registers fn to run before a registration makes its
// account; it may change ev.Name, or refuse as OnBeforeLogin's hooks do.
func (s *Service) OnBeforeRegister(fn RegisterHook) {
	s.addHook(func(h *hooks) { h.beforeRegister = append(h.beforeRegister, fn) })
}

// OnAfterRegister registers fn to run once a registration made its
// account. Its error is logged; the account stands.
func (s *Service) OnAfterRegister(fn RegisterHook) {
	s.addHook(func(h *hooks) { h.afterRegister = append(h.afterRegister, fn) })
}

func (s *Service) addHook(add func(*hooks)) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	add(&s.hooks)
}

func (s *Service) loginHooks(after bool) []LoginHook {
	s.hooks.mu.RLock()
	defer s.hooks.mu.RUnlock()
	if after {
		return s.hooks.afterLogin
	}
	return s.hooks.beforeLogin
}

func (s *Service) registerHooks(after bool) []RegisterHook {
	s.hooks.mu.RLock()
	defer s.hooks.mu.RUnlock()
	if after {
		return s.hooks.afterRegister
	}
	return s.hooks.beforeRegister
}

func (s *Service) beforeLogin(ctx context.Context, u *User, email string, c client) error {
	for _, fn := range s.loginHooks(false) {
		if err := fn(ctx, &LoginEvent{Email: email, User: u, IP: c.ip, UserAgent: c.userAgent}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) afterLogin(ctx context.Context, u *User, mfa bool, c client) {
	for _, fn := range s.loginHooks(true) {
		ev := &LoginEvent{Email: normalizeEmail(u.Email), User: u, MFA: mfa, IP: c.ip, UserAgent: c.userAgent}
		s.logAfter(ctx, "login", safeRun(func() error { return fn(context.WithoutCancel(ctx), ev) }))
	}
}

func (s *Service) beforeRegister(ctx context.Context, req *RegisterRequest, c client) error {
	for _, fn := range s.registerHooks(false) {
		ev := &RegisterEvent{Email: req.Email, Name: req.Name, IP: c.ip, UserAgent: c.userAgent}
		if err := fn(ctx, ev); err != nil {
			return err
		}
		req.Name = ev.Name
	}
	return nil
}

func (s *Service) afterRegister(ctx context.Context, u *User, c client) {
	for _, fn := range s.registerHooks(true) {
		ev := &RegisterEvent{Email: u.Email, Name: u.Name, User: u, IP: c.ip, UserAgent: c.userAgent}
		s.logAfter(ctx, "register", safeRun(func() error { return fn(context.WithoutCancel(ctx), ev) }))
	}
}

func (s *Service) logAfter(ctx context.Context, what string, err error) {
	if err != nil {
		s.log.ErrorContext(ctx, "an after-"+what+" hook failed; the "+what+" stands", slog.String("error", err.Error()),
			slog.String("request_id", httpx.RequestID(ctx)))
	}
}

// safeRun runs an after-hook, its panic an error: what it follows is done.
func safeRun(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn()
}
