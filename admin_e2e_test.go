package abe_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/schema"
)

const adminYAML = `
auth:
  secret: ssssssssssssssssssssssssssssssssssssssssssss
roles:
  admin:     { permissions: ["*"] }
  console:   { permissions: ["admin:console"] }
  explainer: { permissions: ["rules:explain"] }
  user:      { permissions: [], default: true }
collections:
  notes:
    fields:
      title:      { type: text, required: true, max: 100 }
      owner:      { type: relation, collection: users, required: true }
      shared:     { type: bool, default: false }
      secret:     { type: text, rules: { read: "auth != null && auth.id == record.owner" } }
      attachment: { type: file, mime_types: ["image/png"] }
    indexes:
      - { fields: [owner, created_at] }
    rules:
      list:   "auth != null && (record.owner == auth.id || record.shared)"
      read:   "auth != null && (record.owner == auth.id || record.shared)"
      create: "auth != null && record.owner == auth.id"
      update: "auth != null && record.owner == auth.id"
    realtime: true
  quiet:
    fields:
      name: { type: text }
`

// The users of adminWorld besides ann, bob and carol: each holds one of
// the roles above.
const (
	adminRoot     = "root@x.test"
	consoleUser   = "console@x.test"
	explainerUser = "explainer@x.test"
)

// adminWorld is a world on adminYAML, read from a file in a temporary
// directory (returned), with an admin and a user for each partial role;
// tune, when not nil, changes the configuration first.
func adminWorld(t *testing.T, tune func(*schema.Config), opts *abe.Options) (*world, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "abe.yaml")
	if err := os.WriteFile(path, []byte(adminYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(cfg)
	}
	if opts == nil {
		opts = &abe.Options{}
	}
	w := newWorldWith(t, cfg, opts)
	for email, role := range map[string]string{adminRoot: "admin", consoleUser: "console", explainerUser: "explainer"} {
		u, err := w.app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: email, Password: "long enough pass phrase 9", Roles: []string{role}, Verified: true})
		if err != nil {
			t.Fatal(err)
		}
		w.ids[email] = u.ID
		w.tokens[email] = w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": email, "password": "long enough pass phrase 9"}, 200).str("access_token")
	}
	return w, path
}

// TestAdminViewsRefuse: every admin view answers 401 without a token,
// 403 without each of its permissions, and 403 to an admin without MFA
// where admins must use it.
func TestAdminViewsRefuse(t *testing.T) {
	t.Parallel()
	w, _ := adminWorld(t, nil, nil)
	inspect := "/api/admin/realtime/inspect?collection=notes&as=anonymous"
	for _, c := range []struct {
		who, path string
		status    int
		code      string
	}{
		{"", "/api/admin/overview", 401, "unauthorized"},
		{"", "/api/admin/schema", 401, "unauthorized"},
		{"", inspect, 401, "unauthorized"},
		{ann, "/api/admin/overview", 403, "permission_required"},
		{ann, "/api/admin/schema", 403, "permission_required"},
		{ann, inspect, 403, "permission_required"},
		{explainerUser, "/api/admin/overview", 403, "permission_required"},
		{explainerUser, "/api/admin/schema", 403, "permission_required"},
		{explainerUser, inspect, 403, "permission_required"}, // rules:explain without admin:console
		{consoleUser, inspect, 403, "permission_required"},   // admin:console without rules:explain
		{consoleUser, "/api/admin/overview", 200, ""},
		{consoleUser, "/api/admin/schema", 200, ""},
	} {
		r := w.do(c.who, "GET", c.path, nil, nil)
		if r.status != c.status || c.code != "" && !strings.HasSuffix(r.str("type"), c.code) {
			t.Errorf("GET %s as %q: %d %s, want %d %s", c.path, c.who, r.status, r.raw, c.status, c.code)
		}
		// A refusal says nothing of the node or its schema.
		if c.status >= 400 && (strings.Contains(r.raw, `"checks"`) || strings.Contains(r.raw, `"collections"`) || strings.Contains(r.raw, `"ack"`)) {
			t.Errorf("GET %s as %q tells what it refuses: %s", c.path, c.who, r.raw)
		}
	}

	mw, _ := adminWorld(t, func(c *schema.Config) { c.Auth.RequireMFAForRoles = []string{"admin"} }, nil)
	for _, path := range []string{"/api/admin/overview", "/api/admin/schema", inspect} {
		r := mw.do(adminRoot, "GET", path, nil, nil)
		if r.status != 403 || !strings.HasSuffix(r.str("type"), "mfa_required") {
			t.Errorf("GET %s as an admin without MFA: %d %s", path, r.status, r.raw)
		}
	}
}

