package abe_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/schema"
)

// wsClient is a real WebSocket client of /api/realtime.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

// waitFor bounds how long a test waits for a message that must come.
const waitFor = 10 * time.Second

func (w *world) dial(opts *websocket.DialOptions) *wsClient {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(w.srv.URL, "http")+"/api/realtime", opts)
	if err != nil {
		w.t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 22)
	c := &wsClient{t: w.t, ws: ws}
	w.t.Cleanup(func() { ws.CloseNow() }) //nolint:errcheck // cleanup
	return c
}

// as dials and authenticates as who.
func (w *world) as(who string) *wsClient {
	w.t.Helper()
	c := w.dial(nil)
	if who != "" {
		c.send(map[string]any{"type": "auth", "id": "a", "token": w.tokens[who]})
		c.expect("ack", "a")
	}
	return c
}

func (c *wsClient) send(m any) {
	c.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *wsClient) sendRaw(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next reads the next message; within d, or it fails the test.
func (c *wsClient) next(d time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("server sent invalid JSON %q: %v", b, err)
	}
	return m, nil
}

// expect reads the next message and checks its type and id.
func (c *wsClient) expect(typ, id string) map[string]any {
	c.t.Helper()
	m, err := c.next(waitFor)
	if err != nil {
		c.t.Fatalf("waiting for %s %s: %v", typ, id, err)
	}
	if m["type"] != typ || (id != "" && m["id"] != id) {
		c.t.Fatalf("got %v, want %s %s", m, typ, id)
	}
	return m
}

// subscribe subscribes and waits for the ack.
func (c *wsClient) subscribe(id, topic, filter string) map[string]any {
	c.t.Helper()
	m := map[string]any{"type": "subscribe", "id": id, "topic": topic}
	if filter != "" {
		m["filter"] = filter
	}
	c.send(m)
	return c.expect("ack", id)
}

// event reads the next message, which must be an event.
func (c *wsClient) event() map[string]any {
	c.t.Helper()
	return c.expect("event", "")
}

// quiet proves nothing was sent to c before a marker: the caller makes a
// change c must see after the ones it must not, then quiet expects that
// one first. No sleeping: the marker's arrival bounds the wait.
func (c *wsClient) quietUntil(markerID string) {
	c.t.Helper()
	m := c.event()
	if m["id"] != markerID {
		c.t.Fatalf("expected nothing before the marker %s, got %v", markerID, m)
	}
}

func closeStatus(err error) websocket.StatusCode { return websocket.CloseStatus(err) }

