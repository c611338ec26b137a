package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/abe-stack/abe/bench/internal/benchkit"
)

// topic is what every socket subscribes to.
const topic = "collection:todos"

// holdResult is what holding many sockets costs one node.
type holdResult struct {
	asked, n int
	open     time.Duration
	// openCPU is the server's CPU time while the sockets opened.
	openCPU time.Duration
	// idleRSS is the node's resident set before the sockets, heldRSS
	// while it holds them, hwm its peak.
	idleRSS, heldRSS, hwm int64
	clientRSS             int64
	// idleGC and heldGC are the collector's last reports before and
	// after the opening.
	idleGC, heldGC gcTrace
}

func (h *holdResult) perConn() int64 { return (h.heldRSS - h.idleRSS) / int64(h.n) }

// delivery is what one scenario of writes and subscribers measured.
type delivery struct {
	name, where        string
	subscribers        int
	writes             int
	expected           int
	delivered          int
	duplicates, leaked int
	// fromCommit is receive time less the commit of the write, as the
	// bench's own LISTEN connection saw it (see commits). fromWrite is
	// receive time less the record's updated_at, stamped by Postgres
	// when the write's transaction began: an upper bound.
	fromCommit, fromWrite []time.Duration
	// lastFromCommit is, per write, fromCommit of its last subscriber.
	lastFromCommit []time.Duration
	writeRTT       []time.Duration
	elapsed        time.Duration
	// serverCPU is the CPU time of the node(s) while the writes were
	// delivered; idleCPU what they use doing nothing for as long.
	serverCPU, idleCPU time.Duration
	clientCPU          time.Duration
	odd                string
}

func (d *delivery) missing() int { return d.expected - d.delivered }

// cpuPerEvent is the nodes' CPU time per delivered event, less what they
// use when idle.
func (d *delivery) cpuPerEvent() time.Duration {
	if d.delivered == 0 {
		return 0
	}
	return max(0, d.serverCPU-d.idleCPU) / time.Duration(d.delivered)
}

// singleNode runs the hold, fanout and single scenarios on one node with
// the default broker (postgres).
func (l *lab) singleNode(ctx context.Context, res *results) error {
	o := l.o
	if !o.wants("hold") && !o.wants("fanout") && !o.wants("single") {
		return nil
	}
	n, err := l.startNode(ctx, "node", "postgres")
	if err != nil {
		return err
	}
	defer n.stop()
	w := l.newWriter(n.url)
	defer w.client.CloseIdleConnections()
	// What is used once (programs, pools, code paged in) is not the
	// sockets' cost.
	if err := l.warmUp(ctx, n, w); err != nil {
		return err
	}
	s := newSockets(n.url, o.sourceIPs)
	defer s.closeAll()
	if o.wants("hold") {
		h := &holdResult{asked: o.holdAsked, n: o.hold, idleRSS: n.memory("VmRSS")}
		h.idleGC, _ = n.lastGC()
		fmt.Fprintf(o.out, "hold: opening %d sockets on one node (idle resident set %s)\n", o.hold, mib(h.idleRSS))
		cpu0, start := n.cpuTime(), time.Now()
		if err := s.open(ctx, o.hold, l.subscriberToken, topic); err != nil {
			return fmt.Errorf("hold: %w", err)
		}
		h.open, h.openCPU = time.Since(start), n.cpuTime()-cpu0
		if err := n.waitConnections(ctx, o.hold); err != nil {
			return fmt.Errorf("hold: %w", err)
		}
		// Let the garbage of the opening be collected, as it would be
		// on a server that has held its sockets for a while.
		if err := sleep(ctx, 3*o.settle); err != nil {
			return err
		}
		h.heldRSS, h.hwm, h.clientRSS = n.memory("VmRSS"), n.memory("VmHWM"), benchkit.Memory(os.Getpid(), "VmRSS")
		h.heldGC, _ = n.lastGC()
		if odd := s.unexpected(); odd != "" {
			return fmt.Errorf("hold: %s", odd)
		}
		res.hold = h
		fmt.Fprintf(o.out, "hold: %d sockets opened in %s; resident set %s (peak %s), %.1f KiB per socket\n",
			h.n, h.open.Round(time.Millisecond), mib(h.heldRSS), mib(h.hwm), float64(h.perConn())/1024)
	}
	if o.wants("fanout") {
		if len(s.list) > o.fanout {
			s.closeFrom(o.fanout)
		} else if err := s.open(ctx, o.fanout-len(s.list), l.subscriberToken, topic); err != nil {
			return fmt.Errorf("fanout: %w", err)
		}
		if err := n.waitConnections(ctx, o.fanout); err != nil {
			return fmt.Errorf("fanout: %w", err)
		}
		fmt.Fprintf(o.out, "fanout: %d writes to %d subscribers\n", o.fanoutWrites, len(s.list))
		d, err := l.deliver(ctx, "fanout", s, w, []*node{n}, o.fanoutWrites, time.Minute, o.settle/5)
		if err != nil {
			return err
		}
		d.where = "one node, broker postgres"
		res.deliveries = append(res.deliveries, d)
		if err := l.fanoutCeiling(ctx, res, d.subscribers); err != nil {
			return err
		}
	}
	s.closeAll()
	if o.wants("single") {
		if err := n.waitConnections(ctx, 0); err != nil {
			return fmt.Errorf("single: %w", err)
		}
		one := newSockets(n.url, 1)
		defer one.closeAll()
		if err := one.open(ctx, 1, l.subscriberToken, topic); err != nil {
			return fmt.Errorf("single: %w", err)
		}
		fmt.Fprintf(o.out, "single: %d writes to 1 subscriber\n", o.singleWrites)
		d, err := l.deliver(ctx, "single", one, w, []*node{n}, o.singleWrites, 10*time.Second, 0)
		if err != nil {
			return err
		}
		d.where = "one node, broker postgres"
		res.deliveries = append(res.deliveries, d)
	}
	return nil
}

