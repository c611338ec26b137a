package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe/internal/mail"
	"github.com/abe-stack/abe/schema"
)

// Config is what the auth service needs from abe.yaml. Roles are read from
// the database, where migrate puts the roles of abe.yaml.
type Config struct {
	Auth schema.Auth
	// Dev relaxes what only matters in production: the refresh cookie is
	// not marked Secure, so it works over plain http://localhost.
	Dev bool
	// BodyLimit caps request bodies.
	BodyLimit int64
	// MailTemplates is a directory of files that replace built-in mail
	// templates (mail.templates.dir, resolved); empty keeps them all.
	MailTemplates string
}

// Options are the service's collaborators; nil fields get defaults.
type Options struct {
	// Now is the clock; tests inject one.
	Now    func() time.Time
	Mailer mail.Mailer
	Logger *slog.Logger
	// Argon2 overrides the hashing cost (tests use a cheap one).
	Argon2 *Argon2Params
	// OnEvent hears the type of each security event as it is recorded
	// (for metrics). It must not block.
	OnEvent func(typ string)
	// Bus carries invalidations (revocations, role changes) between
	// nodes. Nil listens for the tables' NOTIFYs on a connection of the
	// service's own.
	Bus Bus
}

// Service is abe's account system: registration, login with lockout,
// access and refresh tokens, email flows, the audit trail.
type Service struct {
	db    *pgxpool.Pool
	cfg   schema.Auth
	dev   bool
	limit int64
	now   func() time.Time
	log   *slog.Logger
	keys  *KeySet
	// verified caches checked access tokens.
	verified verifiedTokens
	parser   *jwt.Parser
	hasher   *Hasher
	policy   PasswordPolicy
	seal     cipher.AEAD
	// totp seals TOTP secrets; recoveryKey keys the hashes of recovery
	// codes.
	totp        *totpSealer
	recoveryKey []byte
	roles       *roleCache
	revoked     *revocations
	bus         Bus
	onEvent     func(typ string)
	// watchers hear of revocations and role changes.
	watchers watchers
	outbox   *outbox
	mails    mailTemplates
	listen   *listener
	// hooks run around logins and registrations (hooks.go).
	hooks hooks

	accessTTL, refreshTTL, grace time.Duration

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New starts the service: it loads the revocation list and listens for
// changes to it, and starts the mail outbox. Close stops both.
func New(ctx context.Context, db *pgxpool.Pool, cfg Config, opts *Options) (*Service, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Service{db: db, cfg: cfg.Auth, dev: cfg.Dev, limit: cfg.BodyLimit, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.limit == 0 {
		s.limit = schema.DefaultBodyLimit
	}
	if len(cfg.Auth.Secret) < schema.MinSecretLen {
		return nil, fmt.Errorf("auth.secret must have at least %d characters: it derives the keys that seal refresh tokens", schema.MinSecretLen)
	}
	var err error
	if s.keys, err = NewKeySet(cfg.Auth); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(derive(cfg.Auth.Secret, "refresh token sealing"))
	if err != nil {
		return nil, err
	}
	if s.seal, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	if s.totp, err = newTOTPSealer(cfg.Auth); err != nil {
		return nil, err
	}
	s.recoveryKey = derive(cfg.Auth.Secret, "recovery code hashing")
	if s.mails, err = loadMailTemplates(cfg.MailTemplates); err != nil {
		return nil, err
	}
	s.accessTTL = time.Duration(cfg.Auth.AccessTokenTTL)
	s.refreshTTL = time.Duration(cfg.Auth.RefreshTokenTTL)
	s.grace = time.Duration(cfg.Auth.RefreshReuseGrace)
	s.parser = jwt.NewParser(
		jwt.WithIssuer(cfg.Auth.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
	)
	params := DefaultArgon2
	if opts.Argon2 != nil {
		params = *opts.Argon2
	}
	s.hasher = NewHasher(params)
	p := cfg.Auth.Password
	s.policy = PasswordPolicy{MinLength: p.MinLength, MaxLength: p.MaxLength, MinScore: p.MinScore}
	s.roles = newRoleCache(db)

	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	mailer := opts.Mailer
	if mailer == nil {
		mailer = &mail.Console{W: discard{}}
	}
	s.outbox = newOutbox(mailer, s.log)
	s.revoked = newRevocations(db, s.now, s.log)
	s.bus = opts.Bus
	s.onEvent = opts.OnEvent
	s.listen = &listener{db: db, bus: opts.Bus, log: s.log, ready: make(chan struct{}),
		handlers: map[string]func(context.Context, string) error{
			chanRevocations: func(ctx context.Context, _ string) error {
				defer s.watchers.notify()
				return s.revoked.load(ctx)
			},
			chanRoles: func(ctx context.Context, payload string) error {
				defer s.watchers.notify()
				return s.roles.notified(ctx, payload)
			},
		},
		reload: func(ctx context.Context) error {
			defer s.watchers.notify()
			if err := s.revoked.load(ctx); err != nil {
				return err
			}
			return s.roles.reload(ctx)
		},
	}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.listen.run(runCtx) }()
	go func() { defer s.wg.Done(); s.outbox.run(runCtx) }()
	select {
	case <-s.listen.ready:
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		s.Close()
		return nil, errors.New("auth: could not load revocations and roles from the database within 30s")
	}
	return s, nil
}

// Close stops the background work, sending the mail already queued.
func (s *Service) Close() {
	s.stop()
	s.wg.Wait()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// dbtx runs queries on a pool or in a transaction.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func inTx(ctx context.Context, db *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db, fn)
}

// sealToken encrypts a refresh token for storage during its retry window.
func (s *Service) sealToken(token string) []byte {
	nonce := make([]byte, s.seal.NonceSize())
	_, _ = rand.Read(nonce) //nolint:errcheck // crypto/rand does not fail
	return s.seal.Seal(nonce, nonce, []byte(token), nil)
}

func (s *Service) unsealToken(sealed []byte) (string, error) {
	n := s.seal.NonceSize()
	if len(sealed) < n {
		return "", errors.New("sealed token too short")
	}
	plain, err := s.seal.Open(nil, sealed[:n], sealed[n:], nil)
	return string(plain), err
}

// HasPermission reports whether p's roles grant perm; "*" grants all.
func (s *Service) HasPermission(p *Principal, perm string) bool {
	if p == nil {
		return false
	}
	return slices.Contains(p.Permissions, "*") || slices.Contains(p.Permissions, perm)
}

// batch is a dbtx that queues statements instead of running them; send
// runs them all in one round trip, in one implicit transaction (a pipeline
// with a single Sync), so they commit together or not at all. Only Exec is
// allowed: results come back when the batch is sent.
type batch struct {
	b pgx.Batch
}

func (q *batch) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	q.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

func (q *batch) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errors.New("auth: a batch cannot read")
}

func (q *batch) QueryRow(context.Context, string, ...any) pgx.Row {
	return errRow{}
}

type errRow struct{}

func (errRow) Scan(...any) error { return errors.New("auth: a batch cannot read") }

// inBatch queues what fn writes and sends it as one atomic round trip.
// The hot paths (login) use it: each round trip is time a user waits.
func (s *Service) inBatch(ctx context.Context, fn func(db dbtx) error) error {
	q := &batch{}
	if err := fn(q); err != nil {
		return err
	}
	if q.b.Len() == 0 {
		return nil
	}
	return s.db.SendBatch(ctx, &q.b).Close()
}

// inTxPool runs fn in a transaction on the service's pool.
func inTxPool(ctx context.Context, s *Service, fn func(db dbtx) error) error {
	var notes []busNote
	err := inTx(ctx, s.db, func(tx pgx.Tx) error { return fn(&notingTx{Tx: tx, notes: &notes}) })
	if err == nil {
		s.publish(ctx, notes)
	}
	return err
}
