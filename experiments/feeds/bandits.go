package feeds

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
)

// Results analyses an experiment (experiments.ResultsService).
type Results interface {
	Results(ctx context.Context, key string) (experiments.Results, error)
}

// Bandits feeds the bandit updater from the configuration (running bandit
// experiments) and from ClickHouse (counts per segment and arm), and names the
// winner to declare from the experiment's results.
type Bandits struct {
	Config  Config
	Events  experiments.EventStore
	Results Results
}

// Bandits lists the running bandit experiments that have a goal and no winner yet.
func (b *Bandits) Bandits(ctx context.Context) ([]bandit.Spec, error) {
	docs, err := b.Config.List(ctx, experiments.KindExperiment)
	if err != nil {
		return nil, err
	}
	var specs []bandit.Spec
	for _, doc := range docs {
		var e experiments.Experiment
		if err := json.Unmarshal(doc, &e); err != nil {
			return nil, fmt.Errorf("experiment document: %w", err)
		}
		e.Normalize()
		if e.Type != experiments.TypeBandit || e.Status != experiments.StatusRunning || e.Goal == nil ||
			e.Bandit != nil && e.Bandit.Winner != "" {
			continue
		}
		specs = append(specs, banditSpec(e))
	}
	return specs, nil
}

func banditSpec(e experiments.Experiment) bandit.Spec {
	s := bandit.Spec{Experiment: e.Key, Event: e.Goal.Event, Where: e.Goal.Where, Window: e.GoalWindow(), Goal: bandit.Conversion}
	if e.Goal.Kind == "value" {
		s.Goal = bandit.Value
	}
	for _, v := range e.Variants {
		s.Variants = append(s.Variants, v.Key)
	}
	s.WinnerThreshold = e.Bandit.Threshold()
	if c := e.Bandit; c != nil {
		s.Segments, s.MinWeight, s.UpdateEvery, s.AutoStop = c.PerSegment, c.MinWeight, c.UpdateInterval(), c.AutoStop
		s.WindowDays, s.Decay = c.WindowDays(), c.Decay
	}
	return s
}

// Counts returns each bandit segment's counts per arm ("" is the global bandit): one
// period for the whole experiment, or one per day when the bandit discounts old days.
// Variants no longer in the experiment are left out.
func (b *Bandits) Counts(ctx context.Context, s bandit.Spec) (map[string][]bandit.Period, error) {
	kind := "conversion"
	if s.Goal == bandit.Value {
		kind = "value"
	}
	where, err := experiments.ParseWhere(s.Where)
	if err != nil {
		return nil, err
	}
	by := experiments.BySegment
	if s.Discounts() {
		by = experiments.BySegmentDay
	}
	data, err := b.Events.MetricAggregates(ctx, experiments.MetricQuery{
		Experiment: s.Experiment, Event: s.Event, Kind: kind, Where: where, Window: s.Window, KeepMultiVariant: true,
	}, by)
	if err != nil {
		return nil, err
	}
	type key struct{ segment, day string }
	periods := map[key]*bandit.Period{}
	var order []key
	for _, a := range data.Arms {
		i := slices.Index(s.Variants, a.Variant)
		if i < 0 {
			continue // a variant since removed
		}
		k := key{a.Group, a.Day}
		p := periods[k]
		if p == nil {
			p = &bandit.Period{Arms: make([]bandit.Counts, len(s.Variants))}
			if a.Day != "" {
				if p.Day, err = time.Parse(time.DateOnly, a.Day); err != nil {
					return nil, err
				}
			}
			periods[k] = p
			order = append(order, k)
		}
		p.Arms[i] = bandit.Counts{Exposures: a.Users, Conversions: a.Conversions, Sum: a.Sum, SumSq: a.SumSq}
	}
	out := map[string][]bandit.Period{}
	for _, k := range order {
		out[k.segment] = append(out[k.segment], *periods[k])
	}
	return out, nil
}

// Winner is the arm the experiment's results recommend declaring (bandit.WinnerSource):
// the analysis over the bandit's periods, once its minimum sample and runtime are
// reached, never the allocation's pooled P(best).
func (b *Bandits) Winner(ctx context.Context, s bandit.Spec) (string, float64, error) {
	res, err := b.Results.Results(ctx, s.Experiment)
	if err != nil {
		return "", 0, err
	}
	if rec := res.Recommendation; rec.Decision == "ship" && rec.Variant != "" && len(res.Metrics) > 0 {
		for _, v := range res.Metrics[0].Variants {
			if v.Key == rec.Variant && v.PBest != nil {
				return rec.Variant, *v.PBest, nil
			}
		}
	}
	return "", 0, nil
}

// DeclareWinner records the winner in the experiment document, through the audit log
// like any configuration change; the snapshot then serves it to everyone.
func (b *Bandits) DeclareWinner(ctx context.Context, experiment, variant string, pBest float64) error {
	_, err := b.Config.Update(ctx, experiments.KindExperiment, experiment, "declare-winner",
		fmt.Sprintf("bandit-updater (P(best) %.3f)", pBest), func(before json.RawMessage) (json.RawMessage, error) {
			var doc map[string]any
			if err := json.Unmarshal(before, &doc); err != nil {
				return nil, err
			}
			cfg, _ := doc["bandit"].(map[string]any)
			if cfg == nil {
				cfg = map[string]any{}
			}
			cfg["winner"] = variant
			doc["bandit"] = cfg
			return json.Marshal(doc)
		})
	return err
}