func TestRealtimeEvents(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	projects, todos := "/api/collections/projects/records", "/api/collections/todos/records"
	pid := w.mustDo(ann, "POST", projects, map[string]any{"name": "Garden", "owner": w.ids[ann], "members": []string{w.ids[bob]}}, 201).str("id")
	other := w.mustDo(carol, "POST", projects, map[string]any{"name": "Carol's", "owner": w.ids[carol]}, 201).str("id")

	annWS, bobWS, carolWS := w.as(ann), w.as(bob), w.as(carol)
	annWS.subscribe("all", "collection:todos", "")
	bobWS.subscribe("all", "collection:todos", "")
	carolWS.subscribe("all", "collection:todos", "")

	// A create: members hear it, bob without the owner-only note.
	tid := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "Water", "note": "secret"}, 201).str("id")
	e := annWS.event()
	if e["op"] != "create" || e["id"] != tid || e["sub"] != "all" || e["version"] != float64(1) || e["seq"] == nil ||
		e["topic"] != "collection:todos" || e["record"].(map[string]any)["note"] != "secret" {
		t.Fatalf("ann's event: %v", e)
	}
	e = bobWS.event()
	if _, has := e["record"].(map[string]any)["note"]; has || e["record"].(map[string]any)["title"] != "Water" {
		t.Fatalf("bob's event shows the hidden field or lacks the record: %v", e)
	}
	// A record subscription, refused for who may not read it.
	bobWS.subscribe("one", "record:todos:"+tid, "")
	carolWS.send(map[string]any{"type": "subscribe", "id": "x", "topic": "record:todos:" + tid})
	if m := carolWS.expect("error", "x"); m["code"] != "forbidden" {
		t.Fatalf("carol subscribing to a todo she may not read: %v", m)
	}
	carolWS.send(map[string]any{"type": "subscribe", "id": "y", "topic": "record:todos:018f0000-0000-7000-8000-000000000000"})
	if m := carolWS.expect("error", "y"); m["code"] != "forbidden" || m["message"] != "no such record, or you may not read it" {
		t.Fatalf("a missing record must look like a forbidden one: %v", m)
	}

	// An update reaches both of bob's subscriptions.
	w.mustDo(ann, "PATCH", todos+"/"+tid, map[string]any{"done": true}, 200)
	if e := annWS.event(); e["op"] != "update" || e["version"] != float64(2) {
		t.Fatalf("update: %v", e)
	}
	got := map[string]bool{}
	for range 2 {
		e := bobWS.event()
		got[e["sub"].(string)+":"+e["topic"].(string)] = true
	}
	if !got["all:collection:todos"] || !got["one:record:todos:"+tid] {
		t.Fatalf("bob's two subscriptions: %v", got)
	}

	// A delete carries no record.
	w.mustDo(ann, "DELETE", todos+"/"+tid, nil, 204)
	if e := annWS.event(); e["op"] != "delete" || e["record"] != nil || e["id"] != tid {
		t.Fatalf("delete: %v", e)
	}
	// Carol heard none of it: her first event is of her own project.
	mine := w.mustDo(carol, "POST", todos, map[string]any{"project": other, "title": "Mine"}, 201).str("id")
	carolWS.quietUntil(mine)
}

func TestRealtimeAccessLostThroughGet(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	projects, todos := "/api/collections/projects/records", "/api/collections/todos/records"
	pid := w.mustDo(ann, "POST", projects, map[string]any{"name": "P", "owner": w.ids[ann], "members": []string{w.ids[bob]}}, 201).str("id")
	tid := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "t"}, 201).str("id")
	bobWS := w.as(bob)
	bobWS.subscribe("s", "collection:todos", "")
	bobWS.subscribe("r", "record:todos:"+tid, "")
	// Bob leaves the project: the todos' read rule, through get(), now
	// refuses him, and the events stop.
	w.mustDo(ann, "PATCH", projects+"/"+pid, map[string]any{"members": []string{}}, 200)
	w.mustDo(ann, "PATCH", todos+"/"+tid, map[string]any{"title": "after"}, 200)
	// Ann adds him to another project; its todo is the first he hears of.
	p2 := w.mustDo(ann, "POST", projects, map[string]any{"name": "P2", "owner": w.ids[ann], "members": []string{w.ids[bob]}}, 201).str("id")
	marker := w.mustDo(ann, "POST", todos, map[string]any{"project": p2, "title": "marker"}, 201).str("id")
	bobWS.quietUntil(marker)
}

func TestRealtimeFilter(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	todos := "/api/collections/todos/records"
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	c := w.as(ann)
	c.subscribe("open", "collection:todos", "done == false")
	a := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "a"}, 201).str("id")
	if e := c.event(); e["id"] != a || e["record"] == nil {
		t.Fatalf("matching create: %v", e)
	}
	w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "b", "done": true}, 201)
	// Done: it leaves the query.
	w.mustDo(ann, "PATCH", todos+"/"+a, map[string]any{"done": true}, 200)
	if e := c.event(); e["id"] != a || e["match"] != false || e["record"] != nil {
		t.Fatalf("a record leaving the filter: %v", e)
	}
	for _, tc := range []struct{ filter, code string }{
		{"done ==", "bad_filter"},
		{"nope == 1", "bad_filter"},
		{"title", "bad_filter"},
	} {
		c.send(map[string]any{"type": "subscribe", "id": "bad", "topic": "collection:todos", "filter": tc.filter})
		if m := c.expect("error", "bad"); m["code"] != tc.code {
			t.Errorf("filter %q: %v", tc.filter, m)
		}
	}
}

