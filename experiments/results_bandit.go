package experiments

import (
	"context"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/liftlab/lift/experiments/stats"
)

// banditResults analyses a bandit: every metric over the bandit's periods of
// (nearly) constant weights — each segment's days of first exposure, the finest
// periods the event store keeps — with stats.AnalyzeAdaptive, the goal also within
// each segment. Users exposed to several arms (the weights moved) count in the arm
// of their first exposure, as the bandit's updater counts them. There is no SRM
// check: the weights move by design. It returns the first day of exposure.
func (s *ResultsService) banditResults(ctx context.Context, e *Experiment, queries []MetricQuery, specs []metricSpec, opts stats.Options, res *Results) (string, error) {
	for i := range queries {
		queries[i].KeepMultiVariant, queries[i].Daily = true, true
	}
	data, err := s.fetchAll(ctx, queries, BySegmentDay)
	if err != nil {
		return "", err
	}
	keys := variantKeys(e.Variants)
	control := -1
	if e.Bandit != nil && e.Bandit.Control != "" {
		control = slices.Index(keys, e.Bandit.Control)
		res.Control = e.Bandit.Control
	}
	// Corrections apply across metrics, below.
	each := opts
	each.Correction = stats.NoCorrection
	first := ""
	for i, sp := range specs {
		kind := stats.Kind(sp.kind)
		order, groups := banditPeriods(e, data[i].Arms, kind)
		all := make([][]stats.Period, len(order))
		for g, seg := range order {
			all[g] = groups[seg]
		}
		mr := MetricResult{Key: sp.key, Role: sp.role, Event: sp.event, Kind: sp.kind, Window: queries[i].Window.String(),
			Variants: stats.AnalyzeAdaptive(keys, all, kind, control, each)}
		observed(mr.Variants, data[i].Arms, kind, func(ArmAggregate) bool { return true })
		res.Metrics = append(res.Metrics, mr)
		if i > 0 {
			continue
		}
		res.MultiVariantUsers = data[i].MultiVariantUsers
		for _, v := range mr.Variants {
			res.Users += v.Users
		}
		for _, a := range data[i].Arms {
			if a.Users > 0 && (first == "" || a.Day < first) {
				first = a.Day
			}
		}
		if e.Bandit == nil || len(e.Bandit.PerSegment) == 0 {
			continue // one bandit: the overall analysis is its
		}
		for g, seg := range order {
			vs := stats.AnalyzeAdaptive(keys, all[g:g+1], kind, control, each)
			observed(vs, data[i].Arms, kind, func(a ArmAggregate) bool { return a.Group == seg })
			res.Segments = append(res.Segments, GroupResult{Group: seg, Variants: vs})
		}
	}
	adjustAll(res.Metrics, opts.Correction)
	return first, nil
}

// fetchAll fetches every query with one breakdown, together where the store can.
func (s *ResultsService) fetchAll(ctx context.Context, queries []MetricQuery, by Breakdown) ([]MetricData, error) {
	if r, ok := s.Events.(MetricsReader); ok {
		bys := make([]Breakdown, len(queries))
		for i := range bys {
			bys[i] = by
		}
		return r.MetricsAggregates(ctx, queries, bys)
	}
	out := make([]MetricData, len(queries))
	g, gctx := errgroup.WithContext(ctx)
	for i := range queries {
		g.Go(func() error {
			var err error
			out[i], err = s.Events.MetricAggregates(gctx, queries[i], by)
			return err
		})
	}
	return out, g.Wait()
}

// banditPeriods groups aggregates by segment, each into its days in order: the
// experiment's bandit segments in their order, then "" (the users outside them, who
// get the fallback weights), then segments since removed from the experiment.
// Segments without users are left out.
func banditPeriods(e *Experiment, arms []ArmAggregate, kind stats.Kind) ([]string, map[string][]stats.Period) {
	index := map[string]int{}
	for i, v := range e.Variants {
		index[v.Key] = i
	}
	days := map[string]map[string]stats.Period{}
	for _, a := range arms {
		k, ok := index[a.Variant]
		if !ok || a.Users == 0 {
			continue // a variant since removed
		}
		if days[a.Group] == nil {
			days[a.Group] = map[string]stats.Period{}
		}
		p := days[a.Group][a.Day]
		if p == nil {
			p = make(stats.Period, len(e.Variants))
			days[a.Group][a.Day] = p
		}
		sum, sumSq := a.Sum, a.SumSq
		if kind == stats.Conversion {
			sum, sumSq = a.Conversions, a.Conversions // a 0/1 metric is its own square
		}
		p[k].N += a.Users
		p[k].Sum += sum
		p[k].SumSq += sumSq
	}
	var order []string
	if e.Bandit != nil {
		order = append(order, e.Bandit.PerSegment...)
	}
	order = append(order, "")
	var removed []string
	for seg := range days {
		if !slices.Contains(order, seg) {
			removed = append(removed, seg)
		}
	}
	slices.Sort(removed)
	order = append(order, removed...)
	groups := map[string][]stats.Period{}
	var kept []string
	for _, seg := range order {
		ds := days[seg]
		if len(ds) == 0 {
			continue
		}
		names := make([]string, 0, len(ds))
		for d := range ds {
			names = append(names, d)
		}
		slices.Sort(names)
		for _, d := range names {
			groups[seg] = append(groups[seg], ds[d])
		}
		kept = append(kept, seg)
	}
	return kept, groups
}

// observed sets each variant's observed conversions or sum over the aggregates
// that match.
func observed(vs []stats.VariantResult, arms []ArmAggregate, kind stats.Kind, match func(ArmAggregate) bool) {
	for i := range vs {
		x := 0.0
		for _, a := range arms {
			if a.Variant == vs[i].Key && match(a) {
				if kind == stats.Conversion {
					x += a.Conversions
				} else {
					x += a.Sum
				}
			}
		}
		if kind == stats.Conversion {
			vs[i].Conversions = &x
		} else {
			vs[i].Sum = &x
		}
	}
}
