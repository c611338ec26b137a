package schema

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

var identRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// celReserved are words CEL refuses as identifiers; a field so named could
// never appear in a rule.
var celReserved = []string{"as", "break", "const", "continue", "else", "false", "for", "function", "if", "import", "in", "let", "loop", "package", "namespace", "null", "return", "true", "var", "void", "while"}

const maxIdentLen = 63 // Postgres truncates longer identifiers

// ruleNames are the variables of rules and filters; a field so named
// would be hidden by them in filters.
var ruleNames = []string{"auth", "request", "record", "before", "changes"}

// checker collects semantic problems: the ones a JSON Schema cannot see.
type checker struct {
	doc   *document
	cfg   *Config
	diags Diagnostics
}

func check(doc *document, cfg *Config) Diagnostics {
	c := &checker{doc: doc, cfg: cfg}
	c.checkServer()
	c.checkDatabase()
	c.checkAuth()
	c.checkMail()
	c.checkStorage()
	c.checkHosting()
	c.checkWebhooks()
	c.checkRoles()
	for _, col := range cfg.Collections {
		c.checkCollection(col)
	}
	return c.diags
}

func (c *checker) add(path []string, atKey bool, msg, hint string, args ...any) {
	pos := c.doc.at(path)
	if atKey {
		pos = c.doc.keyAt(path)
	}
	c.diags = append(c.diags, Diagnostic{Pos: pos, Path: pathString(path), Message: fmt.Sprintf(msg, args...), Hint: hint})
}

func (c *checker) checkServer() {
	srv := &c.cfg.Server
	path := []string{"server", "listen"}
	_, port, err := net.SplitHostPort(srv.Listen)
	if err != nil {
		c.add(path, false, "%q is not a host:port address", "write it like 127.0.0.1:8090, or :8090 for every interface", srv.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		c.add(path, false, "port %q is not a number from 0 to 65535", "write it like 127.0.0.1:8090", port)
	}
	if u, err := url.Parse(srv.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.add([]string{"server", "public_url"}, false, "%q is not an http(s) URL", "write it like https://api.example.com", srv.PublicURL)
	}
	for i, p := range srv.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			c.add([]string{"server", "trusted_proxies", strconv.Itoa(i)}, false, "%q is not an IP address or CIDR", "write it like 10.0.0.0/8 or 192.168.1.10", p)
		}
	}
	for i, p := range srv.Metrics.Allow {
		if _, err := ParsePrefix(p); err != nil {
			c.add([]string{"server", "metrics", "allow", strconv.Itoa(i)}, false, "%q is not an IP address or CIDR", "write it like 10.0.0.0/8 or 192.168.1.10", p)
		}
	}
	if t := srv.Metrics.Token; t != "" && len(t) < 16 {
		c.add([]string{"server", "metrics", "token"}, false, "the metrics token is %d characters; it needs at least 16", "generate one with `openssl rand -base64 24` and pass it as ${ABE_METRICS_TOKEN}", len(t))
	}
	cors := srv.CORS
	for i, o := range cors.AllowedOrigins {
		p := []string{"server", "cors", "allowed_origins", strconv.Itoa(i)}
		if o == "*" {
			if cors.AllowCredentials {
				c.add(p, false, "\"*\" cannot be combined with allow_credentials", "list the origins that may send credentials, like https://app.example.com")
			}
			continue
		}
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			c.add(p, false, "%q is not an origin", "write scheme://host[:port] with no path, like https://app.example.com", o)
		}
	}
	rl := srv.RateLimit
	if rl.Store == "redis" && !rl.Disabled {
		if rl.RedisURL == "" {
			c.add([]string{"server", "rate_limit", "store"}, false, "the redis store needs server.rate_limit.redis_url", "set redis_url, like redis://127.0.0.1:6379/0")
		} else if u, err := url.Parse(rl.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			c.add([]string{"server", "rate_limit", "redis_url"}, false, "%q is not a redis:// URL", "write it like redis://127.0.0.1:6379/0", rl.RedisURL)
		}
	}
	if j := c.cfg.Jobs; j.RescueAfter <= j.Timeout {
		c.add([]string{"jobs", "rescue_after"}, false, "rescue_after (%s) must be longer than timeout (%s), or running jobs would be started again", "raise rescue_after, like 1h", j.RescueAfter, j.Timeout)
	}
	if rt := c.cfg.Realtime; rt.Broker == "redis" {
		if rt.RedisURL == "" {
			c.add([]string{"realtime", "broker"}, false, "the redis broker needs realtime.redis_url", "set redis_url, like redis://127.0.0.1:6379/0")
		} else if u, err := url.Parse(rt.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			c.add([]string{"realtime", "redis_url"}, false, "%q is not a redis:// URL", "write it like redis://127.0.0.1:6379/0", rt.RedisURL)
		}
	}
	if srv.BodyLimit < 1024 {
		c.add([]string{"server", "body_limit"}, false, "a body limit of %d bytes is too small to be useful", "use at least 1KiB; the default is 1MiB", srv.BodyLimit)
	}
}

