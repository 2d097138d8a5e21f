package recommend_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments/recommend"
)

// The training benchmark's data: 1,000,000 users, 10,000 items (100 categories of
// 100, in sets of 5, Zipf popularity), 20,000,000 events (Poisson 20 per user: 85 %
// views, 10 % cart adds, 5 % purchases; ages uniform over 30 days, weights halved
// every 7), generated in Go straight into the builder: the same rows ClickHouse's
// aggregation hands the trainer, without loading 20M events into it.
const (
	benchUsers      = 1_000_000
	benchCategories = 100
	benchPerCat     = 100
	benchSet        = 5
	benchEvents     = 20
)

var benchData = sync.OnceValues(func() (*recommend.Builder, []recommend.ItemWeight) {
	rng := rand.New(rand.NewPCG(1, 2))
	nItems := benchCategories * benchPerCat
	sku := make([]string, nItems)
	for i := range sku {
		sku[i] = fmt.Sprintf("sku-%05d", i)
	}
	// Zipf popularity over a shuffle; cumulative per category and overall.
	pop := make([]float64, nItems)
	for i, r := range rng.Perm(nItems) {
		pop[i] = 1 / float64(r+1)
	}
	cum := make([]float64, nItems)
	catCum := make([][]float64, benchCategories)
	total := 0.0
	for i, p := range pop {
		total += p
		cum[i] = total
		c := i / benchPerCat
		prev := 0.0
		if n := len(catCum[c]); n > 0 {
			prev = catCum[c][n-1]
		}
		catCum[c] = append(catCum[c], prev+p)
	}
	draw := func(c []float64) int { return min(sort.SearchFloat64s(c, rng.Float64()*c[len(c)-1]), len(c)-1) }
	b := recommend.NewBuilder()
	popular := map[int]float64{}
	events := 0
	for u := range benchUsers {
		user := fmt.Sprintf("user-%07d", u)
		fav, second := rng.IntN(benchCategories), rng.IntN(benchCategories)
		last := -1
		n := poisson(benchEvents, rng)
		for range n {
			var item int
			switch x := rng.Float64(); {
			case last >= 0 && x < 0.45:
				set := last / benchSet * benchSet
				item = set + rng.IntN(benchSet)
			case x < 0.8:
				item = fav*benchPerCat + draw(catCum[fav])
			case x < 0.9:
				item = second*benchPerCat + draw(catCum[second])
			default:
				item = draw(cum)
			}
			last = item
			w := 1.0
			switch x := rng.Float64(); {
			case x < 0.05:
				w = 5
			case x < 0.15:
				w = 3
			}
			age := rng.Float64() * 30 // days
			b.Add(user, sku[item], w*math.Exp2(-age/7))
			if age < 1 {
				popular[item] += w
			}
			events++
		}
	}
	var pw []recommend.ItemWeight
	for i, w := range popular {
		pw = append(pw, recommend.ItemWeight{Item: sku[i], Weight: w})
	}
	return b, pw
})

func poisson(mean float64, rng *rand.Rand) int {
	p, u := math.Exp(-mean), rng.Float64()
	cdf, k := p, 0
	for u > cdf && k < 1000 {
		k++
		p *= mean / float64(k)
		cdf += p
	}
	return k
}

// BenchmarkTrain1M trains on 1,000,000 users × 10,000 items × 20,000,000 events
// (make bench): the time of one training (ns/op, also s/train), the peak heap while
// training and the heap the input holds, the (user, item) pairs and co-occurrences.
func BenchmarkTrain1M(b *testing.B) {
	if testing.Short() {
		b.Skip("generates 20,000,000 events")
	}
	builder, popular := benchData()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	input := ms.HeapAlloc
	var m *recommend.Model
	var peak uint64
	for b.Loop() {
		stop := make(chan struct{})
		done := make(chan uint64)
		go func() { // sample the heap while training
			var high uint64
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				var s runtime.MemStats
				runtime.ReadMemStats(&s)
				high = max(high, s.HeapAlloc)
				select {
				case <-stop:
					done <- high
					return
				case <-t.C:
				}
			}
		}()
		m = recommend.Train(builder, popular, recommend.Params{})
		close(stop)
		peak = max(peak, <-done)
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/train")
	b.ReportMetric(float64(input)/(1<<20), "input-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(m.Stats.Interactions), "user-items")
	b.ReportMetric(float64(m.Stats.Pairs), "cooccurrences")
	b.ReportMetric(float64(m.Stats.Users), "users")
	b.ReportMetric(float64(m.Stats.Items), "items")
}

// BenchmarkRecommend serves one user's recommendations from a model of 10,000 items
// with 50 neighbours each, from 20 recent items.
func BenchmarkRecommend(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	builder := recommend.NewBuilder()
	for u := range 50_000 {
		user := fmt.Sprintf("u%d", u)
		base := rng.IntN(10_000)
		for range 20 {
			builder.Add(user, fmt.Sprintf("sku-%05d", (base+rng.IntN(200))%10_000), 1)
		}
	}
	m := recommend.Train(builder, nil, recommend.Params{})
	recent := make([]string, 20)
	for i := range recent {
		recent[i] = fmt.Sprintf("sku-%05d", 500+i*7)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Recommend(recent, 10, nil, false)
	}
}
