package bandit

import (
	"testing"
	"time"
)

func TestCombineDiscounts(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	day := func(ago int) time.Time { return now.AddDate(0, 0, -ago).Truncate(24 * time.Hour).Add(3 * time.Hour) }
	periods := []Period{
		{Day: day(0), Arms: []Counts{{Exposures: 100, Conversions: 10}}},
		{Day: day(1), Arms: []Counts{{Exposures: 200, Conversions: 40}}},
		{Day: day(3), Arms: []Counts{{Exposures: 400, Conversions: 80}}},
	}
	for _, tc := range []struct {
		name                   string
		spec                   Spec
		exposures, conversions float64
	}{
		{"everyone alike", Spec{}, 700, 130},
		{"window of two days", Spec{WindowDays: 2}, 300, 50},
		{"decay 0.5 per day", Spec{Decay: 0.5}, 100 + 0.5*200 + 0.125*400, 10 + 0.5*40 + 0.125*80},
		{"both", Spec{WindowDays: 3, Decay: 0.5}, 100 + 0.5*200, 10 + 0.5*40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Variants = []string{"a"}
			got, err := combine(periods, tc.spec, now)
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Exposures != tc.exposures || got[0].Conversions != tc.conversions {
				t.Errorf("got %+v, want %v exposures and %v conversions", got[0], tc.exposures, tc.conversions)
			}
		})
	}
}
