package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/internal/config"
	"github.com/liftlab/lift/segments/amqprunner"
	segstore "github.com/liftlab/lift/segments/pgstore"
	"github.com/liftlab/lift/web/dashboard"
)

// newPrivacy builds the privacy policy the api, the consumers and the segment engine
// share (docs/privacy.md); unknown scrub patterns fail start-up.
func newPrivacy(cfg config.Config, m *ingest.PrivacyMetrics) (*ingest.Privacy, error) {
	p := &ingest.Privacy{RequireConsent: cfg.ConsentRequired, Metrics: m}
	if cfg.PseudonymizeKey != "" {
		ps, err := ingest.NewPseudonymizer([]byte(cfg.PseudonymizeKey))
		if err != nil {
			return nil, fmt.Errorf("LIFT_PSEUDONYMIZE_KEY: %w", err)
		}
		p.Pseudonymizer = ps
	}
	s, err := ingest.NewScrubber(scrubRules(cfg))
	if err != nil {
		return nil, fmt.Errorf("LIFT_SCRUB_PATTERNS / LIFT_SCRUB_PROPERTIES: %w", err)
	}
	p.Scrubber = s
	return p, nil
}

// segmentEraser is the segment engine's part of an erasure: every shard forgets the
// users at its next checkpoint; a shard whose checkpoint is older than staleAfter
// has no running engine, and its checkpoint is edited here instead.
type segmentEraser struct {
	store      *segstore.Store
	defs       amqprunner.Definitions
	staleAfter time.Duration
}

func (s segmentEraser) RequestForget(ctx context.Context, jobID string, userIDs []string) error {
	return s.store.RequestErasure(ctx, jobID, userIDs)
}

func (s segmentEraser) Forgotten(ctx context.Context, jobID string, userIDs []string) (bool, error) {
	pending, err := s.store.ErasurePending(ctx, jobID)
	if err != nil || len(pending) == 0 {
		return err == nil, err
	}
	left := 0
	for _, p := range pending {
		if time.Since(p.SavedAt) < s.staleAfter {
			left++ // its engine runs and will forget them at its next checkpoint
			continue
		}
		defs, fingerprint, err := s.defs(ctx)
		if err != nil {
			return false, err
		}
		ok, err := s.store.ForgetInCheckpoint(ctx, p.Shard, userIDs, defs, fingerprint)
		if err != nil {
			return false, err
		}
		if !ok {
			left++
		}
	}
	return left == 0, nil
}

// configEraser is the configuration's part: saved groups lose the ids through the
// audited store, the audit entry naming each by its subject; other documents naming
// them are reported for review.
type configEraser struct{ store configStore }

// configStore is what configEraser needs of the configuration store.
type configStore interface {
	List(ctx context.Context, kind experiments.Kind) ([]json.RawMessage, error)
	UpdateAudited(ctx context.Context, kind experiments.Kind, key, action, actor string,
		change func(before json.RawMessage) (json.RawMessage, error), audited func(doc json.RawMessage) json.RawMessage) (json.RawMessage, error)
}

func (c configEraser) ForgetInSavedGroups(ctx context.Context, actor string, subjects map[string]string) ([]string, error) {
	docs, err := c.store.List(ctx, experiments.KindSavedGroup)
	if err != nil {
		return nil, err
	}
	erased := func(v any) bool { s, ok := v.(string); _, found := subjects[s]; return ok && found }
	var changed []string
	for _, doc := range docs {
		var g experiments.SavedGroup
		if err := json.Unmarshal(doc, &g); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(g.Values, erased) {
			continue
		}
		// Values are rewritten in the group's own document: ids removed from it,
		// replaced by their subjects in the audit log's copy of it.
		values := func(doc json.RawMessage, edit func([]any) []any) (json.RawMessage, error) {
			var m map[string]any
			if err := json.Unmarshal(doc, &m); err != nil {
				return nil, err
			}
			vs, _ := m["values"].([]any)
			m["values"] = edit(vs)
			return json.Marshal(m)
		}
		remove := func(vs []any) []any { return slices.DeleteFunc(vs, erased) }
		redact := func(vs []any) []any {
			for i, v := range vs {
				if erased(v) {
					vs[i] = subjects[v.(string)]
				}
			}
			return vs
		}
		_, err := c.store.UpdateAudited(ctx, experiments.KindSavedGroup, g.Key, "erase-user", actor,
			func(before json.RawMessage) (json.RawMessage, error) { return values(before, remove) },
			func(doc json.RawMessage) json.RawMessage {
				out, err := values(doc, redact)
				if err != nil {
					return json.RawMessage(`{"values":"(not recorded)"}`) // never the ids
				}
				return out
			})
		if err != nil {
			return nil, fmt.Errorf("saved group %q: %w", g.Key, err)
		}
		changed = append(changed, g.Key)
	}
	return changed, nil
}

// Mentions lists the documents naming any of the ids (the other kinds are checked
// for review by hand).
func (c configEraser) Mentions(ctx context.Context, userIDs []string) ([]string, error) {
	var out []string
	for _, kind := range []experiments.Kind{experiments.KindSavedGroup, experiments.KindExperiment, experiments.KindFlag, experiments.KindSegment} {
		docs, err := c.store.List(ctx, kind)
		if err != nil {
			return nil, err
		}
		for _, doc := range docs {
			for _, id := range userIDs {
				quoted, _ := json.Marshal(id)
				if bytes.Contains(doc, quoted) {
					var d struct{ Key string }
					_ = json.Unmarshal(doc, &d)
					out = append(out, string(kind)+"/"+d.Key)
					break
				}
			}
		}
	}
	return out, nil
}

// dashboardPrivacy is what the privacy settings page reads and changes.
type dashboardPrivacy struct {
	*gdpr.Retention
	*gdpr.Service
}

// scrubRules are the configured rules, the defaults where unset.
func scrubRules(cfg config.Config) ingest.ScrubRules {
	r := ingest.ScrubRules{Patterns: cfg.ScrubPatterns, Properties: cfg.ScrubProperties}
	if r.Patterns == nil {
		r.Patterns = ingest.ScrubPatterns
	}
	if r.Properties == nil {
		r.Properties = ingest.DefaultScrubProperties
	}
	return r
}

// privacyConfig describes the policy for the settings page.
func privacyConfig(p *ingest.Privacy, cfg config.Config) dashboard.PrivacyConfig {
	r := scrubRules(cfg)
	return dashboard.PrivacyConfig{Pseudonymized: p.Pseudonymizer != nil, ConsentRequired: p.RequireConsent,
		ScrubPatterns: r.Patterns, ScrubProperties: r.Properties}
}
