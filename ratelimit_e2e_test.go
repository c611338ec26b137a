package abe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/schema"
)

// stoppedClock is a clock that moves only when told: a rate limit bucket
// under it never refills by itself, so what fits, fits at any speed.
type stoppedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stoppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stoppedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// limitedApp serves the todo example with the default rate limits, on a
// stopped clock.
func limitedApp(t *testing.T) (*httptest.Server, *abe.App, *stoppedClock) {
	t.Helper()
	cfg := e2eConfig(t, "")
	if cfg.Server.RateLimit.Disabled || cfg.Server.RateLimit.Writes.Burst != schema.DefaultWriteBurst {
		t.Fatalf("not the default rate limits: %+v", cfg.Server.RateLimit)
	}
	cfg.Database.URL = migratedURL(t, cfg)
	clock := &stoppedClock{t: time.Now()}
	app, err := abe.New(context.Background(), cfg, &abe.Options{Migrate: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(func() { srv.Close(); app.Close() })
	return srv, app, clock
}

// hit is one request; safe from many goroutines.
func hit(hc *http.Client, method, url, token string, body any) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, raw, err
}

// TestOfflineReplayWithinDefaultLimits: under the default rate limits
// (enabled), one user's offline queue of 1,000 writes replays without a
// single 429, in order and then with some concurrency; the clock stands
// still, so no refill helps and the result holds at any speed. A client
// far beyond that gets 429 with Retry-After, and the strict per-IP budget
// of /api/auth still applies.
func TestOfflineReplayWithinDefaultLimits(t *testing.T) {
	t.Parallel()
	srv, app, clock := limitedApp(t)
	hc := srv.Client()
	ctx := context.Background()
	if _, err := app.Auth().CreateUser(ctx, auth.CreateUserOpts{Email: "ann@x.test", Password: "long enough pass phrase 9", Verified: true}); err != nil {
		t.Fatal(err)
	}
	status, _, raw, err := hit(hc, "POST", srv.URL+"/api/auth/login", "", map[string]string{"email": "ann@x.test", "password": "long enough pass phrase 9"})
	if err != nil || status != 200 {
		t.Fatalf("login: %d %s %v", status, raw, err)
	}
	var login struct {
		AccessToken string `json:"access_token"`
		User        struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(raw, &login); err != nil {
		t.Fatal(err)
	}
	token := login.AccessToken
	todos := srv.URL + "/api/collections/todos/records"
	status, _, raw, err = hit(hc, "POST", srv.URL+"/api/collections/projects/records", token, map[string]any{"name": "Offline", "owner": login.User.ID})
	if err != nil || status != 201 {
		t.Fatalf("project: %d %s %v", status, raw, err)
	}
	var project struct{ ID string }
	_ = json.Unmarshal(raw, &project)

	// The queue: 500 creates with the client's own ids, then an update of
	// each, as an offline client replays them.
	type write struct {
		method, url string
		body        any
		want        int
	}
	var queue []write
	ids := make([]string, 500)
	for i := range ids {
		ids[i] = uuid.NewString()
		queue = append(queue, write{"POST", todos, map[string]any{"id": ids[i], "project": project.ID, "title": fmt.Sprintf("todo %d", i)}, 201})
	}
	for i, id := range ids {
		queue = append(queue, write{"PATCH", todos + "/" + id, map[string]any{"done": true, "title": fmt.Sprintf("todo %d, done", i)}, 200})
	}
	replay := func(ws []write) error {
		for _, w := range ws {
			status, h, raw, err := hit(hc, w.method, w.url, token, w.body)
			if err != nil {
				return err
			}
			if status != w.want {
				return fmt.Errorf("%s %s: %d (Retry-After %q) %s, want %d", w.method, w.url, status, h.Get("Retry-After"), raw, w.want)
			}
		}
		return nil
	}
	// In order first (every create before its update), then the rest from
	// 8 connections at once.
	if err := replay(queue[:600]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for n := range 8 {
		wg.Go(func() {
			var mine []write
			for i := 600 + n; i < len(queue); i += 8 {
				mine = append(mine, queue[i])
			}
			if err := replay(mine); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The page reloads and reads as usual.
	if status, _, raw, err := hit(hc, "GET", todos+"?limit=500&filter="+"done%20%3D%3D%20true", token, nil); err != nil || status != 200 {
		t.Fatalf("list after the replay: %d %s %v", status, raw, err)
	}

	// An abusive client, far beyond any queue: the write burst (2,000) runs
	// out, and the answer says when to come back.
	var refused http.Header
	sent := 0
	for sent < 2*schema.DefaultWriteBurst && refused == nil {
		status, h, _, err := hit(hc, "POST", srv.URL+"/api/collections/nope/records", token, map[string]any{"x": 1})
		if err != nil {
			t.Fatal(err)
		}
		sent++
		if status == 429 {
			refused = h
		}
	}
	if refused == nil {
		t.Fatalf("%d more writes, none refused", sent)
	}
	// 1,001 writes so far (the project and the queue); the burst leaves
	// the rest.
	if want := schema.DefaultWriteBurst - 1001 + 1; sent != want {
		t.Errorf("refused at write %d after the queue, want %d", sent, want)
	}
	if ra, err := strconv.Atoi(refused.Get("Retry-After")); err != nil || ra < 1 || refused.Get("RateLimit-Remaining") != "0" {
		t.Errorf("429 headers: %v", refused)
	}
	clock.Advance(time.Second)
	if status, _, raw, _ := hit(hc, "PATCH", todos+"/"+ids[0], token, map[string]any{"done": false}); status != 200 {
		t.Fatalf("a write after Retry-After: %d %s", status, raw)
	}

	// /api/auth keeps its strict budget per IP: 20 POSTs a minute, the
	// login above one of them.
	allowed := 1
	for range 25 {
		status, _, _, err := hit(hc, "POST", srv.URL+"/api/auth/password/forgot", "", map[string]string{"email": "someone@x.test"})
		if err != nil {
			t.Fatal(err)
		}
		if status == 429 {
			break
		}
		allowed++
	}
	if allowed != schema.DefaultAuthRequests {
		t.Errorf("%d auth POSTs allowed from one IP, want %d", allowed, schema.DefaultAuthRequests)
	}
}
