package httpx

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateClass is one budget: a bucket of Burst requests that may be spent at
// once, refilled evenly at Requests per Window.
type RateClass struct {
	Name     string
	Requests int
	Window   time.Duration
	// Burst is the bucket's size; zero means Requests.
	Burst int
}

// enabled tells whether the class limits anything; a zero class does not.
func (c RateClass) enabled() bool { return c.Requests > 0 && c.Window > 0 }

func (c RateClass) burst() int {
	if c.Burst > 0 {
		return c.Burst
	}
	return c.Requests
}

// RateDecision is a store's answer for one request in one class.
type RateDecision struct {
	Allowed bool
	// Limit is the class's burst; Remaining what may still be spent now.
	Limit, Remaining int
	// RetryAfter is how long until a refused request would be allowed;
	// ResetAfter how long until the budget is full again.
	RetryAfter, ResetAfter time.Duration
}

// RateStore keeps the budgets. Allow spends one request of class c for key
// when the budget has one.
type RateStore interface {
	Allow(ctx context.Context, key string, c RateClass) (RateDecision, error)
}

// errBadClass is returned for a class that limits nothing.
var errBadClass = errors.New("rate class needs Requests > 0 and Window > 0")

// DefaultMaxKeys is how many buckets MemoryRates keeps when not told.
const DefaultMaxKeys = 100_000

// MemoryRates keeps token buckets in this process, for a single node. It
// holds at most MaxKeys buckets and forgets the least recently used: a
// forgotten client starts again with a full budget, the price of bounded
// memory under a flood of keys.
type MemoryRates struct {
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	lru     *list.List // of *memBucket, most recently used first
	buckets map[string]*list.Element
}

type memBucket struct {
	id    string
	class RateClass
	lim   *rate.Limiter
}

// NewMemoryRates returns a store of at most maxKeys buckets (DefaultMaxKeys
// when maxKeys < 1) that reads the time from now (time.Now when nil).
func NewMemoryRates(maxKeys int, now func() time.Time) *MemoryRates {
	if maxKeys < 1 {
		maxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryRates{maxKeys: maxKeys, now: now, lru: list.New(), buckets: map[string]*list.Element{}}
}

// Allow implements RateStore.
func (m *MemoryRates) Allow(_ context.Context, key string, c RateClass) (RateDecision, error) {
	if !c.enabled() {
		return RateDecision{}, fmt.Errorf("class %q: %w", c.Name, errBadClass)
	}
	id := c.Name + "\x00" + key
	perToken := c.Window / time.Duration(c.Requests)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var b *memBucket
	if e, ok := m.buckets[id]; ok {
		m.lru.MoveToFront(e)
		b = e.Value.(*memBucket)
		if b.class != c {
			// The class was reconfigured: start over under the new budget.
			b.class, b.lim = c, rate.NewLimiter(rate.Every(perToken), c.burst())
		}
	} else {
		if m.lru.Len() >= m.maxKeys {
			old := m.lru.Back()
			m.lru.Remove(old)
			delete(m.buckets, old.Value.(*memBucket).id)
		}
		b = &memBucket{id: id, class: c, lim: rate.NewLimiter(rate.Every(perToken), c.burst())}
		m.buckets[id] = m.lru.PushFront(b)
	}

	d := RateDecision{Limit: c.burst()}
	tokens := b.lim.TokensAt(now)
	if tokens >= 1 {
		b.lim.AllowN(now, 1)
		d.Allowed = true
		tokens--
	} else {
		d.RetryAfter = tokenTime(1-tokens, perToken)
	}
	d.Remaining = max(0, int(math.Floor(tokens)))
	d.ResetAfter = tokenTime(float64(c.burst())-tokens, perToken)
	return d, nil
}

// tokenTime is how long n tokens take to refill.
func tokenTime(n float64, perToken time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(n * float64(perToken)))
}

