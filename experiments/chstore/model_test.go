package chstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/ingest/gdpr"
	gdprch "github.com/liftlab/lift/ingest/gdpr/chstore"
	"github.com/liftlab/lift/internal/testenv"
)

// TestModel is a model-based test of the results engine: a seeded random sequence
// of what happens to a live experiment's data (exposures and events, for many leaves
// and for users sharing a leaf; redelivered blocks; late rows; merges; erasures;
// dropped partitions) interleaved with results read from two stores (one refreshing
// in small chunks), alone, at once, or cancelled halfway, each answer checked against
// the same metrics computed in Go from the rows the model holds (world.truth).
//
// LIFT_CHSTORE_MODEL_OPS sets the number of operations (default 30, a few seconds),
// LIFT_CHSTORE_MODEL_SEED the seed (default: a new one each run). A failure prints
// the seed and the operations that led to it.
func TestModel(t *testing.T) {
	t.Parallel()
	seed := envUint(t, "LIFT_CHSTORE_MODEL_SEED", rand.Uint64())
	ops := envUint(t, "LIFT_CHSTORE_MODEL_OPS", 30)
	m := newModel(t, seed)
	t.Logf("seed %d, %d operations (LIFT_CHSTORE_MODEL_SEED=%d LIFT_CHSTORE_MODEL_OPS=%d to replay)", seed, ops, seed, ops)
	for range ops {
		op := m.pick()
		m.history = append(m.history, op.name)
		start := time.Now()
		op.run(m)
		m.history[len(m.history)-1] += fmt.Sprintf(" (%d ms)", time.Since(start).Milliseconds())
	}
	m.checkAll(m.stores[0])
	t.Logf("operations: %s", strings.Join(m.history, ", "))
}

func envUint(t *testing.T, name string, def uint64) uint64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}

type model struct {
	t       *testing.T
	seed    uint64
	rng     *rand.Rand
	conn    driver.Conn
	stores  [2]*chstore.Store
	gdpr    *gdprch.Store
	loc     *time.Location // the server's, by which partitions are months
	w       world
	blocks  []block // every insert since the rows last moved, to send again
	users   []string
	mates   [][]string // users who share a leaf
	start   time.Time
	history []string
	erasure int
}

// block is the rows of one insert: w.xs[x0:x1] and w.es[e0:e1].
type block struct{ x0, x1, e0, e1 int }

// The experiment's shape: three variants (a user's own, by index, unless the model
// exposes them to another), segments, assignment probabilities and the properties
// the queries' conditions read.
var (
	modelVariants = []string{"control", "a", "b"}
	modelSegments = []string{"", "s1", "s2"}
	modelProbs    = []float64{0.5, 0.25, 1}
	modelPlans    = []string{`"pro"`, `"free"`, `"team"`, `null`}
)

// modelQueries are checked with every breakdown, with and without multi-variant
// users: two event types, both kinds, daily or not, with and without conditions.
func modelQueries(t *testing.T) []experiments.MetricQuery {
	return []experiments.MetricQuery{
		{Experiment: "exp", Event: "purchase", Kind: "conversion", Window: 7 * 24 * time.Hour, Daily: true},
		{Experiment: "exp", Event: "purchase", Kind: "value", Window: 3 * 24 * time.Hour},
		{Experiment: "exp", Event: "purchase", Kind: "conversion", Window: 24 * time.Hour, Where: mustWhere(t, `{"plan":"pro"}`)},
		{Experiment: "exp", Event: "purchase", Kind: "value", Window: 7 * 24 * time.Hour,
			Where: mustWhere(t, `{"$or":[{"price":{"$gte":30}},{"plan":{"$in":["team"]}}],"plan":{"$exists":true}}`)},
		{Experiment: "exp", Event: "refund", Kind: "conversion", Window: 7 * 24 * time.Hour, Daily: true},
	}
}

