// Package abe assembles an abe backend from its configuration: it opens
// the database, checks that its schema matches the file, and serves the
// HTTP API. cmd/abe uses it, and so can a Go program that embeds abe:
//
//	cfg, err := schema.Load("abe.yaml")
//	app, err := abe.New(ctx, cfg, nil)
//	defer app.Close()
//	err = app.Run(ctx) // until ctx is cancelled
package abe

import (
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	adminui "github.com/abe-stack/abe/admin-ui"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/engine"
	"github.com/abe-stack/abe/engine/openapi"
	"github.com/abe-stack/abe/internal/hosting"
	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/internal/jobs"
	"github.com/abe-stack/abe/internal/mail"
	"github.com/abe-stack/abe/internal/pg"
	"github.com/abe-stack/abe/internal/storage"
	"github.com/abe-stack/abe/realtime"
	"github.com/abe-stack/abe/realtime/broker"
	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
	"github.com/abe-stack/abe/webhooks"
)

// Options tune an App. The zero value is production behaviour.
type Options struct {
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Version of abe, reported in logs and recorded with migrations.
	Version string
	// Migrate applies pending migrations at start instead of refusing to
	// start on a database that differs from the configuration.
	Migrate bool
	// AllowDestructive lets Migrate run steps that can lose data.
	AllowDestructive bool
	// MigrateProgress receives a line per migration step; nil discards.
	MigrateProgress io.Writer
	// Routes adds routes of the embedding program to the router.
	Routes func(chi.Router)
	// Dev relaxes what only matters in production (abe dev): the refresh
	// cookie works over plain http.
	Dev bool
	// Mailer replaces the providers of mail.providers (tests, embedders).
	Mailer mail.Mailer
	// Storage replaces the backend of storage: (tests, embedders); the app
	// does not close it.
	Storage storage.Storage
	// Console receives mail of the console provider; nil is stderr.
	Console io.Writer
	// Now replaces the clock (tests).
	Now func() time.Time
	// NoWorkers leaves the job queue's workers off: the app inserts and
	// manages jobs but runs none (CLI commands).
	NoWorkers bool
	// LookupEnv replaces os.LookupEnv for webhook secrets (tests).
	LookupEnv func(string) (string, bool)
	// WebhookBackoff replaces the wait between a webhook's attempts (tests).
	WebhookBackoff func(attempt int) time.Duration
}

// App is an assembled abe backend.
type App struct {
	cfg  *schema.Config
	opts Options
	log  *slog.Logger
	pool *pgxpool.Pool
	auth *auth.Service
	// cur is the model in force: what abe.yaml's collections and rules
	// make. Reload swaps it (abe dev); the rest of the app stays.
	cur     atomic.Pointer[model]
	reload  sync.Mutex
	files   storage.Storage
	storage storage.Backend // opened by the app, closed with it
	broker  broker.Broker
	hub     *realtime.Hub
	queue   *jobs.Queue
	metrics *prometheus.Registry
	publish chan struct{}
	redis   *redis.Client
	// httpMetrics and rates outlive reloads: counters and budgets go on.
	httpMetrics *httpx.HTTPMetrics
	rates       httpx.RateStore
	// committed tells realtime of a commit (brokers other than postgres).
	committed func()
	// hooks are the write hooks; every engine a reload builds shares
	// them, so registrations outlive it.
	hooks *engine.Hooks
	// hosted serves hosting.dir at /, behind every route; nil without it.
	hosted *hosting.Handler
	// extraDeps are more dependencies for /readyz (the job queue, file
	// storage), added as their services start.
	extraDeps []dependency
	// started is when New was called; sampler counts HTTP traffic per
	// minute for the admin overview.
	started time.Time
	sampler *httpSampler
	// stop ends the background work (the change log prune).
	stop context.CancelFunc
	wg   sync.WaitGroup

	// webhooks queue the events of writes in their transactions and
	// deliver them; each model has its set of webhooks.
	webhooks *webhooks.Service
}

