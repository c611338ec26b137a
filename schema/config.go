package schema

import (
	"cmp"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a loaded and checked abe.yaml.
type Config struct {
	// File is the path the configuration was read from.
	File string

	Server   Server
	Database Database
	Auth     Auth
	Mail     Mail
	Realtime Realtime
	Storage  Storage
	Jobs     Jobs
	Hosting  Hosting
	// Webhooks are the settings of every webhook; the webhooks are
	// declared per collection.
	Webhooks Webhooks
	// Roles in the order the file declares them.
	Roles []*Role
	// Collections in the order the file declares them.
	Collections []*Collection
}

// Server configures the HTTP server.
type Server struct {
	Listen string `yaml:"listen"`
	// PublicURL is where clients reach the server, for links in emails.
	// Default http://<listen>.
	PublicURL string `yaml:"public_url"`
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// BodyLimit caps request bodies.
	BodyLimit ByteSize `yaml:"body_limit"`
	// TrustedProxies are the CIDRs whose X-Forwarded-For and Forwarded
	// headers are believed.
	TrustedProxies []string  `yaml:"trusted_proxies"`
	CORS           CORS      `yaml:"cors"`
	RateLimit      RateLimit `yaml:"rate_limit"`
	Metrics        Metrics   `yaml:"metrics"`
}

// Metrics guards /metrics. With neither a token nor an allow list it is
// open, as Prometheus endpoints usually are behind a private network.
type Metrics struct {
	// Disabled removes /metrics.
	Disabled bool `yaml:"disabled"`
	// Token, when set, lets a scraper in with Authorization: Bearer <token>.
	Token string `yaml:"token"`
	// Allow lists the CIDRs (or IPs) whose requests need no token.
	Allow []string `yaml:"allow"`
}

// CORS configures cross-origin requests from browsers.
type CORS struct {
	// AllowedOrigins lists origins like https://app.example.com; "*" allows
	// any origin, but never with credentials.
	AllowedOrigins   []string `yaml:"allowed_origins"`
	AllowCredentials bool     `yaml:"allow_credentials"`
	MaxAge           Duration `yaml:"max_age"`
}

// RateLimit configures the token buckets that limit requests per client.
type RateLimit struct {
	// Disabled turns rate limiting off.
	Disabled bool `yaml:"disabled"`
	// Requests per Window for any request, per user or, anonymously, per
	// IP, with bursts of Burst.
	Requests int      `yaml:"requests"`
	Window   Duration `yaml:"window"`
	Burst    int      `yaml:"burst"`
	// Auth is the stricter class for /api/auth endpoints, per IP.
	Auth RateClass `yaml:"auth"`
	// Writes is the class for POST, PUT, PATCH and DELETE.
	Writes RateClass `yaml:"writes"`
	// Store is memory (one node) or redis (shared by every node).
	Store    string `yaml:"store"`
	RedisURL string `yaml:"redis_url"`
	// MaxKeys bounds the memory store; the least recently seen clients are
	// forgotten first.
	MaxKeys int `yaml:"max_keys"`
}

// RateClass is a number of requests per window, the rate a bucket of
// Burst requests refills at. Burst left out is Requests.
type RateClass struct {
	Requests int      `yaml:"requests"`
	Window   Duration `yaml:"window"`
	Burst    int      `yaml:"burst"`
}

// rateDefaults fills in a class: the default rate and burst when the file
// gives no rate, else a burst of the rate the file gives.
func rateDefaults(requests, burst *int, window *Duration, defRequests, defBurst int) {
	if *requests == 0 {
		*requests, *burst = defRequests, cmp.Or(*burst, defBurst)
	}
	*burst = cmp.Or(*burst, *requests)
	orDuration(window, time.Minute)
}

// Database configures the Postgres connection.
type Database struct {
	// URL is a postgres:// URL or key=value DSN. Empty in `abe dev` means the
	// local cluster in .abe/pg.
	URL string `yaml:"url"`
	// Schema is the Postgres schema that holds collection tables.
	Schema string `yaml:"schema"`
	// MaxConns caps the connection pool.
	MaxConns int32 `yaml:"max_conns"`
}

// Auth configures accounts and tokens.
type Auth struct {
	// Secret signs tokens (HS256) unless Keys are given, and derives the key
	// that seals refresh tokens during their retry window. `abe dev` makes
	// one when empty; `abe serve` refuses to start without one.
	Secret string `yaml:"secret"`
	// Keys are signing keys with rotation: the first key that can sign
	// signs, every key verifies.
	Keys []SigningKey `yaml:"keys"`
	// Issuer is the iss claim of access tokens.
	Issuer            string   `yaml:"issuer"`
	AccessTokenTTL    Duration `yaml:"access_token_ttl"`
	RefreshTokenTTL   Duration `yaml:"refresh_token_ttl"`
	RefreshReuseGrace Duration `yaml:"refresh_reuse_grace"`
	// RequireEmailVerification refuses logins until the email is verified,
	// and makes register answer the same for new and existing emails.
	RequireEmailVerification bool     `yaml:"require_email_verification"`
	VerifyTokenTTL           Duration `yaml:"verify_token_ttl"`
	ResetTokenTTL            Duration `yaml:"reset_token_ttl"`
	Lockout                  Lockout  `yaml:"lockout"`
	Password                 Password `yaml:"password"`
	Links                    Links    `yaml:"links"`
	MFA                      MFA      `yaml:"mfa"`
	// RequireMFAForRoles are roles that count only in sessions that
	// passed a second factor.
	RequireMFAForRoles []string `yaml:"require_mfa_for_roles"`
}

// MFA configures TOTP second factors.
type MFA struct {
	// Issuer is the name authenticator apps show.
	Issuer string `yaml:"issuer"`
	// ChallengeTTL is how long a login's mfa_token waits for its code.
	ChallengeTTL Duration `yaml:"challenge_ttl"`
	// EncryptionKeys seal TOTP secrets at rest: the first seals, all open.
	EncryptionKeys []EncryptionKey `yaml:"encryption_keys"`
}

// EncryptionKey is an AES-256 key, base64, with the id stored beside what
// it sealed.
type EncryptionKey struct {
	ID  string `yaml:"id"`
	Key string `yaml:"key"`
}

// SigningKey is one key of auth.keys.
type SigningKey struct {
	ID        string `yaml:"id"`
	Algorithm string `yaml:"algorithm"` // HS256, EdDSA, ES256 or RS256
	// Secret is the key of HS256.
	Secret string `yaml:"secret"`
	// PrivateKey (PEM) signs and verifies; PublicKey (PEM) only verifies,
	// for keys being retired.
	PrivateKey string `yaml:"private_key"`
	PublicKey  string `yaml:"public_key"`
}

// Lockout configures the progressive delay and account lock after failed
// logins.
type Lockout struct {
	// After n failures within DelayWindow, the next attempt waits
	// DelayBase x 2^(n-1), at most DelayMax.
	DelayWindow Duration `yaml:"delay_window"`
	DelayBase   Duration `yaml:"delay_base"`
	DelayMax    Duration `yaml:"delay_max"`
	// IPThreshold is how many distinct emails may fail to log in from one
	// IP within DelayWindow before that IP is slowed down too: past it, an
	// attempt from the IP waits DelayBase x 2^(n-1) after the IP's last
	// failure, n being the distinct emails past the threshold. Below it,
	// the failures of one account never delay another behind the same NAT
	// or proxy.
	IPThreshold int `yaml:"ip_threshold"`
	// MaxFailures within Window lock the account for Duration.
	MaxFailures int      `yaml:"max_failures"`
	Window      Duration `yaml:"window"`
	Duration    Duration `yaml:"duration"`
}

// Password is the password policy.
type Password struct {
	MinLength int `yaml:"min_length"`
	MaxLength int `yaml:"max_length"`
	// MinScore is the lowest zxcvbn score (0 to 4) accepted.
	MinScore int `yaml:"min_score"`
}

// Links are the URLs put in emails; {token} is replaced by the token.
type Links struct {
	VerifyEmail   string `yaml:"verify_email"`
	ResetPassword string `yaml:"reset_password"`
}

// Jobs configures the background job queue (River, in the database).
type Jobs struct {
	// Workers is how many jobs one node runs at once.
	Workers int `yaml:"workers"`
	// MaxAttempts before a job is discarded (the dead-letter state).
	MaxAttempts int `yaml:"max_attempts"`
	// Timeout bounds one attempt of a job.
	Timeout Duration `yaml:"timeout"`
	// RescueAfter is when a job still running (its node died) is retried.
	RescueAfter Duration `yaml:"rescue_after"`
	// CompletedRetention and DiscardedRetention are how long finished
	// jobs are kept for inspection.
	CompletedRetention Duration `yaml:"completed_retention"`
	DiscardedRetention Duration `yaml:"discarded_retention"`
}

// Realtime configures realtime and the change log.
type Realtime struct {
	// Broker carries wake-ups and cache invalidations between nodes:
	// memory (one node), postgres (LISTEN/NOTIFY) or redis.
	Broker   string `yaml:"broker"`
	RedisURL string `yaml:"redis_url"`
	// ChangesRetention is how long the change log keeps changes.
	ChangesRetention Duration `yaml:"changes_retention"`
	// PollInterval is how often a node reads the change log without a
	// wake-up, which bounds the delay of a lost one.
	PollInterval Duration `yaml:"poll_interval"`
	// SendQueue is how many messages wait for a slow socket before it is
	// disconnected.
	SendQueue int `yaml:"send_queue"`
	// MaxSubscriptions per connection.
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// MaxMessageBytes bounds a client message.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MessagesPerSecond a client may send, with bursts of twice that.
	MessagesPerSecond int `yaml:"messages_per_second"`
	// MaxConnections per node; 0 is no limit.
	MaxConnections int `yaml:"max_connections"`
	// PingInterval is how often an idle socket is pinged; a socket that
	// does not answer within another interval is closed.
	PingInterval Duration `yaml:"ping_interval"`
}

// Mail configures outgoing email.
type Mail struct {
	From string `yaml:"from"`
	// Providers are tried in order until one accepts the message.
	Providers []MailProvider `yaml:"providers"`
	Templates MailTemplates  `yaml:"templates"`
}

// MailTemplates replaces built-in mail templates with files.
type MailTemplates struct {
	// Dir holds files named like the built-in templates (verify_email.txt,
	// verify_email.html, ...); each replaces its built-in. A relative
	// directory is relative to the configuration file's (see
	// Config.MailTemplatesDir).
	Dir string `yaml:"dir"`
}

// MailProviderTypes are the kinds of mail provider.
var MailProviderTypes = []string{"console", "smtp", "sendgrid", "mailgun", "ses"}

// MailProvider is one way to send mail. Which keys apply depends on Type
// (see mailProviderKeys in validate.go).
type MailProvider struct {
	// Type is console, smtp, sendgrid, mailgun or ses.
	Type     string `yaml:"type"`
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS is starttls (default), tls or none.
	TLS string `yaml:"tls"`
	// APIKey authenticates to SendGrid and Mailgun.
	APIKey string `yaml:"api_key"`
	// Domain is the Mailgun sending domain.
	Domain string `yaml:"domain"`
	// Region is Mailgun's us (default) or eu, or the AWS region of SES.
	Region string `yaml:"region"`
	// Endpoint replaces the API's base URL of sendgrid, mailgun and ses.
	Endpoint string `yaml:"endpoint"`
	// AccessKeyID and SecretAccessKey sign SES requests.
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	// Timeout bounds one attempt; default 15s.
	Timeout Duration `yaml:"timeout"`
}

// MailTemplatesDir is mail.templates.dir resolved against the
// configuration file's directory, or "" when templates are not replaced.
func (c *Config) MailTemplatesDir() string {
	dir := c.Mail.Templates.Dir
	if dir == "" || filepath.IsAbs(dir) {
		return dir
	}
	return filepath.Join(c.Dir(), dir)
}

// Storage configures where the files of file fields are kept.
type Storage struct {
	// Backend is local (a directory) or s3 (a bucket of any S3-compatible
	// service).
	Backend string       `yaml:"backend"`
	Local   LocalStorage `yaml:"local"`
	S3      S3Storage    `yaml:"s3"`
	// MaxSize is the largest file of a file field that declares no
	// max_size.
	MaxSize ByteSize `yaml:"max_size"`
	// URLTTL is how long a signed download URL works.
	URLTTL Duration `yaml:"url_ttl"`
}

// LocalStorage configures the local backend.
type LocalStorage struct {
	// Root is the directory of the files; a relative one is relative to
	// the configuration file's directory (see Config.StorageRoot).
	Root string `yaml:"root"`
}

// S3Storage configures the s3 backend.
type S3Storage struct {
	// Endpoint is the service's URL, like https://s3.eu-west-1.amazonaws.com
	// or http://127.0.0.1:9000 (MinIO).
	Endpoint string `yaml:"endpoint"`
	Bucket   string `yaml:"bucket"`
	// Region is the bucket's region; empty asks the service.
	Region    string `yaml:"region"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	// PathStyle puts the bucket in the path (endpoint/bucket/key) instead
	// of the host name, as MinIO and most self-hosted services need.
	PathStyle bool `yaml:"path_style"`
	// Prefix is put before every key, to share a bucket.
	Prefix string `yaml:"prefix"`
}

// Defaults of the storage section.
const (
	DefaultStorageRoot    = ".abe/files"
	DefaultStorageMaxSize = 10 << 20
	DefaultStorageURLTTL  = 15 * time.Minute
)

// StorageRoot is the local backend's directory, a relative storage.local.root
// resolved against the configuration file's directory, as .abe/ is.
func (c *Config) StorageRoot() string {
	root := c.Storage.Local.Root
	if filepath.IsAbs(root) {
		return root
	}
	return filepath.Join(c.Dir(), root)
}

// Hosting serves a directory of static files (the web app) at /.
type Hosting struct {
	// Dir is the directory served; empty serves nothing. A relative one
	// is relative to the configuration file's directory (see
	// Config.HostingDir).
	Dir string `yaml:"dir"`
	// SPA answers page navigations that match no file with index.html.
	SPA bool `yaml:"spa"`
	// ServiceWorker is the path of the service worker in Dir, sent with
	// no-cache. Default sw.js.
	ServiceWorker string `yaml:"service_worker"`
	// MaxAge is how long browsers may cache files that are neither hashed
	// assets nor HTML nor the service worker; 0 is no-cache. Nil in the
	// file is DefaultHostingMaxAge.
	MaxAge *Duration `yaml:"max_age"`
	// CSP replaces the default Content-Security-Policy of hosted files.
	CSP string `yaml:"csp"`
}

// Defaults of the hosting section.
const (
	DefaultServiceWorker = "sw.js"
	DefaultHostingMaxAge = 5 * time.Minute
)

// HostingDir is hosting.dir resolved against the configuration file's
// directory, or "" when nothing is hosted.
func (c *Config) HostingDir() string {
	dir := c.Hosting.Dir
	if dir == "" || filepath.IsAbs(dir) {
		return dir
	}
	return filepath.Join(c.Dir(), dir)
}

// Webhooks are the settings of every webhook.
type Webhooks struct {
	// Allow lists targets (CIDRs, addresses, host names) webhooks may
	// reach although they are private, loopback, link-local or
	// unspecified.
	Allow []string `yaml:"allow"`
	// MaxAttempts of one delivery before it is discarded.
	MaxAttempts int `yaml:"max_attempts"`
	// Timeout of one request, for webhooks that set none.
	Timeout Duration `yaml:"timeout"`
	// ResponseLimit is how much of a response is read.
	ResponseLimit ByteSize `yaml:"response_limit"`
	// Backoff is the wait before the second attempt; it doubles for each
	// later one, up to WebhookBackoffMax.
	Backoff Duration `yaml:"backoff"`
}

// Defaults of the webhooks section.
const (
	DefaultWebhookAttempts      = 12
	DefaultWebhookTimeout       = 10 * time.Second
	DefaultWebhookResponseLimit = 64 << 10
	DefaultWebhookBackoff       = 10 * time.Second
	WebhookBackoffMax           = 6 * time.Hour
)

// WebhookEvents are the writes a webhook can be told of.
var WebhookEvents = []string{"create", "update", "delete"}

// Webhook POSTs the events of a collection's writes to a URL.
type Webhook struct {
	Name   string   `yaml:"name"`
	URL    string   `yaml:"url"`
	Events []string `yaml:"events"`
	// Filter, in the language of list filters, selects the records whose
	// events are sent; nil sends all. Its position is for errors.
	Filter *Rule `yaml:"-"`
	// SecretEnv names the environment variable of the signing secret.
	SecretEnv string `yaml:"secret_env"`
	// Principal is who the record is shaped for; nil is the system view.
	Principal *WebhookPrincipal `yaml:"principal"`
	// Timeout of one request; 0 is webhooks.timeout.
	Timeout Duration `yaml:"timeout"`
	Pos     Pos      `yaml:"-"`
}

// WebhookPrincipal is the principal a webhook reads records as.
type WebhookPrincipal struct {
	ID    string   `yaml:"id"`
	Email string   `yaml:"email"`
	Roles []string `yaml:"roles"`
}

// Role is a named set of permissions.
type Role struct {
	Name        string
	Description string
	Permissions []string
	// Default roles are given to every new account.
	Default bool
	Pos     Pos
}

// Collection is a declared table of records.
type Collection struct {
	Name        string
	Fields      []*Field
	Indexes     []*Index
	Rules       Rules
	Realtime    bool
	RenamedFrom string
	// Webhooks are told of the collection's writes.
	Webhooks []*Webhook
	Pos      Pos
}

// Field returns the field called name, or nil.
func (c *Collection) Field(name string) *Field {
	for _, f := range c.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Rules are the CEL expressions that guard each operation. A nil rule denies
// everyone but principals holding the "*" permission.
type Rules struct {
	List, Read, Create, Update, Delete *Rule
}

// Rule is one CEL expression and where it was written.
type Rule struct {
	Expr string
	Pos  Pos
	// Quoted tells whether the YAML value was quoted, so that positions
	// inside the expression map to columns of the file.
	Quoted bool
}

// FieldRules restrict one field.
type FieldRules struct {
	Read, Update *Rule
}

// FieldType is the declared type of a field.
type FieldType string

// The field types a collection may declare.
const (
	Text      FieldType = "text"
	Number    FieldType = "number"
	Integer   FieldType = "integer"
	Bool      FieldType = "bool"
	Timestamp FieldType = "timestamp"
	JSON      FieldType = "json"
	Select    FieldType = "select"
	Relation  FieldType = "relation"
	File      FieldType = "file"
	Email     FieldType = "email"
	URL       FieldType = "url"
)

// FieldTypes lists every field type, in the order the docs present them.
var FieldTypes = []FieldType{Text, Number, Integer, Bool, Timestamp, JSON, Select, Relation, File, Email, URL}

// What a relation does to its records when the record it points at is
// deleted.
const (
	OnDeleteCascade  = "cascade"
	OnDeleteSetNull  = "set_null"
	OnDeleteRestrict = "restrict"
)

// Field is a declared column of a collection.
type Field struct {
	Name     string
	Type     FieldType
	Required bool
	Unique   bool
	// Many makes a relation, select or file field hold a list.
	Many bool
	// Default is the decoded YAML default (string, int64, float64, bool,
	// []any, map[string]any), or nil when there is none.
	Default any
	// Nullable lets a field with a default hold null; see NotNull.
	Nullable bool
	// Min and Max bound numbers, the length of text, or the number of items
	// of a list.
	Min, Max *float64
	Pattern  string
	Values   []string
	// Collection is the target of a relation: a declared collection or
	// "users", the built-in accounts.
	Collection  string
	OnDelete    string
	RenamedFrom string
	// MaxSize bounds each file of a file field, in bytes; 0 is
	// storage.max_size.
	MaxSize int64
	// MIMETypes are what a file field accepts, like image/png or image/*,
	// as sniffed from the content; none accepts any type.
	MIMETypes []string
	Rules     FieldRules
	Pos       Pos
}

// NotNull tells whether the field never holds null (its column is NOT
// NULL): a required field, a list (empty when it holds nothing), or a
// field with a default unless the file says nullable: true. A relation
// cleared when its record is deleted (on_delete: set_null) can hold null.
func (f *Field) NotNull() bool {
	switch {
	case f.Required, f.Many:
		return true
	case f.Default == nil, f.Nullable:
		return false
	}
	return f.Type != Relation || f.OnDelete != OnDeleteSetNull
}

// Index is a declared index over one or more fields.
type Index struct {
	Name   string
	Fields []string
	Unique bool
	Pos    Pos
}

// UsersCollection is the name relations use for the built-in accounts.
const UsersCollection = "users"

// SystemFields are the columns every collection has.
var SystemFields = []string{"id", "version", "created_at", "updated_at"}

// Defaults for settings the file leaves out.
const (
	DefaultListen          = "127.0.0.1:8090"
	DefaultSchema          = "public"
	DefaultMaxConns        = 20
	DefaultShutdownTimeout = 15 * time.Second
	DefaultBodyLimit       = 1 << 20
	// Default rate limits, per minute, per user (per IP when anonymous);
	// docs/auth.md has the reasoning. Limits are for abuse, and no
	// well-behaved client meets them: an offline queue replaying 1,000
	// writes at full speed fits in the write burst twice over, and 20
	// writes and 50 requests a second, sustained, is more than a person
	// clicking, dragging or typing makes.
	DefaultRateRequests  = 3000 // every request: 50 a second
	DefaultRateBurst     = 3000
	DefaultWriteRequests = 1200 // POST, PUT, PATCH, DELETE: 20 a second
	DefaultWriteBurst    = 2000
	// DefaultAuthRequests is the strict budget of POSTs to /api/auth/*,
	// per IP: passwords and codes are guessed there.
	DefaultAuthRequests = 20
	// DefaultIPThreshold is auth.lockout.ip_threshold: distinct emails
	// failing from one IP within the delay window before the IP is slowed.
	// Typos are a few in a hundred logins, so reaching 20 distinct
	// accounts in 5 minutes takes hundreds of people logging in behind one
	// address; an attacker trying many accounts reaches it in seconds.
	DefaultIPThreshold = 20
)

func orDuration(d *Duration, def time.Duration) {
	*d = cmp.Or(*d, Duration(def))
}

// withDefaults fills in every setting the file left out.
func (c *Config) withDefaults() {
	s := &c.Server
	s.Listen = cmp.Or(s.Listen, DefaultListen)
	s.PublicURL = strings.TrimSuffix(cmp.Or(s.PublicURL, "http://"+s.Listen), "/")
	orDuration(&s.ShutdownTimeout, DefaultShutdownTimeout)
	s.BodyLimit = cmp.Or(s.BodyLimit, DefaultBodyLimit)
	orDuration(&s.CORS.MaxAge, 10*time.Minute)
	rl := &s.RateLimit
	rateDefaults(&rl.Requests, &rl.Burst, &rl.Window, DefaultRateRequests, DefaultRateBurst)
	rateDefaults(&rl.Auth.Requests, &rl.Auth.Burst, &rl.Auth.Window, DefaultAuthRequests, DefaultAuthRequests)
	rateDefaults(&rl.Writes.Requests, &rl.Writes.Burst, &rl.Writes.Window, DefaultWriteRequests, DefaultWriteBurst)
	rl.Store = cmp.Or(rl.Store, "memory")
	rl.MaxKeys = cmp.Or(rl.MaxKeys, 100_000)

	c.Database.Schema = cmp.Or(c.Database.Schema, DefaultSchema)
	c.Database.MaxConns = cmp.Or(c.Database.MaxConns, DefaultMaxConns)

	a := &c.Auth
	a.Issuer = cmp.Or(a.Issuer, "abe")
	orDuration(&a.AccessTokenTTL, 15*time.Minute)
	orDuration(&a.RefreshTokenTTL, 7*24*time.Hour)
	orDuration(&a.RefreshReuseGrace, 10*time.Second)
	orDuration(&a.VerifyTokenTTL, 24*time.Hour)
	orDuration(&a.ResetTokenTTL, time.Hour)
	l := &a.Lockout
	orDuration(&l.DelayWindow, 5*time.Minute)
	orDuration(&l.DelayBase, time.Second)
	orDuration(&l.DelayMax, 30*time.Second)
	l.IPThreshold = cmp.Or(l.IPThreshold, DefaultIPThreshold)
	l.MaxFailures = cmp.Or(l.MaxFailures, 10)
	orDuration(&l.Window, 30*time.Minute)
	orDuration(&l.Duration, 30*time.Minute)
	a.Password.MinLength = cmp.Or(a.Password.MinLength, 8)
	a.Password.MaxLength = cmp.Or(a.Password.MaxLength, 128)
	a.MFA.Issuer = cmp.Or(a.MFA.Issuer, "abe")
	orDuration(&a.MFA.ChallengeTTL, 5*time.Minute)
	a.Links.VerifyEmail = cmp.Or(a.Links.VerifyEmail, s.PublicURL+"/api/auth/verify-email?token={token}")
	a.Links.ResetPassword = cmp.Or(a.Links.ResetPassword, s.PublicURL+"/api/auth/password/reset?token={token}")

	j := &c.Jobs
	j.Workers = cmp.Or(j.Workers, 10)
	j.MaxAttempts = cmp.Or(j.MaxAttempts, 10)
	orDuration(&j.Timeout, time.Minute)
	orDuration(&j.RescueAfter, time.Hour)
	orDuration(&j.CompletedRetention, 24*time.Hour)
	orDuration(&j.DiscardedRetention, 7*24*time.Hour)
	rt := &c.Realtime
	rt.Broker = cmp.Or(rt.Broker, "postgres")
	orDuration(&rt.ChangesRetention, 7*24*time.Hour)
	orDuration(&rt.PollInterval, time.Second)
	orDuration(&rt.PingInterval, 30*time.Second)
	rt.SendQueue = cmp.Or(rt.SendQueue, 256)
	rt.MaxSubscriptions = cmp.Or(rt.MaxSubscriptions, 100)
	rt.MaxMessageBytes = cmp.Or(rt.MaxMessageBytes, 16<<10)
	rt.MessagesPerSecond = cmp.Or(rt.MessagesPerSecond, 50)

	st := &c.Storage
	st.Backend = cmp.Or(st.Backend, "local")
	st.Local.Root = cmp.Or(st.Local.Root, DefaultStorageRoot)
	st.MaxSize = cmp.Or(st.MaxSize, DefaultStorageMaxSize)
	orDuration(&st.URLTTL, DefaultStorageURLTTL)

	wh := &c.Webhooks
	wh.MaxAttempts = cmp.Or(wh.MaxAttempts, DefaultWebhookAttempts)
	orDuration(&wh.Timeout, DefaultWebhookTimeout)
	wh.ResponseLimit = cmp.Or(wh.ResponseLimit, DefaultWebhookResponseLimit)
	orDuration(&wh.Backoff, DefaultWebhookBackoff)
	for _, col := range c.Collections {
		for _, w := range col.Webhooks {
			orDuration(&w.Timeout, time.Duration(wh.Timeout))
		}
	}

	h := &c.Hosting
	h.ServiceWorker = strings.TrimPrefix(cmp.Or(h.ServiceWorker, DefaultServiceWorker), "/")
	if h.MaxAge == nil {
		d := Duration(DefaultHostingMaxAge)
		h.MaxAge = &d
	}

	c.Mail.From = cmp.Or(c.Mail.From, "abe <no-reply@localhost>")
	if len(c.Mail.Providers) == 0 {
		c.Mail.Providers = []MailProvider{{Type: "console"}}
	}
	for i := range c.Mail.Providers {
		p := &c.Mail.Providers[i]
		if p.Type == "smtp" {
			p.TLS = cmp.Or(p.TLS, "starttls")
			if p.Port == 0 {
				p.Port = map[string]int{"tls": 465, "starttls": 587, "none": 25}[p.TLS]
			}
		}
		if p.Type != "console" {
			orDuration(&p.Timeout, 15*time.Second)
		}
	}
	for _, col := range c.Collections {
		for _, f := range col.Fields {
			if f.Type == Relation && f.OnDelete == "" {
				// A required relation cannot be cleared, so deleting its
				// target must be refused rather than leave it dangling.
				f.OnDelete = OnDeleteSetNull
				if f.Required {
					f.OnDelete = OnDeleteRestrict
				}
			}
		}
	}
}

// Collection returns the collection called name, or nil.
func (c *Config) Collection(name string) *Collection {
	for _, col := range c.Collections {
		if col.Name == name {
			return col
		}
	}
	return nil
}

// ByteSize is a size in bytes, written as a number or with a unit: 512KiB,
// 1MiB, 10MB.
type ByteSize int64

// UnmarshalYAML reads a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// ParseByteSize reads "1048576", "512KiB", "1MiB", "1MB" or "1GiB".
func ParseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("invalid size %q: write bytes, or a number with KiB, MiB or GiB, like 1MiB", s)
	}
	return n * mult, nil
}

// Duration is a time.Duration written as "15m", "168h" or "7d".
type Duration time.Duration

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration accepts Go durations plus a whole number of days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q: write a whole number of days, like 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid duration %q: write a number and a unit, like 30s, 15m, 168h or 7d", s)
	}
	return v, nil
}
