package bandit

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"
)

// Spec is one running bandit experiment as the updater sees it.
type Spec struct {
	Experiment string
	Variants   []string
	Goal       Goal
	// Event is the goal's event type, counted within Window after first exposure;
	// Where is the goal's condition on the events' properties, as the experiment
	// document states it (nil for none).
	Event  string
	Where  json.RawMessage
	Window time.Duration
	// Discounting for content whose appeal drifts: with WindowDays > 0 only users
	// first exposed in the last WindowDays days (today included) count, a sliding
	// window; with 0 < Decay < 1 the users of a day d days before today weigh
	// Decay^d. Zero values count everyone alike.
	WindowDays int
	Decay      float64
	// Segments are the experiment's per_segment keys, in order.
	Segments []string
	// MinWeight is the experiment's floor (bandit.min_weight; 0 means the default).
	MinWeight   float64
	UpdateEvery time.Duration
	// WinnerThreshold is the P(best) that declares a winner; with AutoStop the
	// updater then hands the winner (a WinnerSource's, if the Source is one) to
	// Source.DeclareWinner and stops learning.
	WinnerThreshold float64
	AutoStop        bool
}

// Source lists the running bandit experiments and counts their arms.
type Source interface {
	Bandits(ctx context.Context) ([]Spec, error)
	// Counts returns each arm's counts (in the order of spec.Variants) per segment,
	// "" holding the users who belong to none of the experiment's segments. When
	// spec discounts (Discounts), the counts come per day of first exposure, in any
	// order; otherwise as one Period whose Day does not matter.
	Counts(ctx context.Context, spec Spec) (map[string][]Period, error)
	// DeclareWinner makes the experiment serve variant to everyone from now on.
	DeclareWinner(ctx context.Context, experiment, variant string, pBest float64) error
}

// A WinnerSource decides, for AutoStop, which arm to declare the winner: the arm
// the experiment's results recommend, which weigh the arms over the periods of
// their weights (the updater's own posteriors pool every period and are biased
// when the weights and the metric both moved). Without one, the updater declares
// the arm whose allocation P(best) reaches the threshold.
type WinnerSource interface {
	// Winner returns the arm to declare and its P(best), or "" for none yet.
	Winner(ctx context.Context, spec Spec) (variant string, pBest float64, err error)
}

// Period is the counts of the users first exposed on one day (UTC), per arm.
type Period struct {
	Day  time.Time
	Arms []Counts
}

// Discounts tells whether the spec weighs users by when they were first exposed.
func (s Spec) Discounts() bool {
	return s.WindowDays > 0 || s.Decay > 0 && s.Decay < 1
}

// combine turns a segment's periods into the counts Weights sees: everything alike,
// or discounted with the spec's window and decay by day before today.
func combine(periods []Period, s Spec, now time.Time) ([]Counts, error) {
	if !s.Discounts() {
		out := make([]Counts, len(s.Variants))
		for _, p := range periods {
			for i, c := range p.Arms {
				out[i].Exposures += c.Exposures
				out[i].Conversions += c.Conversions
				out[i].Sum += c.Sum
				out[i].SumSq += c.SumSq
			}
		}
		return out, nil
	}
	today := now.UTC().Truncate(24 * time.Hour)
	days := s.WindowDays
	for _, p := range periods {
		if age := int(today.Sub(p.Day.UTC().Truncate(24*time.Hour)) / (24 * time.Hour)); s.WindowDays == 0 && age+1 > days {
			days = age + 1 // no window: from the oldest day on
		}
	}
	// Oldest first, one period per day, empty days included, so that decay^k is
	// the weight of the users of k days ago.
	byDay := make([][]Counts, max(days, 1))
	for k := range byDay {
		byDay[k] = make([]Counts, len(s.Variants))
	}
	for _, p := range periods {
		age := int(today.Sub(p.Day.UTC().Truncate(24*time.Hour)) / (24 * time.Hour))
		if age < 0 || age >= len(byDay) {
			continue // outside the window (or exposed "tomorrow" by a skewed clock)
		}
		k := len(byDay) - 1 - age
		for i, c := range p.Arms {
			byDay[k][i].Exposures += c.Exposures
			byDay[k][i].Conversions += c.Conversions
			byDay[k][i].Sum += c.Sum
			byDay[k][i].SumSq += c.SumSq
		}
	}
	decay := s.Decay
	if decay == 0 {
		decay = 1
	}
	return Discounted(byDay, 0, decay)
}

// Publication is the new weights of one experiment's bandit in one segment, with the
// counts they were computed from.
type Publication struct {
	Experiment string
	Segment    string
	Variants   []string
	Counts     []Counts
	Result
}

// Publisher stores publications as new weight versions, all of an experiment's in one
// transaction, and tells the decision processes.
type Publisher interface {
	Publish(ctx context.Context, pubs []Publication) error
}

// Updater recomputes bandit weights from live data. Run it in one process only (the
// caller elects a leader).
type Updater struct {
	Source    Source
	Publisher Publisher
	Log       *slog.Logger
	// Config is the base configuration (DefaultConfig unless tests say otherwise).
	Config Config
	// SegmentESS is how many observations per arm a segment borrows from the global
	// posterior (DefaultSegmentESS when 0).
	SegmentESS float64
	// Observe, if set, is told how long each round of Run took and whether it failed
	// (for the lift_bandit_update_* metrics).
	Observe func(took time.Duration, err error)

	last    map[string]time.Time
	version map[string]uint64
}

