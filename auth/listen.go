package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channels the auth tables notify on.
const (
	chanRevocations = "abe_revocations"
	chanRoles       = "abe_roles"
)

// resyncEvery bounds how stale the caches can be if a notification is lost
// (the listening connection dropped between a commit and its NOTIFY).
const resyncEvery = 30 * time.Second

// listener keeps the in-memory views of the database (revocations, roles)
// in step on every node: it listens on a connection of its own, hands
// each notification to its channel's handler, reloads everything after
// (re)connecting and every resyncEvery, and reconnects after failures.
type listener struct {
	db *pgxpool.Pool
	// bus, when set, carries the notifications instead of a connection
	// of the listener's own.
	bus      Bus
	log      *slog.Logger
	handlers map[string]func(ctx context.Context, payload string) error
	// reload brings every view up to date.
	reload func(ctx context.Context) error
	// ready is closed after the first reload.
	ready chan struct{}
}

func (l *listener) run(ctx context.Context) {
	if l.bus != nil {
		l.runBus(ctx)
		return
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("auth listener stopped; reconnecting", slog.String("error", err.Error()), slog.Duration("in", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (l *listener) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.db.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for ch := range l.handlers {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	// Reload after LISTEN, so nothing committed in between is missed.
	if err := l.reload(ctx); err != nil {
		return err
	}
	select {
	case <-l.ready:
	default:
		close(l.ready)
	}
	for {
		waitCtx, cancel := context.WithTimeout(ctx, resyncEvery)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			if err := l.reload(ctx); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if h := l.handlers[n.Channel]; h != nil {
				if err := h(ctx, n.Payload); err != nil {
					return err
				}
			}
		}
	}
}

// runBus hears the notifications through the bus: each channel's
// messages go to its handler, a lost message (a reconnect) or a failed
// handler reloads everything, and so does every resyncEvery.
func (l *listener) runBus(ctx context.Context) {
	resync := make(chan struct{}, 1)
	ask := func() {
		select {
		case resync <- struct{}{}:
		default:
		}
	}
	for ch, h := range l.handlers {
		cancel := l.bus.Subscribe(strings.TrimPrefix(ch, "abe_"), func(payload string, lost bool) {
			if lost {
				ask()
				return
			}
			if err := h(ctx, payload); err != nil && ctx.Err() == nil {
				l.log.Warn("auth: applying a notification failed; reloading", slog.String("error", err.Error()))
				ask()
			}
		})
		defer cancel()
	}
	t := time.NewTicker(resyncEvery)
	defer t.Stop()
	ask()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-resync:
		case <-t.C:
		}
		if err := l.reload(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log.Warn("auth: reloading revocations and roles failed; retrying", slog.String("error", err.Error()), slog.Duration("in", backoff))
			time.AfterFunc(backoff, ask)
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		select {
		case <-l.ready:
		default:
			close(l.ready)
		}
	}
}