// ParsePrefix reads a CIDR, or a single address as a /32 or /128.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (c *checker) checkDatabase() {
	if u := c.cfg.Database.URL; u != "" {
		if _, err := pgx.ParseConfig(u); err != nil {
			c.add([]string{"database", "url"}, false, "invalid database URL: %s", "write it like postgres://user:password@host:5432/dbname", redactParseError(err))
		}
	}
	s := c.cfg.Database.Schema
	switch {
	case !identRE.MatchString(s) || len(s) > maxIdentLen:
		c.add([]string{"database", "schema"}, false, "%q is not a valid schema name", "use lower-case letters, digits and underscores, starting with a letter", s)
	case s == "abe" || strings.HasPrefix(s, "pg_") || s == "information_schema":
		c.add([]string{"database", "schema"}, false, "schema %q is reserved", "collections need a schema of their own, like public or app", s)
	}
}

// redactParseError keeps pgx's reason but drops the URL it quotes, which
// may hold a password.
func redactParseError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "cannot parse") {
		return msg[i+2:]
	}
	return msg
}

// MinSecretLen is the shortest auth.secret accepted.
const MinSecretLen = 32

func (c *checker) checkAuth() {
	a := &c.cfg.Auth
	if s := a.Secret; s != "" && len(s) < MinSecretLen {
		c.add([]string{"auth", "secret"}, false, "the secret is %d characters; it needs at least %d", "generate one with `openssl rand -base64 48` and pass it as ${ABE_AUTH_SECRET}", len(s), MinSecretLen)
	}
	ids := map[string]bool{}
	signers, broken := 0, 0
	for i, k := range a.Keys {
		path := []string{"auth", "keys", strconv.Itoa(i)}
		if ids[k.ID] {
			c.add(append(path, "id"), false, "key id %q is used twice", "give every key its own id", k.ID)
		}
		ids[k.ID] = true
		if k.ID == "" || len(k.ID) > 64 || strings.ContainsAny(k.ID, " \t\n\"") {
			c.add(append(path, "id"), false, "key id %q is not a short plain name", "use something like 2025-11 or main", k.ID)
		}
		canSign, err := CheckSigningKey(k)
		if err != nil {
			broken++
			c.add(path, false, "%v", "see auth.keys in config.example.yaml", err)
		}
		if canSign {
			signers++
		}
	}
	if len(a.Keys) > 0 && signers == 0 && broken == 0 {
		c.add([]string{"auth", "keys"}, true, "no key can sign: every key only has a public_key", "give one key its secret (HS256) or private_key")
	}
	mfaIDs := map[string]bool{}
	for i, k := range a.MFA.EncryptionKeys {
		path := []string{"auth", "mfa", "encryption_keys", strconv.Itoa(i)}
		if mfaIDs[k.ID] || k.ID == "secret" {
			c.add(append(path, "id"), false, "key id %q is used twice (\"secret\" names the key derived from auth.secret)", "give every key its own id", k.ID)
		}
		mfaIDs[k.ID] = true
		if _, err := DecodeEncryptionKey(k.Key); err != nil {
			c.add(append(path, "key"), false, "%v", "make one with `openssl rand -base64 32` and pass it as ${VAR}", err)
		}
	}
	for i, r := range a.RequireMFAForRoles {
		if !slices.ContainsFunc(c.cfg.Roles, func(role *Role) bool { return role.Name == r }) {
			c.add([]string{"auth", "require_mfa_for_roles", strconv.Itoa(i)}, false, "there is no role %q in roles", "name a role defined under roles:", r)
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"access_token_ttl", a.AccessTokenTTL}, {"refresh_token_ttl", a.RefreshTokenTTL}, {"verify_token_ttl", a.VerifyTokenTTL}, {"reset_token_ttl", a.ResetTokenTTL}} {
		if time.Duration(d.v) < time.Second {
			c.add([]string{"auth", d.key}, false, "%s must be at least 1s", "write it like 15m", d.key)
		}
	}
	if a.AccessTokenTTL > a.RefreshTokenTTL {
		c.add([]string{"auth", "access_token_ttl"}, false, "access tokens (%s) would outlive refresh tokens (%s)", "keep access tokens short, like 15m", a.AccessTokenTTL, a.RefreshTokenTTL)
	}
	if p := a.Password; p.MinLength > p.MaxLength {
		c.add([]string{"auth", "password", "min_length"}, false, "min_length (%d) is greater than max_length (%d)", "swap them", p.MinLength, p.MaxLength)
	}
	if l := a.Lockout; l.DelayBase > l.DelayMax {
		c.add([]string{"auth", "lockout", "delay_base"}, false, "delay_base (%s) is longer than delay_max (%s)", "lower delay_base or raise delay_max", l.DelayBase, l.DelayMax)
	}
	for key, link := range map[string]string{"verify_email": a.Links.VerifyEmail, "reset_password": a.Links.ResetPassword} {
		u, err := url.Parse(strings.ReplaceAll(link, "{token}", "t"))
		if !strings.Contains(link, "{token}") || err != nil || u.Scheme == "" || u.Host == "" {
			c.add([]string{"auth", "links", key}, false, "%q is not an absolute URL with {token} in it", "write it like https://app.example.com/verify?token={token}", link)
		}
	}
}

