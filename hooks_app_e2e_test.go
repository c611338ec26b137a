package abe_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/pquerna/otp/totp"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
)

// TestAuthHooks: before-register refuses or renames, after-register sees
// the account; before-login runs only once the password was right and
// refuses with its own answer (a plain error is a generic 500);
// after-login sees the session's start.
func TestAuthHooks(t *testing.T) {
	t.Parallel()
	w, logs := recordHookWorld(t, nil)
	var mu sync.Mutex
	var seen []string
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, s)
	}
	w.app.OnBeforeRegister(func(_ context.Context, ev *auth.RegisterEvent) error {
		if !strings.HasSuffix(ev.Email, "@x.test") {
			return &abe.HookError{Status: http.StatusForbidden, Code: "domain_closed", Message: "registration is open to x.test addresses only"}
		}
		ev.Name = strings.ToUpper(ev.Name)
		return nil
	})
	w.app.OnAfterRegister(func(_ context.Context, ev *auth.RegisterEvent) error {
		note("registered " + ev.User.Email + " " + ev.User.Name)
		return errors.New("after-register failure")
	})
	w.app.OnBeforeLogin(func(_ context.Context, ev *auth.LoginEvent) error {
		switch ev.User.Email {
		case carol:
			return abe.Refuse(http.StatusForbidden, "this account is suspended")
		case "dave@x.test":
			return errors.New("login hook secret detail")
		}
		return nil
	})
	w.app.OnAfterLogin(func(_ context.Context, ev *auth.LoginEvent) error {
		note("login " + ev.User.Email)
		return nil
	})
	pass := "long enough pass phrase 9"

	r := w.do("", "POST", "/api/auth/register", map[string]string{"email": "eve@evil.test", "password": pass, "name": "eve"}, nil)
	if r.status != 403 || !strings.HasSuffix(r.str("type"), "/domain_closed") || r.str("detail") != "registration is open to x.test addresses only" {
		t.Fatalf("refused registration: %d %s", r.status, r.raw)
	}
	if _, err := w.app.Auth().UserByEmail(context.Background(), "eve@evil.test"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("the refused registration made an account: %v", err)
	}
	r = w.mustDo("", "POST", "/api/auth/register", map[string]string{"email": "dave@x.test", "password": pass, "name": "dave"}, 201)
	if r.body["user"].(map[string]any)["name"] != "DAVE" {
		t.Fatalf("the hook's name: %s", r.raw)
	}

	if r := w.do("", "POST", "/api/auth/login", map[string]string{"email": carol, "password": pass}, nil); r.status != 403 || r.str("detail") != "this account is suspended" || r.str("access_token") != "" {
		t.Fatalf("carol, refused: %d %s", r.status, r.raw)
	}
	// A wrong password never reaches the hook.
	if r := w.do("", "POST", "/api/auth/login", map[string]string{"email": carol, "password": "wrong password here 1"}, nil); r.status != 401 {
		t.Fatalf("carol, wrong password: %d %s", r.status, r.raw)
	}
	if r := w.do("", "POST", "/api/auth/login", map[string]string{"email": "dave@x.test", "password": pass}, nil); r.status != 500 || strings.Contains(r.raw, "secret") {
		t.Fatalf("dave, a plain error: %d %s", r.status, r.raw)
	}
	w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": ann, "password": pass}, 200)
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, "; "); got != "registered dave@x.test DAVE; login "+ann {
		t.Fatalf("after-hooks saw %q", got)
	}
	for _, want := range []string{"login hook secret detail", "after-register failure"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("%q was not logged:\n%s", want, logs.String())
		}
	}
}