func TestRealtimeBadInput(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t)
	cfg.Collection("projects").Realtime = false // for not_enabled below
	w := newWorld(t, cfg)
	// A bystander keeps hearing events whatever the others send.
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	bystander := w.as(ann)
	bystander.subscribe("s", "collection:todos", "")

	c := w.as("")
	for _, tc := range []struct {
		msg, code string
	}{
		{`not json`, "bad_message"},
		{`{"type":"subscribe"`, "bad_message"},
		{`[1,2]`, "bad_message"},
		{`{"type":"dance"}`, "unknown_type"},
		{`{"type":"subscribe","id":"a","topic":"collection:todos","extra":1}`, "bad_message"},
		{`{"type":"subscribe","id":"a","topic":"collection:nope"}`, "unknown_collection"},
		{`{"type":"subscribe","id":"a","topic":"collection:projects"}`, "not_enabled"},
		{`{"type":"subscribe","id":"a","topic":"record:todos:not-a-uuid"}`, "bad_topic"},
		{`{"type":"subscribe","id":"a","topic":"table:todos"}`, "bad_topic"},
		{`{"type":"subscribe","topic":"collection:todos"}`, "bad_message"},
		{`{"type":"subscribe","id":"a","topic":"collection:todos","since":-1}`, "bad_message"},
		{`{"type":"unsubscribe","id":"never"}`, "unknown_id"},
		{`{"type":"auth","token":"forged.token.here"}`, "invalid_token"},
		{`{"type":"subscribe","id":"a","topic":"collection:todos","token":"forged"}`, "invalid_token"},
		{`{"type":"ping","id":1}`, "bad_message"},
	} {
		c.sendRaw([]byte(tc.msg))
		m := c.expect("error", "")
		if m["code"] != tc.code || m["message"] == "" {
			t.Errorf("%s: %v, want %s", tc.msg, m, tc.code)
		}
	}
	c.send(map[string]any{"type": "ping"})
	c.expect("pong", "")
	c.subscribe("dup", "collection:todos", "")
	c.send(map[string]any{"type": "subscribe", "id": "dup", "topic": "collection:todos"})
	if m := c.expect("error", "dup"); m["code"] != "duplicate_id" {
		t.Errorf("duplicate id: %v", m)
	}

	// A binary frame and a huge frame close the socket with a reason.
	bin := w.as("")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := bin.ws.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := bin.next(waitFor); closeStatus(err) != websocket.StatusUnsupportedData {
		t.Errorf("binary frame: %v", err)
	}
	huge := w.as("")
	huge.sendRaw([]byte(`{"type":"ping","x":"` + strings.Repeat("x", 100_000) + `"}`))
	if _, err := huge.next(waitFor); closeStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("huge frame: %v", err)
	}
	marker := w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": "still here"}, 201).str("id")
	bystander.quietUntil(marker)
}

