package auth

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/schema"
)

func TestRegisterVerifyLoginMe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.do(req{method: "POST", path: "/api/auth/register", body: map[string]string{"email": "Ann@Example.test", "password": goodPassword, "name": "Ann"}})
	if r.status != 201 || r.str("token_type") != "Bearer" || r.str("access_token") == "" || r.str("refresh_token") == "" || r.body["expires_in"] != float64(900) {
		t.Fatalf("register: %d %s", r.status, r.raw)
	}
	user := r.body["user"].(map[string]any)
	if user["email"] != "Ann@Example.test" || user["email_verified"] != false || user["roles"].([]any)[0] != "user" {
		t.Fatalf("user %v", user)
	}
	if c := r.header.Get("Set-Cookie"); !strings.Contains(c, "abe_refresh=") || !strings.Contains(c, "HttpOnly") ||
		!strings.Contains(c, "SameSite=Strict") || !strings.Contains(c, "Path=/api/auth") || !strings.Contains(c, "Secure") {
		t.Errorf("refresh cookie %q", c)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("token answers must not be cached")
	}
	msg := e.mail.next(t)
	if msg.To[0] != "Ann@Example.test" || msg.Subject != "Verify your email" || !strings.Contains(msg.HTML, "Verify my email") {
		t.Fatalf("mail %+v", msg)
	}
	token := tokenIn(t, msg)

	// The link opens a page that verifies, once.
	page := e.do(req{method: "GET", path: "/api/auth/verify-email?token=" + token})
	if page.status != 200 || !strings.Contains(page.raw, "Email verified") || !strings.Contains(page.header.Get("Content-Security-Policy"), "nonce-") {
		t.Fatalf("verify page: %d %s", page.status, page.raw)
	}
	if again := e.do(req{method: "POST", path: "/api/auth/verify-email", body: map[string]string{"token": token}}); again.status != 400 {
		t.Errorf("second use of a verification link: %d", again.status)
	}
	// Emails compare without case.
	login := e.login("ann@example.TEST", goodPassword)
	if login.status != 200 {
		t.Fatalf("login: %d %s", login.status, login.raw)
	}
	me := e.do(req{method: "GET", path: "/api/auth/me", token: login.str("access_token")})
	if me.status != 200 || me.body["email_verified"] != true || me.body["id"] != user["id"] {
		t.Fatalf("me: %d %s", me.status, me.raw)
	}
	if got := strings.Join(e.events(user["id"].(string)), ","); got != "registered,email_verified,login_succeeded" {
		t.Errorf("events: %s", got)
	}
}

func TestRegisterRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.register("taken@example.test")
	long := strings.Repeat("a", 2<<20)
	for _, tc := range []struct {
		name   string
		body   any
		ctype  string
		status int
		want   string
	}{
		{"weak password", map[string]string{"email": "a@example.test", "password": "password1"}, "", 422, "too easy to guess"},
		{"short password", map[string]string{"email": "a@example.test", "password": "x7#"}, "", 422, "at least 8 characters"},
		{"long password", map[string]string{"email": "a@example.test", "password": strings.Repeat("xK9!", 40)}, "", 422, "at most 128"},
		{"password is the email", map[string]string{"email": "zebrafish.walker@example.test", "password": "zebrafish.walker"}, "", 422, "email or name"},
		{"bad email", map[string]string{"email": "not-an-email", "password": goodPassword}, "", 422, "not an email address"},
		{"sql in the email", map[string]string{"email": "' OR 1=1; --@x", "password": goodPassword}, "", 422, "not an email address"},
		{"taken", map[string]string{"email": "TAKEN@example.test", "password": goodPassword}, "", 409, "already exists"},
		{"missing password", map[string]string{"email": "a@example.test"}, "", 422, "password"},
		{"missing email", map[string]string{"password": goodPassword}, "", 422, "is required"},
		{"long name", map[string]string{"email": "a@example.test", "password": goodPassword, "name": strings.Repeat("n", 201)}, "", 422, "name"},
		{"malformed", `{"email": "a@example.test",`, "", 400, "JSON"},
		{"unknown field", map[string]any{"email": "a@example.test", "password": goodPassword, "admin": true}, "", 400, "unknown field"},
		{"wrong type", map[string]any{"email": 42, "password": goodPassword}, "", 422, "email"},
		{"too big", `{"email": "` + long + `"}`, "", 413, "larger"},
		{"not json", "email=a", "text/plain", 415, ""},
		{"empty", "", "", 400, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := req{method: "POST", path: "/api/auth/register", body: tc.body}
			if tc.ctype != "" {
				q.header = map[string]string{"Content-Type": tc.ctype}
			}
			r := e.do(q)
			if r.status != tc.status || r.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(strings.ToLower(r.raw), strings.ToLower(tc.want)) {
				t.Fatalf("got %d %s, want %d with %q", r.status, r.raw, tc.status, tc.want)
			}
		})
	}
	e.mail.none(t, e.s)
}

