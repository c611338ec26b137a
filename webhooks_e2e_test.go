package abe_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/engine"
	"github.com/abe-stack/abe/schema"
)

// hookRequest is one request a receiver got.
type hookRequest struct {
	path   string
	header http.Header
	body   []byte
	event  map[string]any
	status int // what the receiver answered
}

// receiver is the other service: a real HTTP server that records every
// request and answers as answer says.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hookRequest
	// arrived is signalled on every request.
	arrived chan struct{}
	// answer writes the answer to the n-th request (from 1) on a path
	// about a record; nil answers 204.
	answer func(w http.ResponseWriter, r *http.Request, n int) int
}

func newReceiver(t *testing.T, addr string, answer func(w http.ResponseWriter, r *http.Request, n int) int) *receiver {
	t.Helper()
	rc := &receiver{arrived: make(chan struct{}, 1), answer: answer}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			// All of 127.0.0.0/8 is loopback on Linux, where the suite runs:
			// a second address must be there, or the allow-list test is void.
			t.Fatalf("cannot listen on %s: %v", addr, err)
		}
		rc.srv.Listener.Close()
		rc.srv.Listener = ln
	}
	rc.srv.Start()
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	req := hookRequest{path: r.URL.Path, header: r.Header.Clone(), body: body}
	_ = json.Unmarshal(body, &req.event)
	rc.mu.Lock()
	n := 1
	for _, g := range rc.got {
		if g.path == req.path && g.event["id"] == req.event["id"] {
			n++
		}
	}
	rc.mu.Unlock()
	req.status = http.StatusNoContent
	if rc.answer != nil {
		req.status = rc.answer(w, r, n)
	} else {
		w.WriteHeader(req.status)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, req)
	rc.mu.Unlock()
	select {
	case rc.arrived <- struct{}{}:
	default:
	}
}

// requests are those on path so far.
func (rc *receiver) requests(path string) []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []hookRequest
	for _, g := range rc.got {
		if g.path == path {
			out = append(out, g)
		}
	}
	return out
}

// of is the requests about record id.
func of(rs []hookRequest, id string) []hookRequest {
	var out []hookRequest
	for _, r := range rs {
		if r.event["id"] == id {
			out = append(out, r)
		}
	}
	return out
}

// await waits until cond holds over the requests of path.
func (rc *receiver) await(t *testing.T, path string, what string, cond func([]hookRequest) bool) []hookRequest {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		if got := rc.requests(path); cond(got) {
			return got
		}
		select {
		case <-rc.arrived:
		case <-time.After(100 * time.Millisecond): // another path's request took the signal
		case <-deadline:
			t.Fatalf("%s: still waiting for %s; got %d requests", path, what, len(rc.requests(path)))
		}
	}
}

// verifySignature checks a request as a receiver would, written from the
// Standard Webhooks specification rather than with package webhooks: the
// HMAC-SHA256 of "id.timestamp.body" under the key of a whsec_ secret,
// base64, after "v1,"; a timestamp within five minutes.
func verifySignature(t *testing.T, secret string, r hookRequest) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	id, ts := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp")
	if id == "" || ts == "" {
		t.Fatalf("a request without webhook-id or webhook-timestamp: %v", r.header)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		t.Fatalf("webhook-timestamp %q is not the time of sending", ts)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, r.body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(r.header.Get("webhook-signature")) {
		version, b64, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return
		}
	}
	t.Fatalf("webhook-signature %q does not verify", r.header.Get("webhook-signature"))
}

