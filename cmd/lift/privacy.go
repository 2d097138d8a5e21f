package main

import (
	"fmt"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/internal/config"
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
