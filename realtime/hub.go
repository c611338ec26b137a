// Package realtime serves record and query subscriptions over WebSocket
// (GET /api/realtime). Writes append to the change log in their
// transaction (engine); every node reads the log in order by seq, woken
// by its broker, checks each change against each subscriber's rules, and
// sends it. A lost wake-up delays events until the next poll but drops
// none, and a client that reconnects with the last seq it saw gets what
// it missed. docs/realtime.md describes the protocol.
package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/engine"
	"github.com/abe-stack/abe/realtime/broker"
	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
)

// ChangesChannel is the broker channel that wakes nodes when the change
// log grows. The change log's trigger notifies it (abe_changes) on commit.
const ChangesChannel = "changes"

// batchSize is how many changes one read of the log takes.
const batchSize = 1000

// maxCatchUp is the most changes a subscription's since catches up with;
// beyond that, refetching is cheaper, so the client gets resync.
const maxCatchUp = 1000

// Config is what the hub needs.
type Config struct {
	Engine   *engine.Engine
	Rules    *rules.Engine
	Auth     *auth.Service
	Broker   broker.Broker
	Settings schema.Realtime
	// AllowedOrigins are the browser origins that may open sockets
	// (server.cors.allowed_origins); the server's own origin always may.
	AllowedOrigins []string
	Logger         *slog.Logger
	Metrics        *Metrics
	// Now replaces the clock (tests); it must be auth's clock, which
	// decides when a token expires.
	Now func() time.Time
}

// Hub holds the sockets and subscriptions of one node and delivers the
// change log to them.
type Hub struct {
	cfg Config
	// model is the engine and rules in force, swapped by SetModel when
	// abe dev reloads abe.yaml, without dropping a connection.
	model   atomic.Pointer[model]
	log     *slog.Logger
	metrics *Metrics

	mu    sync.Mutex
	conns map[*conn]struct{}
	// streams are the open inspector streams (inspect.go), each with the
	// channel that wakes it when tokens may have been revoked. They count
	// toward max_connections with the sockets.
	streams map[chan struct{}]struct{}
	topics  map[string]*topicEntry
	// perColl counts topics per collection, to read old records of
	// deletes only where someone listens.
	perColl map[string]int
	// cancelBroker ends the broker subscription; nil when no topic is
	// open.
	cancelBroker func()
	// last is the position through which every change has been
	// dispatched (or is known rolled back).
	last int64
	// started is closed when the dispatcher has its first position.
	started chan struct{}
	// readsBegun and readsDone count the dispatcher's reads of the log
	// (drain); readDone is closed and replaced when one ends.
	readsBegun, readsDone uint64
	readDone              chan struct{}

	wake    chan struct{}
	catchUp chan struct{} // bounds concurrent catch-ups
	closing chan struct{}
	once    sync.Once
	// invalidated coalesces auth invalidations for the checker goroutine.
	invalidated chan struct{}
	wg          sync.WaitGroup
	slow        atomic.Int64
	// drained is closed when Close has seen every socket end.
	drained   chan struct{}
	drainOnce sync.Once
	// writeClock counts writeTicks since the hub started (watchWrites).
	writeClock atomic.Int64
	// writeTick and writeTimeout are the constants of the same names
	// (tests make them short).
	writeTick, writeTimeout time.Duration
}

// topicEntry is one topic and its subscriptions on this node. Many
// sockets on one topic share the entry; the last to leave removes it.
type topicEntry struct {
	topic Topic
	key   string
	subs  map[*subscription]struct{}
}

// model is what events are checked and built with.
type model struct {
	eng   *engine.Engine
	rules *rules.Engine
}

func (h *Hub) eng() *engine.Engine  { return h.model.Load().eng }
func (h *Hub) rules() *rules.Engine { return h.model.Load().rules }

// SetModel makes eng and rules the ones in force: every event from now on
// is checked against the new read rules, on every open subscription.
// A subscription's filter keeps the meaning it had when it was made.
func (h *Hub) SetModel(eng *engine.Engine, r *rules.Engine) {
	h.model.Store(&model{eng: eng, rules: r})
}