const webhookYAML = `
roles:
  admin: { permissions: ["*"] }
  user: { permissions: [], default: true }
webhooks:
  allow: [%[2]s]
  max_attempts: 4
  response_limit: 1KiB
collections:
  notes:
    fields:
      title: { type: text, required: true }
      done: { type: bool, default: false }
      tag: { type: text }
      secret: { type: text, rules: { read: "auth != null && auth.email == 'hooks@x.test'" } }
    rules:
      list: "record.tag != 'unlisted-for-hooks' || auth == null || auth.email != 'hooks@x.test'"
      read: "record.tag != 'not-for-hooks' || auth == null || auth.email != 'hooks@x.test'"
      create: "true"
      update: "true"
      delete: "true"
    webhooks:
      - { name: all, url: "%[1]s/all", events: [create, update, delete], secret_env: HOOK_SECRET }
      - { name: done, url: "%[1]s/done", events: [update], filter: "done == true", secret_env: HOOK_SECRET }
      - name: as-hooks
        url: "%[1]s/as-hooks"
        events: [create]
        secret_env: HOOK_SECRET
        principal: { email: hooks@x.test, roles: [user] }
  counters:
    fields:
      n: { type: integer }
    rules: { list: "true", read: "true", create: "true", update: "true", delete: "true" }
    webhooks:
      - { name: ordered, url: "%[1]s/ordered", events: [create, update], secret_env: HOOK_SECRET }
  flaky:
    fields:
      title: { type: text }
    rules: { read: "true", create: "true" }
    webhooks:
      - { name: retry, url: "%[1]s/retry", events: [create], secret_env: HOOK_SECRET }
      - { name: dead, url: "%[1]s/dead", events: [create], secret_env: HOOK_SECRET }
      - { name: slow, url: "%[1]s/slow", events: [create], secret_env: HOOK_SECRET, timeout: 1s }
      - { name: big, url: "%[1]s/big", events: [create], secret_env: HOOK_SECRET }
`

// hookWorld is an app whose webhooks point at rc, allowed to reach allow.
type hookWorld struct {
	*world
	rc     *receiver
	secret string
}

func newHookWorld(t *testing.T, rc *receiver, allow string, yaml string) *hookWorld {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	hw := &hookWorld{rc: rc, secret: "whsec_" + base64.StdEncoding.EncodeToString(key)}
	cfg, err := schema.Parse("abe.yaml", fmt.Appendf(nil, yaml, rc.srv.URL, allow), []string{"ABE_AUTH_SECRET=" + strings.Repeat("x", 40)})
	if err != nil {
		t.Fatal(err)
	}
	hw.world = newWorldWith(t, cfg, &abe.Options{
		LookupEnv: func(k string) (string, bool) {
			if k == "HOOK_SECRET" {
				return hw.secret, true
			}
			return "", false
		},
		// Retries come at once: the test waits for conditions, not time
		// (the doubling itself is TestBackoff's).
		WebhookBackoff: func(int) time.Duration { return 0 },
	})
	return hw
}

