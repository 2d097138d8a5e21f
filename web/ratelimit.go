package web

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"github.com/liftlab/lift/web/auth"
)

// rateLimit limits each API key (or dashboard user) to perSecond requests of one
// endpoint class, with bursts of twice that, so one misbehaving client cannot take
// the capacity of the others. Over the limit it answers 429 with Retry-After: the
// seconds until the key's bucket holds a token again. perSecond 0 means no limit.
// It runs after authentication, which names the caller.
func (s *server) rateLimit(class string, perSecond float64) []echo.MiddlewareFunc {
	if perSecond <= 0 {
		return nil
	}
	store := newKeyBuckets(rate.Limit(perSecond), int(math.Ceil(2*perSecond)))
	limited := s.metrics.rateLimited.WithLabelValues(class)
	return []echo.MiddlewareFunc{middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store:               store,
		IdentifierExtractor: func(c echo.Context) (string, error) { return caller(c), nil },
		DenyHandler: func(c echo.Context, id string, _ error) error {
			limited.Inc()
			c.Response().Header().Set("Retry-After", strconv.Itoa(store.retryAfter(id)))
			return echo.NewHTTPError(http.StatusTooManyRequests, "rate limit of this API key exceeded ("+class+"); retry later")
		},
	})}
}

// caller names who is calling, for rate limits: the API key, else the signed-in user.
func caller(c echo.Context) string {
	if k, ok := c.Get(keyContext).(auth.Key); ok {
		return "key:" + strconv.FormatInt(k.ID, 10)
	}
	if u, ok := c.Get(userContext).(auth.User); ok {
		return "user:" + strconv.FormatInt(u.ID, 10)
	}
	return "anonymous"
}

// keyBuckets is a token bucket per caller (Echo's RateLimiterStore). Buckets unused
// for a few minutes are dropped, so revoked keys do not accumulate.
type keyBuckets struct {
	limit rate.Limit
	burst int

	mu          sync.Mutex
	buckets     map[string]*bucket
	lastCleanup time.Time
}

type bucket struct {
	*rate.Limiter
	lastSeen time.Time
}

const bucketIdle = 3 * time.Minute

func newKeyBuckets(limit rate.Limit, burst int) *keyBuckets {
	return &keyBuckets{limit: limit, burst: burst, buckets: map[string]*bucket{}, lastCleanup: time.Now()}
}

func (k *keyBuckets) get(id string, now time.Time) *rate.Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastCleanup) > bucketIdle {
		for id, b := range k.buckets {
			if now.Sub(b.lastSeen) > bucketIdle {
				delete(k.buckets, id)
			}
		}
		k.lastCleanup = now
	}
	b := k.buckets[id]
	if b == nil {
		b = &bucket{Limiter: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[id] = b
	}
	b.lastSeen = now
	return b.Limiter
}

// Allow takes a token from id's bucket.
func (k *keyBuckets) Allow(id string) (bool, error) {
	return k.get(id, time.Now()).Allow(), nil
}

// retryAfter is how many whole seconds (at least 1) until id's bucket has a token.
func (k *keyBuckets) retryAfter(id string) int {
	now := time.Now()
	r := k.get(id, now).ReserveN(now, 1)
	defer r.CancelAt(now)
	return max(1, int(math.Ceil(r.DelayFrom(now).Seconds())))
}
