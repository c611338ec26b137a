package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres carries messages with LISTEN/NOTIFY: no service beyond the
// database. Channel c is the Postgres channel abe_<c>, so triggers can
// publish too (the change log notifies abe_changes). It listens on a
// dedicated connection that reconnects by itself; after a reconnect every
// subscriber hears Lost.
type Postgres struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	subs *subscribers

	// changed wakes the listening loop to LISTEN or UNLISTEN.
	changed chan struct{}
	stop    context.CancelFunc
	done    chan struct{}

	mu        sync.Mutex
	connected bool
	lastErr   error
}

// maxPayload is the most NOTIFY carries (8000 bytes minus headroom).
const maxPayload = 7900

// NewPostgres starts a postgres broker on pool's database. It returns
// once the listening connection is up, or the error of the first try.
func NewPostgres(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (*Postgres, error) {
	if pool == nil {
		return nil, errors.New("the postgres broker needs a database")
	}
	p := &Postgres{pool: pool, log: log, changed: make(chan struct{}, 1), done: make(chan struct{})}
	p.subs = newSubscribers(func(string, bool) {
		select {
		case p.changed <- struct{}{}:
		default:
		}
	})
	conn, err := p.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres broker: %w", err)
	}
	bg, stop := context.WithCancel(context.Background())
	p.stop = stop
	go p.run(bg, conn)
	return p, nil
}

func pgChannel(channel string) string { return "abe_" + channel }

func (p *Postgres) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := p.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "abe broker"
	return pgx.ConnectConfig(ctx, cfg)
}

// run keeps a listening connection: it applies LISTEN/UNLISTEN as
// subscriptions come and go, delivers notifications, and reconnects with
// backoff when the connection fails.
func (p *Postgres) run(ctx context.Context, conn *pgx.Conn) {
	defer close(p.done)
	backoff := 50 * time.Millisecond
	first := true
	for {
		if conn == nil {
			var err error
			if conn, err = p.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				p.setState(false, err)
				p.log.Warn("broker: cannot reach postgres; retrying", slog.String("error", err.Error()), slog.Duration("in", backoff))
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
		}
		err := p.listen(ctx, conn, !first)
		first = false
		conn.Close(context.Background()) //nolint:errcheck // the connection failed already
		conn = nil
		if ctx.Err() != nil {
			return
		}
		p.setState(false, err)
		p.log.Warn("broker: the postgres connection failed; reconnecting", slog.String("error", err.Error()))
		backoff = 50 * time.Millisecond
	}
}

func (p *Postgres) setState(connected bool, err error) {
	p.mu.Lock()
	p.connected, p.lastErr = connected, err
	p.mu.Unlock()
}

// listen serves one connection until it fails.
func (p *Postgres) listen(ctx context.Context, conn *pgx.Conn, reconnected bool) error {
	listening := map[string]bool{}
	sync := func() error {
		want := map[string]bool{}
		for _, ch := range p.subs.channels() {
			want[pgChannel(ch)] = true
		}
		for ch := range want {
			if !listening[ch] {
				if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
					return err
				}
				listening[ch] = true
			}
		}
		for ch := range listening {
			if !want[ch] {
				if _, err := conn.Exec(ctx, "UNLISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
					return err
				}
				delete(listening, ch)
			}
		}
		return nil
	}
	if err := sync(); err != nil {
		return err
	}
	p.setState(true, nil)
	if reconnected {
		// Notifications sent while no connection listened are gone.
		p.subs.lost()
	}
	for {
		// Wait for a notification, or for the subscriptions to change.
		// The waker says whether it took a change: a change taken as the
		// wait ended by itself (a notification) must still be applied, or
		// a new subscription would never be listened to.
		waitCtx, cancel := context.WithCancel(ctx)
		woke := make(chan bool, 1)
		go func() {
			select {
			case <-p.changed:
				cancel()
				woke <- true
			case <-waitCtx.Done():
				woke <- false
			}
		}()
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		changed := <-woke
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			if ch, ok := strings.CutPrefix(n.Channel, "abe_"); ok {
				p.subs.deliver(ch, Message{Payload: n.Payload})
			}
		}
		if changed {
			// A cancelled wait leaves the connection usable in pgx v5
			// only when nothing was half-read; pgx closes it otherwise.
			if conn.IsClosed() {
				return errors.New("connection closed while waiting")
			}
			if err := sync(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
	}
}

// Subscribe implements Broker.
func (p *Postgres) Subscribe(channel string, fn func(Message)) func() {
	return p.subs.add(channel, fn)
}

// Publish implements Broker. The payload must fit a NOTIFY (7900 bytes).
func (p *Postgres) Publish(ctx context.Context, channel, payload string) error {
	if len(payload) > maxPayload {
		return fmt.Errorf("publish on %s: payload of %d bytes is over the %d a NOTIFY carries", channel, len(payload), maxPayload)
	}
	if _, err := p.pool.Exec(ctx, "SELECT pg_notify($1, $2)", pgChannel(channel), payload); err != nil {
		return fmt.Errorf("publish on %s: %w", channel, err)
	}
	return nil
}

// Check implements Broker.
func (p *Postgres) Check(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.connected {
		if p.lastErr != nil {
			return fmt.Errorf("the listening connection is down: %w", p.lastErr)
		}
		return errors.New("the listening connection is down")
	}
	return nil
}

// Name implements Broker.
func (p *Postgres) Name() string { return "postgres" }

// Close implements Broker.
func (p *Postgres) Close() error {
	p.stop()
	<-p.done
	p.subs.close()
	return nil
}