// Migrations lists the system migrations of every component, in the order
// they run.
func Migrations() []schema.Migration {
	m := append(schema.CoreMigrations(), auth.Migrations()...)
	m = append(m, engine.Migrations()...)
	return append(m, jobs.Migrations()...)
}

// NewMigrator returns the migrator for cfg with every component's system
// migrations.
func NewMigrator(cfg *schema.Config, version string) *schema.Migrator {
	return &schema.Migrator{Config: cfg, System: Migrations(), Extensions: []schema.Extension{auth.RoleSync{}},
		TableTriggers: engine.TableTriggers(), Version: version}
}

// DriftError refuses to serve a database whose schema differs from the
// configuration.
type DriftError struct {
	Plan *schema.Plan
}

func (e *DriftError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the database differs from the configuration (%d pending steps):\n", len(e.Plan.Steps))
	for i, s := range e.Plan.Steps {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, s.Summary)
	}
	b.WriteString("run `abe migrate apply` first, or start with --migrate")
	return b.String()
}

// New connects to the database, checks (or, with Migrate, applies) its
// schema, and builds the HTTP handler.
func New(ctx context.Context, cfg *schema.Config, opts *Options) (*App, error) {
	a := &App{cfg: cfg, publish: make(chan struct{}, 1), hooks: engine.NewHooks()}
	if opts != nil {
		a.opts = *opts
	}
	a.started = a.now()
	a.log = cmp.Or(a.opts.Logger, slog.New(slog.DiscardHandler))
	if cfg.Database.URL == "" {
		return nil, errors.New("database.url is empty: set DATABASE_URL (or ABE_DATABASE_URL), or use `abe dev` for a local database")
	}
	// Rules compile before anything connects: a broken rule is a
	// configuration error, reported like the others.
	eng, err := rules.Compile(cfg, &rules.Options{Dev: a.opts.Dev})
	if err != nil {
		return nil, err
	}
	if a.hosted, err = a.hosting(); err != nil {
		return nil, err
	}
	pool, err := pg.Connect(ctx, pg.Config{URL: cfg.Database.URL, MaxConns: cfg.Database.MaxConns, AppName: "abe"})
	if err != nil {
		return nil, err
	}
	a.pool = pool
	if err := a.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := a.services(ctx, eng); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// model is what the collections and rules of abe.yaml make: the rules,
// the records engine, the OpenAPI document and the router over them.
type model struct {
	cfg     *schema.Config
	rules   *rules.Engine
	engine  *engine.Engine
	openapi []byte
	handler http.Handler
	// webhooks are the collections' webhooks, compiled.
	webhooks *webhooks.Set
}

// reservedPaths are abe's own, never served from hosting.dir, each with
// everything below it.
var reservedPaths = []string{"/api", "/_", "/healthz", "/readyz", "/metrics"}

// hosting is the handler of hosting.dir, or nil when nothing is hosted.
// It serves from disk on every request, so a rebuilt app is served at
// once (abe dev).
func (a *App) hosting() (*hosting.Handler, error) {
	dir := a.cfg.HostingDir()
	if dir == "" {
		return nil, nil
	}
	h := a.cfg.Hosting
	var maxAge time.Duration
	if h.MaxAge != nil {
		maxAge = time.Duration(*h.MaxAge)
	}
	return hosting.New(hosting.Config{Dir: dir, SPA: h.SPA, ServiceWorker: h.ServiceWorker, MaxAge: maxAge, CSP: h.CSP,
		Dev: a.opts.Dev, Reserved: reservedPaths, NotFound: http.HandlerFunc(httpx.NotFound)})
}

// newModel builds the model of cfg with its compiled rules.
func (a *App) newModel(cfg *schema.Config, r *rules.Engine) (*model, error) {
	m := &model{cfg: cfg, rules: r}
	var err error
	m.engine, err = engine.New(a.pool, engine.Config{Schema: cfg, Rules: r, BodyLimit: int64(a.cfg.Server.BodyLimit),
		Retention: time.Duration(a.cfg.Realtime.ChangesRetention), Dev: a.opts.Dev, Storage: a.files}, &engine.Options{Logger: a.log, Now: a.opts.Now, Committed: a.committed, Hooks: a.hooks})
	if err != nil {
		return nil, fmt.Errorf("start the records engine: %w", err)
	}
	// A node that delivers needs every secret; CLI commands only queue.
	m.webhooks, err = webhooks.Compile(cfg, r, m.engine, &webhooks.CompileOpts{LookupEnv: a.opts.LookupEnv, RequireSecrets: !a.opts.NoWorkers})
	if err != nil {
		return nil, err
	}
	m.openapi, err = openapi.Generate(cfg, openapi.Options{Version: cmp.Or(a.opts.Version, "dev")})
	if err != nil {
		return nil, fmt.Errorf("describe the API: %w", err)
	}
	m.handler = a.routes(m)
	return m, nil
}

// services starts what the routes need: mail, auth, the rate limit store,
// and the model of the collections.
func (a *App) services(ctx context.Context, rulesEngine *rules.Engine) error {
	mailer := a.opts.Mailer
	if mailer == nil {
		console := a.opts.Console
		if console == nil {
			console = os.Stderr
		}
		mc := mail.Config{From: a.cfg.Mail.From}
		for _, p := range a.cfg.Mail.Providers {
			mc.Providers = append(mc.Providers, mail.Provider{Type: p.Type, Host: p.Host, Port: p.Port, Username: p.Username, Password: p.Password, TLS: p.TLS,
				APIKey: p.APIKey, Domain: p.Domain, Region: p.Region, Endpoint: p.Endpoint,
				AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey, Timeout: time.Duration(p.Timeout)})
		}
		var err error
		if mailer, err = mail.New(mc, console); err != nil {
			return err
		}
	}
	a.metrics = prometheus.NewRegistry()
	a.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), pg.NewPoolCollector(a.pool))
	authEvents := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "abe", Subsystem: "auth", Name: "events_total",
		Help: "Security events recorded, by type (login_failed, lockout, token_reuse, mfa_failed, ...)."}, []string{"type"})
	a.metrics.MustRegister(authEvents)
	rt := a.cfg.Realtime
	sealKey, err := hkdf.Key(sha256.New, []byte(a.cfg.Auth.Secret), nil, "abe mail sealing", 32)
	if err != nil {
		return fmt.Errorf("derive the mail sealing key: %w", err)
	}
	// Mail goes through the queue: a failing provider is retried with
	// backoff, and a crash between a commit and the send loses nothing.
	a.queue, err = jobs.New(jobs.Config{Pool: a.pool, Settings: a.cfg.Jobs, Mailer: mailer, SealKey: sealKey, Logger: a.log})
	if err != nil {
		return fmt.Errorf("start the job queue: %w", err)
	}
	a.metrics.MustRegister(a.queue.Collector())
	// Webhook deliveries are jobs queued by a write hook, in the write's
	// transaction: one exists if and only if the write commits.
	a.webhooks, err = webhooks.New(webhooks.Config{Queue: a.queue, Settings: a.cfg.Webhooks, Logger: a.log, Backoff: a.opts.WebhookBackoff, Now: a.opts.Now})
	if err != nil {
		return fmt.Errorf("start webhooks: %w", err)
	}
	a.hooks.OnWritten(a.webhooks.Written)
	a.extraDeps = append(a.extraDeps, dependency{name: "queue", check: a.queue.Check})
	a.broker, err = broker.New(ctx, broker.Config{Kind: rt.Broker, Pool: a.pool, RedisURL: rt.RedisURL, Logger: a.log})
	if err != nil {
		return fmt.Errorf("start the realtime broker: %w", err)
	}
	svc, err := auth.New(ctx, a.pool, auth.Config{Auth: a.cfg.Auth, Dev: a.opts.Dev, BodyLimit: int64(a.cfg.Server.BodyLimit), MailTemplates: a.cfg.MailTemplatesDir()},
		&auth.Options{Now: a.opts.Now, Mailer: a.queue, Logger: a.log, Bus: authBus{b: a.broker, publish: rt.Broker != "postgres"},
			OnEvent: func(typ string) { authEvents.WithLabelValues(typ).Inc() }})
	if err != nil {
		return fmt.Errorf("start auth: %w", err)
	}
	a.auth = svc
	if rt.Broker != "postgres" {
		// The change log's trigger NOTIFYs Postgres; other brokers hear
		// of a write from the node that made it.
		a.committed = a.publishChanges
	}
	if a.files, err = a.openStorage(); err != nil {
		return err
	}
	if rl := a.cfg.Server.RateLimit; rl.Store == "redis" && !rl.Disabled {
		opt, err := redis.ParseURL(rl.RedisURL)
		if err != nil {
			return fmt.Errorf("server.rate_limit.redis_url: %w", err)
		}
		a.redis = redis.NewClient(opt)
	}
	a.httpMetrics = httpx.NewHTTPMetrics(a.metrics)
	a.sampler = newHTTPSampler(a.httpMetrics.Totals, a.now)
	a.rates = a.rateStore()
	m, err := a.newModel(a.cfg, rulesEngine)
	if err != nil {
		return err
	}
	a.cur.Store(m)
	a.webhooks.Use(m.webhooks)
	a.hub, err = realtime.New(realtime.Config{Engine: m.engine, Rules: rulesEngine, Auth: a.auth, Broker: a.broker, Settings: rt,
		AllowedOrigins: a.cfg.Server.CORS.AllowedOrigins, Logger: a.log, Metrics: realtime.NewMetrics(a.metrics), Now: a.opts.Now})
	if err != nil {
		return err
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stop = stop
	for _, t := range []struct {
		name  string
		every time.Duration
		fn    jobs.TaskFunc
	}{
		{"auth.prune", time.Hour, a.auth.Prune},
		{"engine.prune_changes", time.Hour, func(ctx context.Context) error {
			n, err := a.Engine().PruneChanges(ctx)
			if n > 0 {
				a.log.Info("change log pruned", slog.Int64("removed", n))
			}
			return err
		}},
		// Files let go of by writes (replaced, removed, their record
		// deleted) wait in abe.file_deletions; a batch at a time.
		{"engine.delete_orphaned_files", 5 * time.Minute, func(ctx context.Context) error {
			for {
				n, err := a.Engine().DeleteOrphanedFiles(ctx, 100)
				if err != nil || n < 100 {
					return err
				}
			}
		}},
	} {
		if err := a.queue.Every(t.name, t.every, t.fn); err != nil {
			return err
		}
	}
	if !a.opts.NoWorkers {
		if err := a.queue.Start(bg); err != nil {
			return err
		}
	}
	a.wg.Go(func() { a.publisher(bg) })
	a.wg.Go(func() { a.sampler.run(bg) })
	a.wg.Go(func() {
		if err := a.hub.Run(bg); err != nil {
			a.log.Error("realtime stopped", slog.String("error", err.Error()))
		}
	})
	return nil
}

