package httpx

import (
	"context"
	"fmt"
	"math"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// redisRatePrefix namespaces abe's budgets in a Redis shared with other
// uses. redis_rate puts its own "rate:" in front.
const redisRatePrefix = "abe:rl:"

// RedisRates keeps the budgets in Redis with GCRA, so every node of a
// cluster spends from the same budget. Keys expire once their budget is
// full again.
type RedisRates struct {
	limiter *redis_rate.Limiter
}

// NewRedisRates returns a store on client. Give the client short timeouts:
// every request waits for Redis.
func NewRedisRates(client *redis.Client) *RedisRates {
	return &RedisRates{limiter: redis_rate.NewLimiter(client)}
}

// Allow implements RateStore.
func (s *RedisRates) Allow(ctx context.Context, key string, c RateClass) (RateDecision, error) {
	if !c.enabled() {
		return RateDecision{}, fmt.Errorf("class %q: %w", c.Name, errBadClass)
	}
	burst := c.burst()
	limit := redis_rate.Limit{Rate: c.Requests, Burst: burst, Period: c.Window}
	res, err := s.limiter.Allow(ctx, redisRatePrefix+c.Name+":"+key, limit)
	if err != nil {
		return RateDecision{}, fmt.Errorf("rate limit %q in redis: %w", c.Name, err)
	}
	d := RateDecision{
		Allowed:    res.Allowed > 0,
		Limit:      burst,
		Remaining:  res.Remaining,
		RetryAfter: max(0, res.RetryAfter), // -1 when allowed
		ResetAfter: max(0, res.ResetAfter),
	}
	if d.Allowed {
		// The script floors a float quotient, so a full budget of 100 can
		// report 98 left after one request. The same count follows from
		// ResetAfter, rounded with a tolerance.
		perToken := float64(c.Window) / float64(c.Requests)
		spent := math.Ceil(float64(d.ResetAfter)/perToken - 1e-6)
		d.Remaining = min(burst-1, max(0, burst-int(spent)))
	}
	return d, nil
}
