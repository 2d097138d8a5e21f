package stats

import (
	"math"
	"testing"
)

// TestTQuantileExpansion: past expansionDF degrees of freedom the expansion agrees
// with SciPy's t.isf to 1e-12 relative, at the levels people use. (gonum's inverse
// incomplete Beta function is off by 2e-10 at 2,000,000 degrees of freedom.)
// Values: /usr/bin/python3 -c 'from scipy import stats; print(stats.t.isf(tail, df))'.
func TestTQuantileExpansion(t *testing.T) {
	for _, c := range []struct{ df, tail, want float64 }{
		{1000, 0.05, 1.6463788172854645},
		{1000, 0.025, 1.9623390808264078},
		{1000, 0.005, 2.5807546980659426},
		{1000, 0.0005, 3.300282648423827},
		{2500, 0.05, 1.645463361905903},
		{2500, 0.025, 1.9609133447955673},
		{2500, 0.005, 2.5777973369278233},
		{2500, 0.0005, 3.2944228084453346},
		{10000, 0.05, 1.645006018069243},
		{10000, 0.025, 1.9602012398906263},
		{10000, 0.005, 2.5763210466685296},
		{10000, 0.0005, 3.2914999659416044},
		{100000, 0.05, 1.6448688647849699},
		{100000, 0.025, 1.9599877075346097},
		{100000, 0.005, 2.575878469908375},
		{100000, 0.0005, 3.2906240314118826},
		{2e+06, 0.05, 1.6448543888364018},
		{2e+06, 0.025, 1.959965170676375},
		{2e+06, 0.005, 2.575831761824909},
		{2e+06, 0.0005, 3.29053159636376},
	} {
		if got := tQuantile(c.tail, c.df); math.Abs(got-c.want) > 1e-12*c.want {
			t.Errorf("df %g, tail %g: %.16g, want %.16g", c.df, c.tail, got, c.want)
		}
	}
}