// jobOf reads the delivery job of webhook for record id.
func (hw *hookWorld) jobs(t *testing.T, webhook, id string) []struct {
	state   string
	attempt int
	errors  []string
} {
	t.Helper()
	rows, err := hw.app.Pool().Query(context.Background(), `SELECT state::text, attempt, coalesce((SELECT array_agg(e->>'error') FROM unnest(errors) e), '{}')
		FROM abe.river_job WHERE kind = 'webhook.deliver' AND args->>'webhook' = $1 AND args->>'id' = $2 ORDER BY id`, webhook, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []struct {
		state   string
		attempt int
		errors  []string
	}
	for rows.Next() {
		var j struct {
			state   string
			attempt int
			errors  []string
		}
		if err := rows.Scan(&j.state, &j.attempt, &j.errors); err != nil {
			t.Fatal(err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// awaitJob waits until the one job of webhook for id satisfies cond.
func (hw *hookWorld) awaitJob(t *testing.T, webhook, id, what string, cond func(state string, attempt int, errors []string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		js := hw.jobs(t, webhook, id)
		if len(js) == 1 && cond(js[0].state, js[0].attempt, js[0].errors) {
			return js[0].errors
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook %s, record %s: still waiting for %s; jobs %+v", webhook, id, what, js)
		}
		time.Sleep(50 * time.Millisecond) // polling the job's row
	}
}

// TestWebhooks delivers the events of writes: signed, with the record as
// the webhook's principal (or the system, without fields that have read
// rules) sees it, filtered, retried, in order per record, discarded after
// max_attempts and listed so, cut at the time and size limits.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	var bigWrites atomic.Int64
	var bigErr atomic.Value
	rc := newReceiver(t, "", func(w http.ResponseWriter, r *http.Request, n int) int {
		switch r.URL.Path {
		case "/retry":
			if n < 3 {
				http.Error(w, "try later\n", http.StatusInternalServerError)
				return 500
			}
		case "/dead":
			http.Error(w, "never", http.StatusInternalServerError)
			return 500
		case "/slow":
			<-r.Context().Done() // answers nothing until abe gives up
			return 0
		case "/big":
			// An answer without end: abe must stop reading it.
			w.WriteHeader(200)
			chunk := []byte(strings.Repeat("x", 4096))
			for {
				if _, err := w.Write(chunk); err != nil {
					bigErr.Store(err)
					return 200
				}
				bigWrites.Add(1)
				if bigWrites.Load() > 1<<16 { // 256 MiB: it was never cut
					return 200
				}
			}
		case "/ordered":
			// Some deliveries fail once, so later ones must wait for them.
			var ev map[string]any
			_ = json.NewDecoder(r.Body).Decode(&ev)
			if v, _ := ev["version"].(float64); int(v)%3 == 0 && r.Header.Get("webhook-id") != "" && firstTry(r.Header.Get("webhook-id")) {
				w.WriteHeader(503)
				return 503
			}
		}
		w.WriteHeader(204)
		return 204
	})
	hw := newHookWorld(t, rc, "127.0.0.1", webhookYAML)

	t.Run("events", func(t *testing.T) {
		t.Parallel()
		id := hw.mustDo(ann, "POST", "/api/collections/notes/records", map[string]any{"title": "a", "secret": "s3"}, 201).str("id")
		hw.mustDo(ann, "PATCH", "/api/collections/notes/records/"+id, map[string]any{"title": "b"}, 200)
		hw.mustDo(ann, "PATCH", "/api/collections/notes/records/"+id, map[string]any{"done": true}, 200)
		hw.mustDo(ann, "DELETE", "/api/collections/notes/records/"+id, nil, 204)
		got := of(hw.rc.await(t, "/all", "4 events", func(r []hookRequest) bool { return len(of(r, id)) >= 4 }), id)
		ops := []string{"create", "update", "update", "delete"}
		ids := map[string]bool{}
		for i, r := range got {
			verifySignature(t, hw.secret, r)
			ev := r.event
			if ev["op"] != ops[i] || ev["id"] != id || ev["collection"] != "notes" || ev["type"] != "notes."+ops[i] || ev["webhook"] != "all" ||
				ev["version"] != float64(min(i+1, 3)) || ev["delivery"] != r.header.Get("webhook-id") {
				t.Fatalf("event %d: %s", i, r.body)
			}
			if ids[ev["delivery"].(string)] {
				t.Fatalf("delivery id %v repeated", ev["delivery"])
			}
			ids[ev["delivery"].(string)] = true
			rec, _ := ev["record"].(map[string]any)
			if rec["id"] != id || rec["version"] != ev["version"] {
				t.Fatalf("event %d: record %v", i, rec)
			}
			if _, ok := rec["secret"]; ok {
				t.Fatalf("event %d: the system view sent a field that has a read rule: %s", i, r.body)
			}
			if r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", r.header.Get("Content-Type"))
			}
		}
		if got[3].event["record"].(map[string]any)["done"] != true {
			t.Fatalf("a delete carries the record as it was: %s", got[3].body)
		}
		// The filter: only the update that made done true.
		done := of(hw.rc.await(t, "/done", "the filtered update", func(r []hookRequest) bool { return len(of(r, id)) >= 1 }), id)
		if len(done) != 1 || done[0].event["version"] != float64(3) {
			t.Fatalf("/done got %d events, the first at version %v; want only version 3", len(done), done[0].event["version"])
		}
	})

	t.Run("principal", func(t *testing.T) {
		t.Parallel()
		// Its read rule refuses the principal this record: nothing is sent.
		hidden := hw.mustDo(ann, "POST", "/api/collections/notes/records", map[string]any{"title": "h", "tag": "not-for-hooks"}, 201).str("id")
		// Its list rule refuses it, though the read rule allows it: a
		// webhook follows the collection, as a list would show it.
		unlisted := hw.mustDo(ann, "POST", "/api/collections/notes/records", map[string]any{"title": "u", "tag": "unlisted-for-hooks"}, 201).str("id")
		shown := hw.mustDo(ann, "POST", "/api/collections/notes/records", map[string]any{"title": "s", "secret": "s4"}, 201).str("id")
		got := hw.rc.await(t, "/as-hooks", "the readable record", func(r []hookRequest) bool {
			return slices.ContainsFunc(r, func(h hookRequest) bool { return h.event["id"] == shown })
		})
		for _, r := range got {
			if r.event["id"] == hidden || r.event["id"] == unlisted {
				t.Fatalf("a record the principal may not read or list was sent: %s", r.body)
			}
			if r.event["id"] == shown && r.event["record"].(map[string]any)["secret"] != "s4" {
				t.Fatalf("the principal's field rule allows secret, the event has none: %s", r.body)
			}
		}
		for _, id := range []string{hidden, unlisted} {
			if js := hw.jobs(t, "as-hooks", id); len(js) != 0 {
				t.Fatalf("a job was queued for a record the principal may not read or list: %+v", js)
			}
		}
	})

	t.Run("retries", func(t *testing.T) {
		t.Parallel()
		id := hw.mustDo(ann, "POST", "/api/collections/flaky/records", map[string]any{"title": "r"}, 201).str("id")
		hw.awaitJob(t, "retry", id, "completion", func(state string, attempt int, _ []string) bool { return state == "completed" && attempt == 3 })
		got := of(hw.rc.requests("/retry"), id)
		for _, r := range got {
			verifySignature(t, hw.secret, r)
			if r.header.Get("webhook-id") != got[0].header.Get("webhook-id") || string(r.body) != string(got[0].body) {
				t.Fatalf("a retry changed the delivery id or the body: %v %s / %s", r.header, r.body, got[0].body)
			}
		}
		if len(got) != 3 {
			t.Fatalf("%d attempts reached the receiver, want 3", len(got))
		}

	})

	t.Run("dead letter", func(t *testing.T) {
		t.Parallel()
		id := hw.mustDo(ann, "POST", "/api/collections/flaky/records", map[string]any{"title": "d"}, 201).str("id")
		errs := hw.awaitJob(t, "dead", id, "discarded", func(state string, _ int, _ []string) bool { return state == "discarded" })
		if len(errs) != 4 || !strings.Contains(errs[3], "answered 500: never") {
			t.Fatalf("errors of the discarded delivery: %q", errs)
		}
		// Admins see it in the dead letters, without the sealed body.
		u, err := hw.app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: "boss@x.test", Password: "long enough pass phrase 9", Roles: []string{"admin"}, Verified: true})
		if err != nil {
			t.Fatal(err)
		}
		hw.ids["boss@x.test"] = u.ID
		hw.tokens["boss@x.test"] = hw.mustDo("", "POST", "/api/auth/login", map[string]string{"email": "boss@x.test", "password": "long enough pass phrase 9"}, 200).str("access_token")
		list := hw.mustDo("boss@x.test", "GET", "/api/admin/jobs?state=discarded&kind=webhook.deliver", nil, 200)
		var found bool
		for _, j := range list.items() {
			args, _ := j["args"].(map[string]any)
			if args["id"] == id && args["webhook"] == "dead" {
				found = true
				if _, ok := args["sealed"]; ok || args["collection"] != "flaky" || args["op"] != "create" {
					t.Fatalf("the dead letter as admins see it: %v", j)
				}
			}
		}
		if !found {
			t.Fatalf("the discarded delivery is not listed: %s", list.raw)
		}
		hw.mustDo(ann, "GET", "/api/admin/jobs", nil, 403)
	})

	t.Run("timeout and size", func(t *testing.T) {
		t.Parallel()
		id := hw.mustDo(ann, "POST", "/api/collections/flaky/records", map[string]any{"title": "t"}, 201).str("id")
		errs := hw.awaitJob(t, "slow", id, "a timed out attempt", func(_ string, _ int, errs []string) bool { return len(errs) > 0 })
		if !strings.Contains(errs[0], "no answer within 1s") {
			t.Fatalf("the slow receiver's error: %q", errs)
		}
		hw.awaitJob(t, "big", id, "completion", func(state string, _ int, _ []string) bool { return state == "completed" })
		hw.rc.await(t, "/big", "the endless answer cut", func(r []hookRequest) bool { return len(r) >= 1 && bigErr.Load() != nil })
		if n := bigWrites.Load(); n > 1<<12 { // 16 MiB, against a 1 KiB limit
			t.Fatalf("abe read %d chunks of the answer before closing", n)
		}
	})

	t.Run("order", func(t *testing.T) {
		t.Parallel()
		id := hw.mustDo(ann, "POST", "/api/collections/counters/records", map[string]any{"n": 0}, 201).str("id")
		const writers = 10
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				hw.mustDo(ann, "PATCH", "/api/collections/counters/records/"+id, map[string]any{"n": i + 1}, 200)
			})
		}
		wg.Wait()
		got := hw.rc.await(t, "/ordered", "every version", func(r []hookRequest) bool {
			n := 0
			for _, h := range r {
				if h.status == 204 {
					n++
				}
			}
			return n >= writers+1
		})
		// Every request, failed or not, comes after every earlier version
		// was delivered.
		delivered := 0
		for _, r := range got {
			v := int(r.event["version"].(float64))
			if v != delivered+1 {
				t.Fatalf("version %d sent after version %d was delivered: %v", v, delivered, versions(got))
			}
			if r.status == 204 {
				delivered = v
			}
		}
		if delivered != writers+1 {
			t.Fatalf("delivered up to version %d, want %d: %v", delivered, writers+1, versions(got))
		}
	})

	t.Run("rolled back", func(t *testing.T) {
		t.Parallel()
		// A hook after the webhooks' refuses: the write, and the delivery
		// queued in its transaction, roll back.
		hw.app.Engine().OnWritten(func(_ context.Context, ev *engine.WriteEvent) error {
			if ev.After != nil && ev.After["title"] == "boom" {
				return errors.New("refused")
			}
			return nil
		})
		boom := "018f3b7e-0000-7000-8000-00000000b00f"
		if r := hw.do(ann, "POST", "/api/collections/notes/records", map[string]any{"id": boom, "title": "boom"}, nil); r.status != 500 {
			t.Fatalf("the refused write: %d %s", r.status, r.raw)
		}
		// A batch whose second operation fails rolls back its first.
		batched := "018f3b7e-0000-7000-8000-0000000000ba"
		if r := hw.do(ann, "POST", "/api/batch", map[string]any{"ops": []map[string]any{
			{"collection": "notes", "action": "create", "data": map[string]any{"id": batched, "title": "first"}},
			{"collection": "notes", "action": "create", "data": map[string]any{"title": 7}},
		}}, nil); r.status < 400 {
			t.Fatalf("the failing batch: %d %s", r.status, r.raw)
		}
		after := hw.mustDo(ann, "POST", "/api/collections/notes/records", map[string]any{"title": "after"}, 201).str("id")
		got := hw.rc.await(t, "/all", "the later write", func(r []hookRequest) bool {
			return slices.ContainsFunc(r, func(h hookRequest) bool { return h.event["id"] == after })
		})
		for _, r := range got {
			if r.event["id"] == boom || r.event["id"] == batched {
				t.Fatalf("a rolled-back write was sent: %s", r.body)
			}
		}
		for _, id := range []string{boom, batched} {
			if js := hw.jobs(t, "all", id); len(js) != 0 {
				t.Fatalf("a rolled-back write left a job: %+v", js)
			}
		}
	})
}

