package experiments_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments"
)

// dailyArms is an event store holding aggregates per segment and day of first
// exposure, summed as each breakdown asks.
type dailyArms []experiments.ArmAggregate

func (d dailyArms) MetricAggregates(_ context.Context, _ experiments.MetricQuery, by experiments.Breakdown) (experiments.MetricData, error) {
	return regroup(d, by), nil
}

// regroup sums d by variant and the breakdown's keys.
func regroup(d dailyArms, by experiments.Breakdown) experiments.MetricData {
	var out experiments.MetricData
	index := map[[3]string]int{}
	for _, a := range d {
		k := [3]string{a.Variant}
		switch by {
		case experiments.BySegmentDay:
			k[1], k[2] = a.Group, a.Day
		case experiments.BySegment:
			k[1] = a.Group
		case experiments.ByDay:
			k[1] = a.Day
		}
		i, ok := index[k]
		if !ok {
			i = len(out.Arms)
			index[k] = i
			out.Arms = append(out.Arms, experiments.ArmAggregate{Variant: a.Variant, Group: k[1], Day: k[2]})
		}
		b := &out.Arms[i]
		b.Users += a.Users
		b.Conversions += a.Conversions
		b.Sum += a.Sum
		b.SumSq += a.SumSq
	}
	return out
}

func (dailyArms) LatestEvent(context.Context) (time.Time, error) { return time.Time{}, nil }

// day adds one day's users and conversions per arm of a segment.
func day(seg, date string, counts ...float64) []experiments.ArmAggregate {
	var out []experiments.ArmAggregate
	for i := 0; i < len(counts); i += 2 {
		out = append(out, experiments.ArmAggregate{Variant: string(rune('a' + i/2)), Group: seg, Day: date, Users: counts[i], Conversions: counts[i+1]})
	}
	return out
}