// fanoutCeiling runs the fanout against the ceiling (ceiling.go): as many
// sockets, from the same client, the same number of writes.
func (l *lab) fanoutCeiling(ctx context.Context, res *results, subscribers int) error {
	o := l.o
	c, err := l.startCeiling(ctx)
	if err != nil {
		return err
	}
	defer c.stop()
	s := newSockets(c.url, o.sourceIPs)
	defer s.closeAll()
	if err := s.open(ctx, subscribers, l.subscriberToken, topic); err != nil {
		return fmt.Errorf("fanout ceiling: %w", err)
	}
	if err := c.waitConnections(ctx, subscribers); err != nil {
		return fmt.Errorf("fanout ceiling: %w", err)
	}
	fmt.Fprintf(o.out, "fanout ceiling: %d broadcasts to %d sockets\n", o.fanoutWrites, subscribers)
	w := &ceilingWriter{url: c.url, project: l.project, client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{}}}
	defer w.client.CloseIdleConnections()
	d, err := l.deliver(ctx, "fanout-ceiling", s, w, []*node{c}, o.fanoutWrites, time.Minute, o.settle/5)
	if err != nil {
		return err
	}
	d.where = "the ceiling: one pre-encoded message, no rules"
	res.deliveries = append(res.deliveries, d)
	return nil
}

// crossNode writes on one node and subscribes on another, both on the
// same database, woken through broker.
func (l *lab) crossNode(ctx context.Context, broker string) (*delivery, error) {
	name := "cross-" + broker
	a, err := l.startNode(ctx, "a-"+broker, broker)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	b, err := l.startNode(ctx, "b-"+broker, broker)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	w := l.newWriter(a.url)
	defer w.client.CloseIdleConnections()
	s := newSockets(b.url, 1)
	defer s.closeAll()
	if err := s.open(ctx, 1, l.subscriberToken, topic); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The first event through a fresh pair of nodes pays for their
	// first use; it is not measured.
	if _, err := w.create(ctx, -1); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !s.waitEvents(ctx, 1, 10*time.Second) {
		return nil, fmt.Errorf("%s: the first write never reached the other node", name)
	}
	fmt.Fprintf(l.o.out, "%s: %d writes on node A to 1 subscriber on node B\n", name, l.o.crossWrites)
	d, err := l.deliver(ctx, name, s, w, []*node{a, b}, l.o.crossWrites, 10*time.Second, 0)
	if err != nil {
		return nil, err
	}
	d.where = "two nodes, broker " + broker
	return d, nil
}

// warmUp has one socket receive one write.
func (l *lab) warmUp(ctx context.Context, n *node, w *writer) error {
	s := newSockets(n.url, 1)
	defer s.closeAll()
	if err := s.open(ctx, 1, l.subscriberToken, topic); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, err := w.create(ctx, -1); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if !s.waitEvents(ctx, 1, 10*time.Second) {
		return fmt.Errorf("warm-up: the event of a write did not arrive within 10 s")
	}
	s.closeAll()
	if err := n.waitConnections(ctx, 0); err != nil {
		return err
	}
	return sleep(ctx, l.o.settle)
}

// deliver makes writes one at a time, each once the previous one has
// reached every socket (or timeout has passed), gap apart, then closes
// the sockets and matches what they received against the writes.
// creator makes the i-th write of a scenario: a create through abe's
// API, or the ceiling's broadcast.
type creator interface {
	create(ctx context.Context, i int) (*write, error)
}