// CheckSigningKey checks a key of auth.keys and tells whether it can sign.
func CheckSigningKey(k SigningKey) (canSign bool, err error) {
	switch k.Algorithm {
	case "HS256":
		if k.PrivateKey != "" || k.PublicKey != "" {
			return false, fmt.Errorf("key %q: HS256 keys take a secret, not PEM keys", k.ID)
		}
		if len(k.Secret) < MinSecretLen {
			return false, fmt.Errorf("key %q: the HS256 secret needs at least %d characters", k.ID, MinSecretLen)
		}
		return true, nil
	case "EdDSA", "ES256", "RS256":
		if k.Secret != "" {
			return false, fmt.Errorf("key %q: %s keys take private_key or public_key (PEM), not a secret", k.ID, k.Algorithm)
		}
		switch {
		case k.PrivateKey != "":
			key, err := ParsePrivateKey(k.PrivateKey)
			if err != nil {
				return false, fmt.Errorf("key %q: private_key: %w", k.ID, err)
			}
			return true, matchAlgorithm(k, key.Public())
		case k.PublicKey != "":
			key, err := ParsePublicKey(k.PublicKey)
			if err != nil {
				return false, fmt.Errorf("key %q: public_key: %w", k.ID, err)
			}
			return false, matchAlgorithm(k, key)
		}
		return false, fmt.Errorf("key %q: an %s key needs private_key or public_key (PEM)", k.ID, k.Algorithm)
	}
	return false, fmt.Errorf("key %q: unknown algorithm %q", k.ID, k.Algorithm)
}