// TestRealtimeFloodIsCutOff: messages past the rate are refused with
// rate_limited, and a client that keeps pushing is cut off with 1008,
// while a bystander keeps hearing events. The rate is low and the flood
// read while it is written: how fast a busy machine writes, and whether
// unread answers fill the socket's queue (the slow-client path), must
// not decide the outcome.
func TestRealtimeFloodIsCutOff(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t)
	cfg.Realtime.MessagesPerSecond = 5
	w := newWorldWith(t, cfg, &abe.Options{})
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	bystander := w.as(ann)
	bystander.subscribe("s", "collection:todos", "")

	flood := w.as("")
	type result struct {
		sawLimited bool
		err        error
	}
	read := make(chan result, 1)
	go func() {
		var r result
		for {
			var m map[string]any
			if m, r.err = flood.next(waitFor); r.err != nil {
				read <- r
				return
			}
			r.sawLimited = r.sawLimited || m["code"] == "rate_limited"
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	b, _ := json.Marshal(map[string]any{"type": "ping"})
	for range 1000 {
		if err := flood.ws.Write(ctx, websocket.MessageText, b); err != nil {
			break // cut off
		}
	}
	r := <-read
	if !r.sawLimited || closeStatus(r.err) != websocket.StatusPolicyViolation {
		t.Errorf("flood: rate_limited seen %v, close %v", r.sawLimited, r.err)
	}
	marker := w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": "still here"}, 201).str("id")
	bystander.quietUntil(marker)
}

// TestRealtimeTopicsAreReleased opens many sockets on one topic: one
// topic, one broker subscription; when they go, nothing is left.
func TestRealtimeTopicsAreReleased(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	hub := w.app.Realtime()
	var clients []*wsClient
	for i := range 30 {
		c := w.as("")
		c.subscribe("s", "collection:todos", "")
		if i%2 == 0 {
			c.subscribe("f", "collection:todos", "done == true")
		}
		clients = append(clients, c)
	}
	if s := hub.Stats(); s.Topics != 1 || s.Subscriptions != 45 || s.Connections != 30 || !s.BrokerSubscribed {
		t.Fatalf("with 30 sockets: %+v", s)
	}
	for i, c := range clients {
		if i%3 == 0 {
			c.send(map[string]any{"type": "unsubscribe", "id": "s"})
			c.expect("ack", "s")
		}
		c.ws.Close(websocket.StatusNormalClosure, "") //nolint:errcheck // closing
	}
	deadline := time.Now().Add(waitFor)
	for {
		s := hub.Stats()
		if s.Topics == 0 && s.Subscriptions == 0 && s.Connections == 0 && !s.BrokerSubscribed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %+v", s)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition the server reaches asynchronously
	}
}

func TestRealtimeCatchUp(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	todos := "/api/collections/todos/records"
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	c := w.as(ann)
	ack := c.subscribe("s", "collection:todos", "")
	first := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "seen"}, 201).str("id")
	seen := c.event()
	if seen["id"] != first {
		t.Fatal(seen)
	}
	c.ws.Close(websocket.StatusNormalClosure, "") //nolint:errcheck // going offline

	// Offline: two creates, an update of one, a delete of the first.
	a := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "a"}, 201).str("id")
	b := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "b"}, 201).str("id")
	w.mustDo(ann, "PATCH", todos+"/"+a, map[string]any{"title": "a2"}, 200)
	w.mustDo(ann, "DELETE", todos+"/"+first, nil, 204)

	// Every offline write had committed when the subscribe was sent: the
	// node reads the log before it answers (docs/realtime.md), so the ack
	// is past them and they come as the catch-up, one event per record,
	// in the order of each record's last change.
	c = w.as(ann)
	c.send(map[string]any{"type": "subscribe", "id": "s", "topic": "collection:todos", "since": seen["seq"]})
	if back := c.expect("ack", "s"); back["seq"].(float64) < seen["seq"].(float64)+4 {
		t.Fatalf("the ack (seq %v) is not past the 4 offline writes after %v", back["seq"], seen["seq"])
	}
	var got []string
	prev := seen["seq"].(float64)
	for range 3 {
		e := c.event()
		if e["seq"].(float64) <= prev {
			t.Fatalf("seq %v after %v: %v", e["seq"], prev, e)
		}
		prev = e["seq"].(float64)
		got = append(got, e["op"].(string)+" "+e["id"].(string))
		if e["id"] == a && e["record"].(map[string]any)["title"] != "a2" {
			t.Errorf("a caught up as %v", e)
		}
	}
	if want := []string{"create " + b, "update " + a, "delete " + first}; !slices.Equal(got, want) {
		t.Fatalf("caught up:\n got %v\nwant %v", got, want)
	}
	// Then live again.
	live := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "live"}, 201).str("id")
	c.quietUntil(live)

	// Older than the log keeps: resync.
	if _, err := w.app.Pool().Exec(context.Background(), `UPDATE abe.changes SET at = at - interval '30 days'`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.Engine().PruneChanges(context.Background()); err != nil {
		t.Fatal(err)
	}
	old := w.as(ann)
	old.send(map[string]any{"type": "subscribe", "id": "o", "topic": "collection:todos", "since": ack["seq"]})
	old.expect("ack", "o")
	old.expect("resync", "o")
}