// TestCustomRoutes: a route of Options.Routes reads and writes as its
// caller, with the caller's rules, and several writes in one transaction.
func TestCustomRoutes(t *testing.T) {
	t.Parallel()
	var app *abe.App
	opts := &abe.Options{Routes: func(r chi.Router) {
		r.Get("/api/mine", func(w http.ResponseWriter, r *http.Request) {
			recs, err := app.Records(r).List(r.Context(), "posts", abe.ListQuery{Sort: "title"})
			if err != nil {
				app.WriteError(w, r, err)
				return
			}
			var titles []string
			for _, rec := range recs {
				titles = append(titles, rec["title"].(string))
			}
			who := "anonymous"
			if p := auth.PrincipalFrom(r.Context()); p != nil {
				who = p.Email
			}
			writeJSON(w, map[string]any{"who": who, "titles": titles})
		})
		r.Post("/api/posts/{id}/rename", func(w http.ResponseWriter, r *http.Request) {
			rec, err := app.Records(r).Update(r.Context(), "posts", chi.URLParam(r, "id"), map[string]any{"title": "renamed"})
			if err != nil {
				app.WriteError(w, r, err)
				return
			}
			writeJSON(w, rec)
		})
		r.Post("/api/pair", func(w http.ResponseWriter, r *http.Request) {
			p := auth.PrincipalFrom(r.Context())
			if p == nil {
				app.WriteError(w, r, abe.Refuse(http.StatusUnauthorized, "log in first"))
				return
			}
			err := app.Records(r).Tx(r.Context(), func(ctx context.Context, rs *abe.Records) error {
				if _, err := rs.Create(ctx, "posts", map[string]any{"title": "one", "slug": "one", "owner": p.UserID}); err != nil {
					return err
				}
				// The second is invalid (slug is required): neither is kept.
				_, err := rs.Create(ctx, "posts", map[string]any{"title": "two", "owner": p.UserID})
				return err
			})
			app.WriteError(w, r, err)
		})
	}}
	w, _ := recordHookWorld(t, opts)
	app = w.app
	posts := "/api/collections/posts/records"
	id := w.mustDo(bob, "POST", posts, map[string]any{"title": "b", "slug": "b", "owner": w.ids[bob]}, 201).str("id")
	w.mustDo(bob, "POST", posts, map[string]any{"title": "a", "slug": "a", "owner": w.ids[bob]}, 201)

	if r := w.mustDo(bob, "GET", "/api/mine", nil, 200); r.str("who") != bob || strings.Join(toStrings(r.body["titles"]), ",") != "a,b" {
		t.Fatalf("bob's list: %s", r.raw)
	}
	for _, who := range []string{ann, ""} {
		if r := w.mustDo(who, "GET", "/api/mine", nil, 200); r.body["titles"] != nil {
			t.Fatalf("%q lists bob's posts: %s", who, r.raw)
		}
	}
	if r := w.do(ann, "POST", "/api/posts/"+id+"/rename", nil, nil); r.status != 404 {
		t.Fatalf("ann renames bob's post: %d %s", r.status, r.raw)
	}
	if r := w.mustDo(bob, "POST", "/api/posts/"+id+"/rename", nil, 200); r.str("title") != "renamed" || r.body["version"] != 2.0 {
		t.Fatalf("bob renames: %s", r.raw)
	}
	if r := w.do(bob, "POST", "/api/pair", nil, nil); r.status != 422 || !strings.Contains(r.raw, "slug") {
		t.Fatalf("pair: %d %s", r.status, r.raw)
	}
	if r := w.do("", "POST", "/api/pair", nil, nil); r.status != 401 {
		t.Fatalf("pair, anonymous: %d %s", r.status, r.raw)
	}
	if n, _ := w.count("posts"); n != 2 {
		t.Fatalf("%d posts after the failed pair, want 2", n)
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, it := range l {
		s, _ := it.(string)
		out = append(out, s)
	}
	return out
}

// TestEvery: a periodic task of the embedding program, registered after
// New, runs through the job queue.
func TestEvery(t *testing.T) {
	t.Parallel()
	w, _ := recordHookWorld(t, nil)
	ran := make(chan struct{}, 1)
	if err := w.app.Every("tick", time.Hour, func(ctx context.Context) error {
		_, err := w.app.System().Create(ctx, "audit", map[string]any{"action": "tick"})
		select {
		case ran <- struct{}{}:
		default:
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(30 * time.Second):
		t.Fatal("the periodic task did not run")
	}
	if err := w.app.Every("tick", time.Hour, func(context.Context) error { return nil }); err == nil {
		t.Fatal("a task name was taken twice")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) //nolint:errcheck // a test route
}

// TestLoginHooksMFA: with MFA, before-login runs at the password, and
// after-login once the second factor started the session.
func TestLoginHooksMFA(t *testing.T) {
	t.Parallel()
	w, _ := recordHookWorld(t, nil)
	var mu sync.Mutex
	var seen []string
	w.app.OnBeforeLogin(func(_ context.Context, ev *auth.LoginEvent) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, "before "+ev.Email)
		return nil
	})
	w.app.OnAfterLogin(func(_ context.Context, ev *auth.LoginEvent) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("after %s mfa=%v", ev.Email, ev.MFA))
		return nil
	})
	setup := w.mustDo(bob, "POST", "/api/auth/mfa/totp/setup", nil, 200)
	code, err := totp.GenerateCode(setup.str("secret"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	recovery := w.mustDo(bob, "POST", "/api/auth/mfa/totp/enable", map[string]string{"code": code}, 200).body["recovery_codes"].([]any)
	r := w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": bob, "password": "long enough pass phrase 9"}, 200)
	mu.Lock()
	if got := strings.Join(seen, "; "); got != "before "+bob {
		t.Fatalf("after the password: %q", got)
	}
	mu.Unlock()
	w.mustDo("", "POST", "/api/auth/mfa/verify", map[string]string{"mfa_token": r.str("mfa_token"), "recovery_code": recovery[0].(string)}, 200)
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, "; "); got != "before "+bob+"; after "+bob+" mfa=true" {
		t.Fatalf("after the second factor: %q", got)
	}
}