func matchAlgorithm(k SigningKey, pub crypto.PublicKey) error {
	ok := false
	switch p := pub.(type) {
	case ed25519.PublicKey:
		ok = k.Algorithm == "EdDSA"
	case *ecdsa.PublicKey:
		ok = k.Algorithm == "ES256" && p.Curve == elliptic.P256()
	case *rsa.PublicKey:
		ok = k.Algorithm == "RS256" && p.N.BitLen() >= 2048
	}
	if !ok {
		return fmt.Errorf("key %q: the PEM key is not an %s key (EdDSA: Ed25519; ES256: P-256; RS256: RSA of 2048 bits or more)", k.ID, k.Algorithm)
	}
	return nil
}

// ParsePrivateKey reads a PEM private key: PKCS#8, SEC 1 (EC) or PKCS#1
// (RSA).
func ParsePrivateKey(pemText string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("not PEM: expected -----BEGIN PRIVATE KEY-----")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS#8, SEC 1 or PKCS#1 private key")
}

// ParsePublicKey reads a PEM public key (PKIX).
func ParsePublicKey(pemText string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("not PEM: expected -----BEGIN PUBLIC KEY-----")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKIX public key")
	}
	return k, nil
}

// mailProviderKeys are the keys each type of provider takes, the ones it
// needs first.
var mailProviderKeys = map[string]struct{ needs, takes []string }{
	"console":  {},
	"smtp":     {needs: []string{"host"}, takes: []string{"port", "username", "password", "tls", "timeout"}},
	"sendgrid": {needs: []string{"api_key"}, takes: []string{"endpoint", "timeout"}},
	"mailgun":  {needs: []string{"api_key", "domain"}, takes: []string{"region", "endpoint", "timeout"}},
	"ses":      {needs: []string{"region", "access_key_id", "secret_access_key"}, takes: []string{"endpoint", "timeout"}},
}

// mailProviderExamples are the hints for a missing key.
var mailProviderExamples = map[string]string{
	"host":              "host: smtp.example.com",
	"api_key":           "api_key: ${%s_API_KEY} (and set the variable)",
	"domain":            "domain: mg.example.com, the sending domain",
	"region":            "region: us-east-1, the AWS region of SES",
	"access_key_id":     "access_key_id: ${AWS_ACCESS_KEY_ID} (and set the variable)",
	"secret_access_key": "secret_access_key: ${AWS_SECRET_ACCESS_KEY} (and set the variable)",
}

var awsRegionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

func (c *checker) checkMail() {
	m := &c.cfg.Mail
	if _, err := mail.ParseAddress(m.From); err != nil {
		c.add([]string{"mail", "from"}, false, "%q is not an email address", "write it like \"Acme <no-reply@acme.test>\"", m.From)
	}
	for i, p := range m.Providers {
		c.checkMailProvider([]string{"mail", "providers", strconv.Itoa(i)}, p)
	}
	if m.Templates.Dir != "" {
		dir := c.cfg.MailTemplatesDir()
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			c.add([]string{"mail", "templates", "dir"}, false, "the mail template directory %s does not exist", "create it, or correct the path (a relative one is relative to this file)", dir)
		}
	}
}