// openStorage opens the file storage of storage:, or takes
// Options.Storage.
func (a *App) openStorage() (storage.Storage, error) {
	files := a.opts.Storage
	if files == nil {
		st := a.cfg.Storage
		b, err := storage.New(storage.Config{Backend: st.Backend, Root: a.cfg.StorageRoot(), S3: storage.S3Config{
			Endpoint: st.S3.Endpoint, Bucket: st.S3.Bucket, Region: st.S3.Region, AccessKey: st.S3.AccessKey,
			SecretKey: st.S3.SecretKey, PathStyle: st.S3.PathStyle, Prefix: st.S3.Prefix}})
		if err != nil {
			return nil, fmt.Errorf("open file storage: %w", err)
		}
		a.storage, files = b, b
	}
	if c, ok := files.(interface{ Check(context.Context) error }); ok {
		// Records work without it, so the node stays ready; the check
		// says what is wrong.
		a.extraDeps = append(a.extraDeps, dependency{name: "storage", check: c.Check})
	}
	return files, nil
}

// authBus carries auth's invalidations on the realtime broker. Through
// Postgres, the tables' triggers NOTIFY on commit, so publishing again
// would only double them.
type authBus struct {
	b       broker.Broker
	publish bool
}

func (ab authBus) Subscribe(channel string, fn func(payload string, lost bool)) func() {
	return ab.b.Subscribe(channel, func(m broker.Message) { fn(m.Payload, m.Lost) })
}