// New builds a hub. Run starts its delivery.
func New(cfg Config) (*Hub, error) {
	if cfg.Engine == nil || cfg.Rules == nil || cfg.Auth == nil || cfg.Broker == nil {
		return nil, errors.New("realtime: the hub needs the engine, rules, auth and a broker")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Hub{
		cfg: cfg, log: log, metrics: m,
		conns: map[*conn]struct{}{}, streams: map[chan struct{}]struct{}{}, topics: map[string]*topicEntry{}, perColl: map[string]int{},
		started: make(chan struct{}), readDone: make(chan struct{}), wake: make(chan struct{}, 1), catchUp: make(chan struct{}, 4),
		closing: make(chan struct{}), drained: make(chan struct{}), writeTick: writeTick, writeTimeout: writeTimeout, invalidated: make(chan struct{}, 1),
	}
	h.model.Store(&model{eng: cfg.Engine, rules: cfg.Rules})
	cfg.Auth.OnInvalidate(func() {
		select {
		case h.invalidated <- struct{}{}:
		default:
		}
	})
	return h, nil
}

// Run delivers the change log to subscribers until ctx ends. It reads the
// log when the broker wakes it, every poll interval, and soon again while
// a position is held by a transaction still running.
func (h *Hub) Run(ctx context.Context) error {
	// Under mu, so that the Add happens before a Close's Wait, or sees
	// the hub closed (a WaitGroup may not Add while it is waited on).
	h.mu.Lock()
	select {
	case <-h.closing:
		h.mu.Unlock()
		return nil
	default:
	}
	h.wg.Add(1)
	h.mu.Unlock()
	go func() { defer h.wg.Done(); h.checkAuth(ctx) }()
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.watchWrites(ctx) }()
	d := &dispatcher{h: h}
	if err := d.start(ctx); err != nil {
		return err
	}
	close(h.started)
	poll := time.NewTicker(time.Duration(h.cfg.Settings.PollInterval))
	defer poll.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := 10 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.wake:
		case <-poll.C:
		case <-retry.C:
		}
		blocked, err := d.drain(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.log.Warn("realtime: reading the change log failed; retrying", slog.String("error", err.Error()))
			blocked = true
		}
		if blocked {
			retry.Reset(backoff)
			backoff = min(2*backoff, time.Duration(h.cfg.Settings.PollInterval))
		} else {
			backoff = 10 * time.Millisecond
		}
	}
}

// watchWrites cuts the sockets whose write has gone on for writeTimeout:
// one clock for every socket, where a deadline per write would cost a
// timer each (conn.writeAll).
func (h *Hub) watchWrites(ctx context.Context) {
	t := time.NewTicker(h.writeTick)
	defer t.Stop()
	// A write that began just before a tick is cut a tick later than one
	// that began just after: the bound is at least writeTimeout.
	limit := int64(h.writeTimeout/h.writeTick) + 1
	var stuck []*conn
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.drained:
			// Not at closing: a socket's last write may still have to be cut.
			return
		case <-t.C:
		}
		now := h.writeClock.Add(1) + 1
		stuck = stuck[:0]
		h.mu.Lock()
		for c := range h.conns {
			if at := c.writing.Load(); at != 0 && now-at >= limit {
				stuck = append(stuck, c)
			}
		}
		h.mu.Unlock()
		for _, c := range stuck {
			h.metrics.Dropped.Inc()
			h.slow.Add(1)
			c.close(statusTooSlow, "too slow: a write did not finish in time")
		}
	}
}

// Close disconnects every socket (going away) and waits for the hub's
// goroutines.
func (h *Hub) Close() {
	h.once.Do(func() { close(h.closing) })
	h.mu.Lock()
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.close(statusGoingAway, "the server is shutting down")
	}
	for _, c := range conns {
		<-c.done
	}
	h.drainOnce.Do(func() { close(h.drained) })
	h.wg.Wait()
}

// Check reports the broker's state, for /readyz.
func (h *Hub) Check(ctx context.Context) error { return h.cfg.Broker.Check(ctx) }

