package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	exppg "github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/internal/chaos"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/segments"
)

// restartDefinitions are the segments of the restart test, as documents and as the
// reference engine's definitions.
var restartDefinitions = []struct{ key, rule, ttl string }{
	{"high-intent", `{"event":"product_view","count_gte":3,"within":"10m"}`, "5m"},
	{"cart-abandoner", `{"sequence":[{"event":"add_to_cart"}],"within":"24h","absent":{"event":"purchase","within":"30m"}}`, ""},
	{"big-spender", `{"event":"purchase","sum_gte":300,"within":"1h"}`, "10m"},
}

// simStream is a seeded afternoon of shop traffic in event time: users browsing,
// adding to cart and buying; a tenth of the events out of order within the lateness,
// one in a hundred too late, a few received out of order.
func simStream(seed uint64, users, n int, start time.Time) []simEvent {
	r := rand.New(rand.NewPCG(seed, 2))
	types := []string{"page_view", "product_view", "product_view", "product_view", "add_to_cart", "purchase"}
	evs := make([]simEvent, n)
	clock := start
	for i := range evs {
		clock = clock.Add(time.Duration(r.IntN(800)) * time.Millisecond)
		ts, received := clock, clock
		switch p := r.IntN(100); {
		case p < 10:
			ts = ts.Add(-time.Duration(r.IntN(50)) * time.Second)
		case p < 11:
			ts = ts.Add(-10 * time.Minute)
		case p < 13:
			received = clock.Add(-3 * time.Second)
			ts = received
		}
		e := simEvent{Type: types[r.IntN(len(types))], UserID: fmt.Sprintf("user-%d", r.IntN(users)), Timestamp: ts, ReceivedAt: received}
		if e.Type == "purchase" {
			e.Value = float64(r.IntN(200))
		}
		evs[i] = e
	}
	return evs
}

type finalState struct {
	Member          bool
	Entered, Exited time.Time
}

// reference runs the stream through in-memory engines, one per shard as the worker
// splits users, without interruption, and returns every (segment, user) that ever
// entered with its final state: what the memberships table must hold.
func reference(t *testing.T, evs []simEvent, shards int) map[string]finalState {
	var defs []segments.Definition
	for _, d := range restartDefinitions {
		rule, err := segments.ParseRuleJSON([]byte(d.rule))
		if err != nil {
			t.Fatal(err)
		}
		var ttl time.Duration
		if d.ttl != "" {
			ttl, _ = time.ParseDuration(d.ttl)
		}
		defs = append(defs, segments.Definition{Key: d.key, Rule: rule, TTL: ttl})
	}
	state := map[string]finalState{}
	engines := make([]*segments.Engine, shards)
	for i := range engines {
		eng, err := segments.NewEngine(defs, segments.Options{OnChange: func(c segments.Change) {
			k := c.Segment + "/" + c.UserID
			s := state[k]
			if c.Kind == segments.Enter {
				s = finalState{Member: true, Entered: c.At}
			} else {
				s.Member, s.Exited = false, c.At
			}
			state[k] = s
		}})
		if err != nil {
			t.Fatal(err)
		}
		engines[i] = eng
	}
	for i, e := range evs {
		engines[segments.Shard(e.UserID, shards)].Process(segments.Event{Offset: int64(i), UserID: e.UserID, Type: e.Type,
			Time: e.Timestamp, ReceivedAt: e.ReceivedAt, Value: e.Value})
	}
	return state
}

