package chstore_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/internal/chconn"
	"github.com/liftlab/lift/internal/testenv"
)

type xrow struct {
	id                          uuid.UUID
	ts                          time.Time
	user, exp, variant, segment string
	prob                        float64
}

type erow struct {
	id        uuid.UUID
	typ, user string
	ts        time.Time
	value     float64
	props     string
}

// world is what was inserted, from which ground truth is computed in Go.
type world struct {
	xs []xrow
	es []erow
}

func (w *world) insert(t *testing.T, conn driver.Conn, xs []xrow, es []erow) {
	t.Helper()
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		if err := b.Append(x.id, x.ts, x.user, x.exp, x.variant, x.segment, x.prob); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	b, err = conn.PrepareBatch(ctx, "INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := b.Append(e.id, e.typ, e.user, e.ts, e.ts, e.value, e.props); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	w.xs = append(w.xs, xs...)
	w.es = append(w.es, es...)
}

// truth computes a metric from the inserted rows as the results contract defines it:
// duplicates (same event id) count once; each user counts once, in the variant of
// their first exposure (the smallest (ts, variant, segment, probability)); users
// exposed to several variants are reported and, unless kept, left out.
func (w *world) truth(t *testing.T, q experiments.MetricQuery, by experiments.Breakdown) experiments.MetricData {
	t.Helper()
	type user struct {
		first    xrow
		variants map[string]bool
		events   []erow
	}
	users := map[string]*user{}
	less := func(a, b xrow) bool {
		return cmp.Or(a.ts.Compare(b.ts), cmp.Compare(a.variant, b.variant), cmp.Compare(a.segment, b.segment), cmp.Compare(a.prob, b.prob)) < 0
	}
	for _, x := range w.xs {
		if x.exp != q.Experiment {
			continue
		}
		u := users[x.user]
		if u == nil {
			u = &user{first: x, variants: map[string]bool{}}
			users[x.user] = u
		}
		if less(x, u.first) {
			u.first = x
		}
		u.variants[x.variant] = true
	}
	seen := map[string]bool{}
	for _, e := range w.es {
		key := e.typ + "/" + e.user + "/" + e.id.String()
		if seen[key] || e.typ != q.Event || users[e.user] == nil {
			continue
		}
		seen[key] = true
		var props map[string]any
		if err := json.Unmarshal([]byte(e.props), &props); err != nil {
			t.Fatal(err)
		}
		if q.Where != nil && !q.Where.Match(props) {
			continue
		}
		users[e.user].events = append(users[e.user].events, e)
	}
	var data experiments.MetricData
	for _, u := range users {
		fts := u.first.ts
		var conv, uv, preConv, preVal float64
		for _, e := range u.events {
			switch {
			case !e.ts.Before(fts) && e.ts.Before(fts.Add(q.Window)):
				conv = 1
				uv += e.value
			case !e.ts.Before(fts.Add(-experiments.PrePeriod)) && e.ts.Before(fts):
				preConv = 1
				preVal += e.value
			}
		}
		y, pre := conv, preConv
		if q.Kind == "value" {
			y, pre = uv, preVal
		}
		a := experiments.ArmAggregate{Variant: u.first.variant, Users: 1, Conversions: conv, Sum: uv, SumSq: uv * uv,
			PreSum: pre, PreSumSq: pre * pre, PreCross: pre * y}
		if p := u.first.prob; p > 0 {
			a.IPWNum, a.IPWDen = y/p, 1/p
		}
		switch by {
		case experiments.ByDay:
			a.Group = fts.UTC().Format(time.DateOnly)
		case experiments.BySegment:
			a.Group = u.first.segment
		case experiments.BySegmentDay:
			a.Group, a.Day = u.first.segment, fts.UTC().Format(time.DateOnly)
		}
		if len(u.variants) > 1 {
			data.MultiVariantUsers++
			if !q.KeepMultiVariant {
				continue
			}
		}
		data.Arms = addArm(data.Arms, a)
	}
	return data
}

// addArm is the ground truth's own sum, kept apart from the store's on purpose.
func addArm(arms []experiments.ArmAggregate, a experiments.ArmAggregate) []experiments.ArmAggregate {
	for i := range arms {
		if b := &arms[i]; b.Variant == a.Variant && b.Group == a.Group && b.Day == a.Day {
			b.Users += a.Users
			b.Conversions += a.Conversions
			b.Sum += a.Sum
			b.SumSq += a.SumSq
			b.PreSum += a.PreSum
			b.PreSumSq += a.PreSumSq
			b.PreCross += a.PreCross
			b.IPWNum += a.IPWNum
			b.IPWDen += a.IPWDen
			return arms
		}
	}
	return append(arms, a)
}

func sameData(got, want experiments.MetricData) string {
	order := func(a, b experiments.ArmAggregate) int {
		return cmp.Or(cmp.Compare(a.Variant, b.Variant), cmp.Compare(a.Group, b.Group), cmp.Compare(a.Day, b.Day))
	}
	slices.SortFunc(got.Arms, order)
	slices.SortFunc(want.Arms, order)
	if got.MultiVariantUsers != want.MultiVariantUsers || len(got.Arms) != len(want.Arms) {
		return fmt.Sprintf("multi-variant users %v, %d arms; want %v, %d arms", got.MultiVariantUsers, len(got.Arms), want.MultiVariantUsers, len(want.Arms))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	for i, g := range got.Arms {
		w := want.Arms[i]
		if g.Variant != w.Variant || g.Group != w.Group || g.Day != w.Day || g.Users != w.Users || g.Conversions != w.Conversions ||
			!near(g.Sum, w.Sum) || !near(g.SumSq, w.SumSq) || !near(g.PreSum, w.PreSum) || !near(g.PreSumSq, w.PreSumSq) ||
			!near(g.PreCross, w.PreCross) || !near(g.IPWNum, w.IPWNum) || !near(g.IPWDen, w.IPWDen) {
			return fmt.Sprintf("arm %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	return ""
}

func mustWhere(t *testing.T, s string) *experiments.Where {
	t.Helper()
	w, err := experiments.ParseWhere(json.RawMessage(s))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestBucketsMatchGroundTruth stores random exposures and events in batches, with
// late exposures that move users' first exposure or make them multi-variant,
// redelivered duplicates of earlier batches, an erasure (ALTER TABLE … DELETE) and a
// dropped partition, and after each step checks every metric and breakdown the
// store computes incrementally against the same metric computed in Go from
// everything inserted. It also checks that only the leaves that received rows are
// computed again.
func TestBucketsMatchGroundTruth(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	bucketsMatchGroundTruth(t, storage{addr: addr, db: db})
}

// TestBucketsMatchGroundTruthOnCluster is the same on the local ClickHouse cluster:
// two shards of two replicas, written and read through Distributed tables, with the
// erasure and the dropped partition run ON CLUSTER on the local tables. Results on
// the cluster must equal the ground truth, and so the results on one server.
func TestBucketsMatchGroundTruthOnCluster(t *testing.T) {
	c := testenv.ClickHouseCluster(t)
	bucketsMatchGroundTruth(t, storage{addr: c.Addr, db: c.DB, cluster: c.Name, nodes: c.Nodes})
}

// storage is where a test's rows live: one server, or a cluster.
type storage struct {
	addr, db string
	cluster  string   // "" on one server
	nodes    []string // the cluster's nodes
}

// alter runs ALTER TABLE table clause; on a cluster on the local tables of one
// replica of every shard, as lift does (its replicas follow through ZooKeeper).
func (s storage) alter(t *testing.T, conn driver.Conn, table, clause string) {
	t.Helper()
	if s.cluster == "" {
		if err := conn.Exec(context.Background(), "ALTER TABLE "+table+" "+clause); err != nil {
			t.Fatal(err)
		}
		return
	}
	s.perShard(t, conn, "ALTER TABLE "+table+"_local "+clause)
}

// optimize merges table's parts, on a cluster on one replica of every shard.
func (s storage) optimize(t *testing.T, conn driver.Conn, table string) {
	t.Helper()
	if s.cluster == "" {
		if err := conn.Exec(context.Background(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
		return
	}
	s.perShard(t, conn, "OPTIMIZE TABLE "+table+"_local FINAL")
}

// perShard runs query on one replica of every shard of the cluster.
func (s storage) perShard(t *testing.T, conn driver.Conn, query string) {
	t.Helper()
	ctx := context.Background()
	shards, err := chconn.Topology(ctx, conn, s.cluster)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		c, err := chconn.Open(strings.Join(sh.Replicas, ","), s.db, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Exec(ctx, query)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
}

// waitMutations waits until no mutation of the database runs, on every node.
func (s storage) waitMutations(t *testing.T, conn driver.Conn) {
	t.Helper()
	if s.cluster == "" {
		waitMutations(t, conn)
		return
	}
	for _, node := range s.nodes {
		c, err := chconn.Open(node, s.db, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		waitMutations(t, c)
		c.Close()
	}
}

func bucketsMatchGroundTruth(t *testing.T, st storage) {
	addr, db := st.addr, st.db
	conn, err := chconn.Open(addr, db, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	store, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	chstore.SetChunk(store, 1000) // the first batch is computed in chunks
	ctx := context.Background()

	rng := rand.New(rand.NewPCG(4, 5))
	start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) // exposures span two months
	variants := []string{"control", "a", "b"}
	segs := []string{"", "s1", "s2"}
	probs := []float64{0.5, 0.25, 1}
	plans := []string{`"pro"`, `"free"`, `"team"`, `null`}
	at := func(base time.Time, spread time.Duration) time.Time {
		return base.Add(time.Duration(rng.Int64N(int64(spread)))).Truncate(time.Second)
	}
	exposure := func(user, exp, variant string, ts time.Time) xrow {
		return xrow{uuid.New(), ts, user, exp, variant, segs[rng.IntN(len(segs))], probs[rng.IntN(len(probs))]}
	}
	event := func(typ, user string, ts time.Time) erow {
		props := fmt.Sprintf(`{"plan":%s,"price":%d}`, plans[rng.IntN(len(plans))], rng.IntN(40))
		if rng.IntN(4) == 0 {
			props = `{}`
		}
		return erow{uuid.New(), typ, user, ts, float64(rng.IntN(400)) / 4, props}
	}
	// users adds n users u<from>… with 1–3 exposures each (3% of them in two
	// variants), purchases around the exposures for 40% and refunds for 5%.
	users := func(from, n int) ([]xrow, []erow) {
		var xs []xrow
		var es []erow
		for i := from; i < from+n; i++ {
			user := fmt.Sprintf("u%d", i)
			variant := variants[i%len(variants)]
			first := at(start, 10*24*time.Hour)
			for k := range 1 + rng.IntN(3) {
				xs = append(xs, exposure(user, "exp", variant, first.Add(time.Duration(k)*time.Hour)))
			}
			if rng.IntN(100) < 3 {
				xs = append(xs, exposure(user, "exp", variants[(i+1)%len(variants)], at(first, 48*time.Hour)))
			}
			xs = append(xs, exposure(user, "other", "x", first)) // another experiment
			if rng.IntN(10) < 4 {
				for range 1 + rng.IntN(3) {
					es = append(es, event("purchase", user, at(first.Add(-20*24*time.Hour), 30*24*time.Hour)))
				}
			}
			if rng.IntN(20) == 0 {
				es = append(es, event("refund", user, at(first, 5*24*time.Hour)))
			}
		}
		return xs, es
	}

	// Daily queries share one computation for every breakdown; the others have one
	// for their ByDay breakdown and one for the rest.
	queries := []experiments.MetricQuery{
		{Experiment: "exp", Event: "purchase", Kind: "conversion", Window: 7 * 24 * time.Hour, Daily: true},
		{Experiment: "exp", Event: "purchase", Kind: "value", Window: 3 * 24 * time.Hour},
		{Experiment: "exp", Event: "purchase", Kind: "conversion", Window: 7 * 24 * time.Hour, Where: mustWhere(t, `{"plan":"pro"}`), Daily: true},
		{Experiment: "exp", Event: "purchase", Kind: "value", Window: 7 * 24 * time.Hour,
			Where: mustWhere(t, `{"$or":[{"price":{"$gte":30}},{"plan":{"$in":["team"]}}],"plan":{"$exists":true}}`)},
		{Experiment: "exp", Event: "refund", Kind: "conversion", Window: 7 * 24 * time.Hour, Daily: true},
	}
	const trees, purchaseTrees = 7, 6
	w := &world{}
	check := func(step string) {
		t.Helper()
		defer func(start time.Time) { t.Logf("%s: checked in %v", step, time.Since(start)) }(time.Now())
		for _, q := range queries {
			for _, keep := range []bool{false, true} {
				q.KeepMultiVariant = keep
				for _, by := range []experiments.Breakdown{experiments.Overall, experiments.ByDay, experiments.BySegment, experiments.BySegmentDay} {
					got, err := store.MetricAggregates(ctx, q, by)
					if err != nil {
						t.Fatalf("%s: %v", step, err)
					}
					if diff := sameData(got, w.truth(t, q, by)); diff != "" {
						t.Fatalf("%s: %s %s (where %v) by %q keep %v: %s", step, q.Kind, q.Event, q.Where != nil, by, keep, diff)
					}
				}
			}
		}
	}
	// computedSince counts the leaves stored after the computation of version v
	// (background merges may drop the rows they replace, never newer ones).
	lastVersion := func() uint64 {
		t.Helper()
		var v uint64
		if err := conn.QueryRow(ctx, "SELECT max(version) FROM metric_nodes").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	computedSince := func(v uint64) uint64 {
		t.Helper()
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM metric_nodes WHERE level = 0 AND version > ?", v).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	all := uint64(trees) * 65536 * 4 // leaves

	xs, es := users(0, 3000)
	w.insert(t, conn, xs, es)
	check("first batch")
	// Leaves without rows of the experiment or the event type need no computing.
	if n := computedSince(0); n == 0 || n >= all {
		t.Fatalf("the first computation stored %d leaves of %d", n, all)
	}
	before := lastVersion()
	check("no new rows")
	if n := computedSince(before); n != 0 {
		t.Fatalf("computing again without new rows stored %d leaves", n)
	}

	// Second batch: new users, earlier exposures of existing users (in their own
	// variant, which moves their first exposure, or in another, which makes them
	// multi-variant), more purchases, and redeliveries of earlier rows.
	xs, es = users(3000, 300)
	for i := range 100 {
		u := rng.IntN(3000)
		v := variants[u%len(variants)]
		if i%3 == 0 {
			v = variants[(u+2)%len(variants)]
		}
		xs = append(xs, exposure(fmt.Sprintf("u%d", u), "exp", v, at(start.Add(-48*time.Hour), 48*time.Hour)))
	}
	for range 200 {
		es = append(es, event("purchase", fmt.Sprintf("u%d", rng.IntN(3000)), at(start, 12*24*time.Hour)))
	}
	for range 500 {
		es = append(es, w.es[rng.IntN(len(w.es))])
		xs = append(xs, w.xs[rng.IntN(len(w.xs))])
	}
	before = lastVersion()
	w.insert(t, conn, xs, es)
	// Every query and breakdown at once (one pass per event type).
	together := func(s *chstore.Store) ([]experiments.MetricQuery, []experiments.Breakdown, []experiments.MetricData, error) {
		var qs []experiments.MetricQuery
		var bys []experiments.Breakdown
		for _, q := range queries {
			for _, by := range []experiments.Breakdown{experiments.Overall, experiments.ByDay, experiments.BySegment, experiments.BySegmentDay} {
				qs, bys = append(qs, q), append(bys, by)
			}
		}
		data, err := s.MetricsAggregates(ctx, qs, bys)
		return qs, bys, data, err
	}
	checkTogether := func(step string, qs []experiments.MetricQuery, bys []experiments.Breakdown, data []experiments.MetricData, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		for i, q := range qs {
			if diff := sameData(data[i], w.truth(t, q, bys[i])); diff != "" {
				t.Fatalf("%s: %s %s (where %v) by %q, together: %s", step, q.Kind, q.Event, q.Where != nil, bys[i], diff)
			}
		}
	}
	qs, bys, data, err := together(store)
	checkTogether("second batch, all metrics together", qs, bys, data, err)
	check("second batch with late exposures and redeliveries")
	second := computedSince(before)

	// The whole second batch delivered again changes nothing, however many
	// processes refresh at once.
	w.insert(t, conn, xs, es)
	other, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	type answer struct {
		qs   []experiments.MetricQuery
		bys  []experiments.Breakdown
		data []experiments.MetricData
		err  error
	}
	answers := make(chan answer, 2)
	for _, s := range []*chstore.Store{store, other} {
		go func() {
			qs, bys, data, err := together(s)
			answers <- answer{qs, bys, data, err}
		}()
	}
	for range 2 {
		a := <-answers
		checkTogether("second batch redelivered, two stores at once", a.qs, a.bys, a.data, a.err)
	}
	check("second batch redelivered, refreshed by two stores at once")

	// One purchase touches one leaf of each purchase metric.
	before = lastVersion()
	w.insert(t, conn, nil, []erow{event("purchase", "u7", start.Add(time.Hour))})
	check("one purchase")
	if n := computedSince(before); n != purchaseTrees {
		t.Errorf("one purchase recomputed %d leaves of the purchase metrics, want %d", n, purchaseTrees)
	}
	t.Logf("the second batch recomputed %d of %d leaves", second, all)

	// A root sums known versions of its leaves; when one is gone (here replaced by
	// a copy under a newer version, and merged away), the root is summed again.
	const nodeColumns = `experiment, metric, level, node, exposure_rows, event_rows, generation, packed, multi, variant, day,
		segment, users, conversions, value_sum, value_sumsq, pre_sum, pre_sumsq, pre_cross, ipw_num, ipw_den, leaf_stamps`
	if err := conn.Exec(ctx, `INSERT INTO metric_nodes (version, `+nodeColumns+`) SELECT version + 1, `+nodeColumns+`
		FROM metric_nodes FINAL WHERE level = 0 AND node = cityHash64('u8') % 65536 * 4 + intDiv(cityHash64('u8'), 65536) % 4`); err != nil {
		t.Fatal(err)
	}
	st.optimize(t, conn, "metric_nodes")
	w.insert(t, conn, nil, []erow{event("purchase", "u8", start.Add(2*time.Hour))})
	check("a leaf version gone")

	// Erasure deletes rows without inserting any.
	erased := map[string]bool{"u1": true, "u2": true, "u3": true, "u3001": true}
	for _, table := range []string{"exposures", "events"} {
		st.alter(t, conn, table, "DELETE WHERE user_id IN ('u1', 'u2', 'u3', 'u3001')")
	}
	st.waitMutations(t, conn)
	w.xs = slices.DeleteFunc(w.xs, func(x xrow) bool { return erased[x.user] })
	w.es = slices.DeleteFunc(w.es, func(e erow) bool { return erased[e.user] })
	check("erasure")

	// Retention drops November's events.
	st.alter(t, conn, "events", "DROP PARTITION 202611")
	w.es = slices.DeleteFunc(w.es, func(e erow) bool { return e.ts.Month() == time.November })
	check("dropped partition")
}

func waitMutations(t *testing.T, conn driver.Conn) {
	t.Helper()
	testenv.Eventually(t, time.Minute, "the mutations to finish", func() bool {
		var pending uint64
		if err := conn.QueryRow(context.Background(),
			"SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0").Scan(&pending); err != nil {
			t.Fatal(err)
		}
		return pending == 0
	})
}
