package pgstore

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the NOTIFY channel the configuration tables' triggers signal on.
const Channel = "lift_config"

// Reloader rebuilds some in-memory view of the configuration.
type Reloader interface {
	Reload(ctx context.Context) error
}

// Watcher keeps in-memory views current: it LISTENs for configuration changes and
// reloads after each burst of notifications, and resyncs on a timer in case a
// notification was lost (for instance while the listening connection was down).
type Watcher struct {
	ConnString string
	Resync     time.Duration
	Log        *slog.Logger
	Reloaders  []Reloader
	// OnReload, if set, is told the outcome of every reload attempt.
	OnReload func(err error)
}

// Run blocks until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	kick := make(chan struct{}, 1)
	notify := func() {
		select {
		case kick <- struct{}{}:
		default: // a reload is already pending; it will see this change too
		}
	}
	go w.listen(ctx, notify)
	resync := time.NewTicker(w.Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-resync.C:
		}
		w.reload(ctx)
	}
}

func (w *Watcher) reload(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var firstErr error
	for _, r := range w.Reloaders {
		if err := r.Reload(ctx); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil && ctx.Err() == nil {
		w.Log.Warn("configuration reload failed; serving the last snapshot", "err", firstErr)
	}
	if w.OnReload != nil {
		w.OnReload(firstErr)
	}
}

// listen holds a dedicated connection in LISTEN mode, reconnecting with backoff. After
// every (re)connect it asks for a reload, since changes may have been missed.
func (w *Watcher) listen(ctx context.Context, notify func()) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.listenOnce(ctx, notify, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		w.Log.Warn("configuration listener disconnected", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (w *Watcher) listenOnce(ctx context.Context, notify func(), connected func()) error {
	connectCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(connectCtx, w.ConnString)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	connected()
	notify()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		notify()
	}
}