func (ab authBus) Publish(ctx context.Context, channel, payload string) error {
	if !ab.publish {
		return nil
	}
	return ab.b.Publish(ctx, channel, payload)
}

// publishChanges tells every node's realtime that the change log grew.
// Publishes coalesce: one in flight at a time, and one more queued.
func (a *App) publishChanges() {
	select {
	case a.publish <- struct{}{}:
	default:
	}
}

// publisher sends the wake-ups publishChanges asks for.
func (a *App) publisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.publish:
		}
		if err := a.broker.Publish(ctx, realtime.ChangesChannel, ""); err != nil && ctx.Err() == nil {
			// Other nodes catch up at their next poll.
			a.log.Warn("realtime: publishing a wake-up failed", slog.String("error", err.Error()))
		}
	}
}

// rateStore is the rate limit store the configuration asks for.
func (a *App) rateStore() httpx.RateStore {
	if a.redis != nil {
		return httpx.NewRedisRates(a.redis)
	}
	return httpx.NewMemoryRates(a.cfg.Server.RateLimit.MaxKeys, a.opts.Now)
}

func (a *App) migrate(ctx context.Context) error {
	m := NewMigrator(a.cfg, a.opts.Version)
	plan, err := m.Plan(ctx, a.pool)
	if err != nil {
		return fmt.Errorf("check the database schema: %w", err)
	}
	if plan.Empty() {
		return nil
	}
	if !a.opts.Migrate {
		return &DriftError{Plan: plan}
	}
	applied, err := m.Apply(ctx, a.pool, &schema.ApplyOpts{AllowDestructive: a.opts.AllowDestructive, Progress: a.opts.MigrateProgress})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if !applied.Empty() {
		a.log.Info("migrated", slog.Int("steps", len(applied.Steps)), slog.String("checksum", applied.Checksum()))
	}
	return nil
}

