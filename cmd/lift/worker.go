package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/recommend"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/amqprunner"
)

// banditSource feeds the bandit updater from the configuration (running bandit
// experiments) and from ClickHouse (counts per segment and arm), and names the
// winner to declare from the experiment's results.
type banditSource struct {
	config  experiments.Store
	events  experiments.EventStore
	results *experiments.ResultsService
}

func (b banditSource) Bandits(ctx context.Context) ([]bandit.Spec, error) {
	docs, err := b.config.List(ctx, experiments.KindExperiment)
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
		specs = append(specs, s)
	}
	return specs, nil
}

func (b banditSource) Counts(ctx context.Context, s bandit.Spec) (map[string][]bandit.Period, error) {
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
	data, err := b.events.MetricAggregates(ctx, experiments.MetricQuery{
		Experiment: s.Experiment, Event: s.Event, Kind: kind, Where: where, Window: s.Window, KeepMultiVariant: true,
	}, by)
	if err != nil {
		return nil, err
	}
	type key struct{ segment, day string }
	periods := map[key]*bandit.Period{}
	var order []key
	for _, a := range data.Arms {
		i := indexOf(s.Variants, a.Variant)
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

func indexOf(keys []string, key string) int {
	for i, k := range keys {
		if k == key {
			return i
		}
	}
	return -1
}

// Winner is the arm the experiment's results recommend declaring (bandit.WinnerSource):
// the analysis over the bandit's periods, once its minimum sample and runtime are
// reached, never the allocation's pooled P(best).
func (b banditSource) Winner(ctx context.Context, s bandit.Spec) (string, float64, error) {
	res, err := b.results.Results(ctx, s.Experiment)
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
func (b banditSource) DeclareWinner(ctx context.Context, experiment, variant string, pBest float64) error {
	_, err := b.config.Update(ctx, experiments.KindExperiment, experiment, "declare-winner",
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

// segmentDefinitions reads the behavioural segments for the segment engine: each
// published definition under its key, and each draft in preview under
// "<key>@draft" (segments.PreviewSuffix); and the features it computes: each feature
// document's, and each recommender's recent items. The fingerprint is their
// definitions, which change whenever one does.
func segmentDefinitions(config experiments.Store) amqprunner.Definitions {
	return func(ctx context.Context) ([]segments.Definition, string, error) {
		docs, err := config.List(ctx, experiments.KindSegment)
		if err != nil {
			return nil, "", err
		}
		var defs []segments.Definition
		fingerprint := sha256.New()
		add := func(key string, s *experiments.Segment) error {
			if s.Kind != "behavioral" {
				return nil
			}
			rule, err := segments.ParseRuleJSON(s.Rule)
			if err != nil {
				return fmt.Errorf("segment %q: %w", key, err)
			}
			var ttl time.Duration
			if s.TTL != "" {
				if ttl, err = time.ParseDuration(s.TTL); err != nil {
					return fmt.Errorf("segment %q: ttl: %w", key, err)
				}
			}
			defs = append(defs, segments.Definition{Key: key, Rule: rule, TTL: ttl})
			fmt.Fprintf(fingerprint, "%s\x00%s\x00%s\n", key, rule.String(), ttl)
			return nil
		}
		for _, doc := range docs {
			var s experiments.Segment
			if err := json.Unmarshal(doc, &s); err != nil {
				return nil, "", err
			}
			draft := s.Draft
			if s.IsPublished() {
				if err := add(s.Key, &s); err != nil {
					return nil, "", err
				}
			} else {
				draft = &s
			}
			if draft != nil {
				if err := add(s.Key+segments.PreviewSuffix, draft); err != nil {
					return nil, "", err
				}
			}
		}
		features, err := featureDefinitions(ctx, config)
		if err != nil {
			return nil, "", err
		}
		for _, d := range features {
			defs = append(defs, d)
			fmt.Fprintf(fingerprint, "%s\x00%s\n", d.Key, d.Feature.String())
		}
		keys := make([]string, len(defs))
		for i, d := range defs {
			keys[i] = d.Key
		}
		// Readable keys first, so the checkpoint shows which segments it holds.
		return defs, strings.Join(keys, ",") + "@" + hex.EncodeToString(fingerprint.Sum(nil)[:8]), nil
	}
}

// featureDefinitions reads the features the segment engine computes: every feature
// document's definition, and every recommender's recent items.
func featureDefinitions(ctx context.Context, config experiments.Store) ([]segments.Definition, error) {
	var defs []segments.Definition
	docs, err := config.List(ctx, experiments.KindFeature)
	if err != nil {
		return nil, err
	}
	for _, doc := range docs {
		var f experiments.Feature
		if err := json.Unmarshal(doc, &f); err != nil {
			return nil, err
		}
		def, err := f.Definition()
		if err != nil {
			return nil, fmt.Errorf("feature %q: %w", f.Key, err)
		}
		defs = append(defs, segments.Definition{Key: f.EngineKey(), Feature: def})
	}
	if docs, err = config.List(ctx, experiments.KindRecommender); err != nil {
		return nil, err
	}
	for _, doc := range docs {
		var r experiments.Recommender
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, err
		}
		r.Normalize()
		def, err := r.RecentItemsFeature()
		if err != nil {
			return nil, fmt.Errorf("recommender %q: %w", r.Key, err)
		}
		defs = append(defs, segments.Definition{Key: r.FeatureKey(), Feature: def})
	}
	return defs, nil
}

// recommenderSpecs lists the recommenders to train.
func recommenderSpecs(config experiments.Store) func(context.Context) ([]recommend.Spec, error) {
	return func(ctx context.Context) ([]recommend.Spec, error) {
		docs, err := config.List(ctx, experiments.KindRecommender)
		if err != nil {
			return nil, err
		}
		specs := make([]recommend.Spec, 0, len(docs))
		for _, doc := range docs {
			var r experiments.Recommender
			if err := json.Unmarshal(doc, &r); err != nil {
				return nil, fmt.Errorf("recommender document: %w", err)
			}
			specs = append(specs, recommend.SpecOf(r))
		}
		return specs, nil
	}
}
