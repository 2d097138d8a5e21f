package amqprunner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/amqprunner"
	"github.com/liftlab/lift/segments/pgstore"
	"github.com/liftlab/lift/segments/segmenttest"
)

// timedStore measures, for every Enter it stores, the time since the publish of the
// message holding the user's latest event.
type timedStore struct {
	*pgstore.Store
	sent []atomic.Int64 // per user index: Unix ns of the publish of their latest event
	mu   sync.Mutex
	lat  []time.Duration
	done map[string]bool // users seen entering
	// applying is the time spent in Apply, for applied changes.
	applying time.Duration
	applied  int
}

func (s *timedStore) Apply(ctx context.Context, changes []segments.Change) error {
	start := time.Now()
	if err := s.Store.Apply(ctx, changes); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applying += time.Duration(now - start.UnixNano())
	s.applied += len(changes)
	for _, c := range changes {
		if c.Kind != segments.Enter {
			continue
		}
		s.done[c.UserID] = true
		if i, err := strconv.Atoi(strings.TrimPrefix(c.UserID, "user-")); err == nil && i < len(s.sent) {
			if at := s.sent[i].Load(); at > 0 {
				s.lat = append(s.lat, time.Duration(now-at))
			}
		}
	}
	return nil
}

func (s *timedStore) entered(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[user]
}

// BenchmarkPipeline drives the whole segment path on the real services: shop events
// for 100,000 users under the ten benchmark rules, packed 100 to a message as the
// collector packs them, published to lift.events, split by the router into two shard
// streams, evaluated by two engines (one per shard, in this process) and stored in
// Postgres. It reports the throughput of the path and the latency from the publish of
// the event that makes a user enter a segment to the membership being stored (what
// decisions then read within a NOTIFY): "burst" publishes everything at once (the
// throughput is the path's capacity; latencies include the backlog), "paced" at a
// steady 10,000 events/s (latencies under a load the path sustains).
func BenchmarkPipeline(b *testing.B) {
	b.Run("burst", func(b *testing.B) { pipeline(b, 0) })
	b.Run("paced", func(b *testing.B) { pipeline(b, 10_000) })
}

// pipeline runs the benchmark, publishing rate events/s (0: as fast as confirmed).
func pipeline(b *testing.B, rate int) {
	const users, events, shards = 100_000, 300_000, 2
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	amqpURL := testenv.AMQPURL(b)
	store := &timedStore{Store: pgstore.New(pool), sent: make([]atomic.Int64, users), done: map[string]bool{}}
	defs := segmenttest.Definitions(b)
	definitions := func(context.Context) ([]segments.Definition, string, error) { return defs, "bench", nil }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { stop(); wg.Wait() })
	router := &amqprunner.Router{URL: amqpURL, Shards: shards, Store: pgstore.New(pool), Log: log}
	wg.Go(func() { router.Run(ctx) })
	for shard := range shards {
		r := &amqprunner.Runner{URL: amqpURL, Store: store, Definitions: definitions, Log: log, Shard: shard, Shards: shards}
		wg.Go(func() { r.Run(ctx) })
	}
	testenv.Eventually(b, 30*time.Second, "both engines", func() bool {
		var n int
		_ = pool.QueryRow(ctx, "SELECT count(*) FROM segment_checkpoints").Scan(&n)
		return n == shards
	})

	// The messages, built before the clock starts.
	type wire struct {
		ID         string          `json:"event_id,omitempty"` // as the collector sends them
		Type       string          `json:"type"`
		UserID     string          `json:"user_id"`
		Timestamp  time.Time       `json:"timestamp"`
		Value      float64         `json:"value,omitempty"`
		Properties json.RawMessage `json:"properties,omitempty"`
	}
	src := segmenttest.NewSource(users, time.Now().UTC())
	type message struct {
		body  []byte
		users []int
	}
	var msgs []message
	for len(msgs)*100 < events {
		var batch []wire
		var idx []int
		for range 100 {
			i := src.R.IntN(users)
			e := src.Next(i)
			batch = append(batch, wire{ID: uuid.NewString(), Type: e.Type, UserID: e.UserID, Timestamp: e.Time, Value: e.Value, Properties: e.Properties})
			idx = append(idx, i)
		}
		body, _ := json.Marshal(batch)
		msgs = append(msgs, message{body, idx})
	}
	// Last, a marker per shard: three views, to know when everything before is in.
	var markers []string
	for i := 0; len(markers) < shards; i++ {
		if u := fmt.Sprint("marker-", i); segments.Shard(u, shards) == len(markers) {
			markers = append(markers, u)
			now := time.Now().UTC()
			body, _ := json.Marshal([]wire{{Type: "product_view", UserID: u, Timestamp: now}, {Type: "product_view", UserID: u, Timestamp: now},
				{Type: "product_view", UserID: u, Timestamp: now}})
			msgs = append(msgs, message{body: body})
		}
	}
	ch := testenv.AMQPChannel(b, amqpURL, amqpbus.Declare)

	b.ResetTimer()
	start := time.Now()
	var pending []*amqp.DeferredConfirmation
	for n, m := range msgs {
		if rate > 0 {
			if wait := time.Until(start.Add(time.Duration(n*100) * time.Second / time.Duration(rate))); wait > 0 {
				time.Sleep(wait)
			}
		}
		at := time.Now().UnixNano()
		for _, i := range m.users {
			store.sent[i].Store(at)
		}
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, amqpbus.Exchange, "product_view", false, false,
			amqp.Publishing{ContentType: "application/json", Body: m.body})
		if err != nil {
			b.Fatal(err)
		}
		if pending = append(pending, c); len(pending) == 64 {
			for _, c := range pending {
				if !c.Wait() {
					b.Fatal("the broker refused a message")
				}
			}
			pending = pending[:0]
		}
	}
	for _, c := range pending {
		c.Wait()
	}
	published := time.Since(start)
	deadline := time.Now().Add(10 * time.Minute)
	for !store.entered(markers[0]) || !store.entered(markers[1]) {
		if time.Now().After(deadline) {
			b.Fatal("the markers never entered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	store.mu.Lock()
	lat := slices.Clone(store.lat)
	store.mu.Unlock()
	slices.Sort(lat)
	b.ReportMetric(float64(len(msgs)*100)/elapsed.Seconds(), "events/s")
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
	}
	b.Logf("%d events for %d users in %v (published in %v), %d enters stored; %d changes stored in %v",
		len(msgs)*100, users, elapsed.Round(time.Millisecond), published.Round(time.Millisecond), len(lat),
		store.applied, store.applying.Round(time.Millisecond))
}
