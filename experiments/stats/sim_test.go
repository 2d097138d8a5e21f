package stats_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/liftlab/lift/experiments/stats"
)

// binomial draws the number of conversions of n users at rate p.
func binomial(r *rand.Rand, n int, p float64) float64 {
	x := 0
	for range n {
		if r.Float64() < p {
			x++
		}
	}
	return float64(x)
}

func analyze(t *testing.T, nc, xc, nt, xt float64, o stats.Options) stats.VariantResult {
	t.Helper()
	res, err := stats.AnalyzeBinomial(stats.BinomialInput{Weights: []float64{0.5, 0.5},
		Variants: []stats.VariantCounts{{Key: "c", Users: nc, Conversions: xc}, {Key: "t", Users: nt, Conversions: xt}}}, o)
	if err != nil {
		t.Fatal(err)
	}
	return res.Variants[1]
}

// 2,000 A/A experiments: the false-positive rate at p < 0.05 is 5% ± 1%.
func TestAAFalsePositiveRate(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const sims, n = 2000, 2000
	positives := 0
	for range sims {
		v := analyze(t, n, binomial(r, n, 0.1), n, binomial(r, n, 0.1), stats.DefaultOptions)
		if *v.PValue < 0.05 {
			positives++
		}
	}
	fpr := float64(positives) / sims
	t.Logf("A/A false-positive rate: %.4f over %d experiments", fpr, sims)
	if math.Abs(fpr-0.05) > 0.01 {
		t.Errorf("false-positive rate %.4f, want 0.05 ± 0.01", fpr)
	}
}

// A/B with a known 10% relative lift: the 95% interval covers it 95% ± 1% of the time.
func TestIntervalCoverage(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const sims, n = 2000, 20000
	const pc, pt = 0.10, 0.11
	trueLift := pt/pc - 1
	covered := 0
	for range sims {
		v := analyze(t, n, binomial(r, n, pc), n, binomial(r, n, pt), stats.DefaultOptions)
		if *v.CILow <= trueLift && trueLift <= *v.CIHigh {
			covered++
		}
	}
	cov := float64(covered) / sims
	t.Logf("coverage of the 95%% interval: %.4f over %d experiments", cov, sims)
	if math.Abs(cov-0.95) > 0.01 {
		t.Errorf("coverage %.4f, want 0.95 ± 0.01", cov)
	}
}

// Looking after every 100 users with sequential testing keeps the false-positive rate
// at or below 5%; the same looks with fixed-horizon p-values inflate it, which is the
// problem sequential testing solves.
func TestSequentialPeeking(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const sims, maxUsers, every = 1000, 10000, 100
	seqPositives, naivePositives := 0, 0
	for range sims {
		var n, xc, xt float64
		seqHit, naiveHit := false, false
		for users := every; users <= maxUsers; users += every {
			for range every / 2 {
				n++
				if r.Float64() < 0.1 {
					xc++
				}
				if r.Float64() < 0.1 {
					xt++
				}
			}
			// The engine's own functions, without AnalyzeBinomial's Bayesian extras,
			// which 200,000 looks do not need.
			lift, variance, ok := stats.RelativeLift(stats.Proportion(n, xc), stats.Proportion(n, xt))
			if !ok {
				continue
			}
			seqHit = seqHit || stats.SequentialPValue(lift, variance, 2*n, 0.05, stats.DefaultSequentialTuning) < 0.05
			naive, _ := stats.ZTest(lift, variance, 0.95)
			naiveHit = naiveHit || naive < 0.05
		}
		if seqHit {
			seqPositives++
		}
		if naiveHit {
			naivePositives++
		}
	}
	seqFPR, naiveFPR := float64(seqPositives)/sims, float64(naivePositives)/sims
	t.Logf("peeking every %d users up to %d: sequential FPR %.3f, fixed-horizon FPR %.3f", every, maxUsers, seqFPR, naiveFPR)
	if seqFPR > 0.05 {
		t.Errorf("sequential false-positive rate %.3f, want ≤ 0.05", seqFPR)
	}
	if naiveFPR <= 0.1 {
		t.Errorf("fixed-horizon peeking FPR %.3f: the simulation should show inflation", naiveFPR)
	}
}

// The confidence sequence always contains the fixed-horizon interval (it pays for
// validity at every look with width).
func TestConfidenceSequenceWider(t *testing.T) {
	for _, n := range []float64{100, 5000, 1e6} {
		cs := stats.ConfidenceSequence(0.1, 0.01/n, n, 0.05, stats.DefaultSequentialTuning)
		_, ci := stats.ZTest(0.1, 0.01/n, 0.95)
		if cs.Low > ci.Low || cs.High < ci.High {
			t.Errorf("n=%v: sequence %v narrower than interval %v", n, cs, ci)
		}
	}
}

// CUPED on synthetic data where the pre-period metric correlates with the outcome at
// ρ: the interval of the difference shrinks by √(1−ρ²), within 5%.
func TestCUPEDReducesWidth(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const n = 20000
	for _, rho := range []float64{0.5, 0.8} {
		var vs [2]stats.CovMoments
		for v := range vs {
			effect := 0.0
			if v == 1 {
				effect = 0.5
			}
			m := &vs[v]
			for range n {
				x := 10 + 2*r.NormFloat64()
				// Y = 20 + effect + ρ·(x−10) + √(1−ρ²)·2·ε has sd 2 and corr(X, Y) = ρ.
				y := 20 + effect + rho*(x-10) + math.Sqrt(1-rho*rho)*2*r.NormFloat64()
				addUser(m, x, y)
			}
		}
		adjusted, theta := stats.CUPED(vs[:])
		plain := []stats.Estimate{
			stats.Moments{N: vs[0].N, Sum: vs[0].SumY, SumSq: vs[0].SumY2}.Estimate(),
			stats.Moments{N: vs[1].N, Sum: vs[1].SumY, SumSq: vs[1].SumY2}.Estimate(),
		}
		_, vPlain := stats.AbsoluteLift(plain[0], plain[1])
		dAdj, vAdj := stats.AbsoluteLift(adjusted[0], adjusted[1])
		ratio := math.Sqrt(vAdj / vPlain)
		want := math.Sqrt(1 - rho*rho)
		t.Logf("ρ=%.1f: θ=%.3f, CI width ratio %.4f (expected %.4f), adjusted effect %.4f", rho, theta, ratio, want, dAdj)
		if math.Abs(ratio-want)/want > 0.05 {
			t.Errorf("ρ=%.1f: width ratio %.4f, want %.4f ± 5%%", rho, ratio, want)
		}
		if math.Abs(dAdj-0.5) > 4*math.Sqrt(vAdj) {
			t.Errorf("ρ=%.1f: adjusted effect %.4f is biased (true 0.5)", rho, dAdj)
		}
	}
}