// TestAdminOverview: the overview counts requests and 5xx answers per
// whole minute of the app's clock, and reports readiness, realtime and
// jobs.
func TestAdminOverview(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second)}
	start := clk.Now().Truncate(time.Minute)
	boom := func(r chi.Router) {
		r.Get("/api/test/boom", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	}
	w, _ := adminWorld(t, nil, &abe.Options{Now: clk.Now, Routes: boom})

	// Two failed attempts: one within the hour, one before it.
	for _, ago := range []time.Duration{10 * time.Minute, 2 * time.Hour} {
		at := clk.Now().Add(-ago)
		errs, _ := json.Marshal(map[string]any{"at": at, "attempt": 1, "error": "boom"})
		if _, err := w.app.Pool().Exec(context.Background(), `INSERT INTO abe.river_job (args, attempt, attempted_at, errors, finalized_at, kind, max_attempts, priority, queue, state, scheduled_at, created_at)
			VALUES ('{}', 1, $1, ARRAY[$2::jsonb], $1, 'test.fail', 1, 1, 'default', 'discarded', $1, $1)`, at, string(errs)); err != nil {
			t.Fatal(err)
		}
	}
	c := w.as(ann)
	c.subscribe("s", "collection:notes", "")

	for range 3 {
		w.mustDo("", "GET", "/api/test/boom", nil, 500)
	}
	for range 2 {
		w.mustDo("", "GET", "/healthz", nil, 200)
	}
	clk.Advance(time.Minute)
	o := w.mustDo(consoleUser, "GET", "/api/admin/overview", nil, 200)
	minutes := overviewMinutes(t, o)
	last := minutes[len(minutes)-1]
	if last.At != start || last.Requests < 5 || last.Errors != 3 {
		t.Errorf("the first minute: %+v, want at %s, 3 errors of 5 or more requests", last, start)
	}
	if before := minutes[len(minutes)-2]; before.Requests != 0 || !before.At.Equal(start.Add(-time.Minute)) {
		t.Errorf("the minute before the start: %+v", before)
	}
	if o.body["version"] == "" || o.str("started_at") == "" {
		t.Errorf("version and started_at: %s", o.raw)
	}
	ready := o.body["ready"].(map[string]any)
	var db map[string]any
	for _, ch := range ready["checks"].([]any) {
		if m := ch.(map[string]any); m["name"] == "database" {
			db = m
		}
	}
	if ready["status"] != "ok" || db == nil || db["status"] != "up" || db["required"] != true {
		t.Errorf("ready: %v", ready)
	}
	if rt := o.body["realtime"].(map[string]any); rt["connections"] != 1.0 || rt["subscriptions"] != 1.0 {
		t.Errorf("realtime: %v", rt)
	}
	if jobs := o.body["jobs"].(map[string]any); jobs["discarded"] != 2.0 || jobs["failures_last_hour"] != 1.0 {
		t.Errorf("jobs: %v", jobs)
	}

	// The next minute holds the overview asked in it, and four more.
	for range 4 {
		w.mustDo("", "GET", "/healthz", nil, 200)
	}
	clk.Advance(time.Minute)
	minutes = overviewMinutes(t, w.mustDo(consoleUser, "GET", "/api/admin/overview", nil, 200))
	if got := minutes[len(minutes)-1]; got.At != start.Add(time.Minute) || got.Requests != 5 || got.Errors != 0 {
		t.Errorf("the second minute: %+v, want 5 requests, no error", got)
	}
	if got := minutes[len(minutes)-2]; got != last {
		t.Errorf("the first minute changed: %+v, was %+v", got, last)
	}
}

