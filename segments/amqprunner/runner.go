// Package amqprunner runs the behavioural segment engine on RabbitMQ: the Router
// splits lift.segments into one stream per shard, and a Runner per shard feeds its
// stream into an engine, with membership changes out to a store and checkpoints so a
// restart, or a move of the shard to another process, neither loses nor
// double-counts an event.
//
// Exactly once comes from offsets: a checkpoint records the engine's state and the
// shard stream offset it includes, and a runner resumes reading the stream right
// after it. Membership changes emitted after the checkpoint are emitted again, which
// the store's idempotent upsert absorbs.
package amqprunner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/segments"
)

// Store keeps memberships and checkpoints.
type Store interface {
	Apply(ctx context.Context, changes []segments.Change) error
	// SaveCheckpoint saves a shard's checkpoint while owner (see pgstore.Shards)
	// holds the shard, and fails otherwise.
	SaveCheckpoint(ctx context.Context, shard int, owner int32, cp segments.Checkpoint) error
	LoadCheckpoint(ctx context.Context, shard int) (cp segments.Checkpoint, ok bool, err error)
	// Members returns the stored members of the given segments.
	Members(ctx context.Context, segs []string) ([]segments.Membership, error)
}

// ChangeLog records membership changes for analysts (segments/chsink writes them to
// ClickHouse). Record must be idempotent: the changes since the last checkpoint are
// recorded again after a restart, and a batch is retried after any failed flush.
type ChangeLog interface {
	Record(ctx context.Context, changes []segments.Change) error
}

// FeatureStore keeps the feature values decisions read (segments/pgstore).
// ApplyFeatures must be idempotent (the values since the last checkpoint are
// published again after a restart); FeatureUsers returns the stored values (other than
// the defaults) of the given features.
type FeatureStore interface {
	ApplyFeatures(ctx context.Context, changes []segments.FeatureChange) error
	FeatureUsers(ctx context.Context, features []string) ([]segments.FeatureChange, error)
}

// FeatureLog records feature values for training and analysts (segments/chsink
// writes them to ClickHouse); like ChangeLog, RecordFeatures must be idempotent.
type FeatureLog interface {
	RecordFeatures(ctx context.Context, changes []segments.FeatureChange) error
}

// History reads stored events for rebuilds (segments/chsink implements it): every
// event of the types with a timestamp at or after since and received before until
// (whole seconds), in the order received.
type History interface {
	Events(ctx context.Context, types []string, since, until time.Time, fn func(segments.Event) error) error
}

// Definitions returns the behavioural segments to evaluate and a fingerprint that
// changes whenever they do.
type Definitions func(ctx context.Context) ([]segments.Definition, string, error)

// Runner runs one shard: its stream into one engine.
type Runner struct {
	URL   string
	Store Store
	// Changes, if not nil, records every membership change for analysts after
	// Store.Apply. It must not hold up decisions: while it fails, changes wait in a
	// bounded buffer (MaxUnrecorded) and are retried at every flush; past the bound the
	// oldest are dropped and logged. Changes still buffered when the process dies are
	// lost to the log (memberships themselves are not).
	Changes       ChangeLog
	MaxUnrecorded int
	// Features, if not nil, receives the features' new values after the
	// memberships, and FeatureLog (if not nil) then records them, bounded like
	// Changes. Without Features, values are not published.
	Features    FeatureStore
	FeatureLog  FeatureLog
	Definitions Definitions
	// History, if not nil, rebuilds segments that have no state (new or changed
	// rules, no checkpoint) from stored events; without it they start empty.
	History History
	Log     *slog.Logger
	// Shard is the shard this runner owns, of Shards.
	Shard, Shards int
	// Owner is the lock session that owns the shard (pgstore.Shards), for
	// Store.SaveCheckpoint.
	Owner int32
	// FlushEvery bounds how long a membership change waits before it is stored
	// (default 50 ms): it is most of the delay between an event and the decision
	// that sees its segment.
	FlushEvery time.Duration
	// CheckpointEvery is how often the engine's state is saved (default 5 s).
	CheckpointEvery time.Duration
	// Prefetch is how many stream messages the runner holds (default 1,000).
	Prefetch int
	// RebuildDelay is how long after its receipt an event is surely stored in
	// ClickHouse by the ingest consumers (default 10 s). A rebuild reads ClickHouse
	// for the events received that long before it starts, and this shard's stream
	// for the later ones, so it does not wait.
	RebuildDelay time.Duration
	// DefinitionsEvery is how often the definitions are read to notice a change
	// (default 250 ms): a new segment goes live that much later at most.
	DefinitionsEvery time.Duration
	// Skew is how far before a rebuild's cut a shard stream is read when there is
	// no checkpoint to resume from, to allow for clocks that disagree (default 1 min).
	Skew time.Duration
	// Lateness is the engine's allowed lateness (default 1 minute).
	Lateness time.Duration
	// Observe, if set, gets the engine's statistics, the checkpoint's size and the
	// lag after a checkpoint, at most once a second (for the lift_segment_* metrics).
	// The lag is the time from the collector's receipt of the newest event applied
	// to its application.
	Observe func(shard int, stats segments.Stats, checkpointBytes int, lag time.Duration)
	// Erasures, if not nil, names users to forget (erasure jobs, docs/privacy.md):
	// at every checkpoint the engine drops their state before the snapshot, and
	// they are reported forgotten once that checkpoint is saved.
	Erasures Erasures
}

