package httpx

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abe-stack/abe/internal/redistest"
)

// TestRedisRatesBurst: a class's Burst is the bucket, Requests per Window
// its refill.
func TestRedisRatesBurst(t *testing.T) {
	t.Parallel()
	store := NewRedisRates(redistest.New(t))
	class := RateClass{Name: "burst", Requests: 2, Window: time.Hour, Burst: 6}
	key := t.Name() + "-" + rand.Text()
	allowed := 0
	for i := range 8 {
		d, err := store.Allow(context.Background(), key, class)
		if err != nil {
			t.Fatal(err)
		}
		if d.Limit != 6 || d.Allowed && d.Remaining != 5-allowed {
			t.Errorf("call %d: %+v, want %d remaining", i, d, 5-allowed)
		}
		if d.Allowed {
			allowed++
		} else if d.RetryAfter <= 0 || d.RetryAfter > 30*time.Minute {
			t.Errorf("call %d: refusal %+v", i, d)
		}
	}
	if allowed != 6 {
		t.Fatalf("%d allowed, want the burst of 6", allowed)
	}
}

// TestRedisRatesShared checks that two nodes, each with its own client,
// spend one budget.
func TestRedisRatesShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes := []*RedisRates{NewRedisRates(redistest.New(t)), NewRedisRates(redistest.New(t))}
	// A window far longer than the burst takes, so no refill muddles the
	// count; the key is unique per run, as the server may be shared.
	class := RateClass{Name: "shared", Requests: 5, Window: time.Minute}
	key := t.Name() + "-" + rand.Text()
	for _, tc := range []struct {
		name             string
		key              string
		calls            int
		allowed, refused int
	}{
		{name: "a burst over both nodes", key: key, calls: 12, allowed: 5, refused: 7},
		{name: "the budget stays spent", key: key, calls: 2, refused: 2},
		{name: "another key has its own", key: key + "-other", calls: 6, allowed: 5, refused: 1},
	} {
		allowed, refused := 0, 0
		for i := range tc.calls {
			d, err := nodes[i%2].Allow(ctx, tc.key, class)
			if err != nil {
				t.Fatal(err)
			}
			if d.Limit != 5 || d.Allowed && d.Remaining != 4-allowed {
				t.Errorf("%s: call %d: decision %+v, want %d remaining", tc.name, i, d, 4-allowed)
			}
			if d.Allowed {
				allowed++
			} else {
				refused++
				if d.RetryAfter <= 0 || d.RetryAfter > class.Window/5 || d.Remaining != 0 {
					t.Errorf("%s: refusal %+v", tc.name, d)
				}
			}
		}
		if allowed != tc.allowed || refused != tc.refused {
			t.Errorf("%s: %d allowed, %d refused; want %d, %d", tc.name, allowed, refused, tc.allowed, tc.refused)
		}
	}
}

// TestRateLimitRedisDown checks that requests pass when Redis goes away,
// with one warning per burst of failures.
func TestRateLimitRedisDown(t *testing.T) {
	t.Parallel()
	url, stop := redistest.Start(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries, opts.DialerRetries = -1, 1 // fail fast once it is gone
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })

	var logs bytes.Buffer
	clock := newFakeClock()
	h := RateLimit(RateLimitConfig{
		Store:   NewRedisRates(client),
		Default: RateClass{Name: "default", Requests: 100, Window: time.Minute},
		Log:     slog.New(slog.NewJSONHandler(&logs, nil)),
		Now:     clock.Now,
	})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	do := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec
	}
	type logLine struct {
		Level      string
		Msg        string
		Suppressed int
	}
	warnings := func() []logLine {
		var out []logLine
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if l == "" {
				continue
			}
			var ll logLine
			if err := json.Unmarshal([]byte(l), &ll); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			out = append(out, ll)
		}
		return out
	}

	if rec := do(); rec.Code != 200 || rec.Header().Get("RateLimit-Remaining") != "99" {
		t.Fatalf("with Redis up: %d %v", rec.Code, rec.Header())
	}
	stop()
	for _, tc := range []struct {
		name     string
		advance  time.Duration
		requests int
		warnings int
	}{
		{name: "a burst of failures logs once", requests: 5, warnings: 1},
		{name: "still inside the quiet period", advance: 9 * time.Second, requests: 3, warnings: 1},
		{name: "after the quiet period", advance: 2 * time.Second, requests: 2, warnings: 2},
	} {
		clock.Advance(tc.advance)
		for range tc.requests {
			if rec := do(); rec.Code != 200 || rec.Header().Get("RateLimit-Limit") != "" {
				t.Fatalf("%s: with Redis down: %d %v", tc.name, rec.Code, rec.Header())
			}
		}
		if w := warnings(); len(w) != tc.warnings || w[len(w)-1].Level != "WARN" {
			t.Fatalf("%s: %d log lines, want %d:\n%s", tc.name, len(w), tc.warnings, logs.String())
		}
	}
	if w := warnings(); w[1].Suppressed != 7 {
		t.Errorf("the second warning counts %d held back, want 7", w[1].Suppressed)
	}
}
