package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/internal/httpx"
)

// The realtime inspector (GET /api/admin/realtime/inspect) streams a
// collection's events as another principal would receive them. It opens
// its subscription through the same path as a socket's subscribe (conn.open)
// on a connection that has no socket: the dispatcher checks and encodes
// its events like everyone else's, so the inspector cannot disagree with a
// WebSocket client. It only reads.

// EventInspected is a use of the realtime inspector, in the security
// events: it shows what another principal may read.
const EventInspected = "realtime_inspected"

// inspectSub is the id of the inspector's one subscription.
const inspectSub = "inspect"

// ParseAs reads the inspector's as parameter: anonymous, user:<id> or
// roles:<a,b> (roles: alone is a principal with no role).
func ParseAs(as string) (auth.Impersonation, error) {
	kind, arg, _ := strings.Cut(as, ":")
	switch {
	case as == "anonymous":
		return auth.Impersonation{Anonymous: true}, nil
	case kind == "user" && arg != "":
		return auth.Impersonation{UserID: arg}, nil
	case kind == "roles" && strings.Contains(as, ":"):
		roles := []string{}
		for r := range strings.SplitSeq(arg, ",") {
			if r = strings.TrimSpace(r); r != "" {
				roles = append(roles, r)
			}
		}
		return auth.Impersonation{Roles: roles}, nil
	}
	return auth.Impersonation{}, errors.New("as must be anonymous, user:<id> or roles:<a,b>")
}

// ServeInspect streams the events of ?collection= (optionally narrowed by
// ?filter=) as ?as= would receive them, as text/event-stream: the
// subscription's ack, then one event per change, each a data: line with
// the realtime protocol's message and an id: line with its seq. It ends
// when the client goes, the admin's token expires or is revoked, or the
// hub closes. The caller checks the admin's permissions.
func (h *Hub) ServeInspect(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	coll, filter := q.Get("collection"), q.Get("filter")
	im, err := ParseAs(q.Get("as"))
	if err != nil {
		httpx.Error(w, r, http.StatusBadRequest, err.Error())
		return
	}
	as, err := h.cfg.Auth.Impersonate(r.Context(), im)
	var fe *auth.FieldError
	switch {
	case errors.Is(err, auth.ErrNotFound):
		httpx.Error(w, r, http.StatusBadRequest, "as: there is no such user")
		return
	case errors.As(err, &fe):
		httpx.Error(w, r, http.StatusBadRequest, "as: "+fe.Message)
		return
	case err != nil:
		httpx.Error(w, r, http.StatusInternalServerError, "the server could not read the principal; try again")
		h.log.Warn("realtime inspect: impersonate", slog.String("error", err.Error()))
		return
	}
	// A stream holds the server as a socket does, so it counts toward
	// realtime.max_connections.
	recheck, ok := h.addStream()
	if !ok {
		refuseFull(w, r)
		return
	}
	defer h.removeStream(recheck)
	// Every use is in the audit trail; a stream that cannot be recorded
	// is not given.
	details := map[string]any{"collection": coll, "filter": filter, "as": q.Get("as")}
	if err := h.cfg.Auth.RecordAdminAction(r, EventInspected, details); err != nil {
		httpx.Error(w, r, http.StatusInternalServerError, "the server could not record the inspection; try again")
		h.log.Warn("realtime inspect: record the event", slog.String("error", err.Error()))
		return
	}
	c := h.inspectConn(r, as)
	defer c.cancel()
	defer c.endAll()
	if code, msg := c.open(ClientMessage{Type: "subscribe", ID: inspectSub, Topic: "collection:" + coll, Filter: filter}); code != "" {
		status := http.StatusBadRequest
		if code == CodeInternal {
			status = http.StatusInternalServerError
		}
		httpx.Error(w, r, status, msg)
		return
	}
	h.stream(w, r, c, recheck)
}