var firstTries sync.Map

// firstTry reports whether the delivery id is seen for the first time.
func firstTry(id string) bool {
	_, seen := firstTries.LoadOrStore(id, true)
	return !seen
}

func versions(rs []hookRequest) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("v%v:%d", r.event["version"], r.status))
	}
	return out
}

// TestWebhookTargetsRefused: without the allow-list, a webhook cannot
// reach loopback, by address or by a name that resolves to it; a redirect
// from an allowed target to a refused one is not followed.
func TestWebhookTargetsRefused(t *testing.T) {
	t.Parallel()
	inside := newReceiver(t, "", nil)
	allowed := newReceiver(t, "127.0.0.2:0", func(w http.ResponseWriter, r *http.Request, _ int) int {
		http.Redirect(w, r, inside.srv.URL+"/inside", http.StatusTemporaryRedirect)
		return http.StatusTemporaryRedirect
	})
	localhost := strings.Replace(inside.srv.URL, "127.0.0.1", "localhost", 1)
	yaml := `
webhooks:
  allow: [%[2]s]
collections:
  notes:
    fields:
      title: { type: text }
    rules: { read: "true", create: "true" }
    webhooks:
      - { name: loopback, url: "%[1]s/loopback", events: [create], secret_env: HOOK_SECRET }
      - { name: localhost, url: "` + localhost + `/localhost", events: [create], secret_env: HOOK_SECRET }
      - { name: redirect, url: "` + allowed.srv.URL + `/redirect", events: [create], secret_env: HOOK_SECRET }
`
	hw := newHookWorld(t, inside, "127.0.0.2", yaml)
	id := hw.mustDo(ann, "POST", "/api/collections/notes/records", map[string]any{"title": "x"}, 201).str("id")
	for _, name := range []string{"loopback", "localhost"} {
		errs := hw.awaitJob(t, name, id, "a refused attempt", func(_ string, _ int, errs []string) bool { return len(errs) > 0 })
		if !strings.Contains(errs[0], "refused target") || !strings.Contains(errs[0], "webhooks.allow") {
			t.Fatalf("%s: %q", name, errs)
		}
	}
	errs := hw.awaitJob(t, "redirect", id, "a redirect", func(_ string, _ int, errs []string) bool { return len(errs) > 0 })
	if !strings.Contains(errs[0], "answered 307, a redirect") {
		t.Fatalf("redirect: %q", errs)
	}
	if n := len(allowed.requests("/redirect")); n == 0 {
		t.Fatal("the allowed target got nothing")
	}
	if got := inside.requests("/inside"); len(got) != 0 || len(inside.requests("/loopback")) != 0 || len(inside.requests("/localhost")) != 0 {
		t.Fatalf("a refused target was reached: %d requests", len(inside.got))
	}
}

