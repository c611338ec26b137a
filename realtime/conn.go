package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/engine"
	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/rules"
)

// Close codes beyond RFC 6455's: 4000-4999 are the application's.
const (
	statusGoingAway      = websocket.StatusGoingAway
	statusPolicy         = websocket.StatusPolicyViolation
	statusTooSlow        = websocket.StatusCode(4008)
	statusTooManyClients = websocket.StatusTryAgainLater
)

// writeTimeout bounds one write to a socket (Hub.watchWrites), on a
// clock of writeTick.
const (
	writeTick    = time.Second
	writeTimeout = 10 * time.Second
)

// outMsg is a message queued for a socket. An event is shared by many
// subscribers; sub is written into it as the socket sends it.
type outMsg struct {
	sub  string
	data []byte
}

// authState is who a socket is, with what the dispatcher asks of it for
// every event made once: the rules' principal and a key that names it.
type authState struct {
	p *auth.Principal // nil: anonymous
	// rp is p as rules see it (nil: anonymous); rules only read it.
	rp *rules.Principal
	// key names everything a rule can read of p, so that equal keys get
	// equal answers (readerKey).
	key string
}

func newAuthState(p *auth.Principal) *authState {
	st := &authState{p: p}
	if p != nil {
		st.rp = &rules.Principal{ID: p.UserID, Email: p.Email, Roles: p.Roles, Verified: p.Verified, MFA: p.MFA, Permissions: p.Permissions}
		st.key = fmt.Sprintf("%s|%s|%t|%t|%s|%s", p.UserID, p.Email, p.Verified, p.MFA, strings.Join(p.Roles, ","), strings.Join(p.Permissions, ","))
	}
	return st
}

// reader is the socket's principal as the rules of a request at now see it.
func (st *authState) reader(ip string, now time.Time) engine.Reader {
	return engine.Reader{Principal: st.rp, Request: rules.Request{Method: "GET", IP: ip, Time: now}}
}

// conn is one socket.
type conn struct {
	h     *Hub
	ws    *websocket.Conn
	ip    string
	send  sendQueue
	lim   *rate.Limiter
	state atomic.Pointer[authState]

	// buf is the writer's scratch for framing events.
	buf []byte
	// writing is the hub's write clock (plus one) when the write under
	// way began, 0 when none is.
	writing atomic.Int64

	mu     sync.Mutex
	subs   map[string]*subscription
	expiry *time.Timer

	closeOnce   sync.Once
	closeCode   websocket.StatusCode
	closeReason string
	closed      chan struct{} // closed when the socket is being closed
	done        chan struct{} // closed when its goroutines have ended
	ctx         context.Context
	cancel      context.CancelFunc
}

// subscription is one subscribe of one socket.
type subscription struct {
	conn   *conn
	id     string
	topic  Topic
	filter *rules.Filter
	// authed: made with a token, so it ends when the token does.
	authed bool

	mu       sync.Mutex
	catching bool
	buffered []outMsg
	overflow bool
}

// refuseFull answers a socket or an inspector stream over
// realtime.max_connections.
func refuseFull(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "5")
	httpx.Error(w, r, http.StatusServiceUnavailable, "this server holds as many realtime connections as it may; try again later or another node")
}

// ServeHTTP upgrades GET /api/realtime to a WebSocket.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	full := h.full()
	h.mu.Unlock()
	if full {
		refuseFull(w, r)
		return
	}
	select {
	case <-h.closing:
		httpx.Error(w, r, http.StatusServiceUnavailable, "the server is shutting down")
		return
	default:
	}
	opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
	for _, o := range h.cfg.AllowedOrigins {
		if o == "*" {
			// No cookie authenticates a socket (the token comes in a
			// message), so any origin is no CSRF risk when CORS says so.
			opts.InsecureSkipVerify = true
			continue
		}
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			opts.OriginPatterns = append(opts.OriginPatterns, u.Host)
		}
	}
	ws, err := websocket.Accept(w, r, opts)
	if err != nil {
		return // Accept has answered
	}
	ws.SetReadLimit(int64(h.cfg.Settings.MaxMessageBytes))
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	perSec := h.cfg.Settings.MessagesPerSecond
	c := &conn{
		h: h, ws: ws, ip: httpx.ClientIPString(r),
		send: sendQueue{max: h.cfg.Settings.SendQueue, ready: make(chan struct{}, 1)},
		lim:  rate.NewLimiter(rate.Limit(perSec), 2*perSec),
		subs: map[string]*subscription{}, closed: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
	c.state.Store(newAuthState(nil))
	// A bearer header authenticates too, for clients that can send one.
	if p := auth.PrincipalFrom(r.Context()); p != nil {
		c.setPrincipal(p)
	}
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.metrics.Connections.Inc()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		h.metrics.Connections.Dec()
	}()
	var wg sync.WaitGroup
	wg.Go(c.writeLoop)
	c.readLoop()
	c.close(websocket.StatusNormalClosure, "")
	wg.Wait()
	c.endAll()
	c.mu.Lock()
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.mu.Unlock()
	cancel()
	close(c.done)
}