type minute struct {
	At       time.Time `json:"at"`
	Requests int       `json:"requests"`
	Errors   int       `json:"errors"`
}

func overviewMinutes(t *testing.T, r reply) []minute {
	t.Helper()
	var o struct {
		HTTP struct {
			Minutes []minute `json:"minutes"`
		} `json:"http"`
	}
	if err := json.Unmarshal([]byte(r.raw), &o); err != nil {
		t.Fatal(err)
	}
	if len(o.HTTP.Minutes) != 60 {
		t.Fatalf("%d minutes, want 60: %s", len(o.HTTP.Minutes), r.raw)
	}
	return o.HTTP.Minutes
}

// TestAdminSchema: the schema is abe.yaml's, and it follows a reload of
// the file: a new field appears, and a field removed leaves a destructive
// step in the plan.
func TestAdminSchema(t *testing.T) {
	t.Parallel()
	w, path := adminWorld(t, nil, nil)
	s := w.mustDo(consoleUser, "GET", "/api/admin/schema", nil, 200)
	if s.str("config_path") != path {
		t.Errorf("config_path %q, want %q", s.str("config_path"), path)
	}
	notes := schemaCollection(t, s, "notes")
	title := schemaField(t, notes, "title")
	if title["type"] != "text" || title["required"] != true || title["max"] != 100.0 {
		t.Errorf("title: %v", title)
	}
	rules := notes["rules"].(map[string]any)
	if rules["list"] != "auth != null && (record.owner == auth.id || record.shared)" || rules["delete"] != nil {
		t.Errorf("rules: %v", rules)
	}
	if fr := notes["field_rules"].(map[string]any)["secret"].(map[string]any); fr["read"] != "auth != null && auth.id == record.owner" || fr["update"] != nil {
		t.Errorf("field rules of secret: %v", fr)
	}
	files := notes["files"].([]any)
	if len(files) != 1 || files[0].(map[string]any)["field"] != "attachment" || files[0].(map[string]any)["max_size"] != float64(schema.DefaultStorageMaxSize) {
		t.Errorf("files: %v", files)
	}
	if ix := notes["indexes"].([]any); len(ix) != 1 || !slices.Equal(strs(ix[0].(map[string]any)["fields"]), []string{"owner", "created_at"}) {
		t.Errorf("indexes: %v", ix)
	}
	plan := s.body["plan"].(map[string]any)
	if plan["in_sync"] != true || !strings.HasPrefix(plan["text"].(string), "Nothing to do") {
		t.Errorf("plan of a migrated database: %v", plan)
	}

	reload := func(src string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := schema.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.app.Reload(context.Background(), cfg, nil); err != nil {
			t.Fatal(err)
		}
	}
	withDue := strings.Replace(adminYAML, "      name: { type: text }", "      name: { type: text }\n      due:  { type: timestamp }", 1)
	reload(withDue)
	s = w.mustDo(consoleUser, "GET", "/api/admin/schema", nil, 200)
	if due := schemaField(t, schemaCollection(t, s, "quiet"), "due"); due["type"] != "timestamp" {
		t.Errorf("due after the reload: %v", due)
	}
	if plan := s.body["plan"].(map[string]any); plan["in_sync"] != true {
		t.Errorf("plan after adding a field: %v", plan)
	}

	reload(strings.Replace(adminYAML, "      name: { type: text }\n", "      label: { type: text }\n", 1))
	s = w.mustDo(consoleUser, "GET", "/api/admin/schema", nil, 200)
	quiet := schemaCollection(t, s, "quiet")
	if f := quiet["fields"].([]any); len(f) != 1 || f[0].(map[string]any)["name"] != "label" {
		t.Errorf("fields after the second reload: %v", f)
	}
	plan = s.body["plan"].(map[string]any)
	text, _ := plan["text"].(string)
	if plan["in_sync"] != false || !strings.Contains(text, "[destructive]") || !strings.Contains(text, "abe migrate apply --allow-destructive") {
		t.Errorf("plan after dropping fields (kept by the reload): %v", plan)
	}
	var dropped []string
	for _, st := range plan["steps"].([]any) {
		if st := st.(map[string]any); st["kind"] == "drop_column" {
			dropped = append(dropped, st["summary"].(string))
		}
	}
	if len(dropped) != 2 || len(plan["statements"].([]any)) == 0 {
		t.Errorf("drop steps %v, statements %v", dropped, plan["statements"])
	}
}

