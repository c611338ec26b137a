package broker

import (
	"context"
	"errors"
	"sync"
)

// Memory is the broker of a single node: Publish reaches the subscribers
// of this process only.
type Memory struct {
	subs *subscribers
}

// NewMemory returns a memory broker.
func NewMemory() *Memory { return &Memory{subs: newSubscribers(nil)} }

// Subscribe implements Broker.
func (m *Memory) Subscribe(channel string, fn func(Message)) func() {
	return m.subs.add(channel, fn)
}

// Publish implements Broker.
func (m *Memory) Publish(_ context.Context, channel, payload string) error {
	if m.subs.closed() {
		return errors.New("broker closed")
	}
	m.subs.deliver(channel, Message{Payload: payload})
	return nil
}

// Check implements Broker.
func (m *Memory) Check(context.Context) error { return nil }

// Name implements Broker.
func (m *Memory) Name() string { return "memory" }

// Close implements Broker.
func (m *Memory) Close() error {
	m.subs.close()
	return nil
}

// subscribers fans messages out to the subscriptions of each channel.
// Each subscription has its own goroutine and an unbounded queue, so a
// slow subscriber delays only itself and a publisher never blocks.
// Messages are wake-ups, so the queue coalesces: a subscriber that has
// not caught up hears each distinct payload once.
type subscribers struct {
	mu     sync.Mutex
	byChan map[string]map[*subscription]struct{}
	done   bool
	// onChange is called with a channel when its first subscriber comes
	// or its last goes (the postgres and redis brokers LISTEN and UNLISTEN
	// then). It runs under no lock.
	onChange func(channel string, listening bool)
}

type subscription struct {
	fn      func(Message)
	mu      sync.Mutex
	pending []Message
	wake    chan struct{}
	stop    chan struct{}
	stopped sync.Once
}

func newSubscribers(onChange func(string, bool)) *subscribers {
	return &subscribers{byChan: map[string]map[*subscription]struct{}{}, onChange: onChange}
}

func (s *subscribers) add(channel string, fn func(Message)) func() {
	sub := &subscription{fn: fn, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return func() {}
	}
	set := s.byChan[channel]
	first := set == nil
	if first {
		set = map[*subscription]struct{}{}
		s.byChan[channel] = set
	}
	set[sub] = struct{}{}
	s.mu.Unlock()
	if first && s.onChange != nil {
		s.onChange(channel, true)
	}
	go sub.run()
	return func() {
		s.mu.Lock()
		set := s.byChan[channel]
		_, ok := set[sub]
		delete(set, sub)
		last := ok && len(set) == 0
		if last {
			delete(s.byChan, channel)
		}
		s.mu.Unlock()
		sub.end()
		if last && s.onChange != nil {
			s.onChange(channel, false)
		}
	}
}

func (s *subscribers) deliver(channel string, m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.byChan[channel] {
		sub.push(m)
	}
}

// lost tells every subscription that messages may have been missed.
func (s *subscribers) lost() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.byChan {
		for sub := range set {
			sub.push(Message{Lost: true})
		}
	}
}

// channels lists the channels that have subscribers.
func (s *subscribers) channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byChan))
	for ch := range s.byChan {
		out = append(out, ch)
	}
	return out
}

func (s *subscribers) closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

func (s *subscribers) close() {
	s.mu.Lock()
	s.done = true
	all := s.byChan
	s.byChan = map[string]map[*subscription]struct{}{}
	s.mu.Unlock()
	for _, set := range all {
		for sub := range set {
			sub.end()
		}
	}
}

func (sub *subscription) push(m Message) {
	sub.mu.Lock()
	dup := false
	for _, p := range sub.pending {
		if p == m {
			dup = true
			break
		}
	}
	if !dup {
		sub.pending = append(sub.pending, m)
	}
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *subscription) end() { sub.stopped.Do(func() { close(sub.stop) }) }

func (sub *subscription) run() {
	for {
		select {
		case <-sub.stop:
			return
		case <-sub.wake:
		}
		sub.mu.Lock()
		batch := sub.pending
		sub.pending = nil
		sub.mu.Unlock()
		for _, m := range batch {
			select {
			case <-sub.stop:
				return
			default:
			}
			sub.fn(m)
		}
	}
}
