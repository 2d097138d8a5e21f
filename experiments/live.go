package experiments

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ConfigLoader reads the whole configuration.
type ConfigLoader interface {
	LoadConfig(ctx context.Context) (*Config, error)
}

// Live holds the current snapshot. Readers never block: Reload builds a new snapshot
// aside and swaps the pointer, so a failed reload leaves the last good one serving.
type Live struct {
	loader  ConfigLoader
	current atomic.Pointer[Snapshot]
	// Members, if set before the first Reload, answers behavioural segments;
	// FeatureValues, the same way, users' features.
	Members       Members
	FeatureValues FeatureValues

	// changed is closed, and replaced, when a snapshot of another version is stored:
	// a broadcast to every waiting stream (web's server-sent events).
	mu      sync.Mutex
	changed chan struct{}
}

// NewLive returns a Live that loads from loader; it serves an empty snapshot until
// the first successful Reload.
func NewLive(loader ConfigLoader) *Live {
	l := &Live{loader: loader, changed: make(chan struct{})}
	l.current.Store(NewSnapshot(&Config{}, time.Time{}))
	return l
}

// Snapshot returns the snapshot to decide with.
func (l *Live) Snapshot() *Snapshot { return l.current.Load() }

// Reload reads the configuration and swaps in a new snapshot. On error the previous
// snapshot stays in place.
func (l *Live) Reload(ctx context.Context) error {
	start := time.Now()
	cfg, err := l.loader.LoadConfig(ctx)
	if err != nil {
		return fmt.Errorf("experiments: reload snapshot: %w", err)
	}
	cfg.Members, cfg.FeatureValues = l.Members, l.FeatureValues
	next := NewSnapshot(cfg, start)
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.current.Swap(next)
	if prev.Version != next.Version {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return nil
}

// Changed returns a channel that is closed when a snapshot whose Version differs
// from the current one's is stored; call it again for the change after that.
func (l *Live) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}