func (c *checker) checkMailProvider(path []string, p MailProvider) {
	keys, ok := mailProviderKeys[p.Type]
	if !ok {
		return // the JSON Schema has said so
	}
	sub := func(k string) []string { return append(slices.Clip(path), k) }
	set := map[string]bool{
		"host": p.Host != "", "port": p.Port != 0, "username": p.Username != "", "password": p.Password != "", "tls": p.TLS != "",
		"api_key": p.APIKey != "", "domain": p.Domain != "", "region": p.Region != "", "endpoint": p.Endpoint != "",
		"access_key_id": p.AccessKeyID != "", "secret_access_key": p.SecretAccessKey != "", "timeout": p.Timeout != 0,
	}
	allowed := append(slices.Clone(keys.needs), keys.takes...)
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if set[k] && !slices.Contains(allowed, k) {
			hint := "remove it; the " + p.Type + " provider takes no settings but type"
			if len(allowed) > 0 {
				hint = "remove it; the " + p.Type + " provider takes " + strings.Join(allowed, ", ")
			}
			c.add(sub(k), true, "%s does not apply to the %s provider", hint, k, p.Type)
		}
	}
	if p.Endpoint != "" {
		if u, err := url.Parse(p.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			c.add(sub("endpoint"), false, "%q is not an http(s) base URL", "write it like https://api.eu.example.com, without a query", p.Endpoint)
		}
	}
	switch p.Type {
	case "mailgun":
		if p.Region != "" && p.Region != "us" && p.Region != "eu" {
			c.add(sub("region"), false, "mailgun region %q is neither us nor eu", "use the region your Mailgun domain was created in: us or eu", p.Region)
		} else if p.Region != "" && p.Endpoint != "" {
			c.add(sub("endpoint"), true, "region and endpoint both choose the Mailgun API's URL", "keep one: region: eu, or endpoint: https://...")
		}
	case "ses":
		if p.Region != "" && !awsRegionRE.MatchString(p.Region) {
			c.add(sub("region"), false, "%q is not an AWS region", "write it like us-east-1 or eu-west-1", p.Region)
		}
	}
	// Last and in one diagnostic: it sits on the whole entry, and would
	// hide the problems of its keys reported after it.
	var missing, hints []string
	for _, k := range keys.needs {
		if !set[k] {
			missing = append(missing, k)
			hint := mailProviderExamples[k]
			if k == "api_key" {
				hint = fmt.Sprintf(hint, strings.ToUpper(p.Type))
			}
			hints = append(hints, hint)
		}
	}
	if len(missing) > 0 {
		c.add(path, false, "the %s provider needs %s", "add "+strings.Join(hints, "; "), p.Type, strings.Join(missing, " and "))
	}
}