// Run updates every bandit when its update_every has passed, until ctx ends.
func (u *Updater) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second) // the shortest update_every allowed
	defer tick.Stop()
	for {
		start := time.Now()
		err := u.RunOnce(ctx, start)
		if err != nil && ctx.Err() == nil {
			u.Log.Warn("bandit update failed; the last weights keep serving", "err", err)
		}
		if u.Observe != nil && ctx.Err() == nil {
			u.Observe(time.Since(start), err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// RunOnce updates the bandits that are due at now. It goes on with the others when
// one fails, and returns the first error.
func (u *Updater) RunOnce(ctx context.Context, now time.Time) error {
	if u.last == nil {
		u.last, u.version = map[string]time.Time{}, map[string]uint64{}
	}
	specs, err := u.Source.Bandits(ctx)
	if err != nil {
		return fmt.Errorf("bandit: list bandits: %w", err)
	}
	var first error
	for _, s := range specs {
		every := s.UpdateEvery
		if every < time.Second {
			every = 10 * time.Second
		}
		if now.Sub(u.last[s.Experiment]) < every {
			continue
		}
		if err := u.update(ctx, s, now); err != nil {
			u.Log.Warn("bandit update failed", "experiment", s.Experiment, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		u.last[s.Experiment] = now
	}
	return first
}

// update computes the global bandit from every user's data, and each segment's from
// its own users with the global posterior (shrunk to SegmentESS observations) as
// prior, so a young segment starts from what is known overall rather than from
// nothing; the prior replaces burn-in there.
func (u *Updater) update(ctx context.Context, s Spec, now time.Time) error {
	periods, err := u.Source.Counts(ctx, s)
	if err != nil {
		return err
	}
	bySegment := make(map[string][]Counts, len(periods))
	for seg, ps := range periods {
		if bySegment[seg], err = combine(ps, s, now); err != nil {
			return err
		}
	}
	pooled := make([]Counts, len(s.Variants))
	for _, arms := range bySegment {
		for i, c := range arms {
			pooled[i].Exposures += c.Exposures
			pooled[i].Conversions += c.Conversions
			pooled[i].Sum += c.Sum
			pooled[i].SumSq += c.SumSq
		}
	}
	u.version[s.Experiment]++
	cfg := u.Config
	cfg.Goal = s.Goal
	if s.MinWeight > 0 {
		cfg.MinWeight = s.MinWeight
	}
	cfg.Seed = seed(s.Experiment, "", u.version[s.Experiment])
	global, err := Weights(pooled, cfg)
	if err != nil {
		return err
	}
	pubs := []Publication{{Experiment: s.Experiment, Variants: s.Variants, Counts: pooled, Result: global}}
	ess := u.SegmentESS
	if ess == 0 {
		ess = DefaultSegmentESS
	}
	for _, seg := range s.Segments {
		arms := bySegment[seg]
		if arms == nil {
			arms = make([]Counts, len(s.Variants))
		}
		segCfg := cfg
		if segCfg.Priors, err = SegmentPriors(pooled, cfg, ess); err != nil {
			return err
		}
		segCfg.BurnIn = 0
		segCfg.Seed = seed(s.Experiment, seg, u.version[s.Experiment])
		res, err := Weights(arms, segCfg)
		if err != nil {
			return err
		}
		if global.BurnIn {
			res.Weights, res.BurnIn = global.Weights, true // no arm is known well enough anywhere yet
		}
		pubs = append(pubs, Publication{Experiment: s.Experiment, Segment: seg, Variants: s.Variants, Counts: arms, Result: res})
	}
	if err := u.Publisher.Publish(ctx, pubs); err != nil {
		return fmt.Errorf("bandit: publish %q: %w", s.Experiment, err)
	}
	if s.AutoStop {
		variant, pBest := "", 0.0
		if ws, ok := u.Source.(WinnerSource); ok {
			if variant, pBest, err = ws.Winner(ctx, s); err != nil {
				return fmt.Errorf("bandit: the winner of %q: %w", s.Experiment, err)
			}
		} else if best := Winner(global, s.WinnerThreshold); best >= 0 {
			variant, pBest = s.Variants[best], global.PBest[best]
		}
		if variant != "" {
			if err := u.Source.DeclareWinner(ctx, s.Experiment, variant, pBest); err != nil {
				return fmt.Errorf("bandit: declare the winner of %q: %w", s.Experiment, err)
			}
			u.Log.Info("bandit winner declared", "experiment", s.Experiment, "variant", variant, "p_best", pBest)
		}
	}
	u.Log.Debug("bandit weights published", "experiment", s.Experiment, "weights", global.Weights, "burn_in", global.BurnIn)
	return nil
}

// seed makes Monte Carlo draws reproducible per experiment, segment and update.
func seed(experiment, segment string, version uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(experiment + "\x00" + segment))
	return h.Sum64() ^ version
}

// Winner is the index of the arm whose P(best) reaches threshold, or -1; there is
// none during burn-in.
func Winner(r Result, threshold float64) int {
	if r.BurnIn {
		return -1
	}
	for i, p := range r.PBest {
		if p >= threshold {
			return i
		}
	}
	return -1
}
