package bandit_test

import (
	"errors"
	"math"
	"testing"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/internal/derrors"
)

func TestSegmentPriorsBorrowStrength(t *testing.T) {
	cfg := bandit.DefaultConfig()
	// Globally arm 1 converts at 6% and arm 0 at 4%.
	global := []bandit.Counts{{Exposures: 20_000, Conversions: 800}, {Exposures: 20_000, Conversions: 1200}}
	priors, err := bandit.SegmentPriors(global, cfg, bandit.DefaultSegmentESS)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range priors {
		b := p.(bandit.Beta)
		if math.Abs(b.A+b.B-bandit.DefaultSegmentESS) > 1e-9 {
			t.Errorf("prior %d = %+v: want worth %d observations", i, b, bandit.DefaultSegmentESS)
		}
	}

	seg := bandit.DefaultConfig()
	seg.Priors, seg.BurnIn = priors, 0
	// A new segment starts from the global picture rather than from scratch…
	res, err := bandit.Weights([]bandit.Counts{{}, {}}, seg)
	if err != nil {
		t.Fatal(err)
	}
	if res.PBest[1] < 0.6 {
		t.Errorf("empty segment: P(best) %v, want arm 1 favoured as globally", res.PBest)
	}
	// …but its own data wins once there is enough of it: here arm 0 converts at 8%.
	own := []bandit.Counts{{Exposures: 3000, Conversions: 240}, {Exposures: 3000, Conversions: 150}}
	if res, err = bandit.Weights(own, seg); err != nil || res.PBest[0] < 0.99 {
		t.Errorf("segment with data: P(best) %v, %v; want arm 0 nearly surely best", res.PBest, err)
	}
	// Shrunk priors have no integer parameter, so Monte Carlo still gives P(best).
	if s := res.PBest[0] + res.PBest[1]; math.Abs(s-1) > 1e-12 {
		t.Errorf("P(best) sums to %v", s)
	}
}

func TestSegmentPriorsValue(t *testing.T) {
	cfg := bandit.DefaultConfig()
	cfg.Goal = bandit.Value
	global := []bandit.Counts{{Exposures: 1e4, Sum: 2e4, SumSq: 2.9e5}, {Exposures: 1e4, Sum: 3e4, SumSq: 3.4e5}}
	priors, err := bandit.SegmentPriors(global, cfg, 50)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range priors {
		n := p.(bandit.NormalInvGamma)
		if n.Kappa != 50 || n.A != 25 || math.Abs(p.Mean()-global[i].Sum/global[i].Exposures) > 1e-3 {
			t.Errorf("prior %d = %+v: want Kappa 50, A 25 and the global mean", i, n)
		}
	}
}

func TestSegmentPriorsValidation(t *testing.T) {
	global := []bandit.Counts{{Exposures: 1}, {Exposures: 1}}
	var ve *derrors.ValidationError
	if _, err := bandit.SegmentPriors(global, bandit.DefaultConfig(), -1); !errors.As(err, &ve) || ve.Fields[0].Field != "segment_ess" {
		t.Errorf("negative ESS: err = %v", err)
	}
}

func TestDiscounted(t *testing.T) {
	periods := [][]bandit.Counts{
		{{Exposures: 100, Conversions: 10}, {Exposures: 100, Conversions: 20}},
		{{Exposures: 100, Conversions: 20}, {Exposures: 100, Conversions: 10}},
		{{Exposures: 100, Conversions: 30}, {Exposures: 100, Conversions: 0}},
	}
	tests := []struct {
		name   string
		window int
		decay  float64
		want   []bandit.Counts
	}{
		{"all", 0, 1, []bandit.Counts{{Exposures: 300, Conversions: 60}, {Exposures: 300, Conversions: 30}}},
		{"window", 2, 1, []bandit.Counts{{Exposures: 200, Conversions: 50}, {Exposures: 200, Conversions: 10}}},
		{"decay", 0, 0.5, []bandit.Counts{{Exposures: 175, Conversions: 42.5}, {Exposures: 175, Conversions: 10}}},
	}
	for _, tt := range tests {
		got, err := bandit.Discounted(periods, tt.window, tt.decay)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: arm %d = %+v, want %+v", tt.name, i, got[i], tt.want[i])
			}
		}
	}
	for _, bad := range []struct {
		field  string
		window int
		decay  float64
	}{{"window", -1, 1}, {"decay", 0, 0}, {"decay", 0, 1.5}} {
		var ve *derrors.ValidationError
		if _, err := bandit.Discounted(periods, bad.window, bad.decay); !errors.As(err, &ve) || ve.Fields[0].Field != bad.field {
			t.Errorf("window %d, decay %v: err = %v, want one for %q", bad.window, bad.decay, err, bad.field)
		}
	}
}