func newModel(t *testing.T, seed uint64) *model {
	addr, db := testenv.ClickHouse(t)
	m := &model{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)} // exposures span two months
	var err error
	if m.conn, err = clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db, Username: "default"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.conn.Close() })
	for i := range m.stores {
		if m.stores[i], err = chstore.Open(addr, db); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.stores[i].Close() })
	}
	chstore.SetChunk(m.stores[1], 4) // refreshes of several chunks, stored one by one
	if m.gdpr, err = gdprch.Open(addr, db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.gdpr.Close() })
	var tz string
	if err := m.conn.QueryRow(context.Background(), "SELECT timezone()").Scan(&tz); err != nil {
		t.Fatal(err)
	}
	if m.loc, err = time.LoadLocation(tz); err != nil {
		t.Fatal(err)
	}
	// Few users, so that each gathers exposures and events around them over the
	// sequence: CUPED's pre-period sums and late exposures need both.
	for i := range 12 {
		m.users = append(m.users, fmt.Sprintf("u%d", i))
	}
	m.mates = leafMates(t, m.conn)
	for _, g := range m.mates {
		m.users = append(m.users, g...)
	}
	return m
}

// leafMates finds three groups of three users m<n> of one leaf each (the leaf as
// migration 00043 defines it), the same ones every time.
func leafMates(t *testing.T, conn driver.Conn) [][]string {
	rows, err := conn.Query(context.Background(), `
		SELECT arraySort(groupArray(number)) AS ns
		FROM (SELECT number, concat('m', toString(number)) AS u FROM system.numbers LIMIT 300000)
		GROUP BY cityHash64(u) % 65536 * 4 + intDiv(cityHash64(u), 65536) % 4
		HAVING count() >= 3 ORDER BY ns[1] LIMIT 3`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		var ns []uint64
		if err := rows.Scan(&ns); err != nil {
			t.Fatal(err)
		}
		var g []string
		for _, n := range ns[:3] {
			g = append(g, fmt.Sprintf("m%d", n))
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil || len(out) != 3 {
		t.Fatalf("leaf mates: %v, %d groups", err, len(out))
	}
	return out
}

// fatalf fails the test with the seed and the operations so far.
func (m *model) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("seed %d, after %s:\n%s", m.seed, strings.Join(m.history, ", "), fmt.Sprintf(format, args...))
}

type op struct {
	name   string
	weight int
	run    func(*model)
}

var modelOps = []op{
	{"exposures", 4, (*model).exposures},
	{"events", 4, (*model).events},
	{"late rows", 2, (*model).lateRows},
	{"same leaf", 1, (*model).sameLeaf},
	{"resend", 2, (*model).resend},
	{"merge", 1, (*model).merge},
	{"stray leaf", 2, (*model).strayLeaf},
	{"erase", 1, (*model).erase},
	{"drop partition", 1, (*model).dropPartition},
	{"results", 3, func(m *model) { m.checkAll(m.stores[m.rng.IntN(2)]) }},
	{"one metric", 2, (*model).checkOne},
	{"two stores at once", 1, (*model).checkConcurrent},
	{"cancelled refresh", 1, (*model).cancelled},
}

func (m *model) pick() op {
	total := 0
	for _, o := range modelOps {
		total += o.weight
	}
	n := m.rng.IntN(total)
	for _, o := range modelOps {
		if n -= o.weight; n < 0 {
			return o
		}
	}
	panic("unreachable")
}

// id is a UUID from the model's source, so that a seed replays the same rows.
func (m *model) id() uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(m.rng.Uint32())
	}
	return u
}

func (m *model) at(base time.Time, spread time.Duration) time.Time {
	return base.Add(time.Duration(m.rng.Int64N(int64(spread)))).Truncate(time.Second)
}

func (m *model) user() string { return m.users[m.rng.IntN(len(m.users))] }

