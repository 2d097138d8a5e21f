package stats

import "math"

// CovMoments are a variant's aggregates of a metric Y and of the same metric X in the
// pre-exposure period (CUPED), per user: count, sums, sums of squares and the sum of
// cross-products.
type CovMoments struct {
	N, SumY, SumY2, SumX, SumX2, SumXY float64
}

// CUPED returns variance-reduced estimates of each variant's mean of Y (Deng et al.
// 2013): Ȳ_v − θ·(X̄_v − X̄), with θ = Cov(X,Y)/Var(X) pooled within variants. X is
// measured before exposure, so the adjustment removes noise without bias; the variance
// of each estimate shrinks by the factor 1 − ρ² for a correlation ρ between X and Y.
// It also returns θ. With no pre-period variance (θ undefined) the plain means come
// back unchanged. Products of sums are taken as Σa·(Σb/n), not Σa·Σb/n, which
// overflows for sums past 1.3e154; the variances come from Moments.Variance, and an
// outcome whose variance the sums do not resolve marks its estimate Lost.
func CUPED(vs []CovMoments) (est []Estimate, theta float64) {
	var n, sx, cxy, cxx float64
	for _, v := range vs {
		n += v.N
		sx += v.SumX
		cxy += v.SumXY - v.SumX*(v.SumY/v.N)
		cxx += v.SumX2 - v.SumX*(v.SumX/v.N)
	}
	if cxx > 0 {
		theta = cxy / cxx
	}
	meanX := sx / n
	est = make([]Estimate, len(vs))
	for i, v := range vs {
		d := v.N - 1
		varY, resolved := Moments{N: v.N, Sum: v.SumY, SumSq: v.SumY2}.Variance()
		varX := Moments{N: v.N, Sum: v.SumX, SumSq: v.SumX2}.SampleVar()
		covXY := (v.SumXY - v.SumX*(v.SumY/v.N)) / d
		adjVar := math.Max(0, varY+theta*theta*varX-2*theta*covXY)
		est[i] = Estimate{
			Mean: v.SumY/v.N - theta*(v.SumX/v.N-meanX),
			Var:  adjVar / v.N,
			N:    v.N,
			Lost: !resolved,
		}
	}
	return est, theta
}
