package abe_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/internal/mail/smtptest"
	"github.com/abe-stack/abe/internal/redistest"
	"github.com/abe-stack/abe/schema"
)

// e2eConfig is the todo example with the settings a test adds.
func e2eConfig(t *testing.T, extra string) *schema.Config {
	t.Helper()
	src, err := readExample()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Parse("abe.yaml", []byte(strings.Replace(src, "server:\n", "server:\n"+extra, 1)), []string{"ABE_AUTH_SECRET=" + strings.Repeat("e", 40)})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func readExample() (string, error) {
	b, err := os.ReadFile("examples/todo/abe.yaml")
	return string(b), err
}

// startApp serves cfg over real TCP.
func startApp(t *testing.T, cfg *schema.Config, url string) (*httptest.Server, *abe.App) {
	t.Helper()
	cfg.Database.URL = url
	app, err := abe.New(context.Background(), cfg, &abe.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(func() { srv.Close(); app.Close() })
	return srv, app
}

type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (c *client) call(method, path, token string, body any, header map[string]string) (*http.Response, map[string]any) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out) //nolint:errcheck // HTML pages are not JSON
	if out == nil {
		out = map[string]any{"_raw": string(raw)}
	}
	return res, out
}

var tokenRE = regexp.MustCompile(`token=3D([A-Za-z0-9_%-]+)|token=([A-Za-z0-9_%-]+)`)