// reader is the socket's principal as rules see it.
func (c *conn) reader() engine.Reader {
	return c.state.Load().reader(c.ip, c.h.cfg.Now())
}

func (c *conn) readLoop() {
	strikes := 0
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) || websocket.CloseStatus(err) == websocket.StatusMessageTooBig {
				c.close(websocket.StatusMessageTooBig, fmt.Sprintf("a message may have at most %d bytes", c.h.cfg.Settings.MaxMessageBytes))
			}
			return
		}
		if typ != websocket.MessageText {
			c.close(websocket.StatusUnsupportedData, "send JSON text messages, not binary")
			return
		}
		if !c.lim.Allow() {
			// Refused messages do not count against the limit; a
			// client that keeps pushing is cut off.
			if strikes++; strikes > 2*c.h.cfg.Settings.MessagesPerSecond {
				c.close(statusPolicy, "too many messages")
				return
			}
			c.enqueue(outMsg{data: errorMessage("", CodeRateLimited, fmt.Sprintf("at most %d messages per second; this one was dropped", c.h.cfg.Settings.MessagesPerSecond))})
			continue
		}
		strikes = 0
		m, err := DecodeClientMessage(data)
		if err != nil {
			code := CodeBadMessage
			var ut *errUnknownType
			if errors.As(err, &ut) {
				code = CodeUnknownType
			}
			c.enqueue(outMsg{data: errorMessage(m.ID, code, err.Error())})
			continue
		}
		c.handle(m)
	}
}

func (c *conn) handle(m ClientMessage) {
	switch m.Type {
	case "ping":
		c.enqueue(outMsg{data: pongMessage})
	case "auth":
		if c.authenticate(m.ID, m.Token) && m.ID == "" {
			c.enqueue(outMsg{data: ackMessage("", -1)})
		}
	case "subscribe":
		c.subscribe(m)
	case "unsubscribe":
		c.mu.Lock()
		sub := c.subs[m.ID]
		delete(c.subs, m.ID)
		c.mu.Unlock()
		if sub == nil {
			c.enqueue(outMsg{data: errorMessage(m.ID, CodeUnknownID, "no subscription has this id")})
			return
		}
		c.h.unregister(sub)
		c.enqueue(outMsg{data: ackMessage(m.ID, -1)})
	}
}

// authenticate applies an auth message. A failed one changes nothing. A
// token of another user ends the subscriptions made as the previous one.
func (c *conn) authenticate(id, token string) bool {
	p, err := c.h.cfg.Auth.Authorize(c.ctx, token)
	if err != nil {
		// The codes of the HTTP API's 401s: a client refreshes on
		// token_expired and signs in again on the others.
		code, msg := CodeInvalidToken, "the token is not valid"
		var te *auth.TokenError
		if errors.As(err, &te) {
			code, msg = te.Code, te.Error()
		}
		c.enqueue(outMsg{data: errorMessage(id, code, msg)})
		return false
	}
	if old := c.state.Load().p; old != nil && old.UserID != p.UserID {
		c.endAuthed(CodeUnauthorized, "you signed in as another user: subscribe again")
	}
	c.setPrincipal(p)
	if id != "" {
		c.enqueue(outMsg{data: ackMessage(id, -1)})
	}
	return true
}

