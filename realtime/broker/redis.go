package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis carries messages with redis pub/sub on channels abe:<c>. go-redis
// reconnects and resubscribes by itself; a resubscription after the first
// tells every subscriber Lost, since messages published in between are
// gone.
type Redis struct {
	client *redis.Client
	ps     *redis.PubSub
	log    *slog.Logger
	subs   *subscribers

	ops  chan redisOp
	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
	lastErr error
}

type redisOp struct {
	channel   string
	subscribe bool
}

const redisPrefix = "abe:"

// NewRedis connects to the redis at url and starts the broker.
func NewRedis(ctx context.Context, url string, log *slog.Logger) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis broker: %w", err)
	}
	opts.MaxRetries = -1 // publishes are hints; a failed one is reported, not retried at length
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close() //nolint:errcheck // the connection failed already
		return nil, fmt.Errorf("redis broker: cannot reach %s: %w", opts.Addr, err)
	}
	r := &Redis{client: client, log: log, ops: make(chan redisOp, 64), done: make(chan struct{})}
	r.subs = newSubscribers(func(ch string, on bool) {
		select {
		case r.ops <- redisOp{channel: ch, subscribe: on}:
		case <-r.done:
		}
	})
	// A channel nobody uses keeps the PubSub's connection open from the
	// start, so the first real subscription does not wait for a dial.
	r.ps = client.Subscribe(ctx, redisPrefix+"_")
	bg, stop := context.WithCancel(context.Background())
	r.stop = stop
	go r.run(bg)
	return r, nil
}

// run receives messages, applies subscription changes, and notices
// reconnections.
func (r *Redis) run(ctx context.Context) {
	defer close(r.done)
	subscribedOnce := map[string]bool{}
	msgs := make(chan any, 256)
	go func() {
		defer close(msgs)
		for {
			m, err := r.ps.Receive(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				r.setErr(err)
				// go-redis reconnects on the next Receive; don't spin.
				select {
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			msgs <- m
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-r.ops:
			var err error
			if op.subscribe {
				err = r.ps.Subscribe(ctx, redisPrefix+op.channel)
			} else {
				err = r.ps.Unsubscribe(ctx, redisPrefix+op.channel)
			}
			if err != nil && ctx.Err() == nil {
				// The PubSub remembers its channels and subscribes them
				// again when it reconnects.
				r.log.Warn("broker: redis subscription change failed; it applies on reconnect", slog.String("channel", op.channel), slog.String("error", err.Error()))
			}
		case m, ok := <-msgs:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind != "subscribe" {
					continue
				}
				r.setErr(nil)
				if subscribedOnce[m.Channel] {
					// A resubscription: the connection was lost.
					if ch, ok := strings.CutPrefix(m.Channel, redisPrefix); ok {
						r.subs.deliver(ch, Message{Lost: true})
					}
				}
				subscribedOnce[m.Channel] = true
			case *redis.Message:
				if ch, ok := strings.CutPrefix(m.Channel, redisPrefix); ok {
					r.subs.deliver(ch, Message{Payload: m.Payload})
				}
			}
		}
	}
}

func (r *Redis) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
}

// Subscribe implements Broker.
func (r *Redis) Subscribe(channel string, fn func(Message)) func() {
	return r.subs.add(channel, fn)
}

// Publish implements Broker.
func (r *Redis) Publish(ctx context.Context, channel, payload string) error {
	if err := r.client.Publish(ctx, redisPrefix+channel, payload).Err(); err != nil {
		return fmt.Errorf("publish on %s: %w", channel, err)
	}
	return nil
}

// Check implements Broker.
func (r *Redis) Check(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastErr != nil && !errors.Is(r.lastErr, context.Canceled) {
		return fmt.Errorf("the subscription connection is down: %w", r.lastErr)
	}
	return nil
}

// Name implements Broker.
func (r *Redis) Name() string { return "redis" }

// Close implements Broker.
func (r *Redis) Close() error {
	r.stop()
	r.ps.Close() //nolint:errcheck // closing
	<-r.done
	r.subs.close()
	return r.client.Close()
}
