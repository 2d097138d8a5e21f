package chsink_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/amqprunner"
	"github.com/liftlab/lift/segments/chsink"
	"github.com/liftlab/lift/segments/pgstore"
)

// TestRunnerPublishesFeatures runs the segment engine with features on the real
// broker: every new value reaches Postgres, where a decision process's follower
// picks it up, and ClickHouse feature_values; a runner restarted from its checkpoint
// goes on from the values it had, and values published again collapse in ClickHouse,
// on one server and on a cluster.
func TestRunnerPublishesFeatures(t *testing.T) {
	t.Parallel()
	testenv.ClickHouseEach(t, runnerPublishesFeatures)
}

func runnerPublishesFeatures(t *testing.T, addr, db string) {
	pgURL := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	amqpURL := testenv.AMQPURL(t)
	log, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()

	var defs []segments.Definition
	for key, def := range map[string]string{
		"views":  `{"kind":"count","event":"product_view","within":"10m"}`,
		"recent": `{"kind":"last_n","event":["product_view","add_to_cart"],"property":"sku","n":3,"within":"1h"}`,
	} {
		f, err := segments.ParseFeatureJSON([]byte(def))
		if err != nil {
			t.Fatal(err)
		}
		defs = append(defs, segments.Definition{Key: segments.FeaturePrefix + key, Feature: f})
	}
	definitions := func(context.Context) ([]segments.Definition, string, error) { return defs, "features@1", nil }

	ch := testenv.AMQPChannel(t, amqpURL, amqpbus.Declare)
	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	publish := func(user, typ, sku string, at time.Duration) {
		t.Helper()
		ts := base.Add(at).Format(time.RFC3339Nano)
		body := fmt.Sprintf(`{"type":%q,"user_id":%q,"timestamp":%q,"received_at":%q,"properties":{"sku":%q}}`, typ, user, ts, ts, sku)
		if err := ch.PublishWithContext(context.Background(), amqpbus.Exchange, typ, false, false,
			amqp.Publishing{ContentType: "application/json", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}

	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := pgstore.New(pool)
	run := func() (stop func()) {
		router := &amqprunner.Router{URL: amqpURL, Shards: 1, Store: store, Log: discard}
		runner := &amqprunner.Runner{URL: amqpURL, Store: store, Features: store, FeatureLog: log, Definitions: definitions,
			Log: discard, CheckpointEvery: 100 * time.Millisecond}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		go func() { router.Run(ctx); done <- struct{}{} }()
		go func() { runner.Run(ctx); done <- struct{}{} }()
		return func() { cancel(); <-done; <-done }
	}
	set := experiments.NewFeatureSet()
	followCtx, stopFollow := context.WithCancel(context.Background())
	defer stopFollow()
	go store.FollowFeatures(followCtx, pgURL, set, time.Second, discard)

	waitFor := func(user, feature, want string) {
		t.Helper()
		var got string
		if !testenv.Poll(30*time.Second, func() bool {
			v, ok := set.FeatureValue(user, segments.FeaturePrefix+feature)
			got = fmt.Sprint(v)
			if !ok {
				got = "(default)"
			}
			return got == want
		}) {
			t.Fatalf("%s of %s = %s, want %s", feature, user, got, want)
		}
	}

	stop := run()
	publish("u1", "product_view", "a", 0)
	publish("u1", "product_view", "b", time.Second)
	publish("u1", "add_to_cart", "a", 2*time.Second)
	publish("u2", "product_view", "c", 3*time.Second)
	waitFor("u1", "views", "2")
	waitFor("u1", "recent", "[a b]")
	waitFor("u2", "recent", "[c]")
	stop()

	// Restarted from its checkpoint, the engine goes on from there.
	publish("u1", "product_view", "d", 4*time.Second)
	stop = run()
	defer stop()
	waitFor("u1", "recent", "[d a b]")
	waitFor("u1", "views", "3")

	q := migrations.OpenClickHouse(addr, db)
	defer q.Close()
	read := func() []string {
		// With a WHERE, as analysts read: on an 18.16 cluster FINAL and ORDER BY
		// without one fail (docs/deploy.md).
		rows, err := q.QueryContext(context.Background(), `SELECT user_id, feature, value FROM feature_values FINAL
			WHERE feature IN ('features.recent', 'features.views') ORDER BY feature, user_id, ts, ts_ms`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var user, feature, value string
			if err := rows.Scan(&user, &feature, &value); err != nil {
				t.Fatal(err)
			}
			got = append(got, user+" "+feature+" "+value)
		}
		return got
	}
	want := []string{
		`u1 features.recent ["a"]`, `u1 features.recent ["b","a"]`, `u1 features.recent ["a","b"]`, `u1 features.recent ["d","a","b"]`,
		`u2 features.recent ["c"]`,
		`u1 features.views 1`, `u1 features.views 2`, `u1 features.views 3`,
		`u2 features.views 1`,
	}
	var got []string
	if !testenv.Poll(30*time.Second, func() bool { got = read(); return slices.Equal(got, want) }) {
		t.Fatalf("feature_values:\n got %q\nwant %q", got, want)
	}
}
