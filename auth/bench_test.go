package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/abe-stack/abe/internal/httpx"
)

// benchEnv is a service with the production Argon2 cost and the real
// clock.
func benchEnv(b *testing.B) *env {
	b.Helper()
	db := testDB(b)
	s, err := New(context.Background(), db, testConfig(b, ""), &Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	r := chi.NewRouter()
	r.Use(httpx.WithRequestID, httpx.ClientIP(nil), s.Authenticate)
	s.Routes(r)
	return &env{s: s, db: db, h: r}
}

func serve(h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	r.RemoteAddr = "192.0.2.1:1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// BenchmarkLoginOverhead compares a whole login request (JSON, throttle
// queries, user lookup, Argon2id, attempt and event rows, session, token)
// with the Argon2id verification alone, alternating the two so that a noisy
// machine affects both alike. overhead_% is what the rest of the request
// adds to the hash.
func BenchmarkLoginOverhead(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	if _, err := e.s.CreateUser(ctx, CreateUserOpts{Email: "bench@example.test", Password: goodPassword}); err != nil {
		b.Fatal(err)
	}
	u, err := e.s.UserByEmail(ctx, "bench@example.test")
	if err != nil {
		b.Fatal(err)
	}
	body := `{"email":"bench@example.test","password":"` + goodPassword + `"}`
	var login, hash time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if w := serve(e.h, "POST", "/api/auth/login", "", body); w.Code != 200 {
			b.Fatalf("login: %d %s", w.Code, w.Body)
		}
		login += time.Since(start)
		start = time.Now()
		if ok, _, err := e.s.hasher.Verify(ctx, goodPassword, u.passwordHash); !ok || err != nil {
			b.Fatal("verify failed")
		}
		hash += time.Since(start)
	}
	b.ReportMetric(float64(login.Microseconds())/float64(b.N)/1000, "login_ms/op")
	b.ReportMetric(float64(hash.Microseconds())/float64(b.N)/1000, "argon2_ms/op")
	b.ReportMetric(100*float64(login-hash)/float64(hash), "overhead_%")
}

// BenchmarkUnknownEmail is a login for an email without an account: it
// must cost what a wrong password costs (compare with
// BenchmarkWrongPassword).
func BenchmarkUnknownEmail(b *testing.B) {
	e := benchEnv(b)
	body := `{"email":"nobody@example.test","password":"wrong password 1"}`
	for b.Loop() {
		// Each attempt from a new address and email, so no delay applies.
		e.s.db.Exec(context.Background(), `DELETE FROM abe.login_attempts`) //nolint:errcheck // benchmark setup
		if w := serve(e.h, "POST", "/api/auth/login", "", body); w.Code != 401 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkWrongPassword is a failed login for an existing account.
func BenchmarkWrongPassword(b *testing.B) {
	e := benchEnv(b)
	if _, err := e.s.CreateUser(context.Background(), CreateUserOpts{Email: "bench@example.test", Password: goodPassword}); err != nil {
		b.Fatal(err)
	}
	body := `{"email":"bench@example.test","password":"wrong password 1"}`
	for b.Loop() {
		e.s.db.Exec(context.Background(), `DELETE FROM abe.login_attempts`) //nolint:errcheck // benchmark setup
		if w := serve(e.h, "POST", "/api/auth/login", "", body); w.Code != 401 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkRefresh rotates a refresh token through the HTTP handler.
func BenchmarkRefresh(b *testing.B) {
	e := benchEnv(b)
	if _, err := e.s.CreateUser(context.Background(), CreateUserOpts{Email: "bench@example.test", Password: goodPassword}); err != nil {
		b.Fatal(err)
	}
	a, err := e.s.Login(context.Background(), LoginRequest{Email: "bench@example.test", Password: goodPassword}, client{ip: "192.0.2.1"})
	if err != nil {
		b.Fatal(err)
	}
	token := a.RefreshToken
	for b.Loop() {
		w := serve(e.h, "POST", "/api/auth/refresh", "", `{"refresh_token":"`+token+`"}`)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
		token = w.Body.String()[strings.Index(w.Body.String(), `"refresh_token":"`)+17:]
		token = token[:strings.IndexByte(token, '"')]
	}
}

// BenchmarkAuthenticate is the access token check every authenticated
// request pays: header parsing, signature, claims, revocation lookup.
func BenchmarkAuthenticate(b *testing.B) {
	benchAuthenticate(b, benchEnv(b))
}

// BenchmarkAuthenticateEdDSA is the same check with an Ed25519 key.
func BenchmarkAuthenticateEdDSA(b *testing.B) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	pemText := strings.ReplaceAll(strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))), "\n", "\n        ")
	s, err := New(context.Background(), testDB(b), testConfig(b, "  keys:\n    - id: ed\n      algorithm: EdDSA\n      private_key: |\n        "+pemText+"\n"), &Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	benchAuthenticate(b, &env{s: s})
}

func benchAuthenticate(b *testing.B, e *env) {
	u := &User{ID: "018f0000-0000-7000-8000-000000000000", Email: "a@example.test", Roles: []string{"user"}}
	token, _, err := e.s.issueAccess(u, "018f0000-0000-7000-8000-000000000001", time.Now(), false)
	if err != nil {
		b.Fatal(err)
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := e.s.Authenticate(ok)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if w.Code != 200 {
		b.Fatalf("%d", w.Code)
	}
}
