package amqprunner_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/amqprunner"
	"github.com/liftlab/lift/segments/pgstore"
)

// A shard checkpoint saved while a client's received_at in 2105 still counted holds
// a watermark in 2105: restored as it was, every event after the restart was late
// and nobody entered a segment again, and the lag reported was negative. On the real
// services (RabbitMQ streams, Postgres), the runner repairs it on load: mallory's
// 2105 membership ends, a user with three views enters, and the lag stays ≥ 0 even
// for an event received by a clock two minutes ahead.
func TestRunnerRepairsFutureCheckpoint(t *testing.T) {
	t.Parallel()
	pgURL := testenv.Postgres(t)
	amqpURL := testenv.AMQPURL(t)
	pool, err := pgxpool.New(context.Background(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rule, err := segments.ParseRuleJSON([]byte(`{"event":"product_view","count_gte":3,"within":"10m"}`))
	if err != nil {
		t.Fatal(err)
	}
	defList := []segments.Definition{{Key: "high-intent", Rule: rule, TTL: 5 * time.Minute}}
	defs := func(context.Context) ([]segments.Definition, string, error) { return defList, "high-intent@1", nil }
	store := pgstore.New(pool)

	// What the engine saved before the fix: mallory in High Intent in 2105.
	future := time.Date(2105, 6, 1, 0, 0, 0, 0, time.UTC)
	var enters []segments.Change
	old, err := segments.NewEngine(defList, segments.Options{Now: func() time.Time { return future.Add(time.Hour) },
		OnChange: func(c segments.Change) { enters = append(enters, c) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		at := future.Add(time.Duration(i) * time.Second)
		old.Process(segments.Event{Offset: int64(i), UserID: "mallory", Type: "product_view", Time: at, ReceivedAt: at})
	}
	old.SetOffset(-1) // those events were not from the shard stream this state resumes
	var state bytes.Buffer
	if err := old.Snapshot(&state); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Apply(ctx, enters); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveCheckpoint(ctx, 0, 0, segments.Checkpoint{Definitions: "high-intent@1", Shards: 1, StreamOffset: -1, State: state.Bytes()}); err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ch := testenv.AMQPChannel(t, amqpURL, amqpbus.Declare)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	router := &amqprunner.Router{URL: amqpURL, Shards: 1, Store: store, Log: log}
	wg.Go(func() { router.Run(runCtx) })
	var (
		mu        sync.Mutex
		processed uint64
		lags      []time.Duration
	)
	shards := &pgstore.Shards{ConnString: pgURL, Count: 1, Log: log, Every: 100 * time.Millisecond,
		Shard: func(ctx context.Context, shard int, owner int32) {
			r := &amqprunner.Runner{URL: amqpURL, Store: pgstore.New(pool), Definitions: defs, Log: log,
				Shard: shard, Shards: 1, Owner: owner, FlushEvery: 20 * time.Millisecond, CheckpointEvery: 100 * time.Millisecond,
				Observe: func(_ int, s segments.Stats, _ int, lag time.Duration) {
					mu.Lock()
					processed = s.Processed
					lags = append(lags, lag)
					mu.Unlock()
				}}
			r.Run(ctx)
		}}
	wg.Go(func() { shards.Run(runCtx) })

	member := func(user string) bool {
		var m bool
		_ = pool.QueryRow(ctx, "SELECT member FROM segment_memberships WHERE segment = 'high-intent' AND user_id = $1", user).Scan(&m)
		return m
	}
	testenv.Eventually(t, 30*time.Second, "mallory's 2105 membership to end", func() bool { return !member("mallory") })

	publish := func(user string, at time.Time) {
		t.Helper()
		body := fmt.Sprintf(`{"type":"product_view","user_id":%q,"timestamp":%q,"received_at":%q}`, user,
			at.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
		if err := ch.PublishWithContext(ctx, amqpbus.Exchange, "product_view", false, false,
			amqp.Publishing{ContentType: "application/json", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	for i := range 3 {
		publish("u1", now.Add(time.Duration(i)*time.Millisecond))
	}
	testenv.Eventually(t, 30*time.Second, "u1 to enter High Intent", func() bool { return member("u1") })

	// A backend whose clock is two minutes ahead: within the skew, so it counts, and
	// the lag it reports is zero rather than minus two minutes.
	publish("ahead", time.Now().UTC().Add(2*time.Minute))
	mu.Lock()
	lags = nil
	mu.Unlock()
	testenv.Eventually(t, 30*time.Second, "the engine to apply it and report", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return processed >= 4 && len(lags) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	for _, lag := range lags {
		if lag < 0 {
			t.Errorf("lag %v, want ≥ 0", lag)
		}
	}
}