// exposure exposes user to their own variant, or one time in ten to another.
func (m *model) exposure(user string, ts time.Time) xrow {
	v := modelVariants[len(user)%len(modelVariants)]
	if m.rng.IntN(10) == 0 {
		v = modelVariants[m.rng.IntN(len(modelVariants))]
	}
	return xrow{m.id(), ts, user, "exp", v, modelSegments[m.rng.IntN(len(modelSegments))], modelProbs[m.rng.IntN(len(modelProbs))]}
}

func (m *model) event(user string, ts time.Time) erow {
	typ := "purchase"
	if m.rng.IntN(5) == 0 {
		typ = "refund"
	}
	props := fmt.Sprintf(`{"plan":%s,"price":%d}`, modelPlans[m.rng.IntN(len(modelPlans))], m.rng.IntN(40))
	if m.rng.IntN(4) == 0 {
		props = `{}`
	}
	return erow{m.id(), typ, user, ts, float64(m.rng.IntN(400)) / 4, props}
}

// insert stores rows and remembers them as a block to send again.
func (m *model) insert(xs []xrow, es []erow) {
	m.t.Helper()
	m.blocks = append(m.blocks, block{len(m.w.xs), len(m.w.xs) + len(xs), len(m.w.es), len(m.w.es) + len(es)})
	m.w.insert(m.t, m.conn, xs, es)
}

// exposures: a few users exposed within the experiment's 20 days, and now and then
// in another experiment.
func (m *model) exposures() {
	var xs []xrow
	for range 1 + m.rng.IntN(8) {
		x := m.exposure(m.user(), m.at(m.start, 20*24*time.Hour))
		if m.rng.IntN(5) == 0 {
			x.exp = "other"
		}
		xs = append(xs, x)
	}
	m.insert(xs, nil)
}

// events: purchases and refunds, half of them from 16 days before the experiment
// (CUPED's pre-period) to 10 days after its last exposure, half from 15 days before
// to 8 days after an exposure of their user: inside and outside the windows.
func (m *model) events() {
	var es []erow
	for range 1 + m.rng.IntN(15) {
		user := m.user()
		ts := m.at(m.start.Add(-16*24*time.Hour), 46*24*time.Hour)
		if x := m.exposureOf(user); x != nil && m.rng.IntN(2) == 0 {
			ts = m.at(x.ts.Add(-15*24*time.Hour), 23*24*time.Hour)
		}
		es = append(es, m.event(user, ts))
	}
	m.insert(nil, es)
}