// setPrincipal makes p the socket's principal and ends its subscriptions
// when its token expires.
func (c *conn) setPrincipal(p *auth.Principal) {
	c.state.Store(newAuthState(p))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.expiry = time.AfterFunc(p.ExpiresAt.Sub(c.h.cfg.Now()), func() {
		if c.state.Load().p != p {
			return
		}
		c.state.Store(newAuthState(nil))
		c.endAuthed(CodeTokenExpired, "the access token expired: send a fresh one with {\"type\":\"auth\"} and subscribe again")
	})
}

// recheck applies revocations and role changes to the socket's principal.
func (c *conn) recheck(ctx context.Context) {
	p := c.state.Load().p
	if p == nil {
		return
	}
	if c.h.cfg.Auth.Revoked(p) {
		c.state.Store(newAuthState(nil))
		c.endAuthed(CodeTokenRevoked, "the session was signed out or its token revoked: sign in again and subscribe again")
		return
	}
	fresh := *p
	if err := c.h.cfg.Auth.RefreshRoles(ctx, &fresh); err != nil {
		c.h.log.Warn("realtime: reading roles failed", slog.String("error", err.Error()))
		return
	}
	if !slices.Equal(fresh.Roles, p.Roles) || !slices.Equal(fresh.Permissions, p.Permissions) {
		c.state.CompareAndSwap(c.state.Load(), newAuthState(&fresh))
	}
}

// endAuthed ends the subscriptions made with a token, telling the client
// why.
func (c *conn) endAuthed(code, msg string) {
	c.mu.Lock()
	var ended []*subscription
	for id, s := range c.subs {
		if s.authed {
			ended = append(ended, s)
			delete(c.subs, id)
		}
	}
	c.mu.Unlock()
	for _, s := range ended {
		c.h.unregister(s)
		c.enqueue(outMsg{data: errorMessage(s.id, code, msg)})
	}
	if len(ended) == 0 {
		c.enqueue(outMsg{data: errorMessage("", code, msg)})
	}
}

// endAll removes every subscription of a closed socket.
func (c *conn) endAll() {
	c.mu.Lock()
	subs := c.subs
	c.subs = map[string]*subscription{}
	c.mu.Unlock()
	for _, s := range subs {
		c.h.unregister(s)
	}
}

func (c *conn) subscribe(m ClientMessage) {
	if m.Token != "" && !c.authenticate(m.ID, m.Token) {
		return
	}
	if code, msg := c.open(m); code != "" {
		c.enqueue(outMsg{data: errorMessage(m.ID, code, msg)})
	}
}

// open makes subscription m of the socket, as the socket's principal: it
// checks the topic, filter and record, and registers it, which queues its
// ack. A refusal is returned as an error code and message; a socket that
// closes meanwhile gets neither. The realtime inspector opens its
// subscriptions here too, so it hears what a client would.
func (c *conn) open(m ClientMessage) (code, msg string) {
	topic, err := ParseTopic(m.Topic)
	if err != nil {
		return CodeBadTopic, err.Error()
	}
	exists, enabled := c.h.eng().Realtime(topic.Collection)
	switch {
	case !exists:
		return CodeUnknownCollection, fmt.Sprintf("there is no collection %q", topic.Collection)
	case !enabled:
		return CodeNotEnabled, fmt.Sprintf("collection %s does not allow subscriptions (set realtime: true in abe.yaml)", topic.Collection)
	}
	sub := &subscription{conn: c, id: m.ID, topic: topic, authed: c.state.Load().p != nil}
	if m.Filter != "" {
		if topic.RecordID != "" {
			return CodeBadFilter, "a record topic takes no filter"
		}
		f, err := c.h.rules().Filter(topic.Collection, m.Filter)
		if err != nil {
			return CodeBadFilter, err.Error()
		}
		sub.filter = f
	}
	if topic.RecordID != "" {
		// A record the subscriber may not read is refused like one that
		// does not exist, so ids cannot be probed.
		recs, err := c.h.eng().Records(c.ctx, topic.Collection, []string{topic.RecordID})
		if err != nil {
			c.h.log.Warn("realtime: subscribe: reading the record failed", slog.String("error", err.Error()))
			return CodeInternal, "the server could not check the record; try again"
		}
		ok := false
		if rec := recs[topic.RecordID]; rec != nil {
			ok, _, err = c.h.eng().Readable(c.ctx, topic.Collection, c.reader(), rec, c.h.eng().Loads(c.ctx))
			if err != nil {
				return CodeInternal, "the server could not check the record; try again"
			}
		}
		if !ok {
			return CodeForbidden, "no such record, or you may not read it"
		}
	}
	c.mu.Lock()
	if _, dup := c.subs[m.ID]; dup {
		c.mu.Unlock()
		return CodeDuplicateID, "a subscription with this id is open; unsubscribe it first or use another id"
	}
	if len(c.subs) >= c.h.cfg.Settings.MaxSubscriptions {
		c.mu.Unlock()
		return CodeTooManySubs, fmt.Sprintf("a connection may hold at most %d subscriptions", c.h.cfg.Settings.MaxSubscriptions)
	}
	c.subs[m.ID] = sub
	c.mu.Unlock()
	sub.catching = m.Since != nil
	// A node that is starting reads back through recent changes to find
	// its position; a subscription made meanwhile would get those old
	// changes as live events. It starts once the position is known.
	select {
	case <-c.h.started:
	case <-c.ctx.Done():
		return "", ""
	}
	// The node may not have read the log since the latest changes
	// committed (no one listened, so no broker woke it). One read, shared
	// by every subscribe waiting for it, brings its position past every
	// write that had returned when the client subscribed: with since,
	// they come in the catch-up, one event per record, not split between
	// the catch-up and live events by when the dispatcher happened to
	// read; without, they are behind the ack, so a client that lists
	// after the ack sees them there and never hears them again.
	if err := c.h.awaitRead(c.ctx); err != nil {
		return "", ""
	}
	var upTo int64
	c.h.register(sub, func(pos int64) {
		upTo = pos
		c.enqueue(outMsg{data: ackMessage(m.ID, pos)})
	})
	if m.Since != nil {
		since := *m.Since
		c.h.wg.Go(func() { c.h.catchUpSub(sub, since, upTo) })
	}
	return "", ""
}

