package main

import (
	"fmt"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/config"
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
	rules := ingest.ScrubRules{Patterns: cfg.ScrubPatterns, Properties: cfg.ScrubProperties}
	if rules.Patterns == nil {
		rules.Patterns = ingest.ScrubPatterns
	}
	if rules.Properties == nil {
		rules.Properties = ingest.DefaultScrubProperties
	}
	s, err := ingest.NewScrubber(rules)
	if err != nil {
		return nil, fmt.Errorf("LIFT_SCRUB_PATTERNS / LIFT_SCRUB_PROPERTIES: %w", err)
	}
	p.Scrubber = s
	return p, nil
}