func (a *App) routes(mdl *model) http.Handler {
	srv := a.cfg.Server
	var trusted []netip.Prefix
	for _, p := range srv.TrustedProxies {
		if prefix, err := schema.ParsePrefix(p); err == nil {
			trusted = append(trusted, prefix)
		}
	}
	r := chi.NewRouter()
	r.Use(
		a.httpMetrics.Middleware,
		httpx.WithRequestID,
		httpx.ClientIP(trusted),
		httpx.SecurityHeaders,
		httpx.Logger(a.log),
		httpx.Recover(a.log),
		httpx.CORS(httpx.CORSConfig{AllowedOrigins: srv.CORS.AllowedOrigins, AllowCredentials: srv.CORS.AllowCredentials, MaxAge: time.Duration(srv.CORS.MaxAge)}),
		a.auth.Authenticate,
	)
	if rl := srv.RateLimit; !rl.Disabled {
		class := func(name string, c schema.RateClass) httpx.RateClass {
			return httpx.RateClass{Name: name, Requests: c.Requests, Window: time.Duration(c.Window), Burst: c.Burst}
		}
		r.Use(httpx.RateLimit(httpx.RateLimitConfig{
			Store:   a.rates,
			Default: class("default", schema.RateClass{Requests: rl.Requests, Window: rl.Window, Burst: rl.Burst}),
			Auth:    class("auth", rl.Auth),
			Writes:  class("writes", rl.Writes),
			Key:     auth.RateKey,
			IsAuth:  auth.IsAuthRequest,
			Log:     a.log,
		}))
	}
	// The hosted app takes what no route does, so the API always wins.
	if a.hosted != nil {
		r.NotFound(a.hosted.ServeHTTP)
	} else {
		r.NotFound(httpx.NotFound)
	}
	r.MethodNotAllowed(httpx.MethodNotAllowed)
	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)
	r.Get("/api/schema/config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/schema+json")
		_, _ = w.Write(schema.ConfigJSONSchema) //nolint:errcheck // the client went away
	})
	r.Get("/api/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(mdl.openapi) //nolint:errcheck // the client went away
	})
	r.Get("/api/realtime", func(w http.ResponseWriter, r *http.Request) { a.hub.ServeHTTP(w, r) })
	a.auth.Routes(r)
	a.queue.Routes(r, a.auth.RequirePermission(auth.PermJobsManage))
	mdl.engine.Routes(r)
	mdl.engine.ExplainRoutes(r, a.auth.RequirePermission(auth.PermRulesExplain), a.auth)
	mdl.engine.AdminRoutes(r, a.auth.RequirePermission(engine.PermRecordsAdmin), a.auth)
	a.adminRoutes(r)
	if a.opts.Routes != nil {
		a.opts.Routes(r)
	}
	api := a.staticFiles(r, trusted)
	m := srv.Metrics
	if m.Disabled {
		return api
	}
	// /metrics stands beside the API, not in it: its bearer token is no
	// access token, so the API's authentication must not see it.
	var allow []netip.Prefix
	for _, p := range m.Allow {
		if prefix, err := schema.ParsePrefix(p); err == nil {
			allow = append(allow, prefix)
		}
	}
	metrics := promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{})
	guarded := httpx.WithRequestID(httpx.ClientIP(trusted)(httpx.SecurityHeaders(httpx.GuardMetrics(m.Token, allow)(metrics))))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/metrics" && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
			guarded.ServeHTTP(w, req)
			return
		}
		api.ServeHTTP(w, req)
	})
}