// TestRealtimeCatchUpUnderWrites drops and reopens a socket with since
// while writes keep coming, so subscribes land at every point of the
// dispatcher's cycle: across the catch-up and the live events after it,
// each subscription sees seq strictly increase (nothing repeated or out of
// order), and the last event of each record is its final state (nothing
// lost).
func TestRealtimeCatchUpUnderWrites(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	todos := "/api/collections/todos/records"
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	var ids []string
	for i := range 4 {
		ids = append(ids, w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": fmt.Sprint("t", i)}, 201).str("id"))
	}
	c := w.as(ann)
	since := c.subscribe("s", "collection:todos", "")["seq"].(float64)

	// The writer renames the todos in turn and now and then creates one
	// and deletes another, until told to stop.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var r reply
			switch {
			case i%7 == 6:
				r = w.do(ann, "POST", todos, map[string]any{"project": pid, "title": fmt.Sprint("new", i)}, nil)
			case i%11 == 10:
				r = w.do(ann, "POST", todos, map[string]any{"project": pid, "title": "doomed"}, nil)
				if r.status == 201 {
					r = w.do(ann, "DELETE", todos+"/"+r.str("id"), nil, nil)
				}
			default:
				r = w.do(ann, "PATCH", todos+"/"+ids[i%len(ids)], map[string]any{"title": fmt.Sprint("w", i)}, nil)
			}
			if r.status >= 300 {
				t.Errorf("write %d: %d %s", i, r.status, r.raw)
				return
			}
		}
	}()

	// What the client knows: each record's last event.
	state := map[string]map[string]any{}
	read := func(c *wsClient, n int) {
		t.Helper()
		for range n {
			e := c.event()
			if seq := e["seq"].(float64); seq <= since {
				t.Fatalf("seq %v after %v: repeated or out of order: %v", seq, since, e)
			}
			since = e["seq"].(float64)
			state[e["id"].(string)] = e
		}
	}
	for round := range 8 {
		read(c, 5+round)
		c.ws.Close(websocket.StatusNormalClosure, "") //nolint:errcheck // going offline
		c = w.as(ann)
		c.send(map[string]any{"type": "subscribe", "id": "s", "topic": "collection:todos", "since": since})
		c.expect("ack", "s")
	}
	close(stop)
	<-stopped
	if t.Failed() {
		return
	}
	// After a last write, the client has heard everything before it.
	marker := w.mustDo(ann, "POST", todos, map[string]any{"project": pid, "title": "marker"}, 201).str("id")
	for state[marker] == nil {
		read(c, 1)
	}
	list := w.mustDo(ann, "GET", todos+"?limit=500", nil, 200).items()
	stored := map[string]string{}
	for _, r := range list {
		stored[r["id"].(string)] = r["title"].(string)
	}
	for id, e := range state {
		title, exists := stored[id]
		switch {
		case e["op"] == "delete" && exists:
			t.Errorf("%s: the last event is a delete, but it exists as %q", id, title)
		case e["op"] != "delete" && !exists:
			t.Errorf("%s: the last event is %v, but it was deleted", id, e)
		case exists && e["record"].(map[string]any)["title"] != title:
			t.Errorf("%s: the last event says %v, the record is %q", id, e["record"], title)
		}
	}
	for id, title := range stored {
		if state[id] == nil && title != "t0" && title != "t1" && title != "t2" && title != "t3" {
			t.Errorf("%s (%q) changed after the first subscribe, but no event told", id, title)
		}
	}
}

