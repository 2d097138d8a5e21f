// Package banditreport assembles the report on a bandit experiment's allocation
// (GET /api/v1/experiments/{key}/bandit): the weights its updater published, per
// bandit (the experiment's global one and one per bandit segment), over time, with
// the posteriors and counts they came from.
//
// The report is the allocation's state, not the bandit's results: the updater pools
// every user whenever they came, which is right for choosing weights and wrong for
// estimating arms whose weights moved while the metric drifted. The arms'
// estimates, P(best) and whether to declare a winner come from the results service
// (experiments.ResultsService), which weighs them over the bandit's periods.
package banditreport

import (
	"context"
	"encoding/json"
	"time"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

// Config reads experiment documents.
type Config interface {
	// Get returns derrors.ErrNotFound if there is no such document.
	Get(ctx context.Context, kind experiments.Kind, key string) (json.RawMessage, error)
}

// Weights reads the published weights versions of an experiment.
type Weights interface {
	// History returns the versions published since a time, oldest first.
	History(ctx context.Context, experiment string, since time.Time) ([]bandit.Version, error)
}

// HistoryWindow bounds how far back a report's weights over time go.
const HistoryWindow = 14 * 24 * time.Hour

// Service reports on bandit experiments.
type Service struct {
	Config  Config
	Weights Weights
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// BanditReport returns the report on an experiment's bandits, one SegmentReport per
// bandit that has published weights, in the order they first did. It returns
// derrors.ErrNotFound for an unknown experiment and a *derrors.ValidationError
// for one that is not a bandit.
func (s *Service) BanditReport(ctx context.Context, key string) (bandit.Report, error) {
	doc, err := s.Config.Get(ctx, experiments.KindExperiment, key)
	if err != nil {
		return bandit.Report{}, err
	}
	var e experiments.Experiment
	if err := json.Unmarshal(doc, &e); err != nil {
		return bandit.Report{}, err
	}
	e.Normalize()
	if e.Type != experiments.TypeBandit {
		return bandit.Report{}, derrors.Invalid("type", "not a bandit experiment")
	}
	rep := bandit.Report{Experiment: key, WinnerThreshold: e.Bandit.Threshold(), Segments: []bandit.SegmentReport{}}
	if e.Bandit != nil {
		rep.Winner = e.Bandit.Winner
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	versions, err := s.Weights.History(ctx, key, now().Add(-HistoryWindow))
	if err != nil {
		return bandit.Report{}, err
	}
	bySegment := map[string]*bandit.SegmentReport{}
	var order []string
	for _, v := range versions {
		seg := bySegment[v.Segment]
		if seg == nil {
			seg = &bandit.SegmentReport{Segment: v.Segment}
			bySegment[v.Segment] = seg
			order = append(order, v.Segment)
		}
		seg.History = append(seg.History, bandit.HistoryPoint{At: v.ComputedAt, Weights: v.Weights})
		seg.Version, seg.ComputedAt, seg.BurnIn = v.Version, v.ComputedAt, v.BurnIn
		seg.Arms = seg.Arms[:0]
		means := make([]float64, len(v.Variants))
		exposures := make([]float64, len(v.Variants))
		for i, variant := range v.Variants {
			arm := bandit.ArmReport{Variant: variant}
			if i < len(v.Weights) {
				arm.Weight = v.Weights[i]
			}
			if i < len(v.PBest) {
				arm.PBest = v.PBest[i]
			}
			if i < len(v.Posteriors) {
				arm.Posterior = v.Posteriors[i]
				means[i] = v.Posteriors[i].Mean
			}
			if i < len(v.Counts) {
				c := v.Counts[i]
				arm.Exposures, exposures[i] = c.Exposures, c.Exposures
				if c.Exposures > 0 {
					arm.NaiveMean = c.Conversions / c.Exposures
					if e.Goal != nil && e.Goal.Kind == "value" {
						arm.NaiveMean = c.Sum / c.Exposures
					}
				}
			}
			seg.Arms = append(seg.Arms, arm)
		}
		seg.Regret = bandit.EstimatedRegret(exposures, means)
	}
	for _, name := range order {
		rep.Segments = append(rep.Segments, *bySegment[name])
	}
	return rep, nil
}
