package session

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throttle limits attempts per key (an address, or an address and an account) with a
// token bucket: burst attempts at once, then burst per period.
type Throttle struct {
	mu     sync.Mutex
	burst  int
	every  rate.Limit
	period time.Duration
	keys   map[string]*rate.Limiter
	swept  time.Time
}

// NewThrottle allows burst attempts per key per period.
func NewThrottle(burst int, period time.Duration) *Throttle {
	return &Throttle{burst: burst, every: rate.Every(period / time.Duration(burst)), period: period, keys: map[string]*rate.Limiter{}}
}

// Allow records an attempt for key and reports whether it may proceed.
func (t *Throttle) Allow(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	// Forget keys whose bucket has refilled, so a flood of distinct keys cannot grow
	// the map without bound.
	if now.Sub(t.swept) > t.period {
		for k, l := range t.keys {
			if l.TokensAt(now) >= float64(t.burst) {
				delete(t.keys, k)
			}
		}
		t.swept = now
	}
	l, ok := t.keys[key]
	if !ok {
		l = rate.NewLimiter(t.every, t.burst)
		t.keys[key] = l
	}
	return l.AllowN(now, 1)
}