// Kill the segment engine mid-stream (SIGKILL of a `lift serve --role worker`
// process: no last checkpoint, nothing drained), start it again, and compare the
// memberships table with an uninterrupted run of the same events: every row, member
// or not, with its enter and exit times, must be the same.
func TestSegmentEngineKilledMidStream(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs lift as a child process")
	}
	pgURL := testenv.Postgres(t)
	chAddr, chDB := testenv.ClickHouse(t)
	env := map[string]string{"LIFT_POSTGRES_URL": pgURL, "LIFT_AMQP_URL": testenv.AMQPURL(t),
		"LIFT_CLICKHOUSE_ADDR": chAddr, "LIFT_CLICKHOUSE_DB": chDB, "LIFT_LOG_LEVEL": "info",
		// Two shards, one process: both engines die together. The replayed events
		// are received "hours ago", before any rebuild's cut: no rebuild.
		"LIFT_SEGMENT_SHARDS": "2", "LIFT_SEGMENT_REBUILD": "false"}
	pool, err := pgxpool.New(context.Background(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	svc := experiments.NewService(exppg.New(pool))
	for _, d := range restartDefinitions {
		doc := fmt.Sprintf(`{"key":%q,"kind":"behavioral","rule":%s`, d.key, d.rule)
		if d.ttl != "" {
			doc += fmt.Sprintf(`,"ttl":%q`, d.ttl)
		}
		if _, err := svc.Create(context.Background(), "test", experiments.KindSegment, []byte(doc+"}")); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now().UTC().Add(-4 * time.Hour).Truncate(time.Second)
	evs := simStream(42, 300, 6000, start)
	// Markers in each shard, last, to know when everything before them was applied.
	end := evs[len(evs)-1].ReceivedAt.Add(time.Second)
	var markers []string
	for i := 0; len(markers) < 2; i++ {
		u := fmt.Sprint("marker-", i)
		if segments.Shard(u, 2) == len(markers) {
			markers = append(markers, u)
			for j := range 3 {
				at := end.Add(time.Duration(j) * time.Second)
				evs = append(evs, simEvent{Type: "product_view", UserID: u, Timestamp: at, ReceivedAt: at})
			}
		}
	}
	want := reference(t, evs, 2)

	worker := chaos.StartLift(t, "worker", "worker", env)
	definitions := func() []string {
		rows, err := pool.Query(context.Background(), "SELECT definitions FROM segment_checkpoints ORDER BY shard")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var d string
			_ = rows.Scan(&d)
			out = append(out, d)
		}
		return out
	}
	testenv.Eventually(t, 30*time.Second, "both shards to run big-spender", func() bool {
		ds := definitions()
		return len(ds) == 2 && strings.Contains(ds[0], "big-spender") && strings.Contains(ds[1], "big-spender")
	})

	b := newBackend(t, env["LIFT_AMQP_URL"])
	publish := func(evs []simEvent) {
		for i := 0; i < len(evs); i += 20 {
			b.send(evs[i:min(i+20, len(evs))]...)
		}
	}
	offsets := func() []int64 {
		rows, err := pool.Query(context.Background(), "SELECT stream_offset FROM segment_checkpoints ORDER BY shard")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []int64
		for rows.Next() {
			var o int64
			_ = rows.Scan(&o)
			out = append(out, o)
		}
		return out
	}
	cut := len(evs) * 6 / 10
	publish(evs[:cut])
	// Both shards checkpoint part of it (every 5 s)...
	testenv.Eventually(t, 30*time.Second, "a checkpoint on both shards", func() bool { o := offsets(); return len(o) == 2 && o[0] >= 0 && o[1] >= 0 })
	// ...then apply more, emitting changes no checkpoint holds, and the process dies.
	more := cut + len(evs)/10
	publish(evs[cut:more])
	time.Sleep(300 * time.Millisecond)
	worker.Kill()
	worker.Start()
	publish(evs[more:])
	member := func(user string) bool { m, ok := readMembership(t, pool, "high-intent", user); return ok && m.Member }
	testenv.Eventually(t, 60*time.Second, "both markers in high-intent", func() bool { return member(markers[0]) && member(markers[1]) })

	rows, err := pool.Query(context.Background(), "SELECT segment, user_id, member, entered_at, exited_at FROM segment_memberships")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]finalState{}
	for rows.Next() {
		var seg, user string
		var s finalState
		var entered, exited *time.Time
		if err := rows.Scan(&seg, &user, &s.Member, &entered, &exited); err != nil {
			t.Fatal(err)
		}
		if entered != nil {
			s.Entered = entered.UTC()
		}
		if exited != nil {
			s.Exited = exited.UTC()
		}
		got[seg+"/"+user] = s
	}
	rows.Close()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("memberships after the kill differ from an uninterrupted run (-uninterrupted +killed and restarted):\n%s", diff)
	}
	members := 0
	for _, s := range want {
		if s.Member {
			members++
		}
	}
	if members < 50 || len(want)-members < 50 {
		t.Errorf("%d members and %d exits: the stream does not exercise the rules", members, len(want)-members)
	}
	if n := worker.LogCount("segment engine resumed from its checkpoint"); n < 2 {
		t.Errorf("the restarted worker resumed %d shards from their checkpoints, want both", n)
	}
	t.Logf("%d events, the worker killed after %d (checkpoints at offsets %v); %d memberships (%d members, %d exited) equal to an uninterrupted run's",
		len(evs), more, offsets(), len(want), members, len(want)-members)
}
