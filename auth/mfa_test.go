package auth

import (
	"context"
	"crypto/cipher"
	"encoding/base32"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// codeAt is what an authenticator app shows for secret (base32) at t.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// amr reads the amr claim of an access token.
func amr(t *testing.T, token string) []string {
	t.Helper()
	var c accessClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		t.Fatal(err)
	}
	return c.AMR
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// enrol turns MFA on for the holder of token and returns the secret and
// the recovery codes.
func (e *env) enrol(token string) (string, []string) {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/api/auth/mfa/totp/setup", token: token})
	if r.status != 200 || !strings.HasPrefix(r.str("otpauth_url"), "otpauth://totp/") || !strings.HasPrefix(r.str("qr_code"), "data:image/png;base64,") {
		e.t.Fatalf("setup: %d %s", r.status, r.raw)
	}
	secret := r.str("secret")
	r = e.do(req{method: "POST", path: "/api/auth/mfa/totp/enable", token: token, body: map[string]string{"code": codeAt(e.t, secret, e.clock.Now())}})
	if r.status != 200 {
		e.t.Fatalf("enable: %d %s", r.status, r.raw)
	}
	var codes []string
	for _, c := range r.body["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	if len(codes) != 10 {
		e.t.Fatalf("recovery codes: %v", codes)
	}
	// The code that enabled is spent: the next one comes a step later.
	e.clock.Advance(30 * time.Second)
	return secret, codes
}

// challenge logs in with the password and returns the mfa_token.
func (e *env) challenge(email string) string {
	e.t.Helper()
	r := e.login(email, goodPassword)
	if r.status != 200 || r.body["mfa_required"] != true || r.str("mfa_token") == "" || r.str("access_token") != "" {
		e.t.Fatalf("login of an MFA account: %d %s", r.status, r.raw)
	}
	return r.str("mfa_token")
}

func (e *env) verify(body map[string]string) res {
	e.t.Helper()
	return e.do(req{method: "POST", path: "/api/auth/mfa/verify", body: body})
}

// TestTOTPVectors runs the SHA-1 vectors of RFC 6238 (appendix B)
// through a login: the seed is the user's secret, the clock is set to
// each published time, and the code (the last 6 of the 8 published
// digits) completes the login.
func TestTOTPVectors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.register("ann@example.test").body["user"].(map[string]any)["id"].(string)
	seed := []byte("12345678901234567890")
	keyID, sealed := e.s.totp.seal(id, seed)
	if _, err := e.db.Exec(context.Background(), `INSERT INTO abe.mfa_totp (user_id, key_id, secret, created_at, enabled_at) VALUES ($1, $2, $3, now(), now())`,
		id, keyID, sealed); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		unix int64
		code string
	}{{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"}, {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"}} {
		e.clock.Set(time.Unix(v.unix, 0).UTC())
		six := v.code[2:]
		wrong := six[:5] + string('0'+(six[5]-'0'+1)%10)
		if r := e.verify(map[string]string{"mfa_token": e.challenge("ann@example.test"), "code": wrong}); r.status != 401 {
			t.Fatalf("t=%d: a wrong code: %d %s", v.unix, r.status, r.raw)
		}
		e.clearAttempts("ann@example.test")
		r := e.verify(map[string]string{"mfa_token": e.challenge("ann@example.test"), "code": six})
		if r.status != 200 || r.str("access_token") == "" {
			t.Fatalf("t=%d code %s: %d %s", v.unix, six, r.status, r.raw)
		}
		if got := amr(t, r.str("access_token")); !slices.Equal(got, []string{"pwd", "otp"}) {
			t.Fatalf("t=%d: amr %v", v.unix, got)
		}
	}
}

// clearAttempts forgets the failed attempts of an email, as an unlock
// does, so a test can move on without waiting out the delay.
func (e *env) clearAttempts(email string) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), `DELETE FROM abe.login_attempts WHERE email = $1`, email); err != nil {
		e.t.Fatal(err)
	}
}

func TestMFALogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ann := e.register("ann@example.test")
	id := ann.body["user"].(map[string]any)["id"].(string)
	secret, recovery := e.enrol(ann.str("access_token"))
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: ann.str("access_token")}); r.body["mfa_enabled"] != true {
		t.Fatalf("me: %s", r.raw)
	}

	// A code completes the login; the session says so on every token,
	// refreshed ones too.
	code := codeAt(t, secret, e.clock.Now())
	r := e.verify(map[string]string{"mfa_token": e.challenge("ann@example.test"), "code": code})
	if r.status != 200 || !slices.Equal(amr(t, r.str("access_token")), []string{"pwd", "otp"}) {
		t.Fatalf("verify: %d %s", r.status, r.raw)
	}
	refreshed := e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": r.str("refresh_token")}})
	if refreshed.status != 200 || !slices.Equal(amr(t, refreshed.str("access_token")), []string{"pwd", "otp"}) {
		t.Fatalf("refresh: %d %s", refreshed.status, refreshed.raw)
	}
	p, err := e.s.VerifyAccess(refreshed.str("access_token"))
	if err != nil || !p.MFA {
		t.Fatalf("principal of a refreshed MFA session: %+v %v", p, err)
	}

	// The same code again, within its window: refused.
	tok := e.challenge("ann@example.test")
	if r := e.verify(map[string]string{"mfa_token": tok, "code": code}); r.status != 401 || !strings.Contains(r.str("detail"), "works once") {
		t.Fatalf("replayed code: %d %s", r.status, r.raw)
	}
	e.clock.Advance(time.Minute) // past the delay of that failure
	// A recovery code works once, however it is typed.
	rc := strings.ToUpper(strings.ReplaceAll(recovery[0], "-", " "))
	if r := e.verify(map[string]string{"mfa_token": tok, "recovery_code": rc}); r.status != 200 || r.str("access_token") == "" {
		t.Fatalf("recovery code: %d %s", r.status, r.raw)
	}
	// The challenge is spent.
	if r := e.verify(map[string]string{"mfa_token": tok, "recovery_code": recovery[1]}); r.status != 401 || !strings.Contains(r.str("detail"), "mfa_token") {
		t.Fatalf("a spent mfa_token: %d %s", r.status, r.raw)
	}
	if r := e.verify(map[string]string{"mfa_token": e.challenge("ann@example.test"), "recovery_code": recovery[0]}); r.status != 401 {
		t.Fatalf("a used recovery code: %d %s", r.status, r.raw)
	}
	e.clock.Advance(time.Minute)

	// New recovery codes need a current code; the old ones stop working.
	token := ann.str("access_token")
	if r := e.do(req{method: "POST", path: "/api/auth/mfa/recovery-codes", token: token, body: map[string]string{"code": "000000"}}); r.status != 401 {
		t.Fatalf("regenerate with a wrong code: %d %s", r.status, r.raw)
	}
	e.clock.Advance(time.Minute)
	r = e.do(req{method: "POST", path: "/api/auth/mfa/recovery-codes", token: token, body: map[string]string{"code": codeAt(t, secret, e.clock.Now())}})
	if r.status != 200 || len(r.body["recovery_codes"].([]any)) != 10 {
		t.Fatalf("regenerate: %d %s", r.status, r.raw)
	}
	fresh := r.body["recovery_codes"].([]any)[0].(string)
	if r := e.verify(map[string]string{"mfa_token": e.challenge("ann@example.test"), "recovery_code": recovery[2]}); r.status != 401 {
		t.Fatalf("an old recovery code after regeneration: %d %s", r.status, r.raw)
	}
	e.clock.Advance(time.Minute)
	if r := e.verify(map[string]string{"mfa_token": e.challenge("ann@example.test"), "recovery_code": fresh}); r.status != 200 {
		t.Fatalf("a new recovery code: %d %s", r.status, r.raw)
	}

	// Disabling needs the password and a code.
	e.clock.Advance(time.Minute)
	disable := func(body map[string]string) res {
		return e.do(req{method: "POST", path: "/api/auth/mfa/totp/disable", token: token, body: body})
	}
	if r := disable(map[string]string{"password": "wrong password entirely", "code": codeAt(t, secret, e.clock.Now())}); r.status != 403 {
		t.Fatalf("disable with a wrong password: %d %s", r.status, r.raw)
	}
	if r := disable(map[string]string{"password": goodPassword}); r.status != 422 {
		t.Fatalf("disable without a code: %d %s", r.status, r.raw)
	}
	if r := disable(map[string]string{"password": goodPassword, "code": codeAt(t, secret, e.clock.Now())}); r.status != 204 {
		t.Fatalf("disable: %d %s", r.status, r.raw)
	}
	if r := e.login("ann@example.test", goodPassword); r.status != 200 || r.str("access_token") == "" || !slices.Equal(amr(t, r.str("access_token")), []string{"pwd"}) {
		t.Fatalf("login after disable: %d %s", r.status, r.raw)
	}
	evs := e.events(id)
	for _, want := range []string{EventMFAEnabled, EventMFAFailed, EventRecoveryCodeUsed, EventRecoveryCodesMade, EventMFADisabled} {
		if !slices.Contains(evs, want) {
			t.Errorf("no %s event in %v", want, evs)
		}
	}
}

func TestMFABadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ann := e.register("ann@example.test")
	token := ann.str("access_token")
	post := func(path string, body any) res {
		return e.do(req{method: "POST", path: path, token: token, body: body})
	}
	if r := post("/api/auth/mfa/totp/enable", map[string]string{"code": "123456"}); r.status != 409 || !strings.Contains(r.str("detail"), "setup") {
		t.Fatalf("enable without setup: %d %s", r.status, r.raw)
	}
	first := post("/api/auth/mfa/totp/setup", nil)
	if r := post("/api/auth/mfa/totp/setup", nil); r.status != 409 || !strings.Contains(r.str("detail"), "restart") {
		t.Fatalf("setup twice: %d %s", r.status, r.raw)
	}
	for _, code := range []string{"", "12345", "1234567", "abcdef", "12 34 5", strings.Repeat("1", 5000)} {
		r := post("/api/auth/mfa/totp/enable", map[string]string{"code": code})
		if r.status != 422 {
			t.Errorf("enable with code %.20q: %d %s", code, r.status, r.raw)
		}
	}
	if r := post("/api/auth/mfa/totp/enable", map[string]any{"code": 123456}); r.status != 400 && r.status != 422 {
		t.Errorf("a code that is a number: %d %s", r.status, r.raw)
	}
	// None of that changed the pending secret: the first one enables.
	if r := post("/api/auth/mfa/totp/enable", map[string]string{"code": codeAt(t, first.str("secret"), e.clock.Now())}); r.status != 200 {
		t.Fatalf("enable with the first setup's code: %d %s", r.status, r.raw)
	}
	if r := post("/api/auth/mfa/totp/setup", nil); r.status != 409 || !strings.Contains(r.str("detail"), "already on") {
		t.Fatalf("setup when enabled: %d %s", r.status, r.raw)
	}
	e.clock.Advance(time.Minute)

	tok := e.challenge("ann@example.test")
	for _, c := range []struct {
		body   map[string]string
		status int
	}{
		{map[string]string{"code": "123456"}, 422},
		{map[string]string{"mfa_token": tok}, 422},
		{map[string]string{"mfa_token": tok, "code": "123456", "recovery_code": "abcde-fghij"}, 422},
		{map[string]string{"mfa_token": tok, "recovery_code": "not a code!"}, 422},
		{map[string]string{"mfa_token": tok, "recovery_code": strings.Repeat("a", 300)}, 422},
		{map[string]string{"mfa_token": "forged", "code": "123456"}, 401},
		{map[string]string{"mfa_token": strings.Repeat("x", 500), "code": "123456"}, 401},
	} {
		if r := e.verify(c.body); r.status != c.status {
			t.Errorf("verify %v: %d %s", c.body, r.status, r.raw)
		}
	}
	// Malformed input was no attempt: the challenge still works.
	secret := first.str("secret")
	if r := e.verify(map[string]string{"mfa_token": tok, "code": codeAt(t, secret, e.clock.Now())}); r.status != 200 {
		t.Fatalf("the challenge after malformed input: %d %s", r.status, r.raw)
	}

	// An expired challenge.
	e.clock.Advance(time.Minute)
	old := e.challenge("ann@example.test")
	e.clock.Advance(6 * time.Minute)
	if r := e.verify(map[string]string{"mfa_token": old, "code": codeAt(t, secret, e.clock.Now())}); r.status != 401 || !strings.Contains(r.str("detail"), "expired") {
		t.Fatalf("an expired challenge: %d %s", r.status, r.raw)
	}

	// A challenge of another user is no key to this one: Bob's code does
	// not complete Ann's login.
	bob := e.register("bob@example.test")
	e.clock.Advance(time.Minute)
	bobSecret, _ := e.enrol(bob.str("access_token"))
	annTok := e.challenge("ann@example.test")
	if r := e.verify(map[string]string{"mfa_token": annTok, "code": codeAt(t, bobSecret, e.clock.Now())}); r.status != 401 {
		t.Fatalf("Bob's code on Ann's challenge: %d %s", r.status, r.raw)
	}

	// A challenge ends after 5 wrong codes, even with the delay waited out.
	e.clock.Advance(time.Minute)
	tok = e.challenge("ann@example.test")
	for i := range 5 {
		e.clock.Advance(40 * time.Second)
		r := e.verify(map[string]string{"mfa_token": tok, "code": "000000"})
		if r.status != 401 {
			t.Fatalf("wrong code %d: %d %s", i, r.status, r.raw)
		}
	}
	e.clock.Advance(40 * time.Second)
	if r := e.verify(map[string]string{"mfa_token": tok, "code": codeAt(t, secret, e.clock.Now())}); r.status != 401 || !strings.Contains(r.str("detail"), "mfa_token") {
		t.Fatalf("a challenge after 5 wrong codes: %d %s", r.status, r.raw)
	}
}