// staticFiles serves the console (/_ and below) and the hosted app (a GET
// or HEAD that no route of r takes, outside the reserved paths) past the
// API's middleware: a page load of twenty assets must not spend the rate
// limit its API calls need, a console must load while the API refuses,
// and a file needs neither a token nor CORS. Other requests go to r, whose
// NotFound still reaches the hosted app (for its 405).
func (a *App) staticFiles(r *chi.Mux, trusted []netip.Prefix) http.Handler {
	wrap := func(route string, h http.Handler) http.Handler {
		return a.httpMetrics.Route(route)(httpx.WithRequestID(httpx.ClientIP(trusted)(httpx.SecurityHeaders(
			httpx.Logger(a.log)(httpx.Recover(a.log)(h))))))
	}
	console := wrap("console", adminui.Serve())
	var files http.Handler
	if a.hosted != nil {
		files = wrap("hosting", a.hosted)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if p := req.URL.Path; p == "/_" || strings.HasPrefix(p, "/_/") {
			console.ServeHTTP(w, req)
			return
		}
		if files == nil || req.Method != http.MethodGet && req.Method != http.MethodHead || a.hosted.Reserved(req.URL.Path) ||
			r.Match(chi.NewRouteContext(), req.Method, cmp.Or(req.URL.RawPath, req.URL.Path)) {
			r.ServeHTTP(w, req)
			return
		}
		files.ServeHTTP(w, req)
	})
}

// Engine is the records engine.
func (a *App) Engine() *engine.Engine { return a.cur.Load().engine }

// Realtime is the realtime hub.
func (a *App) Realtime() *realtime.Hub { return a.hub }

// Rules is the compiled rule engine.
func (a *App) Rules() *rules.Engine { return a.cur.Load().rules }

// Jobs is the job queue.
func (a *App) Jobs() *jobs.Queue { return a.queue }

// Auth is the account service, for programs that embed abe.
func (a *App) Auth() *auth.Service { return a.auth }

// Handler is the HTTP API.
func (a *App) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.cur.Load().handler.ServeHTTP(w, r) })
}

// Pool is the app's database pool, for programs that embed abe.
func (a *App) Pool() *pgxpool.Pool { return a.pool }

