package chsink_test

import (
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
	"github.com/liftlab/lift/migrations"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/amqprunner"
	"github.com/liftlab/lift/segments/chsink"
	"github.com/liftlab/lift/segments/pgstore"
)

// capture passes changes to the ClickHouse log and remembers what it recorded.
type capture struct {
	log *chsink.Log
	mu  sync.Mutex
	all []segments.Change
}

func (c *capture) Record(ctx context.Context, changes []segments.Change) error {
	if err := c.log.Record(ctx, changes); err != nil {
		return err
	}
	c.mu.Lock()
	c.all = append(c.all, changes...)
	c.mu.Unlock()
	return nil
}

func (c *capture) recorded() []segments.Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]segments.Change(nil), c.all...)
}

type row struct {
	ts, expires         time.Time
	user, segment, kind string
}

// TestRunnerRecordsChanges runs the segment engine on the real broker with the
// ClickHouse change log and checks segment_changes: one row per enter and exit, with
// event times and expiry, and no duplicates when the same changes are recorded again
// (as an engine restarted from an older checkpoint re-emits them). On a cluster the
// rows go through the Distributed table to their user's shard, where FINAL collapses
// them.
func TestRunnerRecordsChanges(t *testing.T) {
	t.Parallel()
	testenv.ClickHouseEach(t, runnerRecordsChanges)
}

func runnerRecordsChanges(t *testing.T, addr, db string) {
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
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
	changes := &capture{log: log}

	// Two views within a minute enter; the membership ends a minute after the
	// first of them leaves the window (ttl 1m).
	rule, err := segments.ParseRuleJSON([]byte(`{"event":"product_view","count_gte":2,"within":"1m"}`))
	if err != nil {
		t.Fatal(err)
	}
	defs := func(context.Context) ([]segments.Definition, string, error) {
		return []segments.Definition{{Key: "keen", Rule: rule, TTL: time.Minute}}, "keen@1", nil
	}

	ch := testenv.AMQPChannel(t, amqpURL, amqpbus.Declare)
	// Event times an hour ago, each event carrying its own received_at so the
	// engine's watermark follows them.
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	publish := func(user string, at time.Duration) {
		t.Helper()
		ts := base.Add(at).Format(time.RFC3339Nano)
		body := fmt.Sprintf(`{"type":"product_view","user_id":%q,"timestamp":%q,"received_at":%q}`, user, ts, ts)
		err := ch.PublishWithContext(context.Background(), amqpbus.Exchange, "product_view", false, false,
			amqp.Publishing{ContentType: "application/json", Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
	}
	publish("u1", 0)                           // u1 enters at 0:10; the rule stops holding at 1:00,
	publish("u1", 10*time.Second)              // so the membership expires, and u1 exits, at 2:00
	publish("u2", 5*time.Second)               // u2: one view, never enters
	publish("u3", 20*time.Second)              // u3 enters at 0:30 (expiry 2:20) and exits at 2:20,
	publish("u3", 30*time.Second)              //
	publish("u3", 4*time.Minute)               // once these move the watermark to 3:00;
	publish("u3", 4*time.Minute+5*time.Second) // and enters again at 4:05 (expiry 6:00)

	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	router := &amqprunner.Router{URL: amqpURL, Shards: 1, Store: pgstore.New(pool), Log: discard}
	runner := &amqprunner.Runner{URL: amqpURL, Store: pgstore.New(pool), Changes: changes, Definitions: defs,
		Log: discard, CheckpointEvery: 100 * time.Millisecond}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { router.Run(ctx); done <- struct{}{} }()
	go func() { runner.Run(ctx); done <- struct{}{} }()
	defer func() { stop(); <-done; <-done }()

	never := time.Unix(0, 0).UTC()
	// In the table's order: segment, user_id, kind, ts.
	want := []row{
		{ts: base.Add(10 * time.Second), expires: base.Add(2 * time.Minute), user: "u1", segment: "keen", kind: "enter"},
		{ts: base.Add(2 * time.Minute), expires: never, user: "u1", segment: "keen", kind: "exit"},
		{ts: base.Add(30 * time.Second), expires: base.Add(2*time.Minute + 20*time.Second), user: "u3", segment: "keen", kind: "enter"},
		{ts: base.Add(4*time.Minute + 5*time.Second), expires: base.Add(6 * time.Minute), user: "u3", segment: "keen", kind: "enter"},
		{ts: base.Add(2*time.Minute + 20*time.Second), expires: never, user: "u3", segment: "keen", kind: "exit"},
	}
	q := migrations.OpenClickHouse(addr, db)
	defer q.Close()
	read := func() []row {
		t.Helper()
		// With a WHERE, as analysts read: on an 18.16 cluster FINAL and ORDER BY
		// without one fail (docs/deploy.md).
		rows, err := q.QueryContext(context.Background(), `SELECT ts, expires_at, user_id, segment, kind
			FROM segment_changes FINAL WHERE segment = 'keen' ORDER BY segment, user_id, kind, ts`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.ts, &r.expires, &r.user, &r.segment, &r.kind); err != nil {
				t.Fatal(err)
			}
			r.ts, r.expires = r.ts.UTC(), r.expires.UTC()
			got = append(got, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if !testenv.Poll(30*time.Second, func() bool { return len(read()) >= len(want) }) {
		t.Fatalf("%d rows after 30 s, want %d: %+v", len(read()), len(want), read())
	}
	check := func(when string) {
		t.Helper()
		got := read()
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d:\n got %+v\nwant %+v", when, len(got), len(want), got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: row %d = %+v, want %+v", when, i, got[i], want[i])
			}
		}
	}
	check("after the run")
	// The same flush applies them to Postgres, just after: u3 is a member, u1 no longer.
	pgMembers := func() []string {
		t.Helper()
		rows, err := pool.Query(context.Background(), "SELECT user_id FROM segment_memberships WHERE member ORDER BY user_id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	var m []string
	if !testenv.Poll(30*time.Second, func() bool { m = pgMembers(); return len(m) == 1 && m[0] == "u3" }) {
		t.Fatalf("Postgres members %v, want [u3]", m)
	}

	// A restarted engine emits the changes since its checkpoint again.
	time.Sleep(1100 * time.Millisecond) // a later recorded_at
	if err := log.Record(context.Background(), changes.recorded()); err != nil {
		t.Fatal(err)
	}
	check("after re-recording")
	var raw uint64
	if err := q.QueryRowContext(context.Background(), "SELECT count() FROM segment_changes").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows before FINAL", raw)
}
