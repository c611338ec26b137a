package realtime

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/abe-stack/abe/engine"
	"github.com/abe-stack/abe/rules"
)

// dispatcher reads the change log in order. Positions (seq) are taken
// when a write happens but become visible when it commits, so a position
// can be missing for a while (a transaction still running) or for good (a
// rolled-back one). The dispatcher never passes a missing position until
// it knows which: when every transaction that could hold it has finished
// (snapshot xmin beyond the xmax seen when the hole was found) and it is
// still missing, it was rolled back. So events go out in seq order and a
// late commit is never skipped.
type dispatcher struct {
	h   *Hub
	pos int64
	// holes are the missing positions above pos seen so far, in order.
	holes []hole
	// seen is the highest position read so far.
	seen int64
}

type hole struct {
	from, to int64
	// xmax is the snapshot xmax when the hole was first seen: the
	// transaction holding it has an id below.
	xmax uint64
}

// start picks the first position: the newest less one batch, which goes
// through the hole logic once so a transaction running at startup is not
// skipped when it commits. No connection is subscribed yet, so nothing of
// that batch is delivered.
func (d *dispatcher) start(ctx context.Context) error {
	for {
		last, err := d.h.eng().LastChange(ctx)
		if err == nil {
			d.pos = max(0, last-batchSize)
			d.seen = d.pos
			d.h.mu.Lock()
			d.h.last = d.pos
			d.h.mu.Unlock()
			_, err = d.drain(ctx)
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.h.log.Warn("realtime: cannot read the change log; retrying", slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// drain reads and dispatches everything it can. blocked reports a hole
// whose transaction may still commit: read again soon.
// Each drain counts as one read of the log for awaitRead.
func (d *dispatcher) drain(ctx context.Context) (blocked bool, err error) {
	h := d.h
	h.mu.Lock()
	h.readsBegun++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.readsDone++
		close(h.readDone)
		h.readDone = make(chan struct{})
		h.mu.Unlock()
	}()
	for {
		b, err := h.eng().ReadChanges(ctx, d.pos, batchSize, h.listened)
		if err != nil {
			return false, err
		}
		ready, newPos, blocked := d.settle(b)
		if newPos != d.pos {
			// The position and the subscribers move together: a
			// subscription registered before this hears the batch live,
			// one registered after catches up through newPos.
			h.mu.Lock()
			h.last = newPos
			subs := h.subscribersOf(ready)
			h.mu.Unlock()
			d.pos = newPos
			if len(subs) > 0 {
				d.deliver(ctx, ready, subs)
			}
		}
		if blocked || len(b.Changes) < batchSize {
			return blocked, nil
		}
	}
}

// deliver dispatches a batch the position has passed. A subscription
// that joined before the position moved hears these changes only here,
// so a failed read (the database busy or restarting) is retried rather
// than dropped; new changes wait behind it, which keeps them in order.
func (d *dispatcher) deliver(ctx context.Context, ready []engine.Change, subs map[string][]*subscription) {
	backoff := 10 * time.Millisecond
	for try := 1; ; try++ {
		err := d.h.dispatch(ctx, ready, subs)
		if err == nil || ctx.Err() != nil {
			return
		}
		if try == 5 {
			d.h.log.Error("realtime: loading changed records keeps failing; the events of this batch are lost, clients see them when they refetch",
				slog.Int64("from", ready[0].Seq), slog.Int64("to", ready[len(ready)-1].Seq), slog.String("error", err.Error()))
			return
		}
		d.h.log.Warn("realtime: loading changed records failed; retrying", slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Duration(d.h.cfg.Settings.PollInterval))
	}
}

// settle finds the changes of b that can go out now: those up to the
// first hole whose transaction may still be running.
func (d *dispatcher) settle(b engine.ChangeBatch) (ready []engine.Change, newPos int64, blocked bool) {
	if len(b.Changes) == 0 {
		d.holes = nil
		return nil, d.pos, false
	}
	// The holes now: the gaps between the rows read. A part of a gap seen
	// before keeps the xmax of when it was first seen.
	var holes []hole
	next := d.pos + 1
	for _, c := range b.Changes {
		for s := next; s < c.Seq; {
			end, x := d.segment(s, c.Seq-1, b.Xmax)
			holes = append(holes, hole{from: s, to: end, xmax: x})
			s = end + 1
		}
		next = c.Seq + 1
	}
	last := b.Changes[len(b.Changes)-1].Seq
	var above []hole
	for _, h := range d.holes {
		if h.from > last {
			above = append(above, h)
		}
	}
	d.seen = max(d.seen, last)
	newPos = d.pos
	i := 0
	for _, c := range b.Changes {
		for newPos+1 < c.Seq {
			h := holes[i]
			if h.xmax > b.Xmin {
				// Its transaction may still commit: wait for it.
				d.holes = append(holes[i:], above...)
				return ready, newPos, true
			}
			// Every transaction that could hold it has finished, and it
			// is not there: rolled back.
			newPos = h.to
			i++
		}
		ready = append(ready, c)
		newPos = c.Seq
	}
	d.holes = above
	return ready, newPos, false
}

// segment returns the end of the part of a gap starting at s (ending at
// most at end) that shares one first-seen xmax, and that xmax.
func (d *dispatcher) segment(s, end int64, xmax uint64) (int64, uint64) {
	if s > d.seen {
		return end, xmax // new
	}
	end = min(end, d.seen)
	for _, h := range d.holes {
		if s >= h.from && s <= h.to {
			return min(end, h.to), h.xmax
		}
		if h.from > s {
			end = min(end, h.from-1)
			break
		}
	}
	// A position seen before without a hole: its row has been pruned
	// since. Nothing holds it.
	return end, 0
}

// subscribersOf lists the subscriptions of the topics the changes touch.
// The hub's lock is held.
func (h *Hub) subscribersOf(changes []engine.Change) map[string][]*subscription {
	if len(h.topics) == 0 {
		return nil
	}
	out := map[string][]*subscription{}
	add := func(key string) {
		if _, done := out[key]; done {
			return
		}
		if t := h.topics[key]; t != nil {
			list := make([]*subscription, 0, len(t.subs))
			for s := range t.subs {
				list = append(list, s)
			}
			out[key] = list
		}
	}
	for _, c := range changes {
		if h.perColl[c.Collection] == 0 {
			continue
		}
		add("collection:" + c.Collection)
		add("record:" + c.Collection + ":" + c.ID)
	}
	return out
}

// dispatch sends changes to the subscriptions that may see them. A record
// changed twice in the batch is sent once, as it is now. It fails, having
// sent nothing, when the records cannot be read.
func (h *Hub) dispatch(ctx context.Context, changes []engine.Change, subs map[string][]*subscription) error {
	ev := newEventBuilder(ctx, h)
	lastOf := map[string]int64{}
	for _, c := range changes {
		lastOf[c.Collection+":"+c.ID] = c.Seq
	}
	if err := h.loadOld(ctx, changes, subs, lastOf); err != nil {
		return err
	}
	if err := ev.load(changes, subs, lastOf); err != nil {
		return err
	}
	for _, c := range changes {
		if lastOf[c.Collection+":"+c.ID] != c.Seq {
			continue
		}
		recSubs := subs["record:"+c.Collection+":"+c.ID]
		collSubs := subs["collection:"+c.Collection]
		if len(recSubs) == 0 && len(collSubs) == 0 {
			continue
		}
		h.metrics.Latency.Observe(time.Since(c.At).Seconds())
		for _, s := range recSubs {
			ev.send(s, c)
		}
		for _, s := range collSubs {
			ev.send(s, c)
		}
	}
	return nil
}

// loadOld reads the old records of deletes that were read from the log
// while no one listened to their collection (ReadChanges skips them
// then), for a subscription that has joined since: without it, the
// delete could not be checked against the rules and would not be sent.
func (h *Hub) loadOld(ctx context.Context, changes []engine.Change, subs map[string][]*subscription, lastOf map[string]int64) error {
	type span struct{ from, to int64 }
	missing := map[string]span{}
	for _, c := range changes {
		if c.Op != "delete" || c.Old != nil || lastOf[c.Collection+":"+c.ID] != c.Seq {
			continue
		}
		if len(subs["collection:"+c.Collection]) == 0 && len(subs["record:"+c.Collection+":"+c.ID]) == 0 {
			continue
		}
		sp, ok := missing[c.Collection]
		if !ok {
			sp.from = c.Seq
		}
		sp.to = c.Seq
		missing[c.Collection] = sp
	}
	for coll, sp := range missing {
		got, _, err := h.eng().ChangesOf(ctx, coll, "", sp.from-1, sp.to, int(sp.to-sp.from+1))
		if err != nil {
			return err
		}
		old := make(map[int64]engine.Record, len(got))
		for _, c := range got {
			if c.Old != nil {
				old[c.Seq] = c.Old
			}
		}
		for i := range changes {
			if c := &changes[i]; c.Collection == coll && c.Op == "delete" && c.Old == nil {
				c.Old = old[c.Seq]
			}
		}
	}
	return nil
}

// eventBuilder checks and encodes events for one batch. Rules share one
// memo of loaded records, and an event is encoded once per topic and set
// of hidden fields, then shared by every subscriber who sees the same.
type eventBuilder struct {
	ctx     context.Context
	h       *Hub
	now     time.Time
	loads   *rules.Loads
	current map[string]map[string]engine.Record // collection -> id -> record
	encoded map[eventKey][]byte
	// readable remembers read rule results by change and reader: many
	// sockets of one user on one topic ask the same question
	// (bench/realtime: 10,000 sockets of 99 users).
	readable map[readerKey]readResult
	// matched remembers filter answers the same way.
	matched map[matchKey]bool
}

type readResult struct {
	ok     bool
	hidden []string
	// hiddenKey is hidden joined, for eventKey.
	hiddenKey string
}

func newEventBuilder(ctx context.Context, h *Hub) *eventBuilder {
	return &eventBuilder{ctx: ctx, h: h, now: h.cfg.Now(), loads: h.eng().Loads(ctx), current: map[string]map[string]engine.Record{},
		encoded: map[eventKey][]byte{}, readable: map[readerKey]readResult{}, matched: map[matchKey]bool{}}
}

// readerKey names a change and everything a rule can read of a reader,
// so that equal keys get equal answers.
type readerKey struct {
	seq    int64
	ip     string
	who    string // authState.key; empty for anonymous
	record bool   // for a record topic, which the list rule does not guard
}

// matchKey names a filter's answer for a change and a reader.
type matchKey struct {
	reader readerKey
	filter *rules.Filter
}

// eventKey names an encoded event: the same change on the same kind of
// topic, matched or not, with the same fields hidden, is the same bytes.
type eventKey struct {
	seq    int64
	record bool // a record topic, not a collection's
	match  bool
	hidden string
}

// load reads the current records of the creates and updates that someone
// listens to.
func (b *eventBuilder) load(changes []engine.Change, subs map[string][]*subscription, lastOf map[string]int64) error {
	ids := map[string][]string{}
	for _, c := range changes {
		if c.Op == "delete" || lastOf[c.Collection+":"+c.ID] != c.Seq {
			continue
		}
		if len(subs["collection:"+c.Collection]) == 0 && len(subs["record:"+c.Collection+":"+c.ID]) == 0 {
			continue
		}
		ids[c.Collection] = append(ids[c.Collection], c.ID)
	}
	for coll, list := range ids {
		recs, err := b.h.eng().Records(b.ctx, coll, list)
		if err != nil {
			return err
		}
		b.current[coll] = recs
	}
	return nil
}

// send checks change c against s's rules and filter and queues the event.
func (b *eventBuilder) send(s *subscription, c engine.Change) {
	msg, ok := b.build(s, c)
	if ok {
		s.deliver(outMsg{sub: s.id, data: msg})
	}
}

func (b *eventBuilder) build(s *subscription, c engine.Change) ([]byte, bool) {
	st := s.conn.state.Load()
	rec := c.Old
	if c.Op != "delete" {
		rec = b.current[c.Collection][c.ID]
	}
	if rec == nil {
		// Gone since: its delete follows. (A delete without its old
		// record cannot be checked, so it is not sent.)
		return nil, false
	}
	key := readerKey{seq: c.Seq, ip: s.conn.ip, who: st.key, record: s.topic.RecordID != ""}
	rr, seen := b.readable[key]
	who := st.reader(s.conn.ip, b.now)
	if !seen {
		// A collection topic shows what a list would: the list rule too.
		see := b.h.eng().Listed
		if key.record {
			see = b.h.eng().Readable
		}
		ok, hidden, err := see(b.ctx, c.Collection, who, rec, b.loads)
		if err != nil {
			b.h.log.Warn("realtime: a read rule failed; the event is not sent", slog.String("collection", c.Collection), slog.String("error", err.Error()))
			return nil, false
		}
		rr = readResult{ok: ok, hidden: hidden, hiddenKey: strings.Join(hidden, ",")}
		b.readable[key] = rr
	}
	if !rr.ok {
		return nil, false
	}
	hidden := rr.hidden
	match := true
	if s.filter != nil {
		// Subscriptions with the same filter (one object per source) and
		// reader get the same answer.
		mk := matchKey{reader: key, filter: s.filter}
		m, seen := b.matched[mk]
		if !seen {
			ok, err := s.filter.Match(&rules.Input{Auth: who.Principal, Record: rec, Request: who.Request}, b.loads)
			if err != nil {
				b.h.log.Debug("realtime: a filter failed on a record", slog.String("error", err.Error()))
			}
			m = err == nil && ok
			b.matched[mk] = m
		}
		match = m
	}
	if !match && c.Op != "update" {
		return nil, false
	}
	ek := eventKey{seq: c.Seq, record: s.topic.RecordID != "", match: match, hidden: rr.hiddenKey}
	if msg, ok := b.encoded[ek]; ok {
		return msg, true
	}
	// The topic's name is the encoding's business: made once per event
	// and view, not per delivery.
	topic := "collection:" + c.Collection
	if s.topic.RecordID != "" {
		topic = "record:" + c.Collection + ":" + c.ID
	}
	msg, err := b.encode(topic, c, rec, hidden, match)
	if err != nil {
		b.h.log.Warn("realtime: encoding an event failed", slog.String("error", err.Error()))
		return nil, false
	}
	b.encoded[ek] = msg
	return msg, true
}

// encode renders an event. A record that no longer matches the filter
// is sent without its content and with "match": false, so the client
// drops it from the query's results.
func (b *eventBuilder) encode(topic string, c engine.Change, rec engine.Record, hidden []string, match bool) ([]byte, error) {
	var buf bytes.Buffer
	version := c.Version
	if c.Op != "delete" {
		version = rec.Version()
	}
	fmt.Fprintf(&buf, `{"type":"event","topic":%s,"op":%q,"id":%q,"version":%d,"seq":%d`, jsonString(topic), c.Op, c.ID, version, c.Seq)
	switch {
	case !match:
		buf.WriteString(`,"match":false`)
	case c.Op != "delete":
		buf.WriteString(`,"record":`)
		if err := b.h.eng().AppendRecord(&buf, c.Collection, rec, hidden); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