// enqueue queues a message without blocking. A socket whose queue is full
// cannot keep up: it is closed, so it never grows the server's memory.
func (c *conn) enqueue(m outMsg) {
	select {
	case <-c.closed:
		return
	default:
	}
	if !c.send.push(m) {
		c.h.metrics.Dropped.Inc()
		c.h.slow.Add(1)
		c.close(statusTooSlow, "too slow: the send queue is full")
	}
}

// deliver queues an event for the subscription, or holds it while the
// subscription catches up.
func (s *subscription) deliver(m outMsg) {
	s.mu.Lock()
	if s.catching {
		if len(s.buffered) < s.conn.send.max {
			s.buffered = append(s.buffered, m)
		} else {
			s.overflow = true
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.conn.enqueue(m)
	s.conn.h.metrics.Events.Inc()
}

// writeLoop sends queued messages and pings until the socket closes;
// then it sends what is queued (unless the socket was too slow for it)
// and closes with the code and reason.
func (c *conn) writeLoop() {
	ping := time.NewTicker(time.Duration(c.h.cfg.Settings.PingInterval))
	defer ping.Stop()
	pinging := atomic.Bool{}
	defer c.finish()
	var batch []outMsg
	for {
		select {
		case <-c.closed:
			return
		case <-c.send.ready:
			batch = c.send.take(batch)
			err := c.writeAll(batch)
			clear(batch) // let sent events go
			if err != nil {
				c.close(statusGoingAway, "write failed")
				return
			}
		case <-ping.C:
			if !pinging.CompareAndSwap(false, true) {
				continue
			}
			go func() {
				defer pinging.Store(false)
				ctx, cancel := context.WithTimeout(c.ctx, time.Duration(c.h.cfg.Settings.PingInterval))
				defer cancel()
				if err := c.ws.Ping(ctx); err != nil && c.ctx.Err() == nil {
					c.close(statusPolicy, "no answer to ping")
				}
			}()
		}
	}
}

// finish flushes and closes the socket.
func (c *conn) finish() {
	code, reason := c.closeCode, c.closeReason
	if code != statusTooSlow && code != statusGoingAway {
		_ = c.writeAll(c.send.take(nil)) //nolint:errcheck // closing anyway
	}
	if code == statusTooSlow {
		// A socket that cannot take events cannot take a close frame
		// either: drop it now rather than wait for the handshake.
		_ = c.ws.CloseNow() //nolint:errcheck // the socket is gone either way
	} else {
		_ = c.ws.Close(code, reason) //nolint:errcheck // the socket is gone either way
	}
	c.cancel()
}

// writeAll sends what the queue held, each message as one frame. No
// deadline goes with the writes: a context with one costs a timer per
// write and coder/websocket a callback on it, a tenth of a fanout's CPU
// (bench/realtime). The hub's one clock cuts a socket whose write has
// taken writeTimeout instead (watchWrites): a client that stopped
// reading has filled its TCP window, and is too slow anyway.
func (c *conn) writeAll(msgs []outMsg) error {
	if len(msgs) == 0 {
		return nil
	}
	c.writing.Store(c.h.writeClock.Load() + 1)
	defer c.writing.Store(0)
	for _, m := range msgs {
		data := m.data
		if m.sub != "" {
			// {"sub":"<id>", then the shared event without its opening
			// brace.
			c.buf = append(appendJSONString(append(c.buf[:0], `{"sub":`...), m.sub), ',')
			data = append(c.buf, m.data[1:]...)
			c.buf = data
		}
		if err := c.ws.Write(context.Background(), websocket.MessageText, data); err != nil {
			return err
		}
	}
	return nil
}

// sendQueue holds a socket's messages until its writer takes them. It is
// a slice that grows when used, not a channel of the full size: most
// sockets hold nothing most of the time, and 20,000 channels of 256
// would be 200 MB (bench/realtime).
type sendQueue struct {
	max   int
	ready chan struct{} // a message was added

	mu    sync.Mutex
	items []outMsg
}

// push queues m; false when the queue is full.
func (q *sendQueue) push(m outMsg) bool {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, m)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take moves everything queued into buf.
func (q *sendQueue) take(buf []outMsg) []outMsg {
	q.mu.Lock()
	defer q.mu.Unlock()
	buf = append(buf[:0], q.items...)
	clear(q.items)
	q.items = q.items[:0]
	if cap(q.items) > 32 {
		q.items = nil // a burst is over: give its memory back
	}
	return buf
}

// close asks the writer to close the socket, once, with a code and a
// reason for the client.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.closed)
		if code == statusTooSlow && c.ws != nil {
			// The writer is likely blocked on the full socket: cut it.
			_ = c.ws.CloseNow() //nolint:errcheck // the socket is gone either way
		}
	})
}