// Close stops the services and releases the database pool.
func (a *App) Close() {
	if a.hub != nil {
		a.hub.Close()
	}
	if a.queue != nil {
		// Running jobs get the shutdown timeout to finish; the rest go
		// back to the queue for another node or the next start.
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(a.cfg.Server.ShutdownTimeout))
		if err := a.queue.Stop(ctx); err != nil {
			a.log.Warn("jobs did not stop cleanly", slog.String("error", err.Error()))
		}
		cancel()
	}
	if a.webhooks != nil {
		a.webhooks.Close()
	}
	if a.stop != nil {
		a.stop()
		a.wg.Wait()
	}
	if a.broker != nil {
		a.broker.Close() //nolint:errcheck // closing
	}
	if a.auth != nil {
		a.auth.Close()
	}
	if a.redis != nil {
		a.redis.Close()
	}
	if a.storage != nil {
		a.storage.Close() //nolint:errcheck // closing
	}
	a.pool.Close()
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// dependency is something /readyz checks. A required one that is down
// makes the node unready (503), so a load balancer stops sending it
// traffic; others are reported without that.
type dependency struct {
	name     string
	required bool
	check    func(ctx context.Context) error
}

// dependencies lists what /readyz checks, in the order it reports them.
func (a *App) dependencies() []dependency {
	deps := []dependency{{name: "database", required: true, check: func(ctx context.Context) error {
		if err := a.pool.Ping(ctx); err != nil {
			return errors.New(pg.Explain(err))
		}
		return nil
	}}}
	if a.redis != nil {
		// The rate limiter lets requests through while Redis is away, so
		// the node stays ready; the check says what is wrong.
		deps = append(deps, dependency{name: "redis", check: func(ctx context.Context) error { return a.redis.Ping(ctx).Err() }})
	}
	if a.broker != nil {
		// Realtime catches up by polling while the broker is away, so the
		// node stays ready; the check says what is wrong.
		deps = append(deps, dependency{name: "broker_" + a.broker.Name(), check: a.broker.Check})
	}
	return append(deps, a.extraDeps...)
}

// check is the state of one dependency in /readyz.
type check struct {
	Status    string  `json:"status"`
	Required  bool    `json:"required"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// checkDependencies checks every dependency at once, each within 2 s
// (/readyz, the admin overview).
func (a *App) checkDependencies(ctx context.Context) ([]dependency, []check) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	deps := a.dependencies()
	results := make([]check, len(deps))
	var wg sync.WaitGroup
	for i, d := range deps {
		wg.Go(func() {
			start := time.Now()
			c := check{Status: "up", Required: d.required}
			if err := d.check(ctx); err != nil {
				c.Status, c.Error = "down", err.Error()
			}
			c.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
			results[i] = c
		})
	}
	wg.Wait()
	return deps, results
}

// readyz reports every dependency; 503 when a required one is down.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	deps, results := a.checkDependencies(r.Context())
	checks := make(map[string]check, len(deps))
	status, code := "ready", http.StatusOK
	for i, d := range deps {
		checks[d.name] = results[i]
		if d.required && results[i].Status != "up" {
			status, code = "unavailable", http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, code, map[string]any{"status": status, "checks": checks})
}

// Run listens on server.listen and serves until ctx is done, then shuts
// down gracefully: it stops accepting connections and lets in-flight
// requests finish within server.shutdown_timeout.
func (a *App) Run(ctx context.Context) error {
	ln, err := Listen(a.cfg.Server.Listen)
	if err != nil {
		return err
	}
	return a.Serve(ctx, ln)
}

// Listen opens the TCP listener, explaining the usual failures.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("listen on %s: the address is already in use; stop the program that holds it, or choose another address with server.listen (or ABE_SERVER_LISTEN)", addr)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("listen on %s: permission denied; ports below 1024 need privileges, choose a higher one with server.listen", addr)
	case err != nil:
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx is done, then shuts down gracefully.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	a.log.Info("listening", slog.String("addr", "http://"+ln.Addr().String()), slog.String("version", a.opts.Version))
	// Sockets are hijacked: Shutdown does not wait for them. They are
	// told the server is going away, and clients reconnect elsewhere.
	srv.RegisterOnShutdown(a.hub.Close)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	timeout := time.Duration(a.cfg.Server.ShutdownTimeout)
	a.log.Info("shutting down", slog.Duration("timeout", timeout))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", timeout, err)
	}
	<-served
	a.log.Info("stopped")
	return nil
}