// TestWebhookReload: a reload of abe.yaml puts changed webhooks in force
// at once; a reload whose webhook has no secret is refused and the
// running ones stay.
func TestWebhookReload(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, "", nil)
	yaml := `
webhooks:
  allow: [%[2]s]
collections:
  notes:
    fields:
      title: { type: text }
    rules: { read: "true", create: "true" }
    webhooks:
      - { name: hook, url: "%[1]s/PATH", events: [create], secret_env: SECRET_NAME }
`
	hw := newHookWorld(t, rc, "127.0.0.1", strings.NewReplacer("PATH", "before", "SECRET_NAME", "HOOK_SECRET").Replace(yaml))
	reload := func(path, secretEnv string) error {
		cfg, err := schema.Parse("abe.yaml", fmt.Appendf(nil, strings.NewReplacer("PATH", path, "SECRET_NAME", secretEnv).Replace(yaml), rc.srv.URL, "127.0.0.1"),
			[]string{"ABE_AUTH_SECRET=" + strings.Repeat("x", 40)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = hw.app.Reload(context.Background(), cfg, nil)
		return err
	}
	if err := reload("after", "HOOK_SECRET"); err != nil {
		t.Fatal(err)
	}
	id := hw.mustDo(ann, "POST", "/api/collections/notes/records", map[string]any{"title": "x"}, 201).str("id")
	verifySignature(t, hw.secret, of(hw.rc.await(t, "/after", "the reloaded webhook", func(r []hookRequest) bool { return len(of(r, id)) == 1 }), id)[0])
	if err := reload("unsigned", "NOT_SET"); err == nil || !strings.Contains(err.Error(), "NOT_SET") {
		t.Fatalf("a reload without the secret: %v", err)
	}
	id = hw.mustDo(ann, "POST", "/api/collections/notes/records", map[string]any{"title": "y"}, 201).str("id")
	hw.rc.await(t, "/after", "the webhook in force", func(r []hookRequest) bool { return len(of(r, id)) == 1 })
	if n := len(rc.requests("/before")) + len(rc.requests("/unsigned")); n != 0 {
		t.Fatalf("%d requests to a webhook not in force", n)
	}
}