var (
	permissionRE = regexp.MustCompile(`^(\*|[a-z0-9_-]+(:[a-z0-9_*-]+)*)$`)
	roleRE       = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

func (c *checker) checkRoles() {
	for _, r := range c.cfg.Roles {
		path := []string{"roles", r.Name}
		if !roleRE.MatchString(r.Name) || len(r.Name) > maxIdentLen {
			c.add(path, true, "%q is not a valid role name", "use lower-case letters, digits, - and _, starting with a letter", r.Name)
		}
		for i, p := range r.Permissions {
			if !permissionRE.MatchString(p) {
				c.add(append(path, "permissions", strconv.Itoa(i)), false, "%q is not a valid permission", "write * or names like todos:moderate (lower-case, parts separated by :)", p)
			}
		}
	}
}

func (c *checker) checkIdent(path []string, what, name string) bool {
	hint := "use lower-case letters, digits and underscores, starting with a letter (at most 63 characters)"
	switch {
	case !identRE.MatchString(name):
		c.add(path, true, "%q is not a valid %s name", hint, name, what)
	case len(name) > maxIdentLen:
		c.add(path, true, "%s name %q is longer than %d characters", hint, what, name, maxIdentLen)
	case slices.Contains(celReserved, name):
		c.add(path, true, "%q is a reserved word in rules and cannot name a %s", "choose another name, like "+name+"_", name, what)
	default:
		return true
	}
	return false
}

func (c *checker) collectionNames() []string {
	names := []string{UsersCollection}
	for _, col := range c.cfg.Collections {
		if col.Name != UsersCollection {
			names = append(names, col.Name)
		}
	}
	return names
}

func (c *checker) checkCollection(col *Collection) {
	base := []string{"collections", col.Name}
	if c.checkIdent(base, "collection", col.Name) {
		switch {
		case col.Name == UsersCollection:
			c.add(base, true, "%q is the built-in accounts collection and cannot be declared", "relate to accounts with `type: relation, collection: users`; name your own collection differently, like profiles", col.Name)
		case strings.HasPrefix(col.Name, "pg_") || strings.HasPrefix(col.Name, "abe_"):
			c.add(base, true, "collection names starting with %q are reserved", "choose another name", col.Name[:strings.IndexByte(col.Name, '_')+1])
		}
	}
	if rf := col.RenamedFrom; rf != "" {
		path := append(slices.Clone(base), "renamed_from")
		if c.checkIdent(path, "collection", rf) && c.cfg.Collection(rf) != nil {
			c.add(path, false, "renamed_from %q names a collection that is still declared", "a rename needs the old name to be gone from the file", rf)
		}
	}
	if len(col.Fields) == 0 {
		c.add(append(slices.Clone(base), "fields"), true, "collection %q has no fields", "declare at least one field, like `title: { type: text }`", col.Name)
	}
	for _, f := range col.Fields {
		c.checkField(col, f)
	}
	c.checkIndexes(col)
}

func (c *checker) checkField(col *Collection, f *Field) {
	path := []string{"collections", col.Name, "fields", f.Name}
	sub := func(key string) []string { return append(slices.Clone(path), key) }
	if c.checkIdent(path, "field", f.Name) && slices.Contains(SystemFields, f.Name) {
		c.add(path, true, "%q is a field every collection already has (id, version, created_at, updated_at)", "remove it, or choose another name", f.Name)
	} else if slices.Contains(ruleNames, f.Name) {
		c.add(path, true, "%q is a name rules and filters use (auth, request, record, before, changes)", "choose another name, like "+f.Name+"_", f.Name)
	}
	if rf := f.RenamedFrom; rf != "" && c.checkIdent(sub("renamed_from"), "field", rf) && col.Field(rf) != nil {
		c.add(sub("renamed_from"), false, "renamed_from %q names a field that is still declared", "a rename needs the old name to be gone from the collection", rf)
	}

	list := f.Many
	if f.Many && f.Type != Relation && f.Type != Select && f.Type != File {
		c.add(sub("many"), false, "many is for relation, select and file fields, not %s", "use a json field to hold a list of other values", f.Type)
		list = false
	}
	bounded := list || f.Type == Number || f.Type == Integer || f.Type == Text || f.Type == Email || f.Type == URL
	for _, k := range []string{"min", "max"} {
		v := f.Min
		if k == "max" {
			v = f.Max
		}
		if v == nil {
			continue
		}
		switch {
		case !bounded:
			c.add(sub(k), false, "%s does not apply to a %s field", "min and max bound numbers, text length and the number of items of a many field", k, f.Type)
		case (list || f.Type != Number) && (*v != math.Trunc(*v) || *v < 0):
			c.add(sub(k), false, "%s must be a whole number of at least 0 here", "it counts characters or items", k)
		}
	}
	if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
		c.add(sub("min"), false, "min (%v) is greater than max (%v)", "swap them, or widen the range", *f.Min, *f.Max)
	}
	if f.Pattern != "" {
		if f.Type != Text && f.Type != Email && f.Type != URL {
			c.add(sub("pattern"), false, "pattern applies to text fields, not %s", "remove it", f.Type)
		} else if _, err := regexp.Compile(f.Pattern); err != nil {
			c.add(sub("pattern"), false, "invalid pattern: %v", "write a regular expression like ^[a-z]+$", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		} else if strings.ContainsRune(f.Pattern, 0) {
			c.add(sub("pattern"), false, "the pattern holds a NUL character", "remove it")
		}
	}
	switch {
	case f.Type == Select && len(f.Values) == 0:
		c.add(path, true, "select field %q has no values", "list the allowed values: `values: [draft, published]`", f.Name)
	case f.Type != Select && f.Values != nil:
		c.add(sub("values"), false, "values apply to select fields, not %s", "use `type: select`, or remove values", f.Type)
	case f.Type == Select:
		seen := map[string]bool{}
		for i, v := range f.Values {
			if seen[v] {
				c.add(append(sub("values"), strconv.Itoa(i)), false, "value %q is listed twice", "remove one", v)
			}
			if v == "" || strings.ContainsRune(v, 0) {
				c.add(append(sub("values"), strconv.Itoa(i)), false, "a select value must be non-empty text", "remove it")
			}
			seen[v] = true
		}
	}
	switch {
	case f.Type == Relation && f.Collection == "":
		c.add(path, true, "relation field %q does not say which collection it points at", "add `collection: <name>`; users is the built-in accounts", f.Name)
	case f.Type == Relation && !slices.Contains(c.collectionNames(), f.Collection):
		hint := "declare the collection, or point at one of: " + strings.Join(c.collectionNames(), ", ")
		if guess := Suggest(f.Collection, c.collectionNames()); guess != "" {
			hint = fmt.Sprintf("did you mean %q? %s", guess, hint)
		}
		c.add(sub("collection"), false, "relation to unknown collection %q", hint, f.Collection)
	case f.Type != Relation && f.Collection != "":
		c.add(sub("collection"), false, "collection applies to relation fields, not %s", "use `type: relation`, or remove collection", f.Type)
	}
	if f.Type != Relation && f.OnDelete != "" {
		c.add(sub("on_delete"), false, "on_delete applies to relation fields, not %s", "remove it", f.Type)
	}
	if f.Type == Relation && !f.Many && f.Required && f.OnDelete == OnDeleteSetNull {
		c.add(sub("on_delete"), false, "a required relation cannot be set to null when its record is deleted", "use on_delete: cascade or restrict, or make the field optional")
	}
	c.checkFileOptions(path, f)
	if f.Unique && (f.Many || f.Type == JSON) {
		c.add(sub("unique"), false, "unique does not apply to a %s field", "declare a unique index over plain fields instead", describe(f))
	}
	if f.Nullable && (f.Required || f.Many) {
		what := "required"
		if !f.Required {
			what = "list"
		}
		c.add(sub("nullable"), false, "a %s field cannot be nullable", "remove nullable: a required field or a list never holds null", what)
	}
	if f.Default != nil {
		if msg, hint := c.checkDefault(f); msg != "" {
			c.add(sub("default"), false, "%s", hint, msg)
		}
	}
}

func describe(f *Field) string {
	if f.Many {
		return "many " + string(f.Type)
	}
	return string(f.Type)
}

// checkDefault says what is wrong with a field's default, if anything.
func (c *checker) checkDefault(f *Field) (msg, hint string) {
	if f.Many {
		items, ok := f.Default.([]any)
		if !ok {
			return fmt.Sprintf("the default of a many %s field must be a list", f.Type), "write it like [a, b], or [] for none"
		}
		if f.Max != nil && float64(len(items)) > *f.Max {
			return fmt.Sprintf("the default has %d items, more than max (%v)", len(items), *f.Max), "shorten it"
		}
		single := *f
		single.Many = false
		for _, item := range items {
			single.Default = item
			if msg, hint := c.checkDefault(&single); msg != "" {
				return "list item: " + msg, hint
			}
		}
		return "", ""
	}
	v := f.Default
	switch f.Type {
	case Text, Email, URL:
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("the default of a %s field must be text, not %v", f.Type, v), "quote it: default: \"...\""
		}
		if strings.ContainsRune(s, 0) {
			return "the default holds a NUL character", "remove it"
		}
		n := float64(utf8.RuneCountInString(s))
		if (f.Min != nil && n < *f.Min) || (f.Max != nil && n > *f.Max) {
			return fmt.Sprintf("the default %q has %v characters, outside min/max", s, n), "change the default or the bounds"
		}
		if re, err := regexp.Compile(f.Pattern); err == nil && f.Pattern != "" && !re.MatchString(s) {
			return fmt.Sprintf("the default %q does not match the pattern", s), "change the default or the pattern"
		}
		if f.Type == Email && !emailRE.MatchString(s) {
			return fmt.Sprintf("the default %q is not an email address", s), "write it like someone@example.com"
		}
		if f.Type == URL && !urlRE.MatchString(s) {
			return fmt.Sprintf("the default %q is not an http(s) URL", s), "write it like https://example.com"
		}
	case Number, Integer:
		var n float64
		switch x := v.(type) {
		case int64:
			n = float64(x)
		case float64:
			n = x
		default:
			return fmt.Sprintf("the default of a %s field must be a number, not %q", f.Type, fmt.Sprint(v)), "write a number without quotes"
		}
		if f.Type == Integer && n != math.Trunc(n) {
			return fmt.Sprintf("the default of an integer field must be a whole number, not %v", n), "round it, or use type: number"
		}
		if math.IsInf(n, 0) || math.IsNaN(n) {
			return "the default must be a finite number", "write a number"
		}
		if (f.Min != nil && n < *f.Min) || (f.Max != nil && n > *f.Max) {
			return fmt.Sprintf("the default %v is outside min/max", n), "change the default or the bounds"
		}
	case Bool:
		if _, ok := v.(bool); !ok {
			return fmt.Sprintf("the default of a bool field must be true or false, not %q", fmt.Sprint(v)), "write true or false without quotes"
		}
	case Timestamp:
		s, ok := v.(string)
		if !ok {
			return "the default of a timestamp field must be \"now\" or a date", "write now, or a time like 2024-01-31T09:00:00Z"
		}
		if s != "now" {
			if _, err := timeOf(s); err != nil {
				return fmt.Sprintf("the default %q is not a timestamp", s), "write now, or a time like 2024-01-31T09:00:00Z"
			}
		}
	case Select:
		s, ok := v.(string)
		if !ok || !slices.Contains(f.Values, s) {
			return fmt.Sprintf("the default %q is not one of the values (%s)", fmt.Sprint(v), strings.Join(f.Values, ", ")), "choose one of the values"
		}
	case Relation:
		s, ok := v.(string)
		if _, err := uuid.Parse(s); !ok || err != nil {
			return fmt.Sprintf("the default of a relation must be a record id (a UUID), not %q", fmt.Sprint(v)), "write a UUID, or remove the default"
		}
	case File:
		return "file fields cannot have a default", "remove it"
	}
	return "", ""
}

