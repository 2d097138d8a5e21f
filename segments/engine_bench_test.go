package segments_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/liftlab/lift/segments"
)

// benchDefinitions are ten rules of the kinds product teams write.
func benchDefinitions(b testing.TB) []segments.Definition {
	return []segments.Definition{
		def(b, "high-intent", highIntent, 5*time.Minute),
		def(b, "cart", cartRule, 0),
		def(b, "big-spender", `{"event":"purchase","sum_gte":300,"within":"24h"}`, 0),
		def(b, "recent-buyer", `{"event":"purchase","within":"168h"}`, 0),
		def(b, "shoe-browser", `{"event":"product_view","where":{"category":"shoes"},"count_gte":2,"within":"1h"}`, 0),
		def(b, "engaged", `{"event":"page_view","count_gte":5,"within":"5m"}`, time.Minute),
		def(b, "premium", `{"event":"product_view","where":{"price":{"$gte":100}},"within":"30m"}`, 0),
		def(b, "considering", `{"sequence":[{"event":"product_view"},{"event":"add_to_cart"}],"within":"15m"}`, 0),
		def(b, "buyer-browsing", `{"and":[{"event":"purchase","within":"168h"},{"event":"product_view","count_gte":2,"within":"10m"}]}`, 0),
		def(b, "active", `{"or":[{"event":"page_view","count_gte":3,"within":"10m"},{"event":"add_to_cart","within":"10m"}]}`, 0),
	}
}

// benchSource generates events for users uniformly, at 50,000 events per second of
// event time, a tenth of them up to 30 s out of order.
type benchSource struct {
	r      *rand.Rand
	ids    []string
	props  [][]byte
	offset int64
	clock  time.Time
}

func newBenchSource(users int) *benchSource {
	s := &benchSource{r: rand.New(rand.NewPCG(7, 7)), ids: make([]string, users), clock: t0}
	for i := range s.ids {
		s.ids[i] = fmt.Sprintf("user-%07d", i)
	}
	for _, c := range []string{"shoes", "hats", "boots", "shirts"} {
		for _, p := range []int{20, 80, 150} {
			s.props = append(s.props, fmt.Appendf(nil, `{"category":%q,"price":%d,"sku":"sku-%d"}`, c, p, p*7))
		}
	}
	return s
}

func (s *benchSource) next(userIdx int) segments.Event {
	s.offset++
	if s.offset%50 == 0 {
		s.clock = s.clock.Add(time.Millisecond)
	}
	at := s.clock
	if s.r.IntN(10) == 0 {
		at = at.Add(-time.Duration(s.r.IntN(30000)) * time.Millisecond)
	}
	ev := segments.Event{Offset: s.offset, UserID: s.ids[userIdx], Time: at, Properties: s.props[s.r.IntN(len(s.props))]}
	switch p := s.r.IntN(100); {
	case p < 40:
		ev.Type = "page_view"
	case p < 75:
		ev.Type = "product_view"
	case p < 87:
		ev.Type = "add_to_cart"
	case p < 92:
		ev.Type, ev.Value = "purchase", float64(s.r.IntN(200))
	default:
		ev.Type = "click" // no rule reads it
	}
	return ev
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkEngine measures throughput with 1,000,000 active users and 10 rules, the
// memory per active user, and the p99 latency from Process to OnChange for events
// that change a membership. Run with -cpu 1 for events/s on one core.
func BenchmarkEngine(b *testing.B) {
	const users = 1_000_000
	src := newBenchSource(users)
	var (
		start     time.Time
		reported  bool
		latencies []time.Duration
		changes   int
	)
	before := heapAlloc()
	eng, err := segments.NewEngine(benchDefinitions(b), segments.Options{OnChange: func(segments.Change) {
		changes++
		if !reported {
			reported = true
			latencies = append(latencies, time.Since(start))
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	// Every user gets two events, so each has state in the engine.
	for i := range 2 * users {
		eng.Process(src.next(i % users))
	}
	st := eng.Stats()
	perUser := float64(heapAlloc()-before) / float64(st.Users)
	b.Logf("%d users with state, %d entries, %.0f bytes per active user", st.Users, st.Entries, perUser)

	latencies = latencies[:0]
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ev := src.next(src.r.IntN(users))
		reported = false
		start = time.Now()
		eng.Process(ev)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(perUser, "B/user")
	if len(latencies) > 0 {
		slices.Sort(latencies)
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Nanoseconds()), "p99-ns")
	}
	st = eng.Stats()
	b.Logf("%d events, %d changes, %d users, %d entries, %d timers, %d late", b.N, changes, st.Users, st.Entries, st.Timers, st.Late)
}

// BenchmarkSnapshot measures checkpointing 100,000 users.
func BenchmarkSnapshot(b *testing.B) {
	const users = 100_000
	src := newBenchSource(users)
	eng, err := segments.NewEngine(benchDefinitions(b), segments.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3 * users {
		eng.Process(src.next(i % users))
	}
	var size int
	for b.Loop() {
		w := &countingWriter{}
		if err := eng.Snapshot(w); err != nil {
			b.Fatal(err)
		}
		size = w.n
	}
	b.ReportMetric(float64(size)/users, "B/user")
}

type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}
