// Package pgstore keeps behavioural segment memberships and the segment engine's
// checkpoints in PostgreSQL, and lets decision processes follow membership changes.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/pglisten"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/webhooks"
)

// Store implements the engine's membership sink and checkpoint store.
type Store struct {
	pool *pgxpool.Pool
	// WebhookGuard decides which IP addresses a webhook URL may name when it is
	// saved (nil: public ones only); the dispatcher checks every connection again.
	WebhookGuard *webhooks.Guard
}

// New returns a Store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Apply records membership changes and, in the same transaction, queues each real
// change for the webhooks that want it (the outbox of segments/webhooks), so a change
// is neither lost nor held up by a receiver. It is idempotent: the engine emits the
// changes since its last checkpoint again after a restart, and a change the table
// already shows (same kind and time) is neither written nor sent again. Preview
// memberships (keys with segments.PreviewSuffix) are never sent.
func (s *Store) Apply(ctx context.Context, changes []segments.Change) error {
	if len(changes) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	// Followers read rows by seq, so the transactions that take seq numbers must
	// commit in their order: one at a time (the shards' engines write
	// concurrently), or a follower could pass a number whose row is not yet visible
	// and never see it.
	b.Queue("SELECT pg_advisory_xact_lock($1)", membershipsLock)
	// One statement per kind of change and round: a round holds at most one change
	// per membership (an upsert may touch a row once), so a user entering and
	// leaving within one batch takes two rounds, in order.
	for _, round := range rounds(changes) {
		for _, kind := range []segments.ChangeKind{segments.Enter, segments.Exit} {
			var segs, users []string
			var at []time.Time
			var expires []*time.Time
			for _, c := range round {
				if c.Kind != kind {
					continue
				}
				var e *time.Time
				if !c.Expiry.IsZero() {
					e = &c.Expiry
				}
				segs, users, at, expires = append(segs, c.Segment), append(users, c.UserID), append(at, c.At), append(expires, e)
			}
			if len(segs) > 0 {
				b.Queue(applySQL[kind], segs, users, at, expires)
			}
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	if err != nil {
		return fmt.Errorf("pgstore: apply %d membership changes: %w", len(changes), err)
	}
	return nil
}

// rounds splits changes, in order, into rounds with at most one change per
// membership each.
func rounds(changes []segments.Change) [][]segments.Change {
	type key struct{ segment, user string }
	next := make(map[key]int, len(changes))
	var out [][]segments.Change
	for _, c := range changes {
		k := key{c.Segment, c.UserID}
		r := next[k]
		next[k] = r + 1
		if r == len(out) {
			out = append(out, nil)
		}
		out[r] = append(out[r], c)
	}
	return out
}

// membershipsLock serialises the transactions that write memberships (an arbitrary
// key, distinct from the other advisory locks lift takes).
const membershipsLock int64 = 0x6c6966747365676d // "liftsegm"

// applySQL writes a round of enters or exits ($1 segments, $2 users, $3 times, $4
// expiries) and queues for the webhooks that want it each change the table did not
// already show.
var applySQL = map[segments.ChangeKind]string{
	segments.Enter: `WITH c AS (SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS c(segment, user_id, at, expires)),
		m AS (INSERT INTO segment_memberships AS t (segment, user_id, member, entered_at, exited_at, expires_at)
			SELECT segment, user_id, true, at, NULL, expires FROM c
			ON CONFLICT (segment, user_id) DO UPDATE SET member = true, entered_at = EXCLUDED.entered_at, exited_at = NULL,
				expires_at = EXCLUDED.expires_at, seq = nextval('segment_membership_seq')
			WHERE NOT (t.member AND t.entered_at = EXCLUDED.entered_at)
			RETURNING t.segment, t.user_id, t.entered_at AS at, t.expires_at)
		` + queueWebhooks("enter"),
	segments.Exit: `WITH c AS (SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS c(segment, user_id, at, expires)),
		m AS (INSERT INTO segment_memberships AS t (segment, user_id, member, exited_at)
			SELECT segment, user_id, false, at FROM c
			ON CONFLICT (segment, user_id) DO UPDATE SET member = false, exited_at = EXCLUDED.exited_at,
				seq = nextval('segment_membership_seq')
			WHERE NOT (NOT t.member AND t.exited_at = EXCLUDED.exited_at)
			RETURNING t.segment, t.user_id, t.exited_at AS at, NULL::timestamptz AS expires_at)
		` + queueWebhooks("exit"),
}

// queueWebhooks follows a CTE m of the changed memberships (segment, user_id, at,
// expires_at); previews are never sent.
func queueWebhooks(kind string) string {
	return `INSERT INTO segment_webhook_outbox (webhook, kind, segment, user_id, at, expires_at)
		SELECT w.key, '` + kind + `', m.segment, m.user_id, m.at, m.expires_at
		FROM m JOIN segment_webhooks w ON w.enabled AND (cardinality(w.segments) = 0 OR m.segment = ANY (w.segments))
		WHERE strpos(m.segment, '` + segments.PreviewSuffix + `') = 0`
}

// ErrNotOwner is returned by SaveCheckpoint when the process no longer holds the
// shard's lock: another process may own the shard by now, and its checkpoint must
// not be overwritten with an older state.
var ErrNotOwner = errors.New("pgstore: the shard's lock is no longer held")

// SaveCheckpoint stores a shard's engine state, only while the lock session owner
// (its backend pid, see Shards) holds the shard; owner 0 skips that check. It returns
// ErrNotOwner otherwise.
func (s *Store) SaveCheckpoint(ctx context.Context, shard int, owner int32, cp segments.Checkpoint) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO segment_checkpoints (shard, definitions, shards, stream_offset, state)
		SELECT $1, $2, $3, $4, $5 WHERE $6 = 0 OR `+holdsShard+`
		ON CONFLICT (shard) DO UPDATE SET definitions = $2, shards = $3, stream_offset = $4, state = $5, saved_at = now()`,
		shard, cp.Definitions, cp.Shards, cp.StreamOffset, cp.State, owner)
	if err != nil {
		return fmt.Errorf("pgstore: save checkpoint of shard %d: %w", shard, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: save checkpoint of shard %d: %w", shard, ErrNotOwner)
	}
	return nil
}

// LoadCheckpoint returns a shard's last checkpoint, or ok false if there is none.
func (s *Store) LoadCheckpoint(ctx context.Context, shard int) (cp segments.Checkpoint, ok bool, err error) {
	err = s.pool.QueryRow(ctx, "SELECT definitions, shards, stream_offset, state FROM segment_checkpoints WHERE shard = $1", shard).
		Scan(&cp.Definitions, &cp.Shards, &cp.StreamOffset, &cp.State)
	if errors.Is(err, pgx.ErrNoRows) {
		return segments.Checkpoint{}, false, nil
	}
	if err != nil {
		return segments.Checkpoint{}, false, fmt.Errorf("pgstore: load checkpoint of shard %d: %w", shard, err)
	}
	return cp, true, nil
}

// Members returns the stored members of the given segments (to reconcile an engine
// rebuilt or redefined with what decisions see).
func (s *Store) Members(ctx context.Context, segs []string) ([]segments.Membership, error) {
	rows, err := s.pool.Query(ctx, `SELECT segment, user_id, coalesce(entered_at, 'epoch') FROM segment_memberships
		WHERE member AND segment = ANY($1)`, segs)
	if err != nil {
		return nil, fmt.Errorf("pgstore: members of %v: %w", segs, err)
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (segments.Membership, error) {
		var m segments.Membership
		err := row.Scan(&m.Segment, &m.UserID, &m.Since)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: members of %v: %w", segs, err)
	}
	return ms, nil
}

// RouterOffset returns the last lift.segments offset the router has confirmed in the
// shard streams, or ok false before its first save.
func (s *Store) RouterOffset(ctx context.Context) (offset int64, ok bool, err error) {
	err = s.pool.QueryRow(ctx, "SELECT source_offset FROM segment_router").Scan(&offset)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("pgstore: router offset: %w", err)
	}
	return offset, true, nil
}

// SaveRouterOffset records the router's progress.
func (s *Store) SaveRouterOffset(ctx context.Context, offset int64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO segment_router (source_offset) VALUES ($1)
		ON CONFLICT (id) DO UPDATE SET source_offset = $1, saved_at = now()`, offset)
	if err != nil {
		return fmt.Errorf("pgstore: save router offset: %w", err)
	}
	return nil
}