var (
	emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)
	urlRE   = regexp.MustCompile(`^https?://[^\s]+$`)
)

func (c *checker) checkIndexes(col *Collection) {
	seen := map[string]int{}
	for i, idx := range col.Indexes {
		path := []string{"collections", col.Name, "indexes", strconv.Itoa(i)}
		if idx.Name != "" {
			c.checkIdent(append(slices.Clone(path), "name"), "index", idx.Name)
		}
		used := map[string]bool{}
		for j, name := range idx.Fields {
			fpath := append(slices.Clone(path), "fields", strconv.Itoa(j))
			if used[name] {
				c.add(fpath, false, "field %q appears twice in this index", "list each field once", name)
			}
			used[name] = true
			if col.Field(name) == nil && !slices.Contains(SystemFields, name) {
				var names []string
				for _, f := range col.Fields {
					names = append(names, f.Name)
				}
				names = append(names, SystemFields...)
				hint := "index one of: " + strings.Join(names, ", ")
				if guess := Suggest(name, names); guess != "" {
					hint = fmt.Sprintf("did you mean %q? %s", guess, hint)
				}
				c.add(fpath, false, "index over unknown field %q", hint, name)
			}
		}
		key := fmt.Sprint(idx.Unique, idx.Fields)
		if prev, dup := seen[key]; dup {
			c.add(path, false, "this index repeats index %d", "remove one of them", prev)
		}
		seen[key] = i
	}
}

// DecodeEncryptionKey reads an AES-256 key of auth.mfa.encryption_keys.
func DecodeEncryptionKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("the key is not base64")
	}
	if len(k) != 32 {
		return nil, fmt.Errorf("the key is %d bytes; AES-256 needs 32", len(k))
	}
	return k, nil
}
