package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/internal/mail"
	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/internal/redistest"
	"github.com/abe-stack/abe/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m, redistest.StopShared) }

// clock is a settable clock for lockout and expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mailbox is a Mailer that keeps what it is given.
type mailbox struct {
	ch chan *mail.Message
}

func (m *mailbox) Send(_ context.Context, msg *mail.Message) error {
	m.ch <- msg
	return nil
}

func (m *mailbox) next(t *testing.T) *mail.Message {
	t.Helper()
	select {
	case msg := <-m.ch:
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("no mail sent")
		return nil
	}
}

func (m *mailbox) none(t *testing.T, s *Service) {
	t.Helper()
	s.outbox.flush()
	select {
	case msg := <-m.ch:
		t.Fatalf("unexpected mail %q to %v", msg.Subject, msg.To)
	default:
	}
}

var linkRE = regexp.MustCompile(`token=([A-Za-z0-9_%-]+)`)

func tokenIn(t *testing.T, msg *mail.Message) string {
	t.Helper()
	m := linkRE.FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no token in mail:\n%s", msg.Text)
	}
	tok, err := url.QueryUnescape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testRoles are the roles of the test configuration, synced into the
// template database as migrate does.
const testRoles = `
roles:
  admin: { permissions: ["*"] }
  auditor: { permissions: ["security:read"] }
  user: { permissions: [], default: true }
`

// testDB is a database with the system migrations applied and the test
// roles synced.
func testDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	sys := append(schema.CoreMigrations(), Migrations()...)
	key := "auth-test" + testRoles
	for _, m := range sys {
		key += "/" + m.Key() + ":" + m.Checksum()
	}
	return pgtest.New(t, &pgtest.Options{Template: key, Setup: func(ctx context.Context, url string) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		cfg, err := schema.Parse("abe.yaml", []byte(testRoles), nil)
		if err != nil {
			return err
		}
		_, err = (&schema.Migrator{Config: cfg, System: sys, Extensions: []schema.Extension{RoleSync{}}}).Apply(ctx, pool, nil)
		return err
	}})
}

// testConfig is abe.yaml's auth settings with their defaults.
func testConfig(t testing.TB, extra string) Config {
	t.Helper()
	src := "auth:\n  secret: " + strings.Repeat("k", 40) + "\n" + extra
	cfg, err := schema.Parse("abe.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Auth: cfg.Auth, BodyLimit: int64(cfg.Server.BodyLimit)}
}

// cheap hashing keeps tests fast; TestArgon2Defaults checks the real cost.
var cheapArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

type env struct {
	t     *testing.T
	s     *Service
	db    *pgxpool.Pool
	clock *clock
	mail  *mailbox
	h     http.Handler
}

type envOpts struct {
	extra string // more YAML under auth: (indented two spaces)
	db    *pgxpool.Pool
	clock *clock
	bus   Bus
	// requireMFA is auth.require_mfa_for_roles (the test config has no
	// roles section for the loader to check it against).
	requireMFA []string
	// mailTemplates is mail.templates.dir.
	mailTemplates string
}

func newEnv(t *testing.T, o *envOpts) *env {
	t.Helper()
	if o == nil {
		o = &envOpts{}
	}
	e := &env{t: t, db: o.db, clock: o.clock, mail: &mailbox{ch: make(chan *mail.Message, 100)}}
	if e.db == nil {
		e.db = testDB(t)
	}
	if e.clock == nil {
		e.clock = newClock()
	}
	cfg := testConfig(t, o.extra)
	cfg.Auth.RequireMFAForRoles = o.requireMFA
	cfg.MailTemplates = o.mailTemplates
	s, err := New(context.Background(), e.db, cfg, &Options{Now: e.clock.Now, Mailer: e.mail, Argon2: &cheapArgon2, Bus: o.bus})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	e.s = s
	r := chi.NewRouter()
	r.Use(httpx.WithRequestID, httpx.ClientIP(nil), s.Authenticate)
	s.Routes(r)
	e.h = r
	return e
}

// res is an answer to a test request.
type res struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r res) str(key string) string {
	v, _ := r.body[key].(string)
	return v
}

type req struct {
	method, path, token string
	body                any
	header              map[string]string
	remote              string
}

func (e *env) do(q req) res {
	e.t.Helper()
	var body io.Reader
	switch b := q.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(buf)
	}
	r := httptest.NewRequest(q.method, q.path, body)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if q.token != "" {
		r.Header.Set("Authorization", "Bearer "+q.token)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	r.RemoteAddr = "192.0.2.10:1234"
	if q.remote != "" {
		r.RemoteAddr = q.remote
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	out := res{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if strings.Contains(w.Header().Get("Content-Type"), "json") && w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out.body); err != nil {
			e.t.Fatalf("%s %s: %v in %q", q.method, q.path, err, w.Body.String())
		}
	}
	return out
}

const goodPassword = "correct horse battery staple 42"

// register makes an account and returns its token answer.
func (e *env) register(email string) res {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/api/auth/register", body: map[string]string{"email": email, "password": goodPassword, "name": "Ann"}})
	if r.status != http.StatusCreated {
		e.t.Fatalf("register %s: %d %s", email, r.status, r.raw)
	}
	e.mail.next(e.t) // the verification mail
	return r
}

func (e *env) login(email, password string) res {
	e.t.Helper()
	return e.do(req{method: "POST", path: "/api/auth/login", body: map[string]string{"email": email, "password": password}})
}

// admin makes an account with the admin role and returns its access token.
func (e *env) admin() string {
	e.t.Helper()
	_, err := e.s.CreateUser(context.Background(), CreateUserOpts{Email: "root@example.test", Password: goodPassword, Roles: []string{"admin"}, Verified: true})
	if err != nil {
		e.t.Fatal(err)
	}
	r := e.login("root@example.test", goodPassword)
	if r.status != 200 {
		e.t.Fatalf("admin login: %d %s", r.status, r.raw)
	}
	return r.str("access_token")
}

// events returns the types of a user's security events, oldest first.
func (e *env) events(userID string) []string {
	e.t.Helper()
	evs, _, err := e.s.Events(context.Background(), EventFilter{UserID: userID, Limit: 500})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, evs[i].Type)
	}
	return out
}