func (l *lab) deliver(ctx context.Context, name string, s *sockets, w creator, nodes []*node, writes int, timeout, gap time.Duration) (*delivery, error) {
	d := &delivery{name: name, subscribers: len(s.list), writes: writes, expected: len(s.list) * writes}
	cpu := func() time.Duration {
		var sum time.Duration
		for _, n := range nodes {
			sum += n.cpuTime()
		}
		return sum
	}
	// What the nodes spend doing nothing (pings, polls of the change
	// log) is measured and taken off the CPU per event.
	idle0, idleStart := cpu(), time.Now()
	if err := sleep(ctx, l.o.settle); err != nil {
		return nil, err
	}
	idleRate := 0.0
	if l.o.settle > 0 {
		idleRate = float64(cpu()-idle0) / float64(time.Since(idleStart))
	}
	made := map[string]*write{}
	if l.o.perf != "" && name == "fanout" {
		stop, err := startPerf(l.o.perf, name, nodes[0])
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	cpu0, client0, start := cpu(), benchkit.CPUTime(os.Getpid()), time.Now()
	late := 0
	for i := range writes {
		before, k := s.events.Load(), l.commits.count()
		wr, err := w.create(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		made[wr.id] = wr
		d.writeRTT = append(d.writeRTT, wr.answered.Sub(wr.sent))
		if !s.waitEvents(ctx, before+int64(d.subscribers), timeout) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			late++
		}
		// Writes are one at a time, so the first commit seen after a
		// write was sent is that write's. (The ceiling's have no commit.)
		if wr.committed.IsZero() {
			if wr.committed, err = l.commits.nth(ctx, k, timeout); err != nil {
				return nil, fmt.Errorf("%s: write %d: %w", name, i, err)
			}
		}
		if err := sleep(ctx, gap); err != nil {
			return nil, err
		}
	}
	d.elapsed = time.Since(start)
	d.serverCPU, d.clientCPU = cpu()-cpu0, benchkit.CPUTime(os.Getpid())-client0
	d.idleCPU = time.Duration(idleRate * float64(d.elapsed))
	d.odd = s.unexpected()
	gone := s.closeAll()
	if err := d.match(gone, made); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if late > 0 {
		fmt.Fprintf(os.Stderr, "%s: %d writes did not reach every subscriber within %s\n", name, late, timeout)
	}
	return d, nil
}

// event is what the bench reads of an event.
type event struct {
	ID     string `json:"id"`
	Op     string `json:"op"`
	Record struct {
		UpdatedAt time.Time `json:"updated_at"`
		Note      *string   `json:"note"`
	} `json:"record"`
}

// match counts what each socket received of the writes and computes the
// latencies. Events of records not in made (warm-ups) are ignored.
func (d *delivery) match(gone []*socket, made map[string]*write) error {
	last := map[string]time.Duration{}
	for _, sk := range gone {
		seen := map[string]bool{}
		for _, a := range sk.got {
			var ev event
			if err := json.Unmarshal(a.data, &ev); err != nil {
				return fmt.Errorf("an event does not decode: %w: %s", err, a.data)
			}
			wr := made[ev.ID]
			if wr == nil {
				continue
			}
			if seen[ev.ID] {
				d.duplicates++
				continue
			}
			seen[ev.ID] = true
			d.delivered++
			if ev.Record.Note != nil {
				// The members may not read the note: an event that
				// carries it went down a path that is not the one
				// measured.
				d.leaked++
			}
			fromCommit := a.at.Sub(wr.committed)
			d.fromCommit = append(d.fromCommit, fromCommit)
			d.fromWrite = append(d.fromWrite, a.at.Sub(ev.Record.UpdatedAt))
			if v, ok := last[ev.ID]; !ok || fromCommit > v {
				last[ev.ID] = fromCommit
			}
		}
	}
	for _, v := range last {
		d.lastFromCommit = append(d.lastFromCommit, v)
	}
	return nil
}

// writer creates todos through the REST API as the project's owner.
type writer struct {
	url, token, project string
	client              *http.Client
}

// write is one create as the writer saw it.
type write struct {
	id             string
	sent, answered time.Time
	// committed is when the bench heard of its commit.
	committed time.Time
}

func (l *lab) newWriter(base string) *writer {
	return &writer{
		url: base + "/api/collections/todos/records", token: l.owner().token, project: l.project,
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{}},
	}
}

func (w *writer) create(ctx context.Context, i int) (*write, error) {
	body := map[string]any{"project": w.project, "title": "bench todo " + strconv.Itoa(i), "note": "only the owner reads this"}
	var answer struct {
		ID string `json:"id"`
	}
	wr := &write{sent: time.Now()}
	if err := postJSON(ctx, w.client, w.url, w.token, body, &answer); err != nil {
		return nil, fmt.Errorf("create a todo: %w", err)
	}
	wr.answered, wr.id = time.Now(), answer.ID
	return wr, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