// Membership is one row of the membership table.
type Membership struct {
	Segment, UserID string
	Member          bool
	Seq             int64
}

// Since returns the memberships changed after seq, in seq order, at most limit.
func (s *Store) Since(ctx context.Context, seq int64, limit int) ([]Membership, error) {
	rows, err := s.pool.Query(ctx, `SELECT segment, user_id, member, seq FROM segment_memberships
		WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: memberships since %d: %w", seq, err)
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Membership, error) {
		var m Membership
		err := row.Scan(&m.Segment, &m.UserID, &m.Member, &m.Seq)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: memberships since %d: %w", seq, err)
	}
	return ms, nil
}

// Set receives membership rows.
type Set interface {
	Set(segment, userID string, member bool)
}

// Follow keeps set in step with the table: it loads every row, then fetches the
// rows changed since the last one seen whenever a NOTIFY arrives and every interval
// (in case one is missed), until ctx ends.
func (s *Store) Follow(ctx context.Context, connString string, set Set, interval time.Duration, log *slog.Logger) {
	follow(ctx, connString, "lift_memberships", "following segment memberships", interval, log, func(ctx context.Context, last int64) (int, int64, error) {
		ms, err := s.Since(ctx, last, followPage)
		if err != nil {
			return 0, last, err
		}
		for _, m := range ms {
			set.Set(m.Segment, m.UserID, m.Member)
			last = m.Seq
		}
		return len(ms), last, nil
	})
}

// followPage is how many rows follow reads at a time.
const followPage = 10_000

// follow calls page with the sequence number of the last row seen, from 0, until a
// page is short, then again whenever a NOTIFY on channel arrives and every interval
// (in case one is missed), until ctx ends; errors are logged as what. page returns how many rows it read and
// the last one's sequence number.
func follow(ctx context.Context, connString, channel, what string, interval time.Duration, log *slog.Logger,
	page func(ctx context.Context, last int64) (int, int64, error)) {
	wake := make(chan struct{}, 1)
	go pglisten.Wake(ctx, connString, channel, wake, log)
	var last int64
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		for {
			n, seen, err := page(ctx, last)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn(what, "err", err)
				}
				break
			}
			last = seen
			if n < followPage {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}

// Stats counts a segment's members now and its entries and exits over the last hour.
func (s *Store) Stats(ctx context.Context, segment string) (segments.MembershipStats, error) {
	st := segments.MembershipStats{Segment: segment}
	err := s.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE member),
		       count(*) FILTER (WHERE member AND entered_at > now() - interval '1 hour'),
		       count(*) FILTER (WHERE NOT member AND exited_at > now() - interval '1 hour')
		FROM segment_memberships WHERE segment = $1`, segment).Scan(&st.Members, &st.EnteredHour, &st.ExitedHour)
	if err != nil {
		return segments.MembershipStats{}, fmt.Errorf("pgstore: stats of segment %q: %w", segment, err)
	}
	return st, nil
}
