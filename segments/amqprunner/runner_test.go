package amqprunner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
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

// TestCrashRecovery cuts the engine's broker connection in the middle of a stream (as
// a crash would: no last checkpoint, unacknowledged deliveries go back to the queue),
// then starts a fresh engine. Memberships must equal an uninterrupted run's: users
// with three views in High Intent, users with two not — a double-counted event would
// push a two-view user in.
func TestCrashRecovery(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := pgstore.New(pool)
	direct := testenv.AMQPURL(t)
	u, _ := url.Parse(direct)
	proxy := testenv.NewProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.Addr()

	rule, err := segments.ParseRuleJSON([]byte(`{"event":"product_view","count_gte":3,"within":"10m"}`))
	if err != nil {
		t.Fatal(err)
	}
	defs := func(context.Context) ([]segments.Definition, string, error) {
		return []segments.Definition{{Key: "high-intent", Rule: rule, TTL: 5 * time.Minute}}, "high-intent@1", nil
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newRunner := func(amqpURL string) *amqprunner.Runner {
		return &amqprunner.Runner{URL: amqpURL, Store: store, Definitions: defs, Log: log,
			CheckpointEvery: 100 * time.Millisecond, Prefetch: 100}
	}

	// 600 users: even ones view three times, odd ones twice; one event per message.
	conn, err := amqp.Dial(direct)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := amqpbus.Declare(ch); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	const users = 600
	published := 0
	for round := range 3 {
		for i := range users {
			if i%2 == 1 && round == 2 {
				continue
			}
			body := fmt.Sprintf(`{"type":"product_view","user_id":"u%d","timestamp":%q}`, i,
				now.Add(time.Duration(round)*time.Second).Format(time.RFC3339Nano))
			err := ch.PublishWithContext(context.Background(), amqpbus.Exchange, "product_view", false, false,
				amqp.Publishing{ContentType: "application/json", Body: []byte(body)})
			if err != nil {
				t.Fatal(err)
			}
			published++
		}
	}

	members := func() int {
		var n int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM segment_memberships WHERE member").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ctxA, stopA := context.WithCancel(context.Background())
	doneA := make(chan struct{})
	go func() { newRunner(viaProxy.String()).Run(ctxA); close(doneA) }()
	deadline := time.Now().Add(30 * time.Second)
	for members() < 50 {
		if time.Now().After(deadline) {
			t.Fatal("the first engine made no progress")
		}
		time.Sleep(5 * time.Millisecond)
	}
	proxy.Cut() // the crash: no last checkpoint, deliveries unacknowledged
	stopA()
	<-doneA
	t.Logf("first engine stopped with %d members stored", members())

	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	go newRunner(direct).Run(ctxB)
	deadline = time.Now().Add(60 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive(amqpbus.SegmentsQueue, true, false, false, false,
			amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
		if err == nil && q.Messages == 0 && members() >= users/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %d members, %d messages left", members(), q.Messages)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a last flush
	rows, err := pool.Query(context.Background(), "SELECT user_id FROM segment_memberships WHERE member ORDER BY user_id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		got = append(got, id)
	}
	if len(got) != users/2 {
		t.Fatalf("%d members after the crash, want %d", len(got), users/2)
	}
	for _, id := range got {
		var n int
		fmt.Sscanf(strings.TrimPrefix(id, "u"), "%d", &n)
		if n%2 == 1 {
			t.Errorf("%s, a two-view user, is a member: an event was counted twice", id)
		}
	}
	t.Logf("%d events, %d members after recovery", published, len(got))
}
