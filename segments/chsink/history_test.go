package chsink_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	ingestsink "github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/amqprunner"
	"github.com/liftlab/lift/segments/chsink"
	"github.com/liftlab/lift/segments/pgstore"
)

// A segment engine without a checkpoint (or given a new rule) rebuilds from the
// events stored in ClickHouse within the rule's window, then goes on with the live
// stream, counting each event once: an event both stored and still in the stream
// (received before the rebuild's cut) counts from storage only. Events stored
// without consent to personalisation do not count. On a cluster the rebuild reads
// every shard through the Distributed events table, FINAL included.
func TestRebuildFromClickHouse(t *testing.T) {
	t.Parallel()
	testenv.ClickHouseEach(t, rebuildFromClickHouse)
}

func rebuildFromClickHouse(t *testing.T, addr, db string) {
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	amqpURL := testenv.AMQPURL(t)
	ctx := context.Background()

	// What the ingest consumers stored before this engine started.
	sink, err := ingestsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	now := time.Now().UTC().Truncate(time.Second)
	view := func(user string, ago time.Duration) ingest.Event {
		at := now.Add(-ago)
		return ingest.Event{ID: uuid.New(), Type: "product_view", UserID: user, Timestamp: at, ReceivedAt: at}
	}
	straggler := view("dup", 2*time.Minute)
	stored := []ingest.Event{
		view("stored3", 3*time.Minute), view("stored3", 2*time.Minute), view("stored3", time.Minute), // member
		view("stored2", 3*time.Minute), view("stored2", 2*time.Minute), // + one live view: member
		view("dup", 3*time.Minute), straggler, // two views, one of them also in the stream
		view("old", 40*time.Minute), view("old", 35*time.Minute), view("old", 31*time.Minute), // out of the window
		{ID: uuid.New(), Type: "purchase", UserID: "stored3", Timestamp: now, ReceivedAt: now}, // another type
	}
	// Three views, stored for analytics, but no consent to personalisation.
	for _, v := range []ingest.Event{view("private", 3*time.Minute), view("private", 2*time.Minute), view("private", time.Minute)} {
		v.Consent = &ingest.Consent{Analytics: true}
		stored = append(stored, v)
	}
	if err := sink.Insert(ctx, stored); err != nil {
		t.Fatal(err)
	}
	ch := testenv.AMQPChannel(t, amqpURL, amqpbus.Declare)
	publish := func(e ingest.Event) {
		t.Helper()
		body := fmt.Sprintf(`{"event_id":%q,"type":%q,"user_id":%q,"timestamp":%q,"received_at":%q}`, e.ID, e.Type, e.UserID,
			e.Timestamp.Format(time.RFC3339Nano), e.ReceivedAt.Format(time.RFC3339Nano))
		if err := ch.PublishWithContext(ctx, amqpbus.Exchange, e.Type, false, false,
			amqp.Publishing{ContentType: "application/json", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	publish(straggler) // late through the stream: the engine reads from a minute before its cut

	history, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer history.Close()
	rule, err := segments.ParseRuleJSON([]byte(`{"event":"product_view","count_gte":3,"within":"10m"}`))
	if err != nil {
		t.Fatal(err)
	}
	defs := func(context.Context) ([]segments.Definition, string, error) {
		return []segments.Definition{{Key: "high-intent", Rule: rule, TTL: 5 * time.Minute}}, "high-intent@1", nil
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	router := &amqprunner.Router{URL: amqpURL, Shards: 1, Store: pgstore.New(pool), Log: discard}
	runner := &amqprunner.Runner{URL: amqpURL, Store: pgstore.New(pool), History: history, Definitions: defs,
		Log: discard, RebuildDelay: 500 * time.Millisecond, CheckpointEvery: 100 * time.Millisecond}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { router.Run(runCtx); done <- struct{}{} }()
	go func() { runner.Run(runCtx); done <- struct{}{} }()
	defer func() { stop(); <-done; <-done }()

	members := func() []string {
		rows, err := pool.Query(ctx, "SELECT user_id FROM segment_memberships WHERE member AND segment = 'high-intent' ORDER BY user_id")
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			ids = append(ids, id)
		}
		return ids
	}
	deadline := time.Now().Add(30 * time.Second)
	if !testenv.Poll(time.Until(deadline), func() bool { return slices.Equal(members(), []string{"stored3"}) }) {
		t.Fatalf("members %v after the rebuild, want [stored3]", members())
	}
	// Live events now count with the stored ones.
	time.Sleep(time.Second) // received after the cut (whole seconds)
	publish(ingest.Event{ID: uuid.New(), Type: "product_view", UserID: "stored2", Timestamp: time.Now().UTC(), ReceivedAt: time.Now().UTC()})
	publish(ingest.Event{ID: uuid.New(), Type: "product_view", UserID: "dup", Timestamp: time.Now().UTC(), ReceivedAt: time.Now().UTC()})
	if !testenv.Poll(time.Until(deadline), func() bool { return slices.Equal(members(), []string{"dup", "stored2", "stored3"}) }) {
		t.Fatalf("members %v, want dup (2 stored views, one of them also streamed, and a live one), stored2 and stored3", members())
	}
	// dup entered with its live view, not before: the streamed copy of the stored
	// view did not count.
	var entered time.Time
	if err := pool.QueryRow(ctx, "SELECT entered_at FROM segment_memberships WHERE segment = 'high-intent' AND user_id = 'dup'").Scan(&entered); err != nil {
		t.Fatal(err)
	}
	if entered.Before(now) {
		t.Errorf("dup entered at %v, before its third distinct view", entered)
	}
}