// addStream reserves a place for an inspector stream under
// realtime.max_connections, with the channel that wakes it on an auth
// invalidation; false when the server is full.
func (h *Hub) addStream() (chan struct{}, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.full() {
		return nil, false
	}
	ch := make(chan struct{}, 1)
	h.streams[ch] = struct{}{}
	return ch, true
}

func (h *Hub) removeStream(ch chan struct{}) {
	h.mu.Lock()
	delete(h.streams, ch)
	h.mu.Unlock()
}

// inspectConn is a connection without a socket whose principal is as.
func (h *Hub) inspectConn(r *http.Request, as *auth.Principal) *conn {
	ctx, cancel := context.WithCancel(r.Context())
	c := &conn{h: h, ip: httpx.ClientIPString(r),
		send: sendQueue{max: h.cfg.Settings.SendQueue, ready: make(chan struct{}, 1)},
		subs: map[string]*subscription{}, closed: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel}
	c.state.Store(newAuthState(as))
	return c
}

// stream writes what the connection's queue receives until the stream
// ends. recheck wakes it when a token may have been revoked (a sign-out,
// a revoked session, on any node): the admin's token is checked then, and
// at each keep-alive in case a wake-up was missed.
func (h *Hub) stream(w http.ResponseWriter, r *http.Request, c *conn, recheck <-chan struct{}) {
	admin := auth.PrincipalFrom(r.Context())
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	// nginx buffers responses unless told not to.
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// Proxies close connections that stay silent; a comment keeps it open.
	beat := time.NewTicker(time.Duration(h.cfg.Settings.PingInterval))
	defer beat.Stop()
	var expired <-chan time.Time
	if admin != nil && !admin.ExpiresAt.IsZero() {
		t := time.NewTimer(admin.ExpiresAt.Sub(h.cfg.Now()))
		defer t.Stop()
		expired = t.C
	}
	var batch []outMsg
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-h.closing:
			endStream(w, rc, "going_away", "the server is shutting down")
			return
		case <-c.closed:
			// The queue overflowed: the stream could not keep up.
			endStream(w, rc, "too_slow", "too slow: the send queue is full")
			return
		case <-expired:
			endStream(w, rc, CodeTokenExpired, "the access token expired: sign in again and reopen the inspector")
			return
		case <-recheck:
			if admin != nil && h.cfg.Auth.Revoked(admin) {
				endStream(w, rc, CodeTokenRevoked, "the session was signed out or its token revoked")
				return
			}
			continue
		case <-beat.C:
			if admin != nil && h.cfg.Auth.Revoked(admin) {
				endStream(w, rc, CodeTokenRevoked, "the session was signed out or its token revoked")
				return
			}
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
		case <-c.send.ready:
			batch = c.send.take(batch)
			for _, m := range batch {
				if err = writeEvent(w, m.data); err != nil {
					break
				}
			}
			clear(batch)
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return // the client went away
		}
	}
}

// endStream tells the client why the stream ends.
func endStream(w http.ResponseWriter, rc *http.ResponseController, code, msg string) {
	if writeEvent(w, errorMessage("", code, msg)) == nil {
		_ = rc.Flush() //nolint:errcheck // ending anyway
	}
}

// writeEvent writes one protocol message as a server-sent event, with its
// seq as the event's id when it has one.
func writeEvent(w http.ResponseWriter, msg []byte) error {
	if seq, ok := seqOf(msg); ok {
		if _, err := fmt.Fprintf(w, "id: %d\n", seq); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "data: %s\n\n", msg)
	return err
}

// seqOf reads the "seq" of a message the hub encoded (JSON on one line,
// the seq a plain integer).
func seqOf(msg []byte) (int64, bool) {
	_, rest, ok := strings.Cut(string(msg), `,"seq":`)
	if !ok {
		return 0, false
	}
	end := strings.IndexAny(rest, ",}")
	if end < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(rest[:end], 10, 64)
	return n, err == nil
}