func TestRealtimeTokenEnds(t *testing.T) {
	t.Parallel()
	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		cfg := loadExample(t)
		cfg.Auth.AccessTokenTTL = schema.Duration(2 * time.Second)
		// A stopped clock: tokens are valid however slow the machine is,
		// and the socket's timer still ends them 2 s after they are sent.
		stopped := time.Now()
		w := newWorldWith(t, cfg, &abe.Options{Now: func() time.Time { return stopped }})
		c := w.as(bob)
		c.subscribe("s", "collection:todos", "")
		m, err := c.next(waitFor)
		if err != nil || m["type"] != "error" || m["code"] != "token_expired" || m["id"] != "s" {
			t.Fatalf("expiry: %v %v", m, err)
		}
		// A fresh token on the same socket works.
		fresh := w.do("", "POST", "/api/auth/login", map[string]string{"email": carol, "password": "long enough pass phrase 9"}, nil).str("access_token")
		c.send(map[string]any{"type": "auth", "id": "again", "token": fresh})
		c.expect("ack", "again")
		c.subscribe("s", "collection:todos", "")
	})
	t.Run("revocation", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, nil)
		c := w.as(carol)
		c.subscribe("s", "collection:todos", "")
		// Logging out everywhere kicks the socket's subscriptions.
		w.mustDo("", "POST", "/api/auth/logout-all", nil, 401) // anonymous cannot
		r := w.do("", "POST", "/api/auth/logout-all", nil, map[string]string{"Authorization": "Bearer " + w.tokens[carol]})
		if r.status != 204 {
			t.Fatalf("logout-all: %d %s", r.status, r.raw)
		}
		m, err := c.next(waitFor)
		if err != nil || m["code"] != "token_revoked" || m["id"] != "s" {
			t.Fatalf("revocation: %v %v", m, err)
		}
		// The revoked token again: refused with the HTTP API's code.
		c.send(map[string]any{"type": "auth", "id": "old", "token": w.tokens[carol]})
		if m := c.expect("error", "old"); m["code"] != "token_revoked" {
			t.Errorf("a revoked token in an auth message: %v", m)
		}
	})
}

// TestRealtimeSlowClient never reads: the server closes it instead of
// queueing without bound.
func TestRealtimeSlowClient(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t)
	cfg.Realtime.SendQueue = 4
	w := newWorld(t, cfg)
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	// A tiny receive buffer, so the server's writes block soon.
	dialer := &net.Dialer{Control: nil}
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetReadBuffer(1024) //nolint:errcheck // best effort
		}
		return conn, err
	}}
	slow := w.dial(&websocket.DialOptions{HTTPClient: &http.Client{Transport: transport}})
	slow.send(map[string]any{"type": "auth", "id": "a", "token": w.tokens[ann]})
	slow.expect("ack", "a")
	slow.subscribe("s", "collection:todos", "")
	// From here the slow client reads nothing.
	fast := w.as(ann)
	fast.subscribe("s", "collection:todos", "")
	heard := make(chan string, 1000)
	go func() {
		defer close(heard)
		for {
			// Longer than the test waits below for the slow client to go:
			// a read that times out closes the socket, and the fast
			// client must still be there when the slow one is gone.
			m, err := fast.next(3 * waitFor)
			if err != nil {
				return
			}
			heard <- fmt.Sprint(m["id"])
		}
	}()
	big := strings.Repeat("x", 50_000)
	var last string
	for i := 0; w.app.Realtime().Stats().SlowDisconnects == 0; i++ {
		if i == 1000 {
			t.Fatal("50 MB later, the slow client is still connected")
		}
		last = w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": "t", "tags": []string{big}}, 201).str("id")
	}
	// The fast client, reading along, heard everything up to the end.
	for id := range heard {
		if id == last {
			break
		}
	}
	// The slow one is gone, with its subscription.
	deadline := time.Now().Add(waitFor)
	for s := w.app.Realtime().Stats(); s.Connections != 1 || s.Subscriptions != 1; s = w.app.Realtime().Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the slow client is still held: %+v", s)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition the server reaches asynchronously
	}

}

