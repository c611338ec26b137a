package httpx

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// UnavailableRetryAfter is the Retry-After of a 503 for a database outage:
// long enough not to hammer a database that is restarting, short enough
// that a client retrying on it notices the recovery soon.
const UnavailableRetryAfter = 5 * time.Second

// IsUnavailable tells whether err means the database could not serve the
// request, through no fault of the request: it could not be reached
// (pgconn.ConnectError, a broken or closed connection), it is shutting
// down or starting up (SQLSTATE 57P01 to 57P03), refused the connection
// (class 08, 53300 too many connections), cancelled the statement
// (57014, statement_timeout), or the request's time ran out
// (context.DeadlineExceeded, context.Canceled). Such a failure is a 503
// with Retry-After (see Unavailable), never a 500. A caller that
// distinguishes a client that hung up checks r.Context().Err() first.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch c := pgErr.Code; {
		case strings.HasPrefix(c, "08"), c == "57P01", c == "57P02", c == "57P03", c == "53300", c == "57014":
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	// pgconn marks its connection-level failures (a lost socket, a timeout,
	// a busy or closed connection) with SafeToRetry; errors of a statement
	// the server answered (PgError, handled above) do not have it.
	var connErr interface{ SafeToRetry() bool }
	if errors.As(err, &connErr) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// IsDataException tells whether err is PostgreSQL refusing a value
// (SQLSTATE class 22, data exception: a NUL byte in text 22021, a bad
// Unicode escape 22P05, a number out of range 22003, text that is not a
// uuid 22P02, ...). Values come from the request, so it is a 400.
func IsDataException(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22")
}

// Unavailable is the answer for an error IsUnavailable recognises: 503
// with Retry-After.
func Unavailable() Problem {
	return Problem{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, RetryAfter: UnavailableRetryAfter,
		Detail: "the database is unavailable right now; try again in a few seconds"}
}

// InvalidData is the answer for an error IsDataException recognises.
func InvalidData() Problem {
	return Problem{Status: http.StatusBadRequest, Code: CodeInvalidData,
		Detail: "the request holds a value the database cannot store (such as a NUL character or invalid Unicode); remove it and try again"}
}
