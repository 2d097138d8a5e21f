package experiments_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments"
)

// BenchConfig is the decision workload of the benchmarks: 10 running experiments (some
// targeted) and 10 flags with conditions, segments, rollouts and an experiment rule.
func benchConfig() *experiments.Config {
	cfg := &experiments.Config{
		Segments: []experiments.Segment{{Key: "mobile", Kind: "attribute", Condition: json.RawMessage(`{"device":"mobile"}`)}},
	}
	for i := range 10 {
		e := abTest(fmt.Sprintf("exp-%d", i), experiments.StatusRunning, 0.25, 0.25, 0.5)
		if i%3 == 0 {
			e.Targeting = json.RawMessage(`{"country":{"$in":["US","CA","GB"]}}`)
		}
		cfg.Experiments = append(cfg.Experiments, e)
	}
	for i := range 10 {
		cfg.Flags = append(cfg.Flags, experiments.Flag{
			Key: fmt.Sprintf("flag-%d", i), Type: "boolean", Default: json.RawMessage(`false`),
			Rules: []experiments.Rule{
				{Condition: json.RawMessage(`{"plan":"enterprise"}`), Value: json.RawMessage(`true`)},
				{Segment: "mobile", Rollout: ptr(0.5), Value: json.RawMessage(`true`)},
				{Rollout: ptr(0.2), Value: json.RawMessage(`true`)},
			},
		})
	}
	return cfg
}

func benchUsers(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("user-%d", i*7919)
	}
	return ids
}

// BenchmarkDecideAll decides 10 experiments and 10 flags for one user, as /v1/decide
// does without a key filter.
func BenchmarkDecideAll(b *testing.B) {
	snap := experiments.NewSnapshot(benchConfig(), time.Now())
	users := benchUsers(1024)
	attrs := map[string]any{"country": "US", "device": "mobile", "plan": "free"}
	var buf []experiments.Keyed
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = snap.Decide(users[i%len(users)], attrs, nil, buf[:0])
	}
}

// BenchmarkAssignOne is a single experiment assignment.
func BenchmarkAssignOne(b *testing.B) {
	snap := experiments.NewSnapshot(benchConfig(), time.Now())
	users := benchUsers(1024)
	attrs := map[string]any{"country": "US"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _ = snap.Evaluate("exp-1", users[i%len(users)], attrs)
	}
}

// BenchmarkSnapshotBuild measures how long a configuration change takes to compile.
func BenchmarkSnapshotBuild(b *testing.B) {
	cfg := benchConfig()
	b.ReportAllocs()
	for b.Loop() {
		_ = experiments.NewSnapshot(cfg, time.Now())
	}
}
