package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/abe-stack/abe/internal/redistest"
	"github.com/abe-stack/abe/realtime/broker"
)

func TestRefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	login := e.register("ann@example.test")
	user := login.body["user"].(map[string]any)["id"].(string)
	refresh := func(tok string) res {
		return e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": tok}})
	}
	// Three rotations: t0 -> t1 -> t2 -> t3, each a new token.
	chain := []res{login}
	for i := range 3 {
		e.clock.Advance(time.Minute)
		r := refresh(chain[i].str("refresh_token"))
		if r.status != 200 || r.str("refresh_token") == chain[i].str("refresh_token") {
			t.Fatalf("rotation %d: %d %s", i+1, r.status, r.raw)
		}
		chain = append(chain, r)
	}
	head := chain[3]
	// A retry of t2 within the grace window gets the current token t3 back:
	// the family does not branch.
	e.clock.Advance(5 * time.Second)
	retry := refresh(chain[2].str("refresh_token"))
	if retry.status != 200 || retry.str("refresh_token") != head.str("refresh_token") {
		t.Fatalf("retry within grace: %d, got a different token: %v", retry.status, retry.str("refresh_token") != head.str("refresh_token"))
	}
	// After the window, presenting t1 again is theft: the family ends.
	e.clock.Advance(10 * time.Second)
	stolen := refresh(chain[1].str("refresh_token"))
	if stolen.status != 401 || !strings.Contains(stolen.raw, "stolen") {
		t.Fatalf("reuse: %d %s", stolen.status, stolen.raw)
	}
	if r := refresh(head.str("refresh_token")); r.status != 401 {
		t.Errorf("the family's current token survived a reuse: %d", r.status)
	}
	for i, a := range append(chain, retry) {
		if r := e.do(req{method: "GET", path: "/api/auth/me", token: a.str("access_token")}); r.status != 401 {
			t.Errorf("access token %d of the family survived: %d", i, r.status)
		}
	}
	if evs := strings.Join(e.events(user), ","); !strings.HasSuffix(evs, "token_reuse") {
		t.Errorf("events %s", evs)
	}
	// Another login is another family, untouched.
	if r := e.login("ann@example.test", goodPassword); r.status != 200 {
		t.Fatalf("login after reuse: %d", r.status)
	}
}

func TestRefreshFromCookieAndExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.register("ann@example.test")
	r := e.do(req{method: "POST", path: "/api/auth/refresh", header: map[string]string{"Cookie": "abe_refresh=" + a.str("refresh_token")}})
	if r.status != 200 {
		t.Fatalf("refresh from cookie: %d %s", r.status, r.raw)
	}
	// A week of use keeps the session alive; a week of silence ends it.
	tok := r.str("refresh_token")
	for range 6 {
		e.clock.Advance(24 * time.Hour)
		r = e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": tok}})
		if r.status != 200 {
			t.Fatalf("daily refresh: %d %s", r.status, r.raw)
		}
		tok = r.str("refresh_token")
	}
	e.clock.Advance(7*24*time.Hour + time.Second)
	if r := e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": tok}}); r.status != 401 {
		t.Fatalf("expired refresh token: %d", r.status)
	}
	for _, bad := range []any{map[string]string{"refresh_token": "forged"}, map[string]string{"refresh_token": strings.Repeat("x", 1000)}, map[string]string{}} {
		if r := e.do(req{method: "POST", path: "/api/auth/refresh", body: bad}); r.status != 401 {
			t.Errorf("%v: %d", bad, r.status)
		}
	}
}

// TestConcurrentRefreshes checks that a client refreshing from many
// requests at once (tabs, retries) never trips reuse detection.
func TestConcurrentRefreshes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.register("ann@example.test")
	user := a.body["user"].(map[string]any)["id"].(string)
	const n = 20
	got := make([]res, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i] = e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": a.str("refresh_token")}})
		})
	}
	wg.Wait()
	for i, r := range got {
		if r.status != 200 || r.str("refresh_token") != got[0].str("refresh_token") {
			t.Fatalf("refresh %d: %d (same token: %v)", i, r.status, r.str("refresh_token") == got[0].str("refresh_token"))
		}
	}
	if strings.Contains(strings.Join(e.events(user), ","), "token_reuse") {
		t.Fatal("concurrent refreshes were taken for theft")
	}
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: got[n-1].str("access_token")}); r.status != 200 {
		t.Fatalf("after: %d", r.status)
	}
}

func TestLogoutAndLogoutAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.register("ann@example.test")
	b := e.login("ann@example.test", goodPassword)
	c := e.login("ann@example.test", goodPassword)

	r := e.do(req{method: "POST", path: "/api/auth/logout", token: a.str("access_token"), body: map[string]string{"refresh_token": a.str("refresh_token")}})
	if r.status != 204 || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %v", r.status, r.header)
	}
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: a.str("access_token")}); r.status != 401 || !strings.Contains(r.raw, "revoked") {
		t.Errorf("access token after logout: %d %s", r.status, r.raw)
	}
	if r := e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": a.str("refresh_token")}}); r.status != 401 {
		t.Errorf("refresh after logout: %d", r.status)
	}
	// A refresh token of another user cannot end that user's session.
	bob := e.register("bob@example.test")
	if r := e.do(req{method: "POST", path: "/api/auth/logout", token: bob.str("access_token"), body: map[string]string{"refresh_token": b.str("refresh_token")}}); r.status != 204 {
		t.Fatalf("bob's logout: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": b.str("refresh_token")}}); r.status != 200 {
		t.Fatalf("ann's session ended by bob's logout: %d", r.status)
	}
	// Logging out twice, or with a token of nobody, is not an error.
	if r := e.do(req{method: "POST", path: "/api/auth/logout", body: map[string]string{"refresh_token": "nonsense"}}); r.status != 204 {
		t.Errorf("logout with nonsense: %d", r.status)
	}
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: b.str("access_token")}); r.status != 200 {
		t.Fatalf("other session after logout: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/auth/logout-all", token: b.str("access_token")}); r.status != 204 {
		t.Fatalf("logout-all: %d %s", r.status, r.raw)
	}
	for _, s := range []res{b, c} {
		if r := e.do(req{method: "GET", path: "/api/auth/me", token: s.str("access_token")}); r.status != 401 {
			t.Errorf("session after logout-all: %d", r.status)
		}
		if r := e.do(req{method: "POST", path: "/api/auth/refresh", body: map[string]string{"refresh_token": s.str("refresh_token")}}); r.status != 401 {
			t.Errorf("refresh after logout-all: %d", r.status)
		}
	}
}

// TestRevocationReachesOtherNodes runs two services on one database, as two
// abe processes: a logout on one is refused by the other, whether the
// news travels by the tables' NOTIFYs or through Redis, where each node
// publishes its revocations after the commit.
func TestRevocationReachesOtherNodes(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"postgres", "redis"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			bus := func() Bus {
				if via == "postgres" {
					return nil
				}
				b, err := broker.New(context.Background(), broker.Config{Kind: "redis", RedisURL: redistest.URL(t)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { b.Close() })
				return redisBus{b}
			}
			one := newEnv(t, &envOpts{bus: bus()})
			two := newEnv(t, &envOpts{db: one.db, clock: one.clock, bus: bus()})
			a := one.register("ann@example.test")
			tok := a.str("access_token")
			if r := two.do(req{method: "GET", path: "/api/auth/me", token: tok}); r.status != 200 {
				t.Fatalf("node two before logout: %d", r.status)
			}
			drain(two.s.revoked.reloaded)
			if r := one.do(req{method: "POST", path: "/api/auth/logout", token: tok}); r.status != 204 {
				t.Fatal(r.status)
			}
			// Node two reloads when the news arrives.
			select {
			case <-two.s.revoked.reloaded:
			case <-time.After(10 * time.Second):
				t.Fatalf("node two heard nothing through %s", via)
			}
			if r := two.do(req{method: "GET", path: "/api/auth/me", token: tok}); r.status != 401 {
				t.Fatalf("node two after logout: %d", r.status)
			}
		})
	}
}

// redisBus adapts a broker to Bus, as app.go does.
type redisBus struct{ b broker.Broker }

