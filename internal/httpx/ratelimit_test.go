package httpx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestMemoryRates(t *testing.T) {
	t.Parallel()
	three := RateClass{Name: "three", Requests: 3, Window: 3 * time.Second}
	other := RateClass{Name: "other", Requests: 1, Window: time.Minute}
	burst := RateClass{Name: "burst", Requests: 2, Window: 2 * time.Second, Burst: 4} // 1 a second, 4 at once
	type step struct {
		advance   time.Duration
		class     RateClass
		key       string
		allowed   bool
		remaining int
		retry     time.Duration
		reset     time.Duration
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{name: "exhaust and refill", steps: []step{
			{class: three, key: "a", allowed: true, remaining: 2, reset: time.Second},
			{class: three, key: "a", allowed: true, remaining: 1, reset: 2 * time.Second},
			{class: three, key: "a", allowed: true, remaining: 0, reset: 3 * time.Second},
			{class: three, key: "a", allowed: false, remaining: 0, retry: time.Second, reset: 3 * time.Second},
			{advance: 500 * time.Millisecond, class: three, key: "a", allowed: false, retry: 500 * time.Millisecond, reset: 2500 * time.Millisecond},
			{advance: 500 * time.Millisecond, class: three, key: "a", allowed: true, remaining: 0, reset: 3 * time.Second},
			{advance: time.Hour, class: three, key: "a", allowed: true, remaining: 2, reset: time.Second},
		}},
		{name: "keys and classes are independent", steps: []step{
			{class: other, key: "a", allowed: true, remaining: 0, reset: time.Minute},
			{class: other, key: "a", allowed: false, retry: time.Minute, reset: time.Minute},
			{class: other, key: "b", allowed: true, remaining: 0, reset: time.Minute},
			{class: three, key: "a", allowed: true, remaining: 2, reset: time.Second},
		}},
		{name: "a burst larger than the rate", steps: []step{
			{class: burst, key: "a", allowed: true, remaining: 3, reset: time.Second},
			{class: burst, key: "a", allowed: true, remaining: 2, reset: 2 * time.Second},
			{class: burst, key: "a", allowed: true, remaining: 1, reset: 3 * time.Second},
			{class: burst, key: "a", allowed: true, remaining: 0, reset: 4 * time.Second},
			{class: burst, key: "a", allowed: false, retry: time.Second, reset: 4 * time.Second},
			{advance: time.Second, class: burst, key: "a", allowed: true, remaining: 0, reset: 4 * time.Second},
			{advance: time.Hour, class: burst, key: "a", allowed: true, remaining: 3, reset: time.Second},
		}},
		{name: "a reconfigured class starts over", steps: []step{
			{class: other, key: "a", allowed: true, remaining: 0, reset: time.Minute},
			{class: RateClass{Name: "other", Requests: 2, Window: time.Minute}, key: "a", allowed: true, remaining: 1, reset: 30 * time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			m := NewMemoryRates(10, clock.Now)
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				d, err := m.Allow(context.Background(), s.key, s.class)
				if err != nil {
					t.Fatal(err)
				}
				want := RateDecision{Allowed: s.allowed, Limit: s.class.burst(), Remaining: s.remaining, RetryAfter: s.retry, ResetAfter: s.reset}
				if d != want {
					t.Errorf("step %d: %+v, want %+v", i, d, want)
				}
			}
		})
	}
	if _, err := NewMemoryRates(1, nil).Allow(context.Background(), "k", RateClass{Name: "zero"}); err == nil {
		t.Error("a zero class was accepted")
	}
}

func TestMemoryRatesEviction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	one := RateClass{Name: "one", Requests: 1, Window: time.Hour}
	m := NewMemoryRates(3, newFakeClock().Now)
	for _, k := range []string{"a", "b", "c", "a", "d"} { // a is used again, so b is the oldest when d comes
		if _, err := m.Allow(ctx, k, one); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	for e := m.lru.Front(); e != nil; e = e.Next() {
		order = append(order, strings.TrimPrefix(e.Value.(*memBucket).id, "one\x00"))
	}
	if got := strings.Join(order, ","); got != "d,a,c" || len(m.buckets) != 3 {
		t.Fatalf("buckets %s (%d in the map), want d,a,c", got, len(m.buckets))
	}
	// The evicted client starts with a full budget; the kept one does not.
	if d, _ := m.Allow(ctx, "b", one); !d.Allowed {
		t.Error("b was not evicted")
	}
	if d, _ := m.Allow(ctx, "d", one); d.Allowed {
		t.Error("d lost its state")
	}
	if m.lru.Len() != 3 || len(m.buckets) != 3 {
		t.Errorf("%d buckets, %d in the map; want 3", m.lru.Len(), len(m.buckets))
	}
}

func TestMemoryRatesConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	class := RateClass{Name: "c", Requests: 50, Window: time.Hour}
	clock := newFakeClock()
	shared := NewMemoryRates(10, clock.Now)
	churned := NewMemoryRates(4, clock.Now) // many more keys than buckets
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				d, err := shared.Allow(ctx, "one key", class)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := churned.Allow(ctx, fmt.Sprintf("k%d-%d", g, i%5), class); err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Errorf("%d of 800 concurrent requests allowed, want the budget of 50", allowed)
	}
	if churned.lru.Len() != 4 || len(churned.buckets) != 4 {
		t.Errorf("%d buckets, %d in the map; want 4", churned.lru.Len(), len(churned.buckets))
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	def := RateClass{Name: "default", Requests: 10, Window: 10 * time.Second}
	writes := RateClass{Name: "writes", Requests: 3, Window: 10 * time.Second}
	auth := RateClass{Name: "auth", Requests: 2, Window: time.Minute}
	type req struct{ method, path, user, ip string }
	get := req{"GET", "/api/x", "u1", "203.0.113.1"}
	post := req{"POST", "/api/x", "u1", "203.0.113.1"}
	login := req{"POST", "/api/auth/login", "", "203.0.113.1"}
	repeat := func(n int, r req) []req {
		out := make([]req, n)
		for i := range out {
			out[i] = r
		}
		return out
	}
	for _, tc := range []struct {
		name                    string
		def, writes             RateClass // zero: the classes above
		noKey                   bool      // Key is nil
		before                  []req
		req                     req
		status                  int
		limit, remaining, reset string
		retryAfter              string
	}{
		{name: "first read", req: get, status: 200, limit: "10", remaining: "9", reset: "1"},
		{name: "reads exhausted", before: repeat(10, get), req: get, status: 429, limit: "10", remaining: "0", reset: "10", retryAfter: "1"},
		{name: "another user is independent", before: repeat(10, get), req: req{"GET", "/api/x", "u2", "203.0.113.1"}, status: 200, remaining: "9", limit: "10", reset: "1"},
		{name: "a write reports the tighter class", req: post, status: 200, limit: "3", remaining: "2", reset: "4"},
		{name: "writes exhausted, rounded up", before: repeat(3, post), req: post, status: 429, limit: "3", remaining: "0", reset: "10", retryAfter: "4"},
		{name: "writes exhausted, reads still allowed", before: repeat(3, post), req: get, status: 200, limit: "10", remaining: "6", reset: "4"},
		{name: "zero class limits nothing", writes: RateClass{Name: "off"}, req: post, status: 200, limit: "10", remaining: "9", reset: "1"},
		{name: "auth class", req: login, status: 200, limit: "2", remaining: "1", reset: "30"},
		{name: "auth class is keyed by ip", before: []req{{"POST", "/api/auth/login", "u8", "203.0.113.1"}, {"POST", "/api/auth/login", "u9", "203.0.113.1"}},
			req: req{"POST", "/api/auth/login", "u7", "203.0.113.1"}, status: 429, limit: "2", remaining: "0", reset: "60", retryAfter: "30"},
		{name: "auth class, another ip", before: repeat(2, login), req: req{"POST", "/api/auth/login", "", "203.0.113.2"}, status: 200, limit: "2", remaining: "1", reset: "30"},
		{name: "options is not limited", before: repeat(10, get), req: req{"OPTIONS", "/api/x", "u1", "203.0.113.1"}, status: 200},
		{name: "nil key means the ip", noKey: true, before: repeat(10, req{"GET", "/", "u1", "203.0.113.1"}), req: req{"GET", "/", "u2", "203.0.113.1"}, status: 429, limit: "10", remaining: "0", reset: "10", retryAfter: "1"},
		{name: "retry after at least a second", def: RateClass{Name: "fast", Requests: 1000, Window: time.Second}, before: repeat(1000, get), req: get, status: 429, limit: "1000", remaining: "0", reset: "1", retryAfter: "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, w := def, writes
			if tc.def.Name != "" {
				d = tc.def
			}
			if tc.writes.Name != "" {
				w = tc.writes
			}
			cfg := RateLimitConfig{
				Store:   NewMemoryRates(100, newFakeClock().Now),
				Default: d, Auth: auth, Writes: w,
				Key:    func(r *http.Request) string { return r.Header.Get("X-User") },
				IsAuth: func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/auth/") },
			}
			if tc.noKey {
				cfg.Key = nil
			}
			h := RateLimit(cfg)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			do := func(q req) *httptest.ResponseRecorder {
				r := httptest.NewRequest(q.method, q.path, nil)
				r.RemoteAddr = q.ip + ":1234"
				r.Header.Set("X-User", q.user)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				return rec
			}
			for _, q := range tc.before {
				do(q)
			}
			rec := do(tc.req)
			got := []string{rec.Header().Get("RateLimit-Limit"), rec.Header().Get("RateLimit-Remaining"), rec.Header().Get("RateLimit-Reset"), rec.Header().Get("Retry-After")}
			want := []string{tc.limit, tc.remaining, tc.reset, tc.retryAfter}
			if rec.Code != tc.status || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%d %q, want %d %q", rec.Code, got, tc.status, want)
			}
			if tc.status == 429 {
				var p Problem
				if err := json.NewDecoder(rec.Body).Decode(&p); err != nil || p.Detail != "too many requests: try again in "+tc.retryAfter+" seconds" {
					t.Errorf("problem %+v (%v)", p, err)
				}
			}
		})
	}
}
