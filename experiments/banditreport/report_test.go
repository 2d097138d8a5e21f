package banditreport_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/banditreport"
	"github.com/liftlab/lift/internal/derrors"
)

type docs map[string]string

func (d docs) Get(_ context.Context, _ experiments.Kind, key string) (json.RawMessage, error) {
	doc, ok := d[key]
	if !ok {
		return nil, derrors.ErrNotFound
	}
	return json.RawMessage(doc), nil
}

type history []bandit.Version

func (h history) History(_ context.Context, _ string, since time.Time) ([]bandit.Version, error) {
	var out []bandit.Version
	for _, v := range h {
		if !v.ComputedAt.Before(since) {
			out = append(out, v)
		}
	}
	return out, nil
}

// TestBanditReport: one segment report per bandit, its latest version's weights,
// posteriors and counts, and its weights over time; versions older than the
// history window are left out.
func TestBanditReport(t *testing.T) {
	now := time.Date(2026, 12, 15, 12, 0, 0, 0, time.UTC)
	version := func(seg string, n int64, at time.Time, w float64) bandit.Version {
		return bandit.Version{Segment: seg, Version: n, Variants: []string{"a", "b"}, Weights: []float64{1 - w, w}, PBest: []float64{1 - w, w},
			Posteriors: []bandit.Summary{{Mean: 0.04}, {Mean: 0.06}},
			Counts:     []bandit.Counts{{Exposures: 1000, Conversions: 40}, {Exposures: 3000, Conversions: 180}}, ComputedAt: at}
	}
	svc := &banditreport.Service{
		Config: docs{"reco": `{"key":"reco","type":"bandit","variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"click","kind":"conversion"},
			"bandit":{"per_segment":["new"],"winner_threshold":0.9}}`, "ab": `{"key":"ab","variants":[{"key":"a"},{"key":"b"}]}`},
		Weights: history{version("", 1, now.Add(-20*24*time.Hour), 0.5), version("", 2, now.Add(-time.Hour), 0.6),
			version("new", 1, now.Add(-time.Hour), 0.7), version("", 3, now.Add(-time.Minute), 0.75)},
		Now: func() time.Time { return now },
	}
	rep, err := svc.BanditReport(context.Background(), "reco")
	if err != nil {
		t.Fatal(err)
	}
	if rep.WinnerThreshold != 0.9 || len(rep.Segments) != 2 || rep.Segments[0].Segment != "" || rep.Segments[1].Segment != "new" {
		t.Fatalf("report %+v", rep)
	}
	all := rep.Segments[0]
	if all.Version != 3 || len(all.History) != 2 || all.Arms[1].Weight != 0.75 || all.Arms[1].NaiveMean != 0.06 || all.Arms[0].Exposures != 1000 {
		t.Errorf("global bandit %+v", all)
	}
	// Regret: 1,000 exposures of a, 0.02 below b's posterior mean.
	if r := all.Regret; r < 19.999 || r > 20.001 {
		t.Errorf("regret %v, want 20", r)
	}
	if _, err := svc.BanditReport(context.Background(), "ab"); !errors.As(err, new(*derrors.ValidationError)) {
		t.Errorf("an A/B test: %v, want a validation error", err)
	}
	if _, err := svc.BanditReport(context.Background(), "nope"); !errors.Is(err, derrors.ErrNotFound) {
		t.Errorf("unknown: %v, want ErrNotFound", err)
	}
}