func (rb redisBus) Subscribe(channel string, fn func(payload string, lost bool)) func() {
	return rb.b.Subscribe(channel, func(m broker.Message) { fn(m.Payload, m.Lost) })
}

func (rb redisBus) Publish(ctx context.Context, channel, payload string) error {
	return rb.b.Publish(ctx, channel, payload)
}

func drain(ch chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// forge signs claims as an attacker would.
func forge(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccessTokenForgeries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.register("ann@example.test")
	good := a.str("access_token")
	parsed, _, err := jwt.NewParser().ParseUnverified(good, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	kid := parsed.Header["kid"]
	noneTok := forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid}, claims)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"someone-else","roles":["admin"]}`)) + "." + parts[2]
	expired := jwt.MapClaims{}
	for k, v := range claims {
		expired[k] = v
	}
	expired["exp"] = e.clock.Now().Add(-time.Second).Unix()

	for name, tok := range map[string]string{
		"none algorithm":     noneTok,
		"other secret":       forge(t, jwt.SigningMethodHS256, []byte(strings.Repeat("z", 40)), map[string]any{"kid": kid}, claims),
		"raw secret":         forge(t, jwt.SigningMethodHS256, []byte(strings.Repeat("k", 40)), map[string]any{"kid": kid}, claims),
		"no kid":             forge(t, jwt.SigningMethodHS256, []byte("x"), nil, claims),
		"unknown kid":        forge(t, jwt.SigningMethodHS256, []byte("x"), map[string]any{"kid": "old"}, claims),
		"HS384 on HS256 kid": forge(t, jwt.SigningMethodHS384, []byte("x"), map[string]any{"kid": kid}, claims),
		"tampered payload":   tampered,
		"truncated":          good[:len(good)-10],
		"garbage":            "a.b.c",
		"empty parts":        "..",
		"expired (forged)":   forge(t, jwt.SigningMethodHS256, e.s.keys.signer.sign, map[string]any{"kid": kid}, expired),
	} {
		r := e.do(req{method: "GET", path: "/api/auth/me", token: tok})
		if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	if r := e.do(req{method: "GET", path: "/api/auth/me", header: map[string]string{"Authorization": "Basic abc"}}); r.status != 401 {
		t.Errorf("basic auth: %d", r.status)
	}
	// Real expiry, by the clock.
	e.clock.Advance(15*time.Minute + time.Second)
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: good}); r.status != 401 || !strings.Contains(r.raw, "expired") {
		t.Errorf("expired: %d %s", r.status, r.raw)
	}
}

// TestSignedTokenWithBadClaims: a token that verifies (signed with the
// server's own key) but whose sub, jti or sid is not a UUID is a 401, not
// a query that fails.
func TestSignedTokenWithBadClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	good := e.register("ann@example.test").str("access_token")
	parsed, _, err := jwt.NewParser().ParseUnverified(good, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid := parsed.Header["kid"]
	claims := parsed.Claims.(jwt.MapClaims)
	sub := claims["sub"].(string)
	for _, c := range []struct{ claim, value string }{
		{"sub", "not-a-uuid"},
		{"sub", "42"},
		{"sub", "x' OR '1'='1"},
		{"sub", "{" + sub + "}"},
		{"sub", "urn:uuid:" + sub},
		{"sub", strings.ToUpper(sub)},
		{"sub", "a\x00b"},
		{"jti", "not-a-uuid"},
		{"sid", "not-a-uuid"},
		{"sid", strings.Repeat("f", 5000)},
	} {
		forged := jwt.MapClaims{}
		for k, v := range claims {
			forged[k] = v
		}
		forged[c.claim] = c.value
		tok := forge(t, jwt.SigningMethodHS256, e.s.keys.signer.sign, map[string]any{"kid": kid}, forged)
		for _, q := range []req{
			{method: "GET", path: "/api/auth/me"},
			{method: "POST", path: "/api/auth/logout-all"},
			{method: "POST", path: "/api/auth/mfa/totp/setup"},
		} {
			q.token = tok
			r := e.do(q)
			if r.status != 401 || !strings.Contains(r.str("detail"), "must be UUIDs") {
				t.Errorf("%s=%q on %s %s: %d %s", c.claim, c.value, q.method, q.path, r.status, r.raw)
			}
		}
	}
	// The real token still works.
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: good}); r.status != 200 {
		t.Fatalf("good token: %d %s", r.status, r.raw)
	}
}

func pemOf(t *testing.T, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// TestKeyRotationAndJWKS signs with an Ed25519 key, rotates to another,
// keeps the old one for verification only, then removes it.
func TestKeyRotationAndJWKS(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	clk := newClock()
	pub1, priv1, _ := ed25519.GenerateKey(rand.Reader)
	_, priv2, _ := ed25519.GenerateKey(rand.Reader)
	der1, _ := x509.MarshalPKCS8PrivateKey(priv1)
	der2, _ := x509.MarshalPKCS8PrivateKey(priv2)
	pubDER1, _ := x509.MarshalPKIXPublicKey(pub1)
	indent := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n        ") }
	keys := func(entries ...string) string { return "  keys:\n" + strings.Join(entries, "") }
	k1priv := "    - id: one\n      algorithm: EdDSA\n      private_key: |\n        " + indent(pemOf(t, "PRIVATE KEY", der1)) + "\n"
	k1pub := "    - id: one\n      algorithm: EdDSA\n      public_key: |\n        " + indent(pemOf(t, "PUBLIC KEY", pubDER1)) + "\n"
	k2priv := "    - id: two\n      algorithm: EdDSA\n      private_key: |\n        " + indent(pemOf(t, "PRIVATE KEY", der2)) + "\n"

	first := newEnv(t, &envOpts{db: db, clock: clk, extra: keys(k1priv)})
	tok1 := first.register("ann@example.test").str("access_token")
	jwks := first.do(req{method: "GET", path: "/api/auth/jwks.json"})
	k := jwks.body["keys"].([]any)[0].(map[string]any)
	if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["kid"] != "one" || k["alg"] != "EdDSA" {
		t.Fatalf("jwks %s", jwks.raw)
	}
	// A client can verify the token with the published key alone.
	x, _ := base64.RawURLEncoding.DecodeString(k["x"].(string))
	if _, err := jwt.Parse(tok1, func(*jwt.Token) (any, error) { return ed25519.PublicKey(x), nil }, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithTimeFunc(clk.Now)); err != nil {
		t.Fatalf("verify with the JWK: %v", err)
	}
	// Algorithm confusion: HS256 with the public key bytes as the secret.
	confused := forge(t, jwt.SigningMethodHS256, []byte(pemOf(t, "PUBLIC KEY", pubDER1)), map[string]any{"kid": "one"}, jwt.MapClaims{"sub": "x", "exp": clk.Now().Add(time.Hour).Unix(), "iat": clk.Now().Unix(), "iss": "abe", "jti": "j", "sid": "s"})
	if r := first.do(req{method: "GET", path: "/api/auth/me", token: confused}); r.status != 401 {
		t.Fatalf("algorithm confusion accepted: %d", r.status)
	}

	rotated := newEnv(t, &envOpts{db: db, clock: clk, extra: keys(k2priv, k1pub)})
	if r := rotated.do(req{method: "GET", path: "/api/auth/me", token: tok1}); r.status != 200 {
		t.Fatalf("old token during rotation: %d %s", r.status, r.raw)
	}
	tok2 := rotated.login("ann@example.test", goodPassword).str("access_token")
	if h, _, _ := jwt.NewParser().ParseUnverified(tok2, jwt.MapClaims{}); h.Header["kid"] != "two" {
		t.Fatalf("new tokens are signed with %v", h.Header["kid"])
	}
	if n := len(rotated.do(req{method: "GET", path: "/api/auth/jwks.json"}).body["keys"].([]any)); n != 2 {
		t.Fatalf("jwks during rotation has %d keys", n)
	}
	retired := newEnv(t, &envOpts{db: db, clock: clk, extra: keys(k2priv)})
	if r := retired.do(req{method: "GET", path: "/api/auth/me", token: tok1}); r.status != 401 || !strings.Contains(r.raw, "no longer has") {
		t.Fatalf("token of a removed key: %d %s", r.status, r.raw)
	}
	if r := retired.do(req{method: "GET", path: "/api/auth/me", token: tok2}); r.status != 200 {
		t.Fatalf("token of the current key: %d", r.status)
	}
}

func TestRSAKeyAndConfusion(t *testing.T) {
	t.Parallel()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	e := newEnv(t, &envOpts{extra: "  keys:\n    - id: r1\n      algorithm: RS256\n      private_key: |\n        " +
		strings.ReplaceAll(strings.TrimSpace(pemOf(t, "PRIVATE KEY", der)), "\n", "\n        ") + "\n"})
	tok := e.register("ann@example.test").str("access_token")
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: tok}); r.status != 200 {
		t.Fatalf("RS256: %d", r.status)
	}
	confused := forge(t, jwt.SigningMethodHS256, pubDER, map[string]any{"kid": "r1"}, jwt.MapClaims{"sub": "x", "exp": e.clock.Now().Add(time.Hour).Unix(), "iat": e.clock.Now().Unix(), "iss": "abe", "jti": "j", "sid": "s"})
	if r := e.do(req{method: "GET", path: "/api/auth/me", token: confused}); r.status != 401 {
		t.Fatalf("HS256 with the RSA public key was accepted: %d", r.status)
	}
	jwks := e.do(req{method: "GET", path: "/api/auth/jwks.json"})
	if k := jwks.body["keys"].([]any)[0].(map[string]any); k["kty"] != "RSA" || k["e"] != "AQAB" {
		t.Fatalf("jwks %s", jwks.raw)
	}
}

// FuzzVerifyAccess feeds arbitrary strings to the token check: it must
// never panic, and never accept anything but a token this service signed
// (whose claims are the ones below; the fuzzer cannot forge the HMAC).
func FuzzVerifyAccess(f *testing.F) {
	db := testDB(f)
	s, err := New(context.Background(), db, testConfig(f, ""), &Options{Argon2: &cheapArgon2})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	u := &User{ID: "018f0000-0000-7000-8000-000000000000", Email: "a@b.c", Roles: []string{"user"}}
	good, _, err := s.issueAccess(u, "018f0000-0000-7000-8000-000000000001", time.Now(), false)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{good, "", "a.b.c", "..", good[:len(good)-1], "eyJhbGciOiJub25lIn0.e30.", strings.ToUpper(good)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := s.VerifyAccess(tok)
		if err == nil && (p.UserID != u.ID || p.SessionID != "018f0000-0000-7000-8000-000000000001" || p.Email != u.Email) {
			t.Fatalf("accepted %q as %+v", tok, p)
		}
	})
}

// TestVerifiedTokenCache: a token checked once is not parsed again, but
// its expiry and revocation still apply; a token that differs by one
// character is parsed (and refused) on its own.
func TestVerifiedTokenCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := e.register("ann@example.test").str("access_token")
	p1, err := e.s.VerifyAccess(tok)
	if err != nil {
		t.Fatal(err)
	}
	p1.Roles = append(p1.Roles, "admin") // a caller's change stays its own
	p2, err := e.s.VerifyAccess(tok)
	if err != nil || p2.UserID != p1.UserID || slices.Contains(p2.Roles, "admin") {
		t.Fatalf("second check: %+v %v", p2, err)
	}
	tampered := tok[:len(tok)-2] + map[bool]string{true: "A", false: "B"}[tok[len(tok)-2] != 'A'] + tok[len(tok)-1:]
	if _, err := e.s.VerifyAccess(tampered); err == nil {
		t.Fatal("a tampered token passed")
	}
	if r := e.do(req{method: "POST", path: "/api/auth/logout", token: tok}); r.status != 204 {
		t.Fatal(r.status)
	}
	if _, err := e.s.VerifyAccess(tok); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked token from the cache: %v", err)
	}
	other := e.register("bob@example.test").str("access_token")
	if _, err := e.s.VerifyAccess(other); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(16 * time.Minute)
	if _, err := e.s.VerifyAccess(other); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired token from the cache: %v", err)
	}
}