// Erasures are the users a shard must forget.
type Erasures interface {
	PendingErasures(ctx context.Context, shard int) ([]string, error)
	Forgotten(ctx context.Context, shard int, userIDs []string) error
}

// Run runs the shard until ctx ends, restarting after failures and when the
// definitions change, and saves a last checkpoint on the way out.
func (r *Runner) Run(ctx context.Context) {
	if r.FlushEvery == 0 {
		r.FlushEvery = 50 * time.Millisecond
	}
	if r.CheckpointEvery == 0 {
		r.CheckpointEvery = 5 * time.Second
	}
	if r.Prefetch == 0 {
		r.Prefetch = 1000
	}
	if r.RebuildDelay == 0 {
		r.RebuildDelay = 10 * time.Second
	}
	if r.DefinitionsEvery == 0 {
		r.DefinitionsEvery = 250 * time.Millisecond
	}
	if r.Skew == 0 {
		r.Skew = time.Minute
	}
	if r.Lateness == 0 {
		r.Lateness = time.Minute
	}
	r.Shards = max(r.Shards, 1)
	r.Log = r.Log.With("shard", r.Shard)
	restarting(ctx, r.Log, "segment engine restarting", r.session)
}

// session is one engine's life: from the current definitions and the shard's
// checkpoint (rebuilding what it lacks) until an error, a change of definitions or the
// end of ctx.
type session struct {
	*Runner
	engine      *segments.Engine
	fingerprint string
	pending     []segments.Change // emitted, not yet stored
	unrecorded  []segments.Change // stored, not yet in the change log
	// The same for feature values.
	pendingValues    []segments.FeatureChange
	unrecordedValues []segments.FeatureChange
	offset           int64         // last shard stream offset applied
	lag              time.Duration // receipt of the newest event applied → its application
	observed         time.Time
}