// TestAuthEndToEnd runs the account flows through a real server, a real
// SMTP server and real Postgres: register, verify by the mailed link, log
// in, refresh, reset the password, log out.
func TestAuthEndToEnd(t *testing.T) {
	t.Parallel()
	smtp := smtptest.Start(t, nil)
	cfg := e2eConfig(t, "  trusted_proxies: [127.0.0.1]\n")
	cfg.Mail.Providers = []schema.MailProvider{{Type: "smtp", Host: smtp.Host, Port: smtp.Port, TLS: "none"}}
	srv, app := startApp(t, cfg, migratedURL(t, cfg))
	c := &client{t: t, base: srv.URL, hc: srv.Client()}
	// A trusted proxy (the test runs on 127.0.0.1) says who the client is.
	viaProxy := map[string]string{"X-Forwarded-For": "203.0.113.9"}

	res, reg := c.call("POST", "/api/auth/register", "", map[string]string{"email": "ann@example.test", "password": "correct horse battery staple 42"}, viaProxy)
	if res.StatusCode != 201 {
		t.Fatalf("register: %d %v", res.StatusCode, reg)
	}
	for _, h := range []string{"X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Content-Security-Policy", "X-Request-Id"} {
		if res.Header.Get(h) == "" {
			t.Errorf("missing header %s", h)
		}
	}
	m := smtp.Next(t, 10*time.Second)
	if m.To[0] != "ann@example.test" || m.Header.Get("Subject") != "Verify your email" {
		t.Fatalf("mail %v %q", m.To, m.Header.Get("Subject"))
	}
	match := tokenRE.FindStringSubmatch(strings.ReplaceAll(m.Body, "=\r\n", ""))
	if match == nil {
		t.Fatalf("no link in:\n%s", m.Body)
	}
	token, _ := url.QueryUnescape(match[1] + match[2])
	if res, page := c.call("GET", "/api/auth/verify-email?token="+url.QueryEscape(token), "", nil, nil); res.StatusCode != 200 || !strings.Contains(page["_raw"].(string), "Email verified") {
		t.Fatalf("verify: %d %v", res.StatusCode, page)
	}

	res, login := c.call("POST", "/api/auth/login", "", map[string]string{"email": "ann@example.test", "password": "correct horse battery staple 42"}, viaProxy)
	if res.StatusCode != 200 || login["user"].(map[string]any)["email_verified"] != true {
		t.Fatalf("login: %d %v", res.StatusCode, login)
	}
	res, ref := c.call("POST", "/api/auth/refresh", "", map[string]string{"refresh_token": login["refresh_token"].(string)}, nil)
	if res.StatusCode != 200 {
		t.Fatalf("refresh: %d %v", res.StatusCode, ref)
	}
	access := ref["access_token"].(string)
	if res, me := c.call("GET", "/api/auth/me", access, nil, nil); res.StatusCode != 200 || me["email"] != "ann@example.test" {
		t.Fatalf("me: %d %v", res.StatusCode, me)
	}

	// The audit trail has the client address the proxy reported.
	admin := adminToken(t, c, app)
	res, evs := c.call("GET", "/api/admin/security-events?type=login_succeeded", admin, nil, nil)
	if res.StatusCode != 200 {
		t.Fatalf("events: %d %v", res.StatusCode, evs)
	}
	found := false
	for _, it := range evs["items"].([]any) {
		ev := it.(map[string]any)
		if ev["user_id"] == login["user"].(map[string]any)["id"] && ev["ip"] == "203.0.113.9" {
			found = true
		}
	}
	if !found {
		t.Errorf("no login event with the forwarded address: %v", evs)
	}

	if res, _ := c.call("POST", "/api/auth/logout", access, map[string]string{"refresh_token": ref["refresh_token"].(string)}, nil); res.StatusCode != 204 {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := c.call("GET", "/api/auth/me", access, nil, nil); res.StatusCode != 401 {
		t.Fatalf("me after logout: %d", res.StatusCode)
	}
}

// adminToken makes an admin account through the app's auth service, as
// `abe users create --role admin` does, and logs it in.
func adminToken(t *testing.T, c *client, app *abe.App) string {
	t.Helper()
	_, err := app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: "admin@example.test", Password: "admin pass phrase long 77", Roles: []string{"admin"}, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	res, body := c.call("POST", "/api/auth/login", "", map[string]string{"email": "admin@example.test", "password": "admin pass phrase long 77"}, nil)
	if res.StatusCode != 200 {
		t.Fatalf("admin login: %d %v", res.StatusCode, body)
	}
	return body["access_token"].(string)
}

func TestRateLimitsAndCORS(t *testing.T) {
	t.Parallel()
	cfg := e2eConfig(t, "  rate_limit: { auth: { requests: 3, window: 1m } }\n  cors: { allowed_origins: [\"https://app.example.test\"], allow_credentials: true }\n")
	srv, _ := startApp(t, cfg, migratedURL(t, cfg))
	c := &client{t: t, base: srv.URL, hc: srv.Client()}
	for i := 1; i <= 4; i++ {
		res, body := c.call("POST", "/api/auth/password/forgot", "", map[string]string{"email": fmt.Sprintf("x%d@example.test", i)}, nil)
		if i <= 3 && res.StatusCode == 429 {
			t.Fatalf("request %d limited early: %v", i, body)
		}
		if i == 4 {
			if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || res.Header.Get("RateLimit-Remaining") != "0" || res.Header.Get("RateLimit-Limit") == "" {
				t.Fatalf("4th auth request: %d %v %v", res.StatusCode, res.Header, body)
			}
		}
	}
	// Other endpoints have their own, larger budget.
	if res, _ := c.call("GET", "/healthz", "", nil, nil); res.StatusCode != 200 {
		t.Fatalf("healthz: %d", res.StatusCode)
	}
	res, _ := c.call("OPTIONS", "/api/auth/login", "", nil, map[string]string{"Origin": "https://app.example.test", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.test" || res.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
	res, _ = c.call("OPTIONS", "/api/auth/login", "", nil, map[string]string{"Origin": "https://evil.example.test", "Access-Control-Request-Method": "POST"})
	if res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", res.StatusCode, res.Header)
	}
}

// TestRedisRateLimitSharedByNodes runs two apps on one database with the
// redis store: they spend one budget.
func TestRedisRateLimitSharedByNodes(t *testing.T) {
	t.Parallel()
	redisURL := redistest.URL(t)
	extra := fmt.Sprintf("  rate_limit: { store: redis, redis_url: %q, auth: { requests: 4, window: 1m } }\n", redisURL)
	cfg1, cfg2 := e2eConfig(t, extra), e2eConfig(t, extra)
	db := migratedURL(t, cfg1)
	// Keys are per client IP; a unique forwarded address keeps this test's
	// budget apart from other tests on a shared Redis.
	var b [8]byte
	_, _ = rand.Read(b[:])
	ip := fmt.Sprintf("2001:db8::%x:%x:%x:%x", b[0:2], b[2:4], b[4:6], b[6:8])
	cfg1.Server.TrustedProxies, cfg2.Server.TrustedProxies = []string{"127.0.0.1"}, []string{"127.0.0.1"}
	nodes := []*client{}
	for _, cfg := range []*schema.Config{cfg1, cfg2} {
		srv, _ := startApp(t, cfg, db)
		nodes = append(nodes, &client{t: t, base: srv.URL, hc: srv.Client()})
	}
	limited := 0
	for i := range 6 {
		res, _ := nodes[i%2].call("POST", "/api/auth/password/forgot", "", map[string]string{"email": "y@example.test"}, map[string]string{"X-Forwarded-For": ip})
		if res.StatusCode == 429 {
			limited++
		}
	}
	if limited != 2 {
		t.Fatalf("%d of 6 requests across two nodes were limited, want 2 (a shared budget of 4)", limited)
	}
}
