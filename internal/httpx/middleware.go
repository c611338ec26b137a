package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

type ctxKey int

const requestIDKey ctxKey = iota

// HeaderRequestID carries the request id in requests and answers.
const HeaderRequestID = "X-Request-Id"

// A client or proxy may send its own id; anything else would end up
// unescaped in logs, so only plain tokens are kept.
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithRequestID gives every request an id, taken from X-Request-Id when it
// is a plain token and made up otherwise, and echoes it in the answer.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !requestIDRE.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// Logger logs one line per request: method, path, status, size, duration
// and request id.
func Logger(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := wrapWriter(w, r)
			next.ServeHTTP(ww, r)
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			// At warn (the bench's level, a busy server's) the line is
			// not built at all.
			if !log.Enabled(r.Context(), level) {
				return
			}
			log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int("bytes", ww.BytesWritten()),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("client", ClientIPString(r)),
				slog.String("request_id", RequestID(r.Context())),
			)
		})
	}
}

// Recover turns a panic in a handler into a logged error with its stack and
// a 500 problem for the client, which never sees the cause.
func Recover(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ww := wrapWriter(w, r)
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v) // net/http's way to abort a response; let it be
				}
				log.ErrorContext(r.Context(), "panic in handler",
					slog.String("panic", fmt.Sprint(v)),
					slog.String("stack", string(debug.Stack())),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.String("request_id", RequestID(r.Context())),
				)
				if ww.Status() == 0 {
					Error(ww, r, http.StatusInternalServerError, "the server failed to answer this request; it has been logged with the request id")
				}
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// wrapWriter returns w as a WrapResponseWriter that records the status and
// size of the answer: w itself when an outer middleware (the metrics, the
// logger) wrapped it already, so that a request passes one wrapper however
// many middlewares read its status. The middlewares between them write
// nothing, so the outer wrapper sees what an inner one would.
func wrapWriter(w http.ResponseWriter, r *http.Request) middleware.WrapResponseWriter {
	if ww, ok := w.(middleware.WrapResponseWriter); ok {
		return ww
	}
	return middleware.NewWrapResponseWriter(w, r.ProtoMajor)
}