func (r *Runner) session(ctx context.Context) error {
	defs, fingerprint, err := r.Definitions(ctx)
	if err != nil {
		return fmt.Errorf("segment definitions: %w", err)
	}
	s := &session{Runner: r, fingerprint: fingerprint, offset: -1}
	// The engine believes receive times up to the collector's allowance ahead.
	if s.engine, err = segments.NewEngine(defs, segments.Options{Lateness: r.Lateness, Skew: ingest.MaxSkew,
		OnChange: func(c segments.Change) { s.pending = append(s.pending, c) },
		OnFeature: func(c segments.FeatureChange) {
			if r.Features != nil {
				s.pendingValues = append(s.pendingValues, c)
			}
		}}); err != nil {
		return err
	}
	keys := make([]string, len(defs))
	for i, d := range defs {
		keys[i] = d.Key
	}
	// Resume after the checkpoint, or, without one, from a little before the cut
	// of a rebuild of everything.
	restored := segments.Restored{Missing: keys}
	var start any
	if cp, ok, err := r.Store.LoadCheckpoint(ctx, r.Shard); err != nil {
		return err
	} else if ok && cp.Shards == r.Shards {
		if res, err := s.engine.Restore(bytes.NewReader(cp.State)); err != nil {
			r.Log.Warn("segment checkpoint unusable; rebuilding from stored events", "err", err)
		} else {
			restored, s.offset, start = res, cp.StreamOffset, cp.StreamOffset+1
			r.Log.Info("segment engine resumed from its checkpoint", "stream_offset", cp.StreamOffset, "users", s.engine.Stats().Users)
			if res.Clamped || len(res.Future) > 0 {
				r.Log.Warn("segment checkpoint held times beyond the clock; watermark set back, those users' state dropped",
					"users", len(res.Future), "watermark", s.engine.Watermark())
			}
		}
	} else if ok {
		r.Log.Info("segment shard count changed; rebuilding from stored events", "from", cp.Shards, "to", r.Shards)
	}
	// A rebuild splits the events by receive time and stream offset, so that each
	// counts once (rebuild.go): received before the cut, whole seconds as ClickHouse
	// stores them and RebuildDelay in the past, so that ClickHouse holds them all
	// now, it comes from ClickHouse; received at or after the cut, from this shard's
	// stream: up to the checkpoint's offset (events the state already includes) read
	// again for the history, after it live.
	cut := time.Now().Add(-r.RebuildDelay).Truncate(time.Second)
	if start == nil {
		start = cut.Add(-r.Skew)
	}
	history := make(chan *segments.Engine, 1)
	if r.History == nil {
		// Nothing to rebuild from: those segments start from the live events, and
		// what the store holds for them is stale.
		restored.Renamed = append(restored.Renamed, restored.Missing...)
		restored.Missing = nil
	}
	if len(restored.Missing) > 0 {
		// The state includes events received at or after the cut only if the newest
		// one it includes was.
		upTo := s.offset
		if rec := s.engine.Received(); rec.IsZero() || rec.Before(cut) {
			upTo = -1
		}
		s.engine.StartRebuild(restored.Missing, cut)
		r.Log.Info("rebuilding segments from stored events", "segments", restored.Missing, "cut", cut, "replay_to", upTo)
		rebuilding := slices.DeleteFunc(slices.Clone(defs), func(d segments.Definition) bool { return !slices.Contains(restored.Missing, d.Key) })
		histCtx, stopHistory := context.WithCancel(ctx)
		defer stopHistory()
		go func() {
			if h := r.loadHistory(histCtx, rebuilding, cut, upTo); h != nil {
				history <- h
			}
		}()
	}

	conn, err := amqpbus.Dial(r.URL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := declareShard(ch, r.Shard); err != nil {
		return err
	}
	if err := ch.Qos(r.Prefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.Consume(ShardQueue(r.Shard), "", false, false, false, false, amqp.Table{"x-stream-offset": start})
	if err != nil {
		return err
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	// Memberships stored under keys whose definition changed hands (a published
	// draft) or that are gone follow the engine now; rebuilt ones after the merge.
	if err := s.reconcile(ctx, append(restored.Renamed, restored.Dropped...)); err != nil {
		return err
	}
	// Record at once which definitions this engine runs, so operators (and tests)
	// can see when a change has been picked up.
	if err := s.checkpoint(ctx); err != nil {
		return err
	}
	var lastTag uint64
	unacked := 0
	flushTick := time.NewTicker(r.FlushEvery)
	defer flushTick.Stop()
	clock := time.NewTicker(time.Second)
	defer clock.Stop()
	defsTick := time.NewTicker(r.DefinitionsEvery)
	defer defsTick.Stop()
	cpTick := time.NewTicker(r.CheckpointEvery)
	defer cpTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return s.checkpoint(context.WithoutCancel(ctx))
		case err := <-closed:
			return fmt.Errorf("broker connection closed: %v", err)
		case d, ok := <-deliveries:
			if !ok {
				return fmt.Errorf("delivery channel closed")
			}
			lastTag, unacked = d.DeliveryTag, unacked+1
			if err := s.deliver(d); err != nil {
				return err
			}
			if unacked >= r.Prefetch/2 {
				if err := ch.Ack(lastTag, true); err != nil { // stream credit
					return err
				}
				unacked = 0
			}
		case h := <-history:
			done := s.engine.Merge(h)
			r.Log.Info("segments rebuilt from stored events", "segments", done, "users", h.Stats().Users)
			if err := s.reconcile(ctx, done); err != nil {
				return err
			}
			if err := s.checkpoint(ctx); err != nil {
				return err
			}
		case <-flushTick.C:
			if err := s.flush(ctx); err != nil {
				return err
			}
			if unacked > 0 {
				if err := ch.Ack(lastTag, true); err != nil {
					return err
				}
				unacked = 0
			}
		case now := <-clock.C:
			s.engine.Tick(now)
		case <-defsTick.C:
			// A new or changed segment is picked up within DefinitionsEvery.
			if _, fp, err := r.Definitions(ctx); err == nil && fp != fingerprint {
				if err := s.checkpoint(ctx); err != nil {
					return err
				}
				return errDefinitionsChanged
			}
		case <-cpTick.C:
			if err := s.checkpoint(ctx); err != nil {
				return err
			}
		}
	}
}

// deliver applies one shard stream message.
func (s *session) deliver(d amqp.Delivery) error {
	offset, ok := d.Headers["x-stream-offset"].(int64)
	if !ok {
		return fmt.Errorf("a %s message without x-stream-offset", ShardQueue(s.Shard))
	}
	if offset <= s.offset {
		return nil // streams deliver from the start of a chunk
	}
	if n, _ := d.Headers[shardsHeader].(int32); int(n) != s.Shards {
		return fmt.Errorf("%s was split into %d shards, this engine runs %d: every worker needs the same LIFT_SEGMENT_SHARDS",
			ShardQueue(s.Shard), n, s.Shards)
	}
	var batch []routed
	if err := json.Unmarshal(d.Body, &batch); err != nil {
		s.Log.Error("unreadable shard stream message skipped", "offset", offset, "err", err)
	}
	for i := range batch {
		s.engine.Process(batch[i].event())
	}
	if n := len(batch); n > 0 {
		// A receive time ahead of this clock (another server's) is no negative lag.
		s.lag = max(time.Since(time.UnixMilli(batch[n-1].R)), 0)
	}
	s.offset = offset
	return nil
}

// flush stores the pending changes, then records them in the change log as far as
// it can.
func (s *session) flush(ctx context.Context) error {
	if len(s.pending) > 0 {
		if err := s.Store.Apply(ctx, s.pending); err != nil {
			return err
		}
		if s.Changes != nil {
			s.unrecorded = append(s.unrecorded, s.pending...)
		}
		s.pending = s.pending[:0]
	}
	if len(s.pendingValues) > 0 {
		if err := s.Features.ApplyFeatures(ctx, s.pendingValues); err != nil {
			return err
		}
		if s.FeatureLog != nil {
			s.unrecordedValues = append(s.unrecordedValues, s.pendingValues...)
		}
		s.pendingValues = s.pendingValues[:0]
	}
	if len(s.unrecorded) > 0 {
		s.unrecorded = record(ctx, s, s.unrecorded, s.Changes.Record, "segment change log")
	}
	if len(s.unrecordedValues) > 0 {
		s.unrecordedValues = record(ctx, s, s.unrecordedValues, s.FeatureLog.RecordFeatures, "feature log")
	}
	return nil
}

// record writes what is stored, not yet logged, to a log for analysts and returns
// what is left. While the log fails the rows wait, at most MaxUnrecorded (the oldest
// are dropped): memberships and values are stored, the log catches up when it can.
func record[T any](ctx context.Context, s *session, rows []T, write func(context.Context, []T) error, name string) []T {
	if err := write(ctx, rows); err != nil {
		maxUnrecorded := s.MaxUnrecorded
		if maxUnrecorded == 0 {
			maxUnrecorded = 100_000
		}
		if over := len(rows) - maxUnrecorded; over > 0 {
			s.Log.Error(name+" unavailable; dropping the oldest changes", "dropped", over, "err", err)
			rows = slices.Delete(rows, 0, over)
		}
		return rows
	}
	return rows[:0]
}

func (s *session) checkpoint(ctx context.Context) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	var forgotten []string
	if s.Erasures != nil {
		ids, err := s.Erasures.PendingErasures(ctx, s.Shard)
		if err != nil {
			return err
		}
		for _, id := range ids {
			s.engine.Forget(id)
		}
		forgotten = ids
	}
	var buf bytes.Buffer
	if err := s.engine.Snapshot(&buf); err != nil {
		return err
	}
	// The definitions column tells operators (and tests) what the engine runs and
	// what it is still rebuilding.
	defs := s.fingerprint
	if r := s.engine.Rebuilding(); len(r) > 0 {
		defs += " rebuilding:" + strings.Join(r, ",")
	}
	err := s.Store.SaveCheckpoint(ctx, s.Shard, s.Owner, segments.Checkpoint{Definitions: defs,
		Shards: s.Shards, StreamOffset: s.offset, State: buf.Bytes()})
	if err == nil && len(forgotten) > 0 {
		err = s.Erasures.Forgotten(ctx, s.Shard, forgotten)
	}
	if now := time.Now(); err == nil && s.Observe != nil && now.Sub(s.observed) >= time.Second {
		s.Observe(s.Shard, s.engine.Stats(), buf.Len(), s.lag)
		s.observed = now
	}
	return err
}

