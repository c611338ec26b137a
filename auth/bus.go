package auth

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5"
)

// Bus carries short messages between the nodes of a deployment; the
// realtime broker (memory, postgres or redis) is one. Messages are hints:
// a receiver reloads from the database, and lost is true after a
// reconnect, when messages may have been missed.
type Bus interface {
	Subscribe(channel string, fn func(payload string, lost bool)) (cancel func())
	Publish(ctx context.Context, channel, payload string) error
}

// Bus channels, named like the tables' NOTIFY channels without "abe_", so
// the postgres broker hears the triggers themselves.
const (
	busRevocations = "revocations"
	busRoles       = "roles"
)

// busNote is a message to publish once a transaction commits.
type busNote struct{ channel, payload string }

// notingTx is a transaction that collects the messages its changes call
// for, published by inTxPool after the commit (other nodes reading
// before it would find nothing new).
type notingTx struct {
	pgx.Tx
	notes *[]busNote
}

// note asks for a message after db's transaction commits.
func note(db dbtx, channel, payload string) {
	if t, ok := db.(*notingTx); ok {
		for _, n := range *t.notes {
			if n.channel == channel && n.payload == payload {
				return
			}
		}
		*t.notes = append(*t.notes, busNote{channel, payload})
	}
}

// publish sends the notes of a committed transaction on the bus.
func (s *Service) publish(ctx context.Context, notes []busNote) {
	if s.bus == nil {
		return // the tables' triggers NOTIFY, and the listener hears them
	}
	for _, n := range notes {
		if err := s.bus.Publish(context.WithoutCancel(ctx), n.channel, n.payload); err != nil {
			// Other nodes catch up at their next resync.
			s.log.Warn("auth: publishing an invalidation failed", slog.String("channel", n.channel), slog.String("error", err.Error()))
		}
	}
}