func schemaCollection(t *testing.T, r reply, name string) map[string]any {
	t.Helper()
	for _, c := range r.body["collections"].([]any) {
		if c := c.(map[string]any); c["name"] == name {
			return c
		}
	}
	t.Fatalf("no collection %s in %s", name, r.raw)
	return nil
}

func schemaField(t *testing.T, coll map[string]any, name string) map[string]any {
	t.Helper()
	for _, f := range coll["fields"].([]any) {
		if f := f.(map[string]any); f["name"] == name {
			return f
		}
	}
	t.Fatalf("no field %s in %v", name, coll)
	return nil
}

// sseStream is a real HTTP client reading the inspector's stream.
type sseStream struct {
	t      *testing.T
	events chan sseEvent
	cancel context.CancelFunc
}

type sseEvent struct {
	id   string
	data map[string]any
}

// inspect opens the inspector as who and reads until the ack.
func (w *world) inspect(who string, q url.Values) *sseStream {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", w.srv.URL+"/api/admin/realtime/inspect?"+q.Encode(), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+w.tokens[who])
	res, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		w.t.Fatalf("inspect %v: %d %s", q, res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &sseStream{t: w.t, events: make(chan sseEvent, 100), cancel: cancel}
	w.t.Cleanup(func() { cancel(); res.Body.Close() })
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data); err != nil {
					ev.data = map[string]any{"unparsed": line}
				}
			case line == "" && ev.data != nil:
				s.events <- ev
				ev = sseEvent{}
			}
		}
	}()
	if ack := s.next(); ack.data["type"] != "ack" {
		w.t.Fatalf("the stream began with %v, not its ack", ack.data)
	}
	return s
}

func (s *sseStream) next() sseEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(waitFor):
		s.t.Fatal("no event came")
	}
	return sseEvent{}
}

// until reads events until one about id, and returns those before it too.
func (s *sseStream) until(id string) (sseEvent, []sseEvent) {
	s.t.Helper()
	var before []sseEvent
	for {
		ev := s.next()
		if ev.data["id"] == id {
			return ev, before
		}
		before = append(before, ev)
	}
}