// reconcile makes what the store holds for this shard's users in the given segments
// and features what the engine says.
func (s *session) reconcile(ctx context.Context, keys []string) error {
	var segs, feats []string
	for _, k := range keys {
		if segments.IsFeatureKey(k) {
			feats = append(feats, k)
		} else {
			segs = append(segs, k)
		}
	}
	if err := s.reconcileFeatures(ctx, feats); err != nil {
		return err
	}
	return s.reconcileMembers(ctx, segs)
}

// reconcileFeatures publishes the engine's value of every user's feature in feats and
// sets back to the default the stored values of users the engine has none for.
func (s *session) reconcileFeatures(ctx context.Context, feats []string) error {
	if len(feats) == 0 || s.Features == nil {
		return nil
	}
	stored, err := s.Features.FeatureUsers(ctx, feats)
	if err != nil {
		return err
	}
	key := func(feature, user string) string { return feature + "\x00" + user }
	inStore := map[string]bool{}
	for _, c := range stored {
		if segments.Shard(c.UserID, s.Shards) == s.Shard {
			inStore[key(c.Feature, c.UserID)] = true
		}
	}
	published := 0
	for c := range s.engine.FeatureValues() {
		if slices.Contains(feats, c.Feature) {
			delete(inStore, key(c.Feature, c.UserID))
			s.pendingValues = append(s.pendingValues, c)
			published++
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for k := range inStore {
		feature, user, _ := strings.Cut(k, "\x00")
		s.pendingValues = append(s.pendingValues, segments.FeatureChange{UserID: user, Feature: feature, At: now})
	}
	s.Log.Info("feature values reconciled", "features", feats, "published", published, "cleared", len(inStore))
	return s.flush(ctx)
}

// reconcileMembers makes the stored memberships of this shard's users in segs what
// the engine says: members it has that the store lacks enter (at the time the engine
// has them in since), stored members it does not have exit.
func (s *session) reconcileMembers(ctx context.Context, segs []string) error {
	if len(segs) == 0 {
		return nil
	}
	stored, err := s.Store.Members(ctx, segs)
	if err != nil {
		return err
	}
	key := func(seg, user string) string { return seg + "\x00" + user }
	inStore := map[string]bool{}
	for _, m := range stored {
		if segments.Shard(m.UserID, s.Shards) == s.Shard {
			inStore[key(m.Segment, m.UserID)] = true
		}
	}
	entered := 0
	for m := range s.engine.Members() {
		if !slices.Contains(segs, m.Segment) {
			continue
		}
		if k := key(m.Segment, m.UserID); inStore[k] {
			delete(inStore, k)
		} else {
			s.pending = append(s.pending, segments.Change{Kind: segments.Enter, UserID: m.UserID, Segment: m.Segment, At: m.Since})
			entered++
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for k := range inStore {
		seg, user, _ := strings.Cut(k, "\x00")
		s.pending = append(s.pending, segments.Change{Kind: segments.Exit, UserID: user, Segment: seg, At: now})
	}
	s.Log.Info("segment memberships reconciled", "segments", segs, "entered", entered, "exited", len(inStore))
	return s.flush(ctx)
}

// loadHistory builds an engine for defs from this shard's users' events received
// before cut, which ClickHouse holds, and from the shard stream those received at
// or after cut up to stream offset upTo (what the live engine had applied before
// the rebuild began; none when upTo is negative), retrying while either fails. It
// returns nil when ctx ends first.
func (r *Runner) loadHistory(ctx context.Context, defs []segments.Definition, cut time.Time, upTo int64) *segments.Engine {
	var types []string
	var back time.Duration
	for _, d := range defs {
		for _, t := range d.EventTypes() {
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
		back = max(back, d.Retention()+d.TTL)
	}
	since := cut.Add(-back - r.Lateness).Truncate(time.Second)
	var wait time.Duration
	for attempt := 0; ; attempt++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		h, err := segments.NewEngine(defs, segments.Options{Lateness: r.Lateness, Skew: ingest.MaxSkew})
		if err != nil {
			return nil // the definitions were accepted by the session's engine
		}
		var offset int64
		err = r.History.Events(ctx, types, since, cut, func(ev segments.Event) error {
			if segments.Shard(ev.UserID, r.Shards) == r.Shard {
				ev.Offset = offset
				offset++
				h.Process(ev)
			}
			return nil
		})
		if err == nil && upTo >= 0 {
			err = r.replayStream(ctx, h, types, cut, upTo)
		}
		if err == nil {
			return h
		}
		if ctx.Err() == nil {
			r.Log.Warn("reading stored events for a rebuild failed; retrying", "err", err)
		}
		wait = min(time.Duration(attempt+1)*5*time.Second, time.Minute)
	}
}

// replayIdle is how long replayStream waits for a message before it concludes
// that the stream holds nothing more up to its offset.
const replayIdle = 5 * time.Second

// replayStream feeds h the events of the given types in this shard's stream that
// were received at or after cut, reading from the first message published Skew
// before cut (an event is published after its receipt, by clocks that may
// disagree) up to offset upTo, which must hold an event received at or after cut
// (so that the stream has something to deliver).
func (r *Runner) replayStream(ctx context.Context, h *segments.Engine, types []string, cut time.Time, upTo int64) error {
	conn, err := amqpbus.Dial(r.URL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := declareShard(ch, r.Shard); err != nil {
		return err
	}
	if err := ch.Qos(r.Prefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.Consume(ShardQueue(r.Shard), "", false, false, false, false, amqp.Table{"x-stream-offset": cut.Add(-r.Skew)})
	if err != nil {
		return err
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	from := cut.UnixMilli()
	for n := 1; ; n++ {
		var d amqp.Delivery
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-closed:
			return fmt.Errorf("broker connection closed: %v", err)
		case <-time.After(replayIdle):
			// Messages the stream holds come at once: none means the read began
			// after upTo (receipts far ahead of the broker's clock), with nothing
			// before it left to read.
			return nil
		case d = <-deliveries:
		}
		offset, ok := d.Headers["x-stream-offset"].(int64)
		if !ok {
			return fmt.Errorf("a %s message without x-stream-offset", ShardQueue(r.Shard))
		}
		if offset > upTo {
			return nil // the live engine applies it
		}
		var batch []routed
		if json.Unmarshal(d.Body, &batch) == nil {
			for i := range batch {
				if batch[i].R >= from && slices.Contains(types, batch[i].T) {
					h.Process(batch[i].event())
				}
			}
		}
		if offset == upTo {
			return nil
		}
		if n%max(r.Prefetch/2, 1) == 0 {
			if err := ch.Ack(d.DeliveryTag, true); err != nil { // stream credit
				return err
			}
		}
	}
}
