// Package pg opens and checks connection pools to Postgres and runs
// transactions. It knows nothing of abe's domain.
package pg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures a pool.
type Config struct {
	URL      string
	MaxConns int32
	// ConnectTimeout bounds the first connection; default 5s.
	ConnectTimeout time.Duration
	// AppName is reported to Postgres as application_name.
	AppName string
}

// Connect opens a pool and checks that the database answers, so a wrong
// URL fails at start-up with a message that says what to check, rather than
// on the first request.
func Connect(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid database URL %s: %s", Redact(cfg.URL), parseReason(err))
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if cfg.AppName != "" {
		pc.ConnConfig.RuntimeParams["application_name"] = cfg.AppName
	}
	timeout := cfg.ConnectTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	pc.ConnConfig.ConnectTimeout = timeout
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", Redact(cfg.URL), err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s: %s", Redact(cfg.URL), Explain(err))
	}
	return pool, nil
}

// parseReason drops the URL pgx quotes in its parse errors: it may hold a
// password.
func parseReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "cannot parse") {
		return msg[i+2:]
	}
	return msg
}

// Explain turns a connection error into a sentence that says what to
// check.
func Explain(err error) string {
	var pgErr *pgconn.PgError
	var netErr *net.OpError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "3D000":
		return pgErr.Message + "; create it (createdb NAME) or fix the database name in database.url"
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		return pgErr.Message + "; check the user and password in database.url"
	case errors.As(err, &pgErr):
		return pgErr.Message
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time; is PostgreSQL running and reachable at that host and port?"
	case errors.As(err, &netErr) || strings.Contains(err.Error(), "connect:"):
		reason := err.Error()
		if i := strings.LastIndex(reason, ": "); i >= 0 {
			reason = reason[i+2:]
		}
		return reason + "; is PostgreSQL running and reachable at that host and port? check database.url (or DATABASE_URL)"
	}
	return err.Error()
}

var urlPasswordRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@]*@`)

// Redact hides the password of a postgres:// URL or key=value DSN, so it
// can be logged.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	if strings.Contains(dsn, "://") {
		// Not a URL Go can parse (a bad port, say), but it may still
		// hold user:password@.
		return urlPasswordRE.ReplaceAllString(dsn, "$1:xxxxx@")
	}
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if strings.HasPrefix(f, "password=") {
			fields[i] = "password=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// Beginner starts transactions: a pool, a connection or a transaction.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise.
func InTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
