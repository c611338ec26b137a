package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/internal/redistest"
)

func TestMain(m *testing.M) { pgtest.Main(m, redistest.StopShared) }

const waitFor = 10 * time.Second

// inbox collects a subscription's messages.
type inbox chan Message

func subscribe(b Broker, channel string) (inbox, func()) {
	in := make(inbox, 100)
	cancel := b.Subscribe(channel, func(m Message) { in <- m })
	return in, cancel
}

// expect waits for a message with payload (or Lost when payload is "").
func (in inbox) expect(t *testing.T, payload string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-in:
			if payload == "" && m.Lost || m.Payload == payload && !m.Lost {
				return
			}
		case <-deadline:
			t.Fatalf("no message %q within %s", payload, waitFor)
		}
	}
}

// publishUntil publishes until in hears it: after a reconnect the
// subscription is back once a message gets through.
func publishUntil(t *testing.T, b Broker, in inbox, channel, payload string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		_ = b.Publish(context.Background(), channel, payload) //nolint:errcheck // retried while reconnecting
		select {
		case m := <-in:
			if m.Payload == payload {
				return
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never got through", payload)
		}
	}
}

func testPubSub(t *testing.T, a, b Broker) {
	in, cancel := subscribe(b, "changes")
	other, cancelOther := subscribe(b, "roles")
	defer cancelOther()
	publishUntil(t, a, in, "changes", "todos")
	if err := a.Publish(context.Background(), "roles", "user:1"); err != nil {
		t.Fatal(err)
	}
	other.expect(t, "user:1")
	// A cancelled subscription hears nothing more; the other channel
	// still works.
	cancel()
	if err := a.Publish(context.Background(), "changes", "after"); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(context.Background(), "roles", "marker"); err != nil {
		t.Fatal(err)
	}
	other.expect(t, "marker")
	select {
	case m := <-in:
		t.Fatalf("a cancelled subscription heard %+v", m)
	default:
	}
	if err := b.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	m := NewMemory()
	defer m.Close() //nolint:errcheck // test
	testPubSub(t, m, m)
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t, nil)
	log := slog.New(slog.DiscardHandler)
	a, err := NewPostgres(ctx, pool, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close() //nolint:errcheck // test
	b, err := NewPostgres(ctx, pool, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close() //nolint:errcheck // test
	testPubSub(t, a, b)

	// A trigger's NOTIFY on abe_<channel> is a message too.
	in, cancel := subscribe(b, "changes")
	defer cancel()
	publishUntil(t, a, in, "changes", "warm")
	if _, err := pool.Exec(ctx, `SELECT pg_notify('abe_changes', 'from sql')`); err != nil {
		t.Fatal(err)
	}
	in.expect(t, "from sql")

	// The listening connection is killed: subscribers hear Lost, then
	// messages again.
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'abe broker' AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	in.expect(t, "")
	publishUntil(t, a, in, "changes", "after the kill")
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "changes", strings.Repeat("x", 8000)); err == nil {
		t.Error("a payload NOTIFY cannot carry was published")
	}
}

func TestRedis(t *testing.T) {
	t.Parallel()
	url, restart := redistest.Restartable(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	a, err := NewRedis(ctx, url, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close() //nolint:errcheck // test
	b, err := NewRedis(ctx, url, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close() //nolint:errcheck // test
	testPubSub(t, a, b)

	in, cancel := subscribe(b, "changes")
	defer cancel()
	publishUntil(t, a, in, "changes", "warm")
	// Redis restarts: subscribers hear Lost, then messages again.
	restart()
	in.expect(t, "")
	publishUntil(t, a, in, "changes", "after the restart")
	// The pub/sub connection is killed alone.
	admin := redistest.Client(t, url)
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	in.expect(t, "")
	publishUntil(t, a, in, "changes", "after the kill")
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRedis(ctx, "redis://127.0.0.1:1/0", log); err == nil {
		t.Error("a broker on a closed port started")
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	if _, err := New(context.Background(), Config{Kind: "carrier-pigeon"}); err == nil || !strings.Contains(err.Error(), "memory, postgres or redis") {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := New(context.Background(), Config{Kind: "postgres"}); err == nil {
		t.Fatal("a postgres broker without a database")
	}
}

// TestPostgresSubscribesDuringNotifications changes the subscriptions
// while notifications stream in: a change that came as a wait ended by
// itself (a notification) was once lost, and the new channel never
// listened to (TestPostgres's "warm never got through", under load).
func TestPostgresSubscribesDuringNotifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t, nil)
	b, err := NewPostgres(ctx, pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close() //nolint:errcheck // test
	noise, cancelNoise := subscribe(b, "noise")
	defer cancelNoise()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-noise: // drained, so the broker never blocks on it
			}
		}
	}()
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = b.Publish(ctx, "noise", "n") //nolint:errcheck // the test ends
			}
		}
	}()
	for i := range 30 {
		ch := fmt.Sprintf("c%d", i%3)
		in, cancel := subscribe(b, ch)
		publishUntil(t, b, in, ch, fmt.Sprintf("m%d", i))
		cancel()
	}
}
