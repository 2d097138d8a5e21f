package stats_test

import (
	"fmt"
	"testing"

	"github.com/liftlab/lift/experiments/stats"
)

// BenchmarkAnalyze10x10 analyses 10 metrics of an experiment with 10 variants (one
// op), the size the results page must render within 20 ms.
func BenchmarkAnalyze10x10(b *testing.B) {
	in := stats.BinomialInput{}
	for i := range 10 {
		in.Weights = append(in.Weights, 0.1)
		in.Variants = append(in.Variants, stats.VariantCounts{Key: fmt.Sprint("v", i), Users: 1_000_000, Conversions: float64(30_000 + 200*i)})
	}
	b.ReportAllocs()
	for b.Loop() {
		for range 10 {
			if _, err := stats.AnalyzeBinomial(in, stats.DefaultOptions); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkChanceToBeatBeta(b *testing.B) {
	for _, n := range []float64{1000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				stats.ChanceToBeatBeta(n, n*0.03, n, n*0.031)
			}
		})
	}
}
