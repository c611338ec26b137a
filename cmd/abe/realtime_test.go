package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/internal/redistest"
)

// TestRealtimeAcrossProcesses runs two abe serve processes on one
// database: a write on one reaches a subscriber of the other, through the
// postgres broker and through the redis broker, and none is lost while
// the broker's connection is cut.
func TestRealtimeAcrossProcesses(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"postgres", "redis"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			cfg := "../../examples/todo/abe.yaml"
			dbURL := pgtest.NewURL(t, nil)
			env := []string{"DATABASE_URL=" + dbURL, "ABE_AUTH_SECRET=" + strings.Repeat("s", 40), "ABE_REALTIME_BROKER=" + kind}
			var restartRedis func()
			if kind == "redis" {
				var url string
				url, restartRedis = redistest.Restartable(t)
				env = append(env, "ABE_REALTIME_REDIS_URL="+url)
			}
			if out, code := runBin(t, env, "migrate", "apply", "--config", cfg); code != 0 {
				t.Fatal(out)
			}
			a := startBin(t, env, "serve", "--config", cfg)
			b := startBin(t, env, "serve", "--config", cfg)

			call := func(method, url, token, body string) map[string]any {
				t.Helper()
				req, _ := http.NewRequest(method, url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				var m map[string]any
				_ = json.NewDecoder(res.Body).Decode(&m)
				if res.StatusCode >= 300 {
					t.Fatalf("%s %s: %d %v", method, url, res.StatusCode, m)
				}
				return m
			}
			ann := call("POST", a.url+"/api/auth/register", "", `{"email":"ann@example.test","password":"long enough pass phrase 9"}`)
			token, annID := ann["access_token"].(string), ann["user"].(map[string]any)["id"].(string)
			pid := call("POST", a.url+"/api/collections/projects/records", token, `{"name":"P","owner":"`+annID+`"}`)["id"].(string)
			create := func(title string) string {
				return call("POST", a.url+"/api/collections/todos/records", token, `{"project":"`+pid+`","title":"`+title+`"}`)["id"].(string)
			}

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.url, "http")+"/api/realtime", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow() //nolint:errcheck // cleanup
			send := func(m map[string]any) {
				buf, _ := json.Marshal(m)
				if err := ws.Write(ctx, websocket.MessageText, buf); err != nil {
					t.Fatal(err)
				}
			}
			next := func() map[string]any {
				t.Helper()
				rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
				defer rcancel()
				_, buf, err := ws.Read(rctx)
				if err != nil {
					t.Fatalf("waiting for an event from node b: %v", err)
				}
				var m map[string]any
				_ = json.Unmarshal(buf, &m)
				return m
			}
			send(map[string]any{"type": "auth", "id": "a", "token": token})
			if m := next(); m["type"] != "ack" {
				t.Fatal(m)
			}
			send(map[string]any{"type": "subscribe", "id": "s", "topic": "collection:todos"})
			if m := next(); m["type"] != "ack" {
				t.Fatal(m)
			}
			first := create("first")
			if m := next(); m["id"] != first || m["op"] != "create" {
				t.Fatalf("node b heard %v", m)
			}

			// Cut the broker, write through it, and count what node b
			// delivers: everything, in order.
			switch kind {
			case "postgres":
				admin, err := pgx.Connect(ctx, dbURL)
				if err != nil {
					t.Fatal(err)
				}
				defer admin.Close(ctx)
				if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'abe broker' AND datname = current_database()`); err != nil {
					t.Fatal(err)
				}
			case "redis":
				restartRedis()
			}
			var want []string
			for i := range 20 {
				want = append(want, create("during "+string(rune('a'+i))))
			}
			for i, id := range want {
				if m := next(); m["id"] != id {
					t.Fatalf("event %d: %v, want %s", i, m, id)
				}
			}
		})
	}
}