// TestRealtimeStartingNodeSendsNoOldChanges: a node that starts reads back
// through recent changes to find its position; a subscription made at
// once must get only what changes after its ack, never that backlog.
func TestRealtimeStartingNodeSendsNoOldChanges(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	for i := range 30 {
		w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": fmt.Sprint("old ", i)}, 201)
	}
	cfg := loadExample(t)
	cfg.Server.RateLimit.Disabled = true
	cfg.Database.URL = w.app.Pool().Config().ConnString()
	second, err := abe.New(context.Background(), cfg, &abe.Options{Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(second.Handler())
	t.Cleanup(func() { srv.Close(); second.Close() })
	other := &world{t: t, app: second, srv: srv, tokens: w.tokens, ids: w.ids}
	c := other.as(ann)
	c.subscribe("s", "collection:todos", "")
	fresh := w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": "new"}, 201).str("id")
	if e := c.event(); e["id"] != fresh {
		t.Fatalf("the first event is %v, want the write made after subscribing (%s)", e["id"], fresh)
	}
}

// TestRealtimeWideFanout: one read of the change log fanned out to 300
// subscriptions on two sockets (the owner's and a member's, who may not
// read the note), half of them filtered, events and answers shared among
// them: every subscription hears every change it matches once, in order,
// as its reader may see it; carol, no member, hears nothing.
func TestRealtimeWideFanout(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t)
	cfg.Realtime.MaxSubscriptions = 200
	cfg.Realtime.MessagesPerSecond = 1000 // 150 subscribes in a row
	cfg.Realtime.SendQueue = 4000         // 1,800 events at once to one socket
	w := newWorld(t, cfg)
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann], "members": []string{w.ids[bob]}}, 201).str("id")
	const subs, writes = 150, 12
	socks := map[string]*wsClient{ann: w.as(ann), bob: w.as(bob)}
	// Every other subscription filters: the same filter on a socket is
	// asked once per change (realtime's matched memo), and must still
	// answer each subscription.
	filtered := func(i int) bool { return i%2 == 1 }
	for _, c := range socks {
		for i := range subs {
			f := ""
			if filtered(i) {
				f = `title == "t3"`
			}
			c.subscribe(fmt.Sprint("s", i), "collection:todos", f)
		}
	}
	outsider := w.as(carol)
	outsider.subscribe("s", "collection:todos", "")
	// One batch of creates is one read of the change log: one dispatch of
	// writes x 300 deliveries.
	var ops []map[string]any
	for i := range writes {
		ops = append(ops, map[string]any{"collection": "todos", "action": "create", "data": map[string]any{"project": pid, "title": fmt.Sprint("t", i), "note": "owner only"}})
	}
	w.mustDo(ann, "POST", "/api/batch", map[string]any{"ops": ops}, 200)
	for who, c := range socks {
		last := map[string]float64{}
		count := map[string]int{}
		for range subs/2*writes + subs/2 {
			e := c.event()
			sub := e["sub"].(string)
			seq := e["seq"].(float64)
			if seq <= last[sub] {
				t.Fatalf("%s %s: seq %v after %v", who, sub, seq, last[sub])
			}
			last[sub] = seq
			count[sub]++
			rec, _ := e["record"].(map[string]any)
			var i int
			fmt.Sscanf(sub, "s%d", &i) //nolint:errcheck // the ids are ours
			if filtered(i) && rec["title"] != "t3" {
				t.Fatalf("%s %s: the filter let through %v", who, sub, e)
			}
			if _, shown := rec["note"]; shown != (who == ann) {
				t.Fatalf("%s sees the note: %v (want %v): %v", who, shown, who == ann, e)
			}
		}
		for i := range subs {
			want := writes
			if filtered(i) {
				want = 1
			}
			if n := count[fmt.Sprint("s", i)]; n != want {
				t.Errorf("%s s%d heard %d of %d", who, i, n, want)
			}
		}
	}
	// carol hears nothing: the next thing she gets is the answer to a ping.
	outsider.send(map[string]any{"type": "ping"})
	if m := outsider.expect("pong", ""); m["type"] != "pong" {
		t.Fatalf("carol: %v", m)
	}
}
