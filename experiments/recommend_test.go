package experiments

import (
	"strings"
	"testing"

	"github.com/liftlab/lift/experiments/stats"
)

// metric analyses counts per variant (control first) as the results service does.
func metric(role string, counts ...float64) MetricResult {
	var arms []ArmAggregate
	for i := 0; i < len(counts); i += 2 {
		arms = append(arms, ArmAggregate{Variant: string(rune('a' + i/2)), Users: counts[i], Conversions: counts[i+1]})
	}
	return MetricResult{Key: role, Role: role, Variants: analyse("conversion", arms, stats.DefaultOptions)}
}

func TestRecommend(t *testing.T) {
	p := 0.5
	tiny := 1e-9
	tests := []struct {
		name     string
		res      Results
		decision string
		variant  string
		reason   string
	}{
		{"clear winner", Results{SRMPValue: &p, Metrics: []MetricResult{metric("goal", 10000, 500, 10000, 650)}},
			"ship", "b", "significant win"},
		{"best of two winners", Results{SRMPValue: &p, Metrics: []MetricResult{metric("goal", 10000, 500, 10000, 600, 10000, 700)}},
			"ship", "c", "significant win"},
		{"guardrail harmed", Results{SRMPValue: &p, Metrics: []MetricResult{metric("goal", 10000, 500, 10000, 650),
			metric("guardrail", 10000, 300, 10000, 200)}}, "stop", "b", "guardrail"},
		{"secondary metrics do not block", Results{SRMPValue: &p, Metrics: []MetricResult{metric("goal", 10000, 500, 10000, 650),
			metric("secondary", 10000, 300, 10000, 200)}}, "ship", "b", "significant win"},
		{"sample ratio mismatch", Results{SRM: true, SRMPValue: &tiny, Metrics: []MetricResult{metric("goal", 10000, 500, 12000, 650)}},
			"stop", "", "sample ratio mismatch"},
		{"treatment loses", Results{SRMPValue: &p, Metrics: []MetricResult{metric("goal", 10000, 650, 10000, 500)}},
			"stop", "", "worse"},
		{"underpowered", Results{SRMPValue: &p, Metrics: []MetricResult{metric("goal", 1000, 100, 1000, 110)}},
			"keep_running", "", "more users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := recommend(&tt.res, stats.DefaultOptions)
			if got.Decision != tt.decision || got.Variant != tt.variant || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("got %+v, want %s %q (%s)", got, tt.decision, tt.variant, tt.reason)
			}
		})
	}
}

// The power estimate matches the textbook formula: 10% vs 11% needs about 14,748
// users per variant for 80% power at α = 0.05.
func TestUsersNeeded(t *testing.T) {
	m := metric("goal", 1000, 100, 1000, 110)
	need, ok := usersNeeded(m.Variants, 0.05)
	// n = (1.95996 + 0.84162)² · (0.09 + 0.0979) / 0.01² = 14,748 per variant.
	if want := 2 * (14748.0 - 1000); !ok || need < want-2 || need > want+2 {
		t.Errorf("users needed %v, want about %v", need, want)
	}
}
