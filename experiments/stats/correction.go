package stats

import (
	"math"
	"slices"
)

// Correction names a multiple-testing correction across variants × metrics.
type Correction string

// The corrections lift offers.
const (
	NoCorrection      Correction = "none"
	Holm              Correction = "holm"               // controls the family-wise error rate
	BenjaminiHochberg Correction = "benjamini-hochberg" // controls the false discovery rate
)

// Adjust returns adjusted p-values in the order given.
func Adjust(p []float64, method Correction) []float64 {
	m := len(p)
	out := slices.Clone(p)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	switch method {
	case Holm:
		// Step down from the smallest: p_(i)·(m−i), kept monotone non-decreasing.
		slices.SortFunc(order, func(a, b int) int { return cmpFloat(p[a], p[b]) })
		running := 0.0
		for rank, i := range order {
			running = math.Max(running, math.Min(1, p[i]*float64(m-rank)))
			out[i] = running
		}
	case BenjaminiHochberg:
		// Step up from the largest: p_(i)·m/i, kept monotone non-increasing.
		slices.SortFunc(order, func(a, b int) int { return cmpFloat(p[b], p[a]) })
		running := 1.0
		for k, i := range order {
			rank := m - k
			running = math.Min(running, math.Min(1, p[i]*float64(m)/float64(rank)))
			out[i] = running
		}
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
