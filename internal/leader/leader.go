// Package leader elects one process among many to run a singleton (the bandit
// updater, the segment router, erasure jobs, retention, the recommender trainer) with
// a PostgreSQL advisory lock. The lock belongs to a session, so when the
// leader dies or loses its connection, Postgres releases it and another process takes
// over at its next try.
package leader

import (
	"context"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Elector runs a function while this process holds the named lock.
type Elector struct {
	ConnString string
	Name       string
	Log        *slog.Logger
	// Retry is how often a follower tries to take the lock and the leader checks
	// its connection (default 2 s).
	Retry time.Duration
	// OnChange, if set, is told when this process becomes leader (true) and when it
	// stops leading (false), for the lift_leader metric.
	OnChange func(leading bool)
}

// Run blocks until ctx ends. Whenever this process wins the lock it calls lead with a
// context that is cancelled when leadership is lost (connection gone) or ctx ends.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) {
	retry := e.Retry
	if retry == 0 {
		retry = 2 * time.Second
	}
	h := fnv.New64a()
	h.Write([]byte(e.Name))
	key := int64(h.Sum64())
	for ctx.Err() == nil {
		e.term(ctx, key, retry, lead)
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
}

// term tries once to become leader and, if it does, leads until the lock is lost.
func (e *Elector) term(ctx context.Context, key int64, retry time.Duration, lead func(context.Context)) {
	connectCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(connectCtx, e.ConnString)
	cancel()
	if err != nil {
		e.Log.Debug("leader election: cannot connect", "name", e.Name, "err", err)
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var won bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&won); err != nil || !won {
		return
	}
	e.Log.Info("became leader", "name", e.Name)
	if e.OnChange != nil {
		e.OnChange(true)
		defer e.OnChange(false)
	}
	leadCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { lead(leadCtx); close(done) }()
	tick := time.NewTicker(retry)
	defer tick.Stop()
	for {
		select {
		case <-done:
			stop()
			return
		case <-tick.C:
			// A generous bound: giving up the lock over one slow answer (a loaded
			// machine, a short Retry) would hand leadership over for nothing.
			pingCtx, cancel := context.WithTimeout(ctx, max(retry, 5*time.Second))
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				e.Log.Warn("lost leadership: connection to Postgres failed", "name", e.Name, "err", err)
				stop()
				<-done
				return
			}
		case <-ctx.Done():
			stop()
			<-done
			return
		}
	}
}
