package segments_test

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/segmenttest"
)

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkEngine measures throughput on one core with 1,000,000 active users and the
// ten rules of segmenttest, the memory per active user, and the p99 latency from
// Process to OnChange for events that change a membership. It runs on one core
// (GOMAXPROCS 1, whatever -cpu says), so garbage collection shares it: events/s is
// per core.
func BenchmarkEngine(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const users = 1_000_000
	src := segmenttest.NewSource(users, t0)
	var (
		start     time.Time
		reported  bool
		latencies []time.Duration
		changes   int
	)
	before := heapAlloc()
	eng, err := segments.NewEngine(segmenttest.Definitions(b), segments.Options{OnChange: func(segments.Change) {
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
		eng.Process(src.Next(i % users))
	}
	st := eng.Stats()
	perUser := float64(heapAlloc()-before) / float64(st.Users)
	b.Logf("%d users with state, %d entries, %.0f bytes per active user", st.Users, st.Entries, perUser)

	latencies = latencies[:0]
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ev := src.Next(src.R.IntN(users))
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
	src := segmenttest.NewSource(users, t0)
	eng, err := segments.NewEngine(segmenttest.Definitions(b), segments.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3 * users {
		eng.Process(src.Next(i % users))
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