// TestRealtimeInspector: the inspector streams what the impersonated
// user would receive: a record hidden from them never arrives, a hidden
// field is not in the payload, events carry their seq, and a filter's
// match and unmatch come as they would over a socket.
func TestRealtimeInspector(t *testing.T) {
	t.Parallel()
	w, _ := adminWorld(t, nil, nil)
	s := w.inspect(adminRoot, url.Values{"collection": {"notes"}, "as": {"user:" + w.ids[bob]}})
	notes := "/api/collections/notes/records"
	hidden := w.mustDo(ann, "POST", notes, map[string]any{"title": "mine", "owner": w.ids[ann], "secret": "s1"}, 201).str("id")
	visible := w.mustDo(ann, "POST", notes, map[string]any{"title": "ours", "owner": w.ids[ann], "shared": true, "secret": "s2"}, 201).str("id")
	ev, before := s.until(visible)
	for _, b := range before {
		if b.data["id"] == hidden {
			t.Errorf("bob's inspector got ann's private note: %v", b.data)
		}
	}
	rec, _ := ev.data["record"].(map[string]any)
	if ev.data["op"] != "create" || rec["title"] != "ours" {
		t.Errorf("the shared note: %v", ev.data)
	}
	if _, ok := rec["secret"]; ok {
		t.Errorf("the secret field reached bob's inspector: %v", rec)
	}
	if seq, ok := ev.data["seq"].(float64); !ok || ev.id != strconv.FormatInt(int64(seq), 10) {
		t.Errorf("event id %q, seq %v", ev.id, ev.data["seq"])
	}

	// As the owner, with a filter: an update out of it is an unmatch.
	f := w.inspect(adminRoot, url.Values{"collection": {"notes"}, "filter": {"title == 'ours'"}, "as": {"user:" + w.ids[ann]}})
	w.mustDo(ann, "PATCH", notes+"/"+visible, map[string]any{"secret": "s3"}, 200)
	ev, _ = f.until(visible)
	if rec, _ := ev.data["record"].(map[string]any); ev.data["op"] != "update" || rec["secret"] != "s3" {
		t.Errorf("the owner's update: %v", ev.data)
	}
	w.mustDo(ann, "PATCH", notes+"/"+visible, map[string]any{"title": "renamed"}, 200)
	if ev, _ = f.until(visible); ev.data["match"] != false || ev.data["record"] != nil {
		t.Errorf("a note out of the filter: %v", ev.data)
	}

	// As a set of roles, and anonymous: the rules see who that is.
	w.inspect(adminRoot, url.Values{"collection": {"notes"}, "as": {"anonymous"}})
	roles := w.inspect(adminRoot, url.Values{"collection": {"notes"}, "as": {"roles:user"}})
	marker := w.mustDo(bob, "POST", notes, map[string]any{"title": "bob's", "owner": w.ids[bob], "shared": true, "secret": "s4"}, 201).str("id")
	ev, _ = roles.until(marker)
	if rec, _ := ev.data["record"].(map[string]any); ev.data["op"] != "create" || rec == nil || rec["secret"] != nil {
		t.Errorf("a shared note as the user role: %v", ev.data)
	}

	// A client that goes ends its subscription.
	if n := w.app.Realtime().Stats().Subscriptions; n != 4 {
		t.Errorf("%d subscriptions open, want one per stream (4)", n)
	}
	for _, st := range []*sseStream{s, f, roles} {
		st.cancel()
	}
	for deadline := time.Now().Add(waitFor); w.app.Realtime().Stats().Subscriptions != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions open after three streams ended, want 1", w.app.Realtime().Stats().Subscriptions)
		}
		time.Sleep(10 * time.Millisecond) // polling: the hub has no signal for this
	}

	events := w.mustDo(adminRoot, "GET", "/api/admin/security-events?type=realtime_inspected", nil, 200).items()
	if len(events) != 4 {
		t.Errorf("%d realtime_inspected events, want 4: %v", len(events), events)
	}
}

// TestRealtimeInspectorRefuses: 400 for an unknown collection, a bad
// filter or a bad as, before any stream.
func TestRealtimeInspectorRefuses(t *testing.T) {
	t.Parallel()
	w, _ := adminWorld(t, nil, nil)
	for _, q := range []url.Values{
		{"collection": {"nope"}, "as": {"anonymous"}},
		{"collection": {"quiet"}, "as": {"anonymous"}}, // realtime is off
		{"collection": {"notes"}, "filter": {"title == "}, "as": {"anonymous"}},
		{"collection": {"notes"}, "filter": {"nosuch == 1"}, "as": {"anonymous"}},
		{"collection": {"notes"}},
		{"collection": {"notes"}, "as": {"someone"}},
		{"collection": {"notes"}, "as": {"user:"}},
		{"collection": {"notes"}, "as": {"user:not-a-uuid"}},
		{"collection": {"notes"}, "as": {"user:0193aaaa-0000-7000-8000-000000000000"}},
		{"collection": {"notes"}, "as": {"roles:nosuchrole"}},
	} {
		r := w.do(adminRoot, "GET", "/api/admin/realtime/inspect?"+q.Encode(), nil, nil)
		if r.status != 400 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("inspect %v: %d %s", q, r.status, r.raw)
		}
	}
}

