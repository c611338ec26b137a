// Package broker carries short messages between the nodes of one abe
// deployment: wake-ups for realtime ("the change log grew") and cache
// invalidations (roles, revoked tokens). Messages are hints, not data:
// every receiver reads the truth from the database, so a lost message
// delays an update but never loses it, and a Lost message after a
// reconnect tells receivers to catch up.
package broker

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Message is what a subscriber hears.
type Message struct {
	// Payload is what the publisher sent; empty when Lost.
	Payload string
	// Lost reports that the broker reconnected and messages may have been
	// missed in between: the subscriber should reload what it caches.
	Lost bool
}

// Broker is a publish/subscribe channel between nodes.
type Broker interface {
	// Subscribe calls fn, in order and on one goroutine per subscription,
	// with every message published on channel until cancel is called.
	// fn must not block for long.
	Subscribe(channel string, fn func(Message)) (cancel func())
	// Publish sends payload to every subscriber of channel on every node.
	Publish(ctx context.Context, channel, payload string) error
	// Check reports whether the broker is connected, for /readyz.
	Check(ctx context.Context) error
	// Name is memory, postgres or redis.
	Name() string
	// Close stops the broker; subscriptions end.
	Close() error
}

// Config chooses and configures a broker.
type Config struct {
	// Kind is memory, postgres or redis.
	Kind string
	// Pool is the database, for the postgres broker (it opens a dedicated
	// connection with the pool's settings).
	Pool *pgxpool.Pool
	// RedisURL is the redis broker's server.
	RedisURL string
	Logger   *slog.Logger
}

// New starts the broker cfg names.
func New(ctx context.Context, cfg Config) (Broker, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch cfg.Kind {
	case "", "memory":
		return NewMemory(), nil
	case "postgres":
		return NewPostgres(ctx, cfg.Pool, log)
	case "redis":
		return NewRedis(ctx, cfg.RedisURL, log)
	}
	return nil, fmt.Errorf("unknown broker %q: use memory, postgres or redis", cfg.Kind)
}