func TestRegisterWithRequiredVerificationHidesTakenEmails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOpts{extra: "  require_email_verification: true\n"})
	first := e.do(req{method: "POST", path: "/api/auth/register", body: map[string]string{"email": "ann@example.test", "password": goodPassword}})
	second := e.do(req{method: "POST", path: "/api/auth/register", body: map[string]string{"email": "ann@example.test", "password": goodPassword}})
	if first.status != 202 || second.status != 202 || first.raw != second.raw {
		t.Fatalf("new and taken emails answer differently: %d %s / %d %s", first.status, first.raw, second.status, second.raw)
	}
	verify := e.mail.next(t)
	notice := e.mail.next(t)
	if verify.Subject != "Verify your email" || !strings.Contains(notice.Subject, "tried to sign up") {
		t.Fatalf("mails %q, %q", verify.Subject, notice.Subject)
	}
	if r := e.login("ann@example.test", goodPassword); r.status != 403 || !strings.Contains(r.raw, "verify your email") {
		t.Fatalf("login before verifying: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "POST", path: "/api/auth/verify-email", body: map[string]string{"token": tokenIn(t, verify)}}); r.status != 200 {
		t.Fatalf("verify: %d %s", r.status, r.raw)
	}
	if r := e.login("ann@example.test", goodPassword); r.status != 200 {
		t.Fatalf("login after verifying: %d %s", r.status, r.raw)
	}
}

func TestLoginAnswersAlikeForUnknownEmails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.register("ann@example.test")
	wrong := e.login("ann@example.test", "wrong password 123")
	unknown := e.do(req{method: "POST", path: "/api/auth/login", remote: "192.0.2.99:1", body: map[string]string{"email": "bob@example.test", "password": "wrong password 123"}})
	strip := func(r res) string { delete(r.body, "request_id"); return r.str("detail") + r.str("title") }
	if wrong.status != 401 || unknown.status != 401 || strip(wrong) != strip(unknown) {
		t.Fatalf("wrong password %d %s / unknown email %d %s", wrong.status, wrong.raw, unknown.status, unknown.raw)
	}
}