// TestRealtimeInspectorEndsWithTheToken: the stream ends, saying why, when
// the admin's access token expires.
func TestRealtimeInspectorEndsWithTheToken(t *testing.T) {
	t.Parallel()
	// Long enough to open the stream on a loaded machine, short enough to
	// wait for.
	w, _ := adminWorld(t, func(c *schema.Config) { c.Auth.AccessTokenTTL = schema.Duration(5 * time.Second) }, nil)
	s := w.inspect(adminRoot, url.Values{"collection": {"notes"}, "as": {"anonymous"}})
	if ev := s.next(); ev.data["type"] != "error" || ev.data["code"] != "token_expired" {
		t.Fatalf("got %v, want the token_expired error", ev.data)
	}
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("after the end: %v", ev.data)
		}
	case <-time.After(waitFor):
		t.Fatal("the stream did not end")
	}
}

// TestRealtimeInspectorEndsOnRevocation: signing the admin out everywhere
// ends their inspector stream at once, not at the next keep-alive (an
// hour away here).
func TestRealtimeInspectorEndsOnRevocation(t *testing.T) {
	t.Parallel()
	w, _ := adminWorld(t, func(c *schema.Config) { c.Realtime.PingInterval = schema.Duration(time.Hour) }, nil)
	s := w.inspect(adminRoot, url.Values{"collection": {"notes"}, "as": {"anonymous"}})
	w.mustDo(adminRoot, "POST", "/api/auth/logout-all", nil, 204)
	if ev := s.next(); ev.data["type"] != "error" || ev.data["code"] != "token_revoked" {
		t.Fatalf("got %v, want the token_revoked error", ev.data)
	}
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("after the end: %v", ev.data)
		}
	case <-time.After(waitFor):
		t.Fatal("the stream did not end")
	}
}

// TestRealtimeInspectorCountsAsAConnection: an inspector stream holds a
// place under realtime.max_connections as a socket does, and gives it
// back when it ends.
func TestRealtimeInspectorCountsAsAConnection(t *testing.T) {
	t.Parallel()
	w, _ := adminWorld(t, func(c *schema.Config) { c.Realtime.MaxConnections = 1 }, nil)
	q := url.Values{"collection": {"notes"}, "as": {"anonymous"}}
	s := w.inspect(adminRoot, q)
	if r := w.do(adminRoot, "GET", "/api/admin/realtime/inspect?"+q.Encode(), nil, nil); r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("a second stream over max_connections: %d %s", r.status, r.raw)
	}
	if r := w.do("", "GET", "/api/realtime", nil, nil); r.status != 503 {
		t.Errorf("a socket beside a stream over max_connections: %d %s", r.status, r.raw)
	}
	// A refused stream is no inspection.
	if n := len(w.mustDo(adminRoot, "GET", "/api/admin/security-events?type=realtime_inspected", nil, 200).items()); n != 1 {
		t.Errorf("%d realtime_inspected events, want 1", n)
	}
	s.cancel()
	for deadline := time.Now().Add(waitFor); ; {
		// A plain GET of the socket's path: 503 while full, else the
		// upgrade's refusal.
		if r := w.do("", "GET", "/api/realtime", nil, nil); r.status != 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the place of an ended stream was not given back")
		}
		time.Sleep(10 * time.Millisecond) // polling: the hub has no signal for this
	}
}