// exposureOf is one of user's exposures in the experiment, nil if none.
func (m *model) exposureOf(user string) *xrow {
	var mine []*xrow
	for i := range m.w.xs {
		if x := &m.w.xs[i]; x.user == user && x.exp == "exp" {
			mine = append(mine, x)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	return mine[m.rng.IntN(len(mine))]
}

// lateRows: exposures and events that arrive with old timestamps, which moves
// users' first exposure earlier (into a month without a partition yet, at times)
// and brings events into their pre-period.
func (m *model) lateRows() {
	var xs []xrow
	var es []erow
	for range 1 + m.rng.IntN(4) {
		xs = append(xs, m.exposure(m.user(), m.at(m.start.Add(-30*24*time.Hour), 30*24*time.Hour)))
		es = append(es, m.event(m.user(), m.at(m.start.Add(-40*24*time.Hour), 40*24*time.Hour)))
	}
	m.insert(xs, es)
}

// sameLeaf: rows for users who share a leaf, in one insert.
func (m *model) sameLeaf() {
	var xs []xrow
	var es []erow
	for _, u := range m.mates[m.rng.IntN(len(m.mates))] {
		ts := m.at(m.start, 20*24*time.Hour)
		xs = append(xs, m.exposure(u, ts))
		es = append(es, m.event(u, m.at(ts.Add(-24*time.Hour), 5*24*time.Hour)))
	}
	m.insert(xs, es)
}

// resend: a block stored before, delivered again (same event ids).
func (m *model) resend() {
	if len(m.blocks) == 0 {
		return
	}
	b := m.blocks[m.rng.IntN(len(m.blocks))]
	m.w.insert(m.t, m.conn, slices.Clone(m.w.xs[b.x0:b.x1]), slices.Clone(m.w.es[b.e0:b.e1]))
}

// merge: a merge of every part of one table, which collapses duplicates in events
// and exposures, sums bucket_rows and drops the versions of metric_nodes that newer
// ones replace.
func (m *model) merge() {
	table := []string{"events", "exposures", "bucket_rows", "metric_nodes"}[m.rng.IntN(4)]
	m.history[len(m.history)-1] += " " + table
	if err := m.conn.Exec(context.Background(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
		m.fatalf("optimize %s: %v", table, err)
	}
}

// strayLeaf stores a newer version of the leaf rows of one user's leaf, every
// metric's, as a refresh that stopped before storing its roots leaves them, and
// merges them at times: the roots then name versions that are gone.
func (m *model) strayLeaf() {
	const columns = `experiment, metric, level, node, exposure_rows, event_rows, generation, packed, multi, variant, day,
		segment, users, conversions, value_sum, value_sumsq, pre_sum, pre_sumsq, pre_cross, ipw_num, ipw_den, leaf_stamps`
	ctx := context.Background()
	user := m.user()
	if err := m.conn.Exec(ctx, `INSERT INTO metric_nodes (version, `+columns+`) SELECT version + 1, `+columns+`
		FROM metric_nodes FINAL WHERE level = 0 AND node = cityHash64(?) % 65536 * 4 + intDiv(cityHash64(?), 65536) % 4`,
		user, user); err != nil {
		m.fatalf("%v", err)
	}
	if m.rng.IntN(2) == 0 {
		if err := m.conn.Exec(ctx, "OPTIMIZE TABLE metric_nodes FINAL"); err != nil {
			m.fatalf("%v", err)
		}
	}
}

// erase deletes one or two users' rows from every table that holds user ids, as an
// erasure job does (ingest/gdpr), and waits for the mutations.
func (m *model) erase() {
	ctx := context.Background()
	ids := []string{m.user()}
	if m.rng.IntN(2) == 0 {
		ids = append(ids, m.user())
	}
	m.erasure++
	marker := fmt.Sprintf("model-%d", m.erasure)
	tables, err := m.gdpr.Tables(ctx)
	if err != nil {
		m.fatalf("%v", err)
	}
	for _, table := range tables {
		if err := m.gdpr.StartDelete(ctx, table, ids, marker); err != nil {
			m.fatalf("%v", err)
		}
	}
	for _, table := range tables {
		if !testenv.Poll(time.Minute, func() bool { _, done, err := m.gdpr.FindMutation(ctx, table, marker); return err != nil || done }) {
			m.fatalf("erasure of %s still running after a minute", table)
		}
	}
	m.w.xs = slices.DeleteFunc(m.w.xs, func(x xrow) bool { return slices.Contains(ids, x.user) })
	m.w.es = slices.DeleteFunc(m.w.es, func(e erow) bool { return slices.Contains(ids, e.user) })
	m.blocks = nil // their ranges moved
}

// dropPartition drops the oldest month of events or of exposures, as retention
// does. With exposures, daily_exposures' month goes too, at times (retention never
// drops it before the exposures' month: see firstDaySQL).
func (m *model) dropPartition() {
	ctx := context.Background()
	parts, err := m.gdpr.Partitions(ctx)
	if err != nil {
		m.fatalf("%v", err)
	}
	table := []string{"events", "exposures"}[m.rng.IntN(2)]
	tables := []string{table}
	if table == "exposures" && m.rng.IntN(2) == 0 {
		tables = append(tables, "daily_exposures")
	}
	i := slices.IndexFunc(parts, func(p gdpr.Partition) bool { return p.Table == table })
	if i < 0 {
		return
	}
	month := parts[i].ID // partitions are listed in order: the oldest first
	m.history[len(m.history)-1] += fmt.Sprintf(" %s %v", month, tables)
	for _, tb := range tables {
		if slices.ContainsFunc(parts, func(p gdpr.Partition) bool { return p.Table == tb && p.ID == month }) {
			if err := m.gdpr.DropPartition(ctx, tb, month); err != nil {
				m.fatalf("%v", err)
			}
		}
	}
	inMonth := func(ts time.Time) bool { return ts.In(m.loc).Format("200601") == month }
	if table == "events" {
		m.w.es = slices.DeleteFunc(m.w.es, func(e erow) bool { return inMonth(e.ts) })
	} else {
		m.w.xs = slices.DeleteFunc(m.w.xs, func(x xrow) bool { return inMonth(x.ts) })
	}
	m.blocks = nil
}

// all is every model query with every breakdown, with and without multi-variant
// users.
func (m *model) all() ([]experiments.MetricQuery, []experiments.Breakdown) {
	var qs []experiments.MetricQuery
	var bys []experiments.Breakdown
	for _, q := range modelQueries(m.t) {
		for _, keep := range []bool{false, true} {
			q.KeepMultiVariant = keep
			for _, by := range []experiments.Breakdown{experiments.Overall, experiments.ByDay, experiments.BySegment, experiments.BySegmentDay} {
				qs, bys = append(qs, q), append(bys, by)
			}
		}
	}
	return qs, bys
}

// compare checks answers to qs by bys against the ground truth.
func (m *model) compare(how string, qs []experiments.MetricQuery, bys []experiments.Breakdown, data []experiments.MetricData) {
	m.t.Helper()
	for i, q := range qs {
		if diff := sameData(data[i], m.w.truth(m.t, q, bys[i])); diff != "" {
			m.fatalf("%s: %s %s within %v (where %v, keep %v) by %q: %s", how, q.Kind, q.Event, q.Window, q.Where != nil,
				q.KeepMultiVariant, bys[i], diff)
		}
	}
}

func (m *model) checkAll(s *chstore.Store) {
	m.t.Helper()
	qs, bys := m.all()
	data, err := s.MetricsAggregates(context.Background(), qs, bys)
	if err != nil {
		m.fatalf("%v", err)
	}
	m.compare("all metrics", qs, bys, data)
}

func (m *model) checkOne() {
	qs, bys := m.all()
	i := m.rng.IntN(len(qs))
	data, err := m.stores[m.rng.IntN(2)].MetricAggregates(context.Background(), qs[i], bys[i])
	if err != nil {
		m.fatalf("%v", err)
	}
	m.compare("one metric", qs[i:i+1], bys[i:i+1], []experiments.MetricData{data})
}

// checkConcurrent reads every metric from both stores at once.
func (m *model) checkConcurrent() {
	qs, bys := m.all()
	var data [2][]experiments.MetricData
	var errs [2]error
	var wg sync.WaitGroup
	for i, s := range m.stores {
		wg.Go(func() { data[i], errs[i] = s.MetricsAggregates(context.Background(), qs, bys) })
	}
	wg.Wait()
	for i := range m.stores {
		if errs[i] != nil {
			m.fatalf("store %d: %v", i, errs[i])
		}
		m.compare(fmt.Sprintf("store %d of two at once", i), qs, bys, data[i])
	}
}

// cancelled starts a refresh and cancels it after up to 300 ms, perhaps between
// the inserts of its chunks: what it stored must not change later answers. (Not a
// deadline: the driver would set it on the connection, whose read can then time
// out before the context says it is done.)
func (m *model) cancelled() {
	qs, bys := m.all()
	ctx, cancel := context.WithCancel(context.Background())
	defer time.AfterFunc(time.Duration(m.rng.IntN(300))*time.Millisecond, cancel).Stop()
	if _, err := m.stores[1].MetricsAggregates(ctx, qs, bys); err != nil && ctx.Err() == nil {
		m.fatalf("%v", err)
	}
}