// TestMFAThrottled: wrong codes are failed logins of the account: they
// slow the next attempt and lock it, right code or not.
func TestMFAThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOpts{extra: "  lockout: { max_failures: 3 }\n"})
	ann := e.register("ann@example.test")
	secret, _ := e.enrol(ann.str("access_token"))
	tok := e.challenge("ann@example.test")
	if r := e.verify(map[string]string{"mfa_token": tok, "code": "000000"}); r.status != 401 {
		t.Fatal(r.status, r.raw)
	}
	r := e.verify(map[string]string{"mfa_token": tok, "code": codeAt(t, secret, e.clock.Now())})
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("a code right after a wrong one: %d %s", r.status, r.raw)
	}
	for range 2 {
		e.clock.Advance(10 * time.Second)
		if r := e.verify(map[string]string{"mfa_token": tok, "code": "000000"}); r.status != 401 {
			t.Fatal(r.status, r.raw)
		}
	}
	e.clock.Advance(time.Minute)
	if r := e.verify(map[string]string{"mfa_token": tok, "code": codeAt(t, secret, e.clock.Now())}); r.status != 429 || !strings.Contains(r.str("detail"), "locked") {
		t.Fatalf("the right code on a locked account: %d %s", r.status, r.raw)
	}
}

// TestMFASetupMistake: a wrong code while enabling TOTP is a signed-in
// user's typo, not a failed login: the right code right after it works,
// and so does the next login, without waiting. A right code on disable or
// recovery-codes resets the failures a wrong one counted.
func TestMFASetupMistake(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ann := e.register("ann@example.test")
	token := ann.str("access_token")
	r := e.do(req{method: "POST", path: "/api/auth/mfa/totp/setup", token: token})
	if r.status != 200 {
		t.Fatalf("setup: %d %s", r.status, r.raw)
	}
	secret := r.str("secret")
	for range 3 {
		if r := e.do(req{method: "POST", path: "/api/auth/mfa/totp/enable", token: token, body: map[string]string{"code": "000000"}}); r.status != 401 {
			t.Fatalf("enable with a wrong code: %d %s", r.status, r.raw)
		}
	}
	if r := e.do(req{method: "POST", path: "/api/auth/mfa/totp/enable", token: token, body: map[string]string{"code": codeAt(t, secret, e.clock.Now())}}); r.status != 200 {
		t.Fatalf("enable with the right code right after wrong ones: %d %s", r.status, r.raw)
	}
	e.clock.Advance(30 * time.Second) // the enabling code is spent
	tok := e.challenge("ann@example.test")
	if r := e.verify(map[string]string{"mfa_token": tok, "code": codeAt(t, secret, e.clock.Now())}); r.status != 200 {
		t.Fatalf("the login after the setup: %d %s", r.status, r.raw)
	}
	if evs := strings.Join(e.events(ann.body["user"].(map[string]any)["id"].(string)), ","); strings.Count(evs, EventMFAFailed) != 3 || strings.Contains(evs, EventLoginFailed) {
		t.Errorf("events: %s", evs)
	}

	// A wrong code on recovery-codes counts (it guards the factor), and
	// the right one resets it: the next login does not wait.
	e.clock.Advance(30 * time.Second)
	if r := e.do(req{method: "POST", path: "/api/auth/mfa/recovery-codes", token: token, body: map[string]string{"code": "000000"}}); r.status != 401 {
		t.Fatalf("recovery-codes with a wrong code: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "POST", path: "/api/auth/mfa/recovery-codes", token: token, body: map[string]string{"code": codeAt(t, secret, e.clock.Now())}}); r.status != 429 {
		t.Fatalf("recovery-codes right after a wrong code: %d %s", r.status, r.raw)
	}
	e.clock.Advance(time.Second)
	if r := e.do(req{method: "POST", path: "/api/auth/mfa/recovery-codes", token: token, body: map[string]string{"code": codeAt(t, secret, e.clock.Now())}}); r.status != 200 {
		t.Fatalf("recovery-codes with the right code: %d %s", r.status, r.raw)
	}
	e.clock.Advance(30 * time.Second)
	tok = e.challenge("ann@example.test")
	if r := e.verify(map[string]string{"mfa_token": tok, "code": "000000"}); r.status != 401 {
		t.Fatalf("a wrong code: %d %s", r.status, r.raw)
	}
	// One failure since the last success: 1 s, not 2 s.
	if r := e.verify(map[string]string{"mfa_token": tok, "code": codeAt(t, secret, e.clock.Now())}); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("after one wrong code: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}

// TestMFASecretsAtRest: the table holds no secret in the clear, a
// database alone (another auth.secret) cannot use it, and the keys of
// auth.mfa.encryption_keys rotate.
func TestMFASecretsAtRest(t *testing.T) {
	t.Parallel()
	k1 := "  mfa:\n    encryption_keys:\n      - { id: k1, key: \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\" }\n"
	k2k1 := "  mfa:\n    encryption_keys:\n      - { id: k2, key: \"ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\" }\n      - { id: k1, key: \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\" }\n"
	one := newEnv(t, &envOpts{extra: k1})
	ann := one.register("ann@example.test")
	id := ann.body["user"].(map[string]any)["id"].(string)
	secret, _ := one.enrol(ann.str("access_token"))
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	keyOf := func() string {
		var keyID string
		var stored []byte
		if err := one.db.QueryRow(context.Background(), `SELECT key_id, secret FROM abe.mfa_totp WHERE user_id = $1`, id).Scan(&keyID, &stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(stored), string(raw)) || strings.Contains(string(stored), secret) {
			t.Fatal("the TOTP secret is stored in the clear")
		}
		return keyID
	}
	if k := keyOf(); k != "k1" {
		t.Fatalf("sealed with %q", k)
	}
	// A node with k2 first still opens k1's secrets, and seals them again
	// under k2 when they are used.
	two := newEnv(t, &envOpts{extra: k2k1, db: one.db, clock: one.clock})
	if r := two.verify(map[string]string{"mfa_token": two.challenge("ann@example.test"), "code": codeAt(t, secret, one.clock.Now())}); r.status != 200 {
		t.Fatalf("login on the rotating node: %d %s", r.status, r.raw)
	}
	if k := keyOf(); k != "k2" {
		t.Fatalf("after use on the rotating node, sealed with %q", k)
	}
	// Someone with the database and another secret: the code check fails
	// closed (a 500, logged), it never passes.
	three := newEnv(t, &envOpts{db: one.db, clock: one.clock})
	three.s.totp.aeads = map[string]cipher.AEAD{secretKeyID: three.s.totp.aeads[secretKeyID]}
	one.clock.Advance(time.Minute)
	if r := three.verify(map[string]string{"mfa_token": three.challenge("ann@example.test"), "code": codeAt(t, secret, one.clock.Now())}); r.status == 200 {
		t.Fatalf("a node without the key completed the login: %s", r.raw)
	}
}

// TestRequireMFAForRoles: an admin who logged in with a password alone
// gets no admin permission; with a code, they do.
func TestRequireMFAForRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOpts{requireMFA: []string{"admin"}})
	pwOnly := e.admin()
	if r := e.do(req{method: "GET", path: "/api/admin/users", token: pwOnly}); r.status != http.StatusForbidden {
		t.Fatalf("admin without MFA: %d %s", r.status, r.raw)
	}
	secret, _ := e.enrol(pwOnly)
	r := e.verify(map[string]string{"mfa_token": e.challenge("root@example.test"), "code": codeAt(t, secret, e.clock.Now())})
	if r.status != 200 {
		t.Fatal(r.status, r.raw)
	}
	if r := e.do(req{method: "GET", path: "/api/admin/users", token: r.str("access_token")}); r.status != 200 {
		t.Fatalf("admin with MFA: %d %s", r.status, r.raw)
	}
}

// TestResetMFA: an administrator clears the factor of a user who lost the
// device; the user's sessions end and the password alone logs in again.
func TestResetMFA(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := e.admin()
	ann := e.register("ann@example.test")
	id := ann.body["user"].(map[string]any)["id"].(string)
	e.enrol(ann.str("access_token"))
	if r := e.do(req{method: "DELETE", path: "/api/admin/users/" + id + "/mfa", token: ann.str("access_token")}); r.status != 403 {
		t.Fatalf("reset by the user: %d", r.status)
	}
	if r := e.do(req{method: "DELETE", path: "/api/admin/users/" + id + "/mfa", token: admin}); r.status != 204 {
		t.Fatalf("reset: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "DELETE", path: "/api/admin/users/" + id + "/mfa", token: admin}); r.status != 409 {
		t.Fatalf("reset twice: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: ann.str("access_token")}); r.status != 401 {
		t.Fatalf("the old session after a reset: %d", r.status)
	}
	if r := e.login("ann@example.test", goodPassword); r.status != 200 || r.str("access_token") == "" {
		t.Fatalf("login after reset: %d %s", r.status, r.raw)
	}
	evs, _, err := e.s.Events(context.Background(), EventFilter{UserID: id, Type: EventMFADisabled, Limit: 10})
	if err != nil || len(evs) != 1 || evs[0].Details["reset"] != true {
		t.Fatalf("reset event: %+v %v", evs, err)
	}
}