// catchUpSub sends a subscription what it missed since a position, then
// what came while it caught up.
func (h *Hub) catchUpSub(s *subscription, since, upTo int64) {
	select {
	case h.catchUp <- struct{}{}:
		defer func() { <-h.catchUp }()
	case <-s.conn.closed:
		return
	}
	c := s.conn
	resync := false
	var msgs []outMsg
	if since < upTo {
		changes, pruned, err := h.eng().ChangesOf(c.ctx, s.topic.Collection, s.topic.RecordID, since, upTo, maxCatchUp+1)
		switch {
		case err != nil:
			if c.ctx.Err() == nil {
				h.log.Warn("realtime: catching up failed", slog.String("error", err.Error()))
			}
			resync = true
		case since < pruned || len(changes) > maxCatchUp:
			resync = true
		default:
			topic := s.topic.String()
			subs := map[string][]*subscription{topic: {s}}
			b := newEventBuilder(c.ctx, h)
			lastOf := map[string]int64{}
			for _, ch := range changes {
				lastOf[ch.Collection+":"+ch.ID] = ch.Seq
			}
			if err := b.load(changes, subs, lastOf); err != nil {
				resync = true
				break
			}
			for _, ch := range changes {
				if lastOf[ch.Collection+":"+ch.ID] != ch.Seq {
					continue
				}
				if msg, ok := b.build(s, ch); ok {
					msgs = append(msgs, outMsg{sub: s.id, data: msg})
				}
			}
		}
	}
	if resync {
		c.enqueue(outMsg{data: resyncMessage(s.id, upTo)})
	} else {
		for _, m := range msgs {
			c.enqueue(m)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overflow {
		// Live events were dropped while catching up: start over.
		c.enqueue(outMsg{data: resyncMessage(s.id, upTo)})
	} else {
		for _, m := range s.buffered {
			c.enqueue(m)
		}
	}
	s.buffered, s.catching, s.overflow = nil, false, false
}
