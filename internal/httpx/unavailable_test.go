package httpx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A real failure to connect: nothing listens on a port just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	_, connectErr := pgconn.Connect(ctx, fmt.Sprintf("postgres://u@127.0.0.1:%d/db?connect_timeout=5", addr.Port))
	if connectErr == nil {
		t.Fatal("connected to a closed port")
	}
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code}) }
	for name, c := range map[string]struct {
		err         error
		unavailable bool
		data        bool
	}{
		"connect":            {err: fmt.Errorf("read user: %w", connectErr), unavailable: true},
		"deadline":           {err: fmt.Errorf("x: %w", context.DeadlineExceeded), unavailable: true},
		"canceled":           {err: context.Canceled, unavailable: true},
		"conn closed":        {err: fmt.Errorf("x: %w", pgconn.ErrConnClosed), unavailable: true},
		"net":                {err: &net.OpError{Op: "read", Err: errors.New("connection reset")}, unavailable: true},
		"admin shutdown":     {err: pg("57P01"), unavailable: true},
		"crash shutdown":     {err: pg("57P02"), unavailable: true},
		"cannot connect now": {err: pg("57P03"), unavailable: true},
		"connection failure": {err: pg("08006"), unavailable: true},
		"too many conns":     {err: pg("53300"), unavailable: true},
		"statement timeout":  {err: pg("57014"), unavailable: true},
		"nul byte":           {err: pg("22021"), data: true},
		"unicode escape":     {err: pg("22P05"), data: true},
		"not a uuid":         {err: pg("22P02"), data: true},
		"unique":             {err: pg("23505")},
		"syntax":             {err: pg("42601")},
		"plain":              {err: errors.New("boom")},
		"nil":                {},
	} {
		if got := IsUnavailable(c.err); got != c.unavailable {
			t.Errorf("%s: IsUnavailable(%v) = %v", name, c.err, got)
		}
		if got := IsDataException(c.err); got != c.data {
			t.Errorf("%s: IsDataException(%v) = %v", name, c.err, got)
		}
	}
}

func TestUnavailableAnswer(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	WriteProblem(rec, httptest.NewRequest("GET", "/", nil), Unavailable())
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "5" || rec.Header().Get("Content-Type") != ContentTypeProblem {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if body := rec.Body.String(); !strings.Contains(body, `"status":503`) || !strings.Contains(body, "unavailable") || strings.Contains(strings.ToLower(body), "retry") {
		t.Fatal(body)
	}
}