// Stats is what the hub holds now.
type Stats struct {
	Connections, Subscriptions, Topics int
	// BrokerSubscribed reports whether the hub listens on the broker,
	// which it does while any topic is open.
	BrokerSubscribed bool
	// SlowDisconnects counts sockets closed for not keeping up.
	SlowDisconnects int64
}

// Stats counts the hub's connections, subscriptions and topics.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Stats{Connections: len(h.conns), Topics: len(h.topics), BrokerSubscribed: h.cancelBroker != nil, SlowDisconnects: h.slow.Load()}
	for _, t := range h.topics {
		s.Subscriptions += len(t.subs)
	}
	return s
}

// full reports whether the sockets and inspector streams open reach
// realtime.max_connections. The caller holds h.mu.
func (h *Hub) full() bool {
	max := h.cfg.Settings.MaxConnections
	return max > 0 && len(h.conns)+len(h.streams) >= max
}

func (h *Hub) wakeUp() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// awaitRead wakes the dispatcher and waits until it has finished a read
// of the log begun after the call. Such a read sees every change
// committed before the call, so when it ends they have all been
// dispatched, except those behind a position still held by a running
// transaction (the read stops there; they follow live, in order).
func (h *Hub) awaitRead(ctx context.Context) error {
	h.mu.Lock()
	want := h.readsBegun + 1
	h.mu.Unlock()
	h.wakeUp()
	for {
		h.mu.Lock()
		done, ch := h.readsDone, h.readDone
		h.mu.Unlock()
		if done >= want {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-h.closing:
			return errors.New("realtime: the hub is closing")
		}
	}
}

// register adds sub to its topic. It returns the position through which
// changes have been dispatched: a subscription that catches up reads up
// to there, and hears what comes after live. The caller enqueues the ack
// under the same lock, so it precedes every event.
func (h *Hub) register(sub *subscription, beforeEvents func(pos int64)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := sub.topic.String()
	t := h.topics[key]
	if t == nil {
		t = &topicEntry{topic: sub.topic, key: key, subs: map[*subscription]struct{}{}}
		h.topics[key] = t
		h.perColl[sub.topic.Collection]++
		if h.cancelBroker == nil {
			h.cancelBroker = h.cfg.Broker.Subscribe(ChangesChannel, func(m broker.Message) { h.wakeUp() })
		}
	}
	t.subs[sub] = struct{}{}
	h.metrics.Subscriptions.Inc()
	beforeEvents(h.last)
}

// unregister removes sub; the last subscription of a topic removes the
// topic, and the last topic the broker subscription.
func (h *Hub) unregister(sub *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := sub.topic.String()
	t := h.topics[key]
	if t == nil {
		return
	}
	if _, ok := t.subs[sub]; !ok {
		return
	}
	delete(t.subs, sub)
	h.metrics.Subscriptions.Dec()
	if len(t.subs) > 0 {
		return
	}
	delete(h.topics, key)
	if h.perColl[t.topic.Collection]--; h.perColl[t.topic.Collection] == 0 {
		delete(h.perColl, t.topic.Collection)
	}
	if len(h.topics) == 0 && h.cancelBroker != nil {
		h.cancelBroker()
		h.cancelBroker = nil
	}
}

func (h *Hub) listened(collection string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.perColl[collection] > 0
}

// checkAuth applies revocations and role changes to open sockets: a
// revoked token ends the subscriptions made with it, and roles are read
// again so rules see them.
func (h *Hub) checkAuth(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.closing:
			return
		case <-h.invalidated:
		}
		h.mu.Lock()
		conns := make([]*conn, 0, len(h.conns))
		for c := range h.conns {
			conns = append(conns, c)
		}
		for ch := range h.streams {
			// Each stream checks its admin's token itself; one wake-up
			// pending is enough.
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		h.mu.Unlock()
		for _, c := range conns {
			c.recheck(ctx)
		}
	}
}

func (h *Hub) String() string { return fmt.Sprintf("realtime hub (%s broker)", h.cfg.Broker.Name()) }