func TestProgressiveDelayAndLockout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ann := e.register("ann@example.test").body["user"].(map[string]any)["id"].(string)
	bad := func(email string) res { return e.login(email, "not the password 1") }

	for _, email := range []string{"ann@example.test", "nobody@example.test"} {
		t.Run(email, func(t *testing.T) {
			wantWaits := []int{1, 2, 4, 8, 16, 30, 30, 30, 30}
			for i := 0; i < 10; i++ {
				if r := bad(email); r.status != 401 {
					t.Fatalf("failure %d: %d %s", i+1, r.status, r.raw)
				}
				if i == 9 {
					break
				}
				// Too early: 429 with the wait, and the password is not
				// even checked.
				early := e.login(email, goodPassword)
				if early.status != 429 || early.header.Get("Retry-After") != strconv.Itoa(wantWaits[i]) {
					t.Fatalf("after %d failures: %d Retry-After %q, want 429 %d", i+1, early.status, early.header.Get("Retry-After"), wantWaits[i])
				}
				e.clock.Advance(time.Duration(wantWaits[i]) * time.Second)
			}
			// Ten failures in 30 minutes lock the account, even with the
			// right password, and attempts during the lock do not extend it.
			for _, step := range []time.Duration{0, 10 * time.Minute, 19 * time.Minute} {
				e.clock.Advance(step)
				r := e.login(email, goodPassword)
				if r.status != 429 || !strings.Contains(r.raw, "locked") {
					t.Fatalf("during the lock: %d %s", r.status, r.raw)
				}
			}
			e.clock.Advance(time.Minute + time.Second)
			if email == "ann@example.test" {
				if r := e.login(email, goodPassword); r.status != 200 {
					t.Fatalf("after the lock: %d %s", r.status, r.raw)
				}
			} else if r := bad(email); r.status != 401 {
				t.Fatalf("after the lock: %d %s", r.status, r.raw)
			}
		})
	}
	evs := strings.Join(e.events(ann), ",")
	if strings.Count(evs, "login_failed") != 10 || strings.Count(evs, "lockout") != 1 {
		t.Errorf("events: %s", evs)
	}
}

func TestAdminUnlock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOpts{extra: "  lockout: { max_failures: 3, delay_base: 1s }\n"})
	adminToken := e.admin()
	ann := e.register("ann@example.test").body["user"].(map[string]any)["id"].(string)
	for i := range 3 {
		if r := e.login("ann@example.test", "nope nope nope 1"); r.status != 401 {
			t.Fatalf("failure %d: %d", i, r.status)
		}
		e.clock.Advance(5 * time.Second)
	}
	if r := e.login("ann@example.test", goodPassword); r.status != 429 {
		t.Fatalf("not locked: %d", r.status)
	}
	// A user cannot unlock; an admin can, and that clears the counters.
	plain := e.register("bob@example.test").str("access_token")
	if r := e.do(req{method: "POST", path: "/api/admin/users/" + ann + "/unlock", token: plain}); r.status != 403 {
		t.Fatalf("unlock by a user: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/admin/users/" + ann + "/unlock"}); r.status != 401 {
		t.Fatalf("unlock anonymously: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/admin/users/" + ann + "/unlock", token: adminToken}); r.status != 204 {
		t.Fatalf("unlock: %d %s", r.status, r.raw)
	}
	if r := e.login("ann@example.test", goodPassword); r.status != 200 {
		t.Fatalf("login after unlock: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "POST", path: "/api/admin/users/not-a-uuid/unlock", token: adminToken}); r.status != 404 {
		t.Errorf("unlock of a bad id: %d", r.status)
	}
	if !strings.Contains(strings.Join(e.events(ann), ","), "lockout,unlocked,login_succeeded") {
		t.Errorf("events: %v", e.events(ann))
	}
}

