package amqprunner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
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

const shards = 4

// ownership records which process runs which shard.
type ownership struct {
	mu     sync.Mutex
	owners map[int]string
	taken  map[string]int // shards each process has ever run
}

func (o *ownership) set(shard int, process string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if process == "" {
		delete(o.owners, shard)
		return
	}
	o.owners[shard] = process
	o.taken[process]++
}

func (o *ownership) count(process string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, p := range o.owners {
		if p == process {
			n++
		}
	}
	return n
}

// process is one worker process: its own Postgres pool and lock session, its own
// broker connections, behind proxies a test can cut (a crash: no last checkpoint,
// locks released by Postgres when the session drops).
type process struct {
	stop    func()
	done    chan struct{}
	pgProxy *testenv.Proxy
	mqProxy *testenv.Proxy
}

func startProcess(t *testing.T, name, pgURL, amqpURL string, defs amqprunner.Definitions, own *ownership, checkpointEvery time.Duration) *process {
	t.Helper()
	p := &process{done: make(chan struct{})}
	pu, _ := url.Parse(pgURL)
	p.pgProxy = testenv.NewProxy(t, pu.Host)
	pu.Host = p.pgProxy.Addr()
	au, _ := url.Parse(amqpURL)
	p.mqProxy = testenv.NewProxy(t, au.Host)
	au.Host = p.mqProxy.Addr()
	pool, err := pgxpool.New(context.Background(), pu.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &pgstore.Shards{ConnString: pu.String(), Count: shards, Log: log, Every: 100 * time.Millisecond,
		Shard: func(ctx context.Context, shard int, owner int32) {
			own.set(shard, name)
			defer own.set(shard, "")
			r := &amqprunner.Runner{URL: au.String(), Store: pgstore.New(pool), Definitions: defs, Log: log,
				Shard: shard, Shards: shards, Owner: owner, FlushEvery: 20 * time.Millisecond,
				CheckpointEvery: checkpointEvery, Skew: 2 * time.Second}
			r.Run(ctx)
		}}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go func() { s.Run(ctx); close(p.done) }()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// Two engine processes split the shards between them, hand some over when the second
// arrives and all of them when the first crashes in the middle of the stream, while
// the router is also restarted after a crash. Events come in arrays of many users.
// The memberships at the end must be those of an uninterrupted run: users with three
// views in High Intent, users with two not (an event counted twice would put one in,
// an event lost would keep a three-view user out).
func TestEnginesShareShardsAndHandOver(t *testing.T) {
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
	defs := func(context.Context) ([]segments.Definition, string, error) {
		return []segments.Definition{{Key: "high-intent", Rule: rule, TTL: 5 * time.Minute}}, "high-intent@1", nil
	}
	ch := testenv.AMQPChannel(t, amqpURL, amqpbus.Declare)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	au, _ := url.Parse(amqpURL)
	routerProxy := testenv.NewProxy(t, au.Host)
	viaProxy := *au
	viaProxy.Host = routerProxy.Addr()
	startRouter := func(u string) (stop func()) {
		r := &amqprunner.Router{URL: u, Shards: shards, Store: pgstore.New(pool), Log: log}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		stop = func() { cancel(); <-done }
		t.Cleanup(stop)
		return stop
	}

	const users = 600 // even ones view three times, odd ones twice
	published := 0
	publish := func(round int) {
		t.Helper()
		var batch []string
		flush := func() {
			body := "[" + strings.Join(batch, ",") + "]"
			if err := ch.PublishWithContext(context.Background(), amqpbus.Exchange, "product_view", false, false,
				amqp.Publishing{ContentType: "application/json", Body: []byte(body)}); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
		for i := range users {
			if i%2 == 1 && round == 2 {
				continue
			}
			batch = append(batch, fmt.Sprintf(`{"type":"product_view","user_id":"u%d","timestamp":%q}`, i,
				time.Now().UTC().Format(time.RFC3339Nano)))
			published++
			if len(batch) == 50 {
				flush()
			}
		}
		if len(batch) > 0 {
			flush()
		}
	}
	members := func() []string {
		rows, err := pool.Query(context.Background(), "SELECT user_id FROM segment_memberships WHERE member AND segment = 'high-intent' ORDER BY user_id")
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
	offsets := func() map[int]int64 {
		rows, err := pool.Query(context.Background(), "SELECT shard, stream_offset FROM segment_checkpoints")
		if err != nil {
			t.Fatal(err)
		}
		m := map[int]int64{}
		for rows.Next() {
			var s int
			var o int64
			_ = rows.Scan(&s, &o)
			m[s] = o
		}
		return m
	}
	own := &ownership{owners: map[int]string{}, taken: map[string]int{}}

	stopRouter := startRouter(viaProxy.String())
	// a checkpoints only when it starts a shard and when it hands one over, so the
	// shards it still runs when it crashes resume from their first checkpoint and
	// must read their stream again from there; b checkpoints often.
	a := startProcess(t, "a", pgURL, amqpURL, defs, own, time.Hour)
	testenv.Eventually(t, 30*time.Second, "a to own every shard", func() bool { return own.count("a") == shards && len(offsets()) == shards })
	// Older than the 2 s skew a runner without a checkpoint would read from: these
	// events are found again after a hand-over only through checkpoints.
	time.Sleep(time.Second)
	publish(0)
	time.Sleep(time.Second)

	startProcess(t, "b", pgURL, amqpURL, defs, own, 200*time.Millisecond)
	testenv.Eventually(t, 30*time.Second, "a and b to own half each", func() bool { return own.count("a") == shards/2 && own.count("b") == shards/2 })
	// The router crashes while it splits round 1, and another one takes over.
	go func() { time.Sleep(20 * time.Millisecond); routerProxy.Cut(); stopRouter() }()
	publish(1)
	time.Sleep(100 * time.Millisecond)
	startRouter(amqpURL)
	time.Sleep(2500 * time.Millisecond) // past the skew again

	// a crashes while round 2 is being processed: no last checkpoint.
	publish(2)
	time.Sleep(30 * time.Millisecond)
	a.pgProxy.Cut()
	a.mqProxy.Cut()
	a.stop()
	<-a.done
	testenv.Eventually(t, 30*time.Second, "b to own every shard", func() bool { return own.count("b") == shards })

	want := []string{}
	for i := 0; i < users; i += 2 {
		want = append(want, fmt.Sprint("u", i))
	}
	slices.Sort(want)
	var got []string
	if !testenv.Poll(60*time.Second, func() bool { got = members(); return slices.Equal(got, want) }) {
		var twice, missing []string
		for _, id := range got {
			if !slices.Contains(want, id) {
				twice = append(twice, id)
			}
		}
		for _, id := range want {
			if !slices.Contains(got, id) {
				missing = append(missing, id)
			}
		}
		t.Fatalf("%d members, want %d: two-view users in (an event counted twice): %v; three-view users out (an event lost): %v",
			len(got), len(want), twice, missing)
	}
	// Stable: nothing arrives late to change it.
	time.Sleep(500 * time.Millisecond)
	if got := members(); !slices.Equal(got, want) {
		t.Fatalf("memberships changed after settling: %d members", len(got))
	}
	t.Logf("%d events in arrays of 50; shards run by a: %d, by b: %d; %d members", published, own.taken["a"], own.taken["b"], len(want))
}
