package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Advisory lock classes (the two-key form, so they cannot collide with the bigint
// locks of internal/leader): one lock per shard, and one per worker process so that
// the processes can count each other.
const (
	shardLockClass  = 0x5e6d0001
	memberLockClass = 0x5e6d0002
)

// holdsShard is true while backend $6 holds the lock of shard $1.
var holdsShard = fmt.Sprintf(`EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND classid = %d AND objid = $1::integer::oid AND objsubid = 2 AND pid = $6)`, shardLockClass)

// Shards splits the segment engine's shards among the worker processes that run it:
// each shard is owned by the one process holding its Postgres advisory lock, and
// every process aims at an equal share, ceil(shards / processes), counting the
// processes by their member locks. A process with more than its share releases one
// shard per round, after its runner has saved a last checkpoint; one with fewer takes
// free ones. When a process dies its connection goes, Postgres releases its locks,
// and the others take its shards over within a round or two, resuming from their
// checkpoints.
type Shards struct {
	ConnString string
	Count      int
	Log        *slog.Logger
	// Every is how often ownership is reviewed (default 1 s).
	Every time.Duration
	// Shard runs one shard until ctx ends. owner is the backend pid of the session
	// holding the shard's lock: pass it to SaveCheckpoint, which then refuses to
	// save once the lock is gone.
	Shard func(ctx context.Context, shard int, owner int32)
}

type ownedShard struct {
	stop func()
	done chan struct{}
}

// Run takes part in the split until ctx ends, reconnecting after failures.
func (s *Shards) Run(ctx context.Context) {
	every := s.Every
	if every == 0 {
		every = time.Second
	}
	for ctx.Err() == nil {
		if err := s.session(ctx, every); err != nil && ctx.Err() == nil {
			s.Log.Warn("segment shard ownership lost; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

// session holds one connection, and with it the locks, until it fails or ctx ends;
// every shard run from it stops with it.
func (s *Shards) session(ctx context.Context, every time.Duration) error {
	connectCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(connectCtx, s.ConnString)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var pid int32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", memberLockClass, pid); err != nil {
		return err
	}
	owned := map[int]*ownedShard{}
	defer func() {
		for _, o := range owned {
			o.stop()
		}
		for _, o := range owned {
			<-o.done
		}
	}()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := s.review(ctx, conn, pid, owned); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// review releases or takes shards towards this process's share.
func (s *Shards) review(ctx context.Context, conn *pgx.Conn, pid int32, owned map[int]*ownedShard) error {
	var processes int
	err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = $1::integer::oid AND objsubid = 2`, memberLockClass).Scan(&processes)
	if err != nil {
		return err
	}
	share := (s.Count + max(processes, 1) - 1) / max(processes, 1)
	if len(owned) > share {
		for shard, o := range owned {
			o.stop()
			<-o.done // its last checkpoint is saved
			delete(owned, shard)
			if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", shardLockClass, shard); err != nil {
				return err
			}
			s.Log.Info("released segment shard", "shard", shard, "processes", processes)
			return nil // one per round, so the others can follow
		}
	}
	// Start looking at a different shard in each process, so that they do not all
	// contend for the same ones.
	for i := 0; i < s.Count && len(owned) < share; i++ {
		shard := (int(pid) + i) % s.Count
		if owned[shard] != nil {
			continue
		}
		var won bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", shardLockClass, shard).Scan(&won); err != nil {
			return err
		}
		if !won {
			continue
		}
		runCtx, stop := context.WithCancel(ctx)
		o := &ownedShard{stop: stop, done: make(chan struct{})}
		owned[shard] = o
		s.Log.Info("took segment shard", "shard", shard, "processes", processes)
		go func() { s.Shard(runCtx, shard, pid); close(o.done) }()
	}
	return nil
}