// RateLimitConfig configures RateLimit.
type RateLimitConfig struct {
	Store RateStore
	// Default applies to every request, Auth to the auth class (keyed by
	// client IP, since these requests come before there is a user), Writes
	// to POST, PUT, PATCH and DELETE. A zero class limits nothing.
	Default, Auth, Writes RateClass
	// Key identifies the client: the authenticated user when there is one,
	// else the IP. The caller supplies it (httpx knows no users); nil or an
	// empty key means the client IP.
	Key func(r *http.Request) string
	// IsAuth tells whether a request is in the auth class (the caller
	// decides; e.g. path prefix /api/auth/). Nil means none is.
	IsAuth func(r *http.Request) bool
	// Log receives the warning when the store fails; nil discards it.
	Log *slog.Logger
	// Now is the clock of the warning throttle; nil means time.Now.
	Now func() time.Time
}

// storeWarnEvery spaces out warnings about a failing store, so an outage
// does not write one line per request.
const storeWarnEvery = 10 * time.Second

// RateLimit returns middleware that spends each request from its budgets
// and answers 429 with Retry-After when one is empty. Every answer carries
// RateLimit-Limit, -Remaining and -Reset of the tightest budget consulted.
// When the store fails, requests pass: refusing all traffic whenever Redis
// blips would be worse than briefly not limiting it.
func RateLimit(cfg RateLimitConfig) func(http.Handler) http.Handler {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	warner := &throttledWarn{log: log, now: now, every: storeWarnEvery}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodOptions || cfg.Store == nil {
				next.ServeHTTP(w, r)
				return
			}
			key := ""
			if cfg.Key != nil {
				key = cfg.Key(r)
			}
			if key == "" {
				key = ClientIPString(r)
			}
			type check struct {
				class RateClass
				key   string
			}
			checks := []check{{cfg.Default, key}}
			if cfg.IsAuth != nil && cfg.IsAuth(r) {
				checks = append(checks, check{cfg.Auth, ClientIPString(r)})
			}
			switch r.Method {
			case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
				checks = append(checks, check{cfg.Writes, key})
			}

			var tightest RateDecision
			decided := false
			for _, c := range checks {
				if !c.class.enabled() {
					continue
				}
				d, err := cfg.Store.Allow(r.Context(), c.key, c.class)
				if err != nil {
					// A client that hung up is no store failure.
					if r.Context().Err() == nil {
						warner.warn(r.Context(), "the rate limit store failed; letting requests through", err)
					}
					continue
				}
				if !decided || d.Remaining < tightest.Remaining || !d.Allowed {
					tightest, decided = d, true
				}
				if !d.Allowed {
					// Spending the other budgets on a refused request would
					// only punish the client twice.
					break
				}
			}
			if !decided {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			// As h.Set would, with canonical keys and one allocation for
			// the three values; each slice has its own capacity.
			v := [...]string{strconv.Itoa(tightest.Limit), strconv.Itoa(tightest.Remaining), strconv.FormatInt(ceilSeconds(tightest.ResetAfter), 10)}
			vals := v[:]
			h["Ratelimit-Limit"] = vals[0:1:1]
			h["Ratelimit-Remaining"] = vals[1:2:2]
			h["Ratelimit-Reset"] = vals[2:3:3]
			if !tightest.Allowed {
				secs := max(1, ceilSeconds(tightest.RetryAfter))
				h.Set("Retry-After", strconv.FormatInt(secs, 10))
				Error(w, r, http.StatusTooManyRequests, fmt.Sprintf("too many requests: try again in %d seconds", secs))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// throttledWarn logs at most one warning per period, counting the ones it
// held back.
type throttledWarn struct {
	log   *slog.Logger
	now   func() time.Time
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (t *throttledWarn) warn(ctx context.Context, msg string, err error) {
	t.mu.Lock()
	now := t.now()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		t.suppressed++
		t.mu.Unlock()
		return
	}
	suppressed := t.suppressed
	t.last, t.suppressed = now, 0
	t.mu.Unlock()
	t.log.WarnContext(ctx, msg, slog.String("error", err.Error()), slog.Int("suppressed", suppressed))
}