func results(t *testing.T, doc string, data dailyArms) experiments.Results {
	t.Helper()
	svc := &experiments.ResultsService{Store: oneExperiment{doc: doc}, Events: data,
		Now: func() time.Time { return time.Date(2026, 12, 15, 12, 0, 0, 0, time.UTC) }}
	res, err := svc.Results(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestBanditResults: a bandit's results come from the analysis valid under its
// moving weights — no SRM check, no control, P(best) and intervals per arm, the plain
// mean kept apart — and the recommendation from P(best) and the lead, not from a
// fixed-allocation test. Here b is better, but most of its users came in the second
// week when everyone converted half as often, so its plain mean is lower than a's.
func TestBanditResults(t *testing.T) {
	var data dailyArms
	for d := 1; d <= 14; d++ {
		date := time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
		if d <= 7 {
			data = append(data, day("", date, 5000, 500, 5000, 600)...)
		} else {
			data = append(data, day("", date, 1000, 50, 9000, 540)...)
		}
	}
	doc := `{"key":"x","type":"bandit","status":"running","variants":[{"key":"a"},{"key":"b"}],
		"goal":{"event":"click","kind":"conversion"},"analysis":{"min_users":1000,"min_runtime":"72h","sequential":true}}`
	res := results(t, doc, data)
	if res.Type != "bandit" || res.SRMPValue != nil || res.SRM || res.Control != "" || res.Users != 140000 {
		t.Fatalf("results: type %q, SRM %v %v, control %q, users %v", res.Type, res.SRMPValue, res.SRM, res.Control, res.Users)
	}
	a, b := res.Metrics[0].Variants[0], res.Metrics[0].Variants[1]
	if a.Lift != nil || b.Lift != nil || b.ChanceToBeatControl != nil {
		t.Errorf("lifts over a control nobody named: %+v", b)
	}
	if *b.NaiveValue >= *a.NaiveValue || b.Value <= a.Value {
		t.Errorf("plain means %v vs %v should favour a, weighted %v vs %v b", *a.NaiveValue, *b.NaiveValue, a.Value, b.Value)
	}
	if *b.PBest < 0.99 || *b.Conversions != 600*7+540*7 {
		t.Errorf("b: P(best) %v, conversions %v", *b.PBest, *b.Conversions)
	}
	if r := res.Recommendation; r.Decision != "ship" || r.Variant != "b" || !strings.Contains(r.Reason, "always-valid") {
		t.Errorf("recommendation %+v", r)
	}
	// Named, a control brings lifts back, over the weighted means.
	res = results(t, strings.Replace(doc, `"variants"`, `"bandit":{"control":"a"},"variants"`, 1), data)
	if b := res.Metrics[0].Variants[1]; res.Control != "a" || b.Lift == nil || *b.Lift < 0.15 || *b.Lift > 0.25 {
		t.Errorf("with a control: %q, lift %v", res.Control, b.Lift)
	}
}

// TestBanditSegments: a bandit per segment is analysed per segment too; when each
// segment has its own best arm, no single winner is recommended, and users outside
// the segments (the fallback) show as their own group only when there are some.
func TestBanditSegments(t *testing.T) {
	var data dailyArms
	for d := 1; d <= 10; d++ {
		date := time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
		data = append(data, day("new", date, 3000, 300, 3000, 200)...)
		data = append(data, day("returning", date, 3000, 200, 3000, 300)...)
	}
	doc := `{"key":"x","type":"bandit","status":"running","variants":[{"key":"a"},{"key":"b"}],
		"goal":{"event":"click","kind":"conversion"},"bandit":{"per_segment":["new","returning"]},
		"analysis":{"min_users":100,"min_runtime":"0s"}}`
	res := results(t, doc, data)
	if len(res.Segments) != 2 || res.Segments[0].Group != "new" || res.Segments[1].Group != "returning" {
		t.Fatalf("segments %+v", res.Segments)
	}
	if p := res.Segments[0].Variants[0].PBest; p == nil || *p < 0.99 {
		t.Errorf("new: a's P(best) %v", p)
	}
	if r := res.Recommendation; r.Decision != "keep_running" || !strings.Contains(r.Reason, "new → a") || !strings.Contains(r.Reason, "returning → b") {
		t.Errorf("recommendation %+v", r)
	}
	data = append(data, day("", "2026-12-10", 10, 1, 10, 2)...)
	if res = results(t, doc, data); len(res.Segments) != 3 || res.Segments[2].Group != "" {
		t.Errorf("with users outside the segments: %+v", res.Segments)
	}
}

// TestMinimumBeforeVerdict: a clear winner is not shipped before the minimum sample
// and runtime; the answer says it is too early and why.
func TestMinimumBeforeVerdict(t *testing.T) {
	data := dailyArms(day("", "2026-12-15", 20000, 1000, 20000, 1300))
	base := `{"key":"x","status":"running","variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"buy","kind":"conversion"},
		"started_at":"2026-12-15T09:00:00Z"`
	tests := []struct {
		name, analysis string
		decision       string
		reason         []string
	}{
		{"runtime short of the default week", ``, "keep_running", []string{"too early", "3 hours of 7.0 days run"}},
		{"sample short", `,"analysis":{"min_users":50000,"min_runtime":"1h"}`, "keep_running", []string{"20000 of 50000 users"}},
		{"both reached", `,"analysis":{"min_users":1000,"min_runtime":"1h"}`, "ship", []string{"significant win"}},
		{"no minimum", `,"analysis":{"min_users":0,"min_runtime":"0s"}`, "ship", []string{"significant win"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := results(t, base+tt.analysis+"}", data)
			r := res.Recommendation
			if r.Decision != tt.decision || r.TooEarly != (tt.decision == "keep_running") || res.Minimum.TooEarly != r.TooEarly {
				t.Errorf("recommendation %+v, minimum %+v", r, res.Minimum)
			}
			for _, want := range tt.reason {
				if !strings.Contains(r.Reason, want) {
					t.Errorf("reason %q lacks %q", r.Reason, want)
				}
			}
		})
	}
}

// TestDegenerateResults: through the results service, one user per variant gives
// no interval, p-value or verdict, and says why.
func TestDegenerateResults(t *testing.T) {
	res := results(t, `{"key":"x","status":"running","variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"buy","kind":"conversion"},
		"analysis":{"min_users":0,"min_runtime":"0s","sequential":false}}`, dailyArms(day("", "2026-12-15", 1, 1, 1, 0)))
	b := res.Metrics[0].Variants[1]
	if b.Lift != nil || b.CILow != nil || b.PValue != nil || !strings.Contains(b.Reason, "fewer than 2 users") {
		t.Errorf("one user per variant: %+v", b)
	}
	if r := res.Recommendation; r.Decision != "keep_running" || !strings.Contains(r.Reason, "cannot be compared") {
		t.Errorf("recommendation %+v", r)
	}
}