// TestDelayPerIP: failures behind one address (a NAT, a proxy not in
// trusted_proxies) never delay another account's login until
// auth.lockout.ip_threshold distinct emails have failed from it; past
// that, the address is slowed as an account would be.
func TestDelayPerIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.register("ann@example.test")
	e.register("bob@example.test")
	const nat = "203.0.113.5:9"
	from := func(remote, email, password string) res {
		return e.do(req{method: "POST", path: "/api/auth/login", remote: remote, body: map[string]string{"email": email, "password": password}})
	}
	// One failure, for an email without an account: the next login of
	// another account from the same address goes through at once.
	if r := from(nat, "nobody@example.test", "x y z w 1 2 3"); r.status != 401 {
		t.Fatalf("failure: %d %s", r.status, r.raw)
	}
	if r := from(nat, "bob@example.test", goodPassword); r.status != 200 {
		t.Fatalf("bob after a stranger's failure: %d %s", r.status, r.raw)
	}
	// Ann's typos slow Ann, not Bob, and count once for the address.
	for range 4 {
		if r := from(nat, "ann@example.test", "not my password 1"); r.status != 401 {
			t.Fatalf("ann's typo: %d %s", r.status, r.raw)
		}
		if r := from(nat, "bob@example.test", goodPassword); r.status != 200 {
			t.Fatalf("bob after ann's typo: %d %s", r.status, r.raw)
		}
		if r := from(nat, "ann@example.test", goodPassword); r.status != 429 {
			t.Fatalf("ann right after her typo: %d %s", r.status, r.raw)
		}
		e.clock.Advance(10 * time.Second)
	}
	if r := from(nat, "ann@example.test", goodPassword); r.status != 200 {
		t.Fatalf("ann after waiting: %d %s", r.status, r.raw)
	}

	// Spraying: 2 emails have failed; up to the threshold (20 distinct)
	// nobody waits, each email new.
	for i := 3; i <= schema.DefaultIPThreshold; i++ {
		if r := from(nat, fmt.Sprintf("spray%d@example.test", i), "x y z w 1 2 3"); r.status != 401 {
			t.Fatalf("distinct failure %d: %d %s", i, r.status, r.raw)
		}
	}
	// Past it, the address waits 1 s, 2 s, 4 s, ... at most delay_max,
	// whichever account it tries; a success does not reset it.
	for i, want := range []int{1, 2, 4, 8, 16, 30, 30} {
		email := fmt.Sprintf("more%d@example.test", i)
		if r := from(nat, email, "x y z w 1 2 3"); r.status != 429 || r.header.Get("Retry-After") != strconv.Itoa(want) {
			t.Fatalf("past the threshold +%d: %d Retry-After %q, want 429 %d", i, r.status, r.header.Get("Retry-After"), want)
		}
		if i == 0 {
			if r := from(nat, "bob@example.test", goodPassword); r.status != 429 {
				t.Fatalf("bob from a throttled address: %d %s", r.status, r.raw)
			}
		}
		e.clock.Advance(time.Duration(want) * time.Second)
		if r := from(nat, email, "x y z w 1 2 3"); r.status != 401 {
			t.Fatalf("after waiting %d s: %d %s", want, r.status, r.raw)
		}
	}
	// Another address is not slowed.
	if r := from("203.0.113.6:9", "bob@example.test", goodPassword); r.status != 200 {
		t.Fatalf("other IP: %d %s", r.status, r.raw)
	}
	// The window passes, and so does the throttle.
	e.clock.Advance(5*time.Minute + time.Second)
	if r := from(nat, "bob@example.test", goodPassword); r.status != 200 {
		t.Fatalf("after the delay window: %d %s", r.status, r.raw)
	}
}

// TestIPThreshold: auth.lockout.ip_threshold sets where the address
// starts to wait.
func TestIPThreshold(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOpts{extra: "  lockout: { ip_threshold: 2 }\n"})
	for i, want := range []int{401, 401, 429} {
		r := e.login(fmt.Sprintf("u%d@example.test", i), "x y z w 1 2 3")
		if r.status != want {
			t.Fatalf("attempt %d: %d, want %d", i+1, r.status, want)
		}
	}
}

func TestForgotAndResetPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	first := e.register("ann@example.test")
	other := e.login("ann@example.test", goodPassword)

	// Unknown and known emails answer alike; only the known one gets mail.
	unknown := e.do(req{method: "POST", path: "/api/auth/password/forgot", body: map[string]string{"email": "nobody@example.test"}})
	known := e.do(req{method: "POST", path: "/api/auth/password/forgot", body: map[string]string{"email": "ANN@example.test"}})
	if unknown.status != 202 || known.status != 202 || unknown.raw != known.raw {
		t.Fatalf("forgot: %d %s / %d %s", unknown.status, unknown.raw, known.status, known.raw)
	}
	msg := e.mail.next(t)
	e.mail.none(t, e.s)
	token := tokenIn(t, msg)

	if r := e.do(req{method: "GET", path: "/api/auth/password/reset?token=" + token}); r.status != 200 || !strings.Contains(r.raw, `name="password"`) {
		t.Fatalf("reset page: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "POST", path: "/api/auth/password/reset", body: map[string]string{"token": token, "password": "short"}}); r.status != 422 {
		t.Fatalf("weak new password: %d", r.status)
	}
	newPassword := "a completely different phrase 77"
	if r := e.do(req{method: "POST", path: "/api/auth/password/reset", body: map[string]string{"token": token, "password": newPassword}}); r.status != 204 {
		t.Fatalf("reset: %d %s", r.status, r.raw)
	}
	// The link works once; every session ended; the new password works.
	if r := e.do(req{method: "POST", path: "/api/auth/password/reset", body: map[string]string{"token": token, "password": newPassword + "x"}}); r.status != 400 {
		t.Fatalf("second use: %d", r.status)
	}
	for _, a := range []res{first, other} {
		if r := e.do(req{method: "GET", path: "/api/auth/me", token: a.str("access_token")}); r.status != 401 {
			t.Errorf("access token survived the reset: %d", r.status)
		}
		if r := e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": a.str("refresh_token")}}); r.status != 401 {
			t.Errorf("refresh token survived the reset: %d", r.status)
		}
	}
	if r := e.login("ann@example.test", goodPassword); r.status != 401 {
		t.Errorf("old password still works: %d", r.status)
	}
	e.clock.Advance(time.Second) // the failure above slows the next attempt
	if r := e.login("ann@example.test", newPassword); r.status != 200 || r.body["user"].(map[string]any)["email_verified"] != true {
		t.Errorf("new password: %d %s", r.status, r.raw)
	}

	// Reset links expire.
	e.do(req{method: "POST", path: "/api/auth/password/forgot", body: map[string]string{"email": "ann@example.test"}})
	late := tokenIn(t, e.mail.next(t))
	e.clock.Advance(time.Hour + time.Second)
	if r := e.do(req{method: "POST", path: "/api/auth/password/reset", body: map[string]string{"token": late, "password": "yet another long phrase 99"}}); r.status != 400 || !strings.Contains(r.raw, "expired") {
		t.Fatalf("expired link: %d %s", r.status, r.raw)
	}
}

func TestResetPasswordForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.register("ann@example.test")
	e.do(req{method: "POST", path: "/api/auth/password/forgot", body: map[string]string{"email": "ann@example.test"}})
	token := tokenIn(t, e.mail.next(t))
	form := "token=" + token + "&password=" + strings.ReplaceAll("a long new pass phrase 5", " ", "+")
	r := e.do(req{method: "POST", path: "/api/auth/password/reset", body: form, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
	if r.status != 200 || !strings.Contains(r.raw, "Password changed") {
		t.Fatalf("form: %d %s", r.status, r.raw)
	}
	if r := e.login("ann@example.test", "a long new pass phrase 5"); r.status != 200 {
		t.Fatalf("login: %d", r.status)
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.register("ann@example.test")
	b := e.login("ann@example.test", goodPassword)
	tok := a.str("access_token")
	if r := e.do(req{method: "POST", path: "/api/auth/password", token: tok, body: map[string]string{"current_password": "wrong", "new_password": "new phrase for ann 31"}}); r.status != 422 || !strings.Contains(r.raw, "current_password") {
		t.Fatalf("wrong current: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "POST", path: "/api/auth/password", body: map[string]string{"current_password": goodPassword, "new_password": "new phrase for ann 31"}}); r.status != 401 {
		t.Fatalf("anonymous: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/auth/password", token: tok, body: map[string]string{"current_password": goodPassword, "new_password": "new phrase for ann 31"}}); r.status != 204 {
		t.Fatalf("change: %d %s", r.status, r.raw)
	}
	// This session goes on; the other one ended.
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: tok}); r.status != 200 {
		t.Errorf("own session: %d", r.status)
	}
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: b.str("access_token")}); r.status != 401 {
		t.Errorf("other session: %d", r.status)
	}
	if r := e.login("ann@example.test", "new phrase for ann 31"); r.status != 200 {
		t.Errorf("new password: %d", r.status)
	}
}

func TestRehashOnLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.register("ann@example.test")
	// Make the stored hash use other parameters, as after a cost change.
	old := NewHasher(Argon2Params{Memory: 32, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	h, err := old.Hash(context.Background(), goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(context.Background(), `UPDATE abe.users SET password_hash = $1`, h); err != nil {
		t.Fatal(err)
	}
	if r := e.login("ann@example.test", goodPassword); r.status != 200 {
		t.Fatalf("login: %d", r.status)
	}
	var now string
	if err := e.db.QueryRow(context.Background(), `SELECT password_hash FROM abe.users`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(now, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash not upgraded: %s", now)
	}
}

func TestAdminSecurityEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	adminToken := e.admin()
	ann := e.register("ann@example.test").body["user"].(map[string]any)["id"].(string)
	e.login("ann@example.test", "wrong one two three")
	e.clock.Advance(2 * time.Second)
	e.login("ann@example.test", goodPassword)

	if r := e.do(req{method: "GET", path: "/api/admin/security-events"}); r.status != 401 {
		t.Fatalf("anonymous: %d", r.status)
	}
	bob := e.register("bob@example.test").str("access_token")
	if r := e.do(req{method: "GET", path: "/api/admin/security-events", token: bob}); r.status != 403 || !strings.Contains(r.raw, "security:read") {
		t.Fatalf("user: %d %s", r.status, r.raw)
	}
	r := e.do(req{method: "GET", path: "/api/admin/security-events?type=login_failed&user_id=" + ann, token: adminToken})
	items := r.body["items"].([]any)
	if r.status != 200 || len(items) != 1 {
		t.Fatalf("filtered: %d %s", r.status, r.raw)
	}
	ev := items[0].(map[string]any)
	if ev["ip"] != "192.0.2.10" || ev["type"] != "login_failed" || ev["user_id"] != ann {
		t.Errorf("event %v", ev)
	}
	// Pages follow the cursor to the end.
	seen, cursor := 0, ""
	for {
		r := e.do(req{method: "GET", path: "/api/admin/security-events?limit=2&user_id=" + ann + "&cursor=" + cursor, token: adminToken})
		seen += len(r.body["items"].([]any))
		if cursor = r.str("next_cursor"); cursor == "" {
			break
		}
	}
	if seen != len(e.events(ann)) {
		t.Errorf("paged %d events, want %d", seen, len(e.events(ann)))
	}
	for _, q := range []string{"limit=0", "limit=x", "since=yesterday", "cursor=-1", "user_id=1%3BDROP"} {
		if r := e.do(req{method: "GET", path: "/api/admin/security-events?" + q, token: adminToken}); r.status != 400 {
			t.Errorf("%s: %d", q, r.status)
		}
	}
	users := e.do(req{method: "GET", path: "/api/admin/users?email=example", token: adminToken})
	if users.status != 200 || len(users.body["items"].([]any)) != 3 {
		t.Errorf("users: %d %s", users.status, users.raw)
	}
}

func TestSendVerificationAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := e.register("ann@example.test").str("access_token")
	if r := e.do(req{method: "POST", path: "/api/auth/verify-email/send", token: tok}); r.status != http.StatusAccepted {
		t.Fatalf("send: %d", r.status)
	}
	link := tokenIn(t, e.mail.next(t))
	if r := e.do(req{method: "POST", path: "/api/auth/verify-email", body: map[string]string{"token": link}}); r.status != 200 {
		t.Fatalf("verify: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/auth/verify-email/send", token: tok}); r.status != http.StatusConflict {
		t.Fatalf("send when verified: %d", r.status)
	}
}
