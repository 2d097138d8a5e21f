package feeds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/recommend"
	"github.com/liftlab/lift/segments"
)

// SegmentDefinitions reads what the segment engine computes (a
// segments/amqprunner.Definitions): each published behavioural segment under its
// key, each draft in preview under "<key>@draft" (segments.PreviewSuffix), each
// feature document's feature and each recommender's recent items. The fingerprint
// is their definitions, which change whenever one does.
func SegmentDefinitions(config Config) func(context.Context) ([]segments.Definition, string, error) {
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
func featureDefinitions(ctx context.Context, config Config) ([]segments.Definition, error) {
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

// RecommenderSpecs lists the recommenders to train (recommend.Trainer.Recommenders).
func RecommenderSpecs(config Config) func(context.Context) ([]recommend.Spec, error) {
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
