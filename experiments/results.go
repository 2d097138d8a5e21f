package experiments

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/liftlab/lift/experiments/stats"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/finite"
)

// MetricQuery asks for one metric of one experiment, counted per user from their
// first exposure on, over Window.
type MetricQuery struct {
	Experiment string
	Event      string
	Kind       string // "conversion" or "value"
	// Where, when set, counts only the events whose properties match it.
	Where  *Where
	Window time.Duration
	// Daily keeps the day of first exposure in what the store computes, which ByDay
	// breakdowns need (and which costs more to keep up to date); set it on every
	// query of a metric that is also broken down by day, so that they share one
	// computation.
	Daily bool
	// KeepMultiVariant counts users exposed to several variants in the variant of
	// their first exposure instead of leaving them out. Bandits need it: a user moves
	// to another arm when the weights change, and that is not a bug.
	KeepMultiVariant bool
}

// ArmAggregate is what the event store returns per variant (and per breakdown group):
// users counted in the variant of their first exposure, users who converted, and the
// sum and sum of squares of the per-user value.
type ArmAggregate struct {
	Variant     string
	Group       string // day (YYYY-MM-DD) or segment, for breakdowns; "" overall
	Day         string // day of first exposure (YYYY-MM-DD) in BySegmentDay breakdowns
	Users       float64
	Conversions float64
	Sum, SumSq  float64
	// The same metric over PrePeriod before each user's first exposure (CUPED's
	// covariate X): ΣX, ΣX² and ΣXY, with Y the metric per user.
	PreSum, PreSumSq, PreCross float64
	// Σ y/p and Σ 1/p over users, p the assignment probability of their first
	// exposure: IPWNum/IPWDen estimates the variant's mean as if every user had been
	// assigned to it, free of the bias adaptive allocation puts in plain means.
	IPWNum, IPWDen float64
}

// PrePeriod is how far before first exposure CUPED looks for the covariate.
const PrePeriod = 14 * 24 * time.Hour

// MetricData is the store's answer to a MetricQuery.
type MetricData struct {
	Arms []ArmAggregate
	// MultiVariantUsers were exposed to more than one variant; they are left out of
	// Arms and reported.
	MultiVariantUsers float64
}

// Breakdown selects how a metric is split besides by variant.
type Breakdown string

// Breakdowns of results.
const (
	Overall   Breakdown = ""
	BySegment Breakdown = "segment"
	ByDay     Breakdown = "day"
	// BySegmentDay splits by segment (Group) and by day of first exposure (Day),
	// which discounted bandits need.
	BySegmentDay Breakdown = "segment_day"
)

// maxUsersNeeded caps power estimates for effects too small to ever detect.
const maxUsersNeeded = 1e12

// EventStore computes per-variant aggregates from exposures and events.
type EventStore interface {
	MetricAggregates(ctx context.Context, q MetricQuery, by Breakdown) (MetricData, error)
	// LatestEvent is the receive time of the newest stored event, which tells how
	// fresh results are.
	LatestEvent(ctx context.Context) (time.Time, error)
}

// MetricsReader is an EventStore that answers several queries at once, sharing the
// work of metrics on the same event type; Results uses it where the store has it.
type MetricsReader interface {
	// MetricsAggregates returns the aggregates of each qs[i] by bys[i].
	MetricsAggregates(ctx context.Context, qs []MetricQuery, bys []Breakdown) ([]MetricData, error)
}

// Results is the analysis of an experiment (GET /api/v1/experiments/{key}/results).
//
// For an A/B test every treatment is compared with the control (the first
// variant), the goal also by day of first exposure (Daily) and by segment, and the
// split is checked against the weights (SRM). A bandit's allocation moves by design:
// its arms are estimated over its periods of constant weights (stats.AnalyzeAdaptive)
// with P(best) and expected loss, compared with a control only when bandit.control
// names one, and never checked for SRM; Segments then holds the goal within each
// bandit segment ("" being the users outside them, who get the fallback weights).
type Results struct {
	Experiment        string     `json:"experiment"`
	Type              string     `json:"type"`
	Status            string     `json:"status"`
	ComputedAt        time.Time  `json:"computed_at"`
	DataFreshness     *time.Time `json:"data_freshness"`
	Users             float64    `json:"users"`
	MultiVariantUsers float64    `json:"multi_variant_users"`
	SRMPValue         *float64   `json:"srm_p_value"`
	SRM               bool       `json:"srm"`
	Correction        string     `json:"correction"`
	Sequential        bool       `json:"sequential"`
	// Control is the variant the others are compared with; "" for a bandit that
	// names none.
	Control        string         `json:"control,omitempty"`
	Minimum        Minimum        `json:"minimum"`
	Metrics        []MetricResult `json:"metrics"`
	Recommendation Recommendation `json:"recommendation"`
	Daily          []GroupResult  `json:"daily,omitempty"`
	Segments       []GroupResult  `json:"segments,omitempty"`
}

// Minimum is the sample and runtime an experiment needs before its results
// recommend shipping or stopping, and how far it is: TooEarly while some variant has
// fewer than Users users or it has run for less than Runtime.
type Minimum struct {
	Users           int           `json:"users"`
	Runtime         time.Duration `json:"-"`
	SmallestVariant float64       `json:"smallest_variant"`
	Ran             time.Duration `json:"-"`
	// StartedAt is when the runtime counts from: the experiment's start, or for
	// experiments started before lift recorded it, the day of the first exposure.
	StartedAt *time.Time `json:"started_at,omitempty"`
	TooEarly  bool       `json:"too_early"`
}

// MetricResult is one metric's analysis, control first.
type MetricResult struct {
	Key      string                `json:"key"`
	Role     string                `json:"role"` // goal, secondary or guardrail
	Event    string                `json:"event"`
	Kind     string                `json:"kind"`
	Window   string                `json:"window"`
	Variants []stats.VariantResult `json:"variants"`
	// CUPED is set when the estimates were adjusted with the pre-exposure period;
	// Theta is the adjustment's coefficient.
	CUPED bool    `json:"cuped"`
	Theta float64 `json:"cuped_theta,omitempty"`
}

// GroupResult is the goal metric within one day (of first exposure) or segment.
type GroupResult struct {
	Group    string                `json:"group"`
	Variants []stats.VariantResult `json:"variants"`
}

// Recommendation is the decision helper's verdict.
type Recommendation struct {
	Decision string `json:"decision"` // ship, keep_running or stop
	Variant  string `json:"variant,omitempty"`
	Reason   string `json:"reason"`
	// UsersNeeded estimates how many more users the experiment needs for 80% power
	// at the effect observed so far, when the answer is keep_running.
	UsersNeeded *float64 `json:"users_needed,omitempty"`
	// TooEarly is set when the minimum sample or runtime holds a verdict back.
	TooEarly bool `json:"too_early,omitempty"`
}

// ResultsService computes results from the configuration and the event store.
type ResultsService struct {
	Store  Store
	Events EventStore
	Now    func() time.Time
}

// Results analyses an experiment. It returns derrors.ErrNotFound if there is no such
// experiment, and a *derrors.ValidationError if it has no goal.
func (s *ResultsService) Results(ctx context.Context, key string) (Results, error) {
	doc, err := s.Store.Get(ctx, KindExperiment, key)
	if err != nil {
		return Results{}, err
	}
	var e Experiment
	if err := json.Unmarshal(doc, &e); err != nil {
		return Results{}, fmt.Errorf("experiments: results of %q: %w", key, err)
	}
	e.Normalize()
	if e.Goal == nil {
		return Results{}, derrors.Invalid("goal", "the experiment has no goal metric to analyse")
	}
	res := Results{Experiment: e.Key, Type: e.Type, Status: e.Status, ComputedAt: s.now(), Metrics: []MetricResult{}}
	opts := stats.DefaultOptions
	opts.Sequential = e.SequentialTesting()
	correction := stats.NoCorrection
	if a := e.Analysis; a != nil && a.Correction != "" {
		correction = stats.Correction(a.Correction)
	}
	opts.Correction = correction
	res.Correction, res.Sequential = string(correction), opts.Sequential
	if t, err := s.Events.LatestEvent(ctx); err == nil && !t.IsZero() {
		res.DataFreshness = &t
	}
	specs, queries, err := metricQueries(&e)
	if err != nil {
		return Results{}, err
	}
	var firstDay string
	if e.Type == TypeBandit {
		firstDay, err = s.banditResults(ctx, &e, queries, specs, opts, &res)
	} else {
		firstDay, err = s.abResults(ctx, &e, queries, specs, opts, &res)
	}
	if err != nil {
		return Results{}, err
	}
	res.Minimum = minimum(&e, &res, firstDay)
	if e.Type == TypeBandit {
		res.Recommendation = recommendBandit(&e, &res, opts)
	} else {
		res.Recommendation = recommend(&res, opts)
	}
	return res, nil
}

// metricSpec is one metric of an experiment as results name it.
type metricSpec struct {
	key, role, event, kind, window string
}

// metricQueries lists the experiment's metrics, the goal first, and their queries.
func metricQueries(e *Experiment) ([]metricSpec, []MetricQuery, error) {
	type raw struct {
		metricSpec
		where json.RawMessage
	}
	all := []raw{{metricSpec{"goal", "goal", e.Goal.Event, e.Goal.Kind, e.Goal.Window}, e.Goal.Where}}
	for _, m := range e.Metrics {
		role := m.Role
		if role == "" {
			role = "secondary"
		}
		all = append(all, raw{metricSpec{m.Key, role, m.Event, m.Kind, m.Window}, m.Where})
	}
	specs := make([]metricSpec, len(all))
	queries := make([]MetricQuery, len(all))
	for i, sp := range all {
		where, err := ParseWhere(sp.where)
		if err != nil {
			return nil, nil, fmt.Errorf("experiments: results of %q: metric %s: %w", e.Key, sp.key, err)
		}
		specs[i] = sp.metricSpec
		queries[i] = MetricQuery{Experiment: e.Key, Event: sp.event, Kind: sp.kind, Where: where, Window: window(sp.window)}
	}
	return specs, queries, nil
}

// abResults analyses an A/B test: every treatment against the control, CUPED where
// it applies, the goal by day and segment, and the split against the weights. It
// returns the first day of exposure.
func (s *ResultsService) abResults(ctx context.Context, e *Experiment, queries []MetricQuery, specs []metricSpec, opts stats.Options, res *Results) (string, error) {
	cuped := e.Analysis == nil || e.Analysis.CUPED == nil || *e.Analysis.CUPED
	res.Control = e.Variants[0].Key
	// The goal is also broken down by day: every metric brought up to date together,
	// where the store can, then read at once.
	queries[0].Daily = true
	fetched, daily, bySegment, err := s.aggregates(ctx, queries)
	if err != nil {
		return "", err
	}
	for i, sp := range specs {
		data := fetched[i]
		arms := byVariant(e.Variants, data.Arms, "")
		mr := MetricResult{Key: sp.key, Role: sp.role, Event: sp.event, Kind: sp.kind, Window: queries[i].Window.String()}
		mr.Variants, mr.CUPED, mr.Theta = analyseCUPED(sp.kind, arms, opts, cuped)
		res.Metrics = append(res.Metrics, mr)
		if i == 0 {
			res.MultiVariantUsers = data.MultiVariantUsers
			users := make([]float64, len(arms))
			weights := make([]float64, len(arms))
			for j, a := range arms {
				users[j], weights[j] = a.Users, e.Variants[j].Weight
				res.Users += a.Users
			}
			if res.Users > 0 {
				p := stats.SRM(users, weights)
				res.SRMPValue, res.SRM = &p, p < stats.SRMThreshold
			}
			res.Daily = breakdown(*e, daily, opts)
			res.Segments = breakdown(*e, bySegment, opts)
		}
	}
	adjustAll(res.Metrics, opts.Correction)
	first := ""
	for _, d := range res.Daily {
		if first == "" || d.Group < first {
			first = d.Group
		}
	}
	return first, nil
}

// aggregates fetches every metric overall, and the first (the goal) by day and by
// segment.
func (s *ResultsService) aggregates(ctx context.Context, queries []MetricQuery) (fetched []MetricData, daily, bySegment MetricData, err error) {
	if r, ok := s.Events.(MetricsReader); ok {
		qs := append(slices.Clone(queries), queries[0], queries[0])
		bys := make([]Breakdown, len(qs))
		bys[len(qs)-2], bys[len(qs)-1] = ByDay, BySegment
		all, err := r.MetricsAggregates(ctx, qs, bys)
		if err != nil {
			return nil, daily, bySegment, err
		}
		return all[:len(queries)], all[len(queries)], all[len(queries)+1], nil
	}
	fetched = make([]MetricData, len(queries))
	g, gctx := errgroup.WithContext(ctx)
	for i := range queries {
		g.Go(func() error {
			var err error
			if fetched[i], err = s.Events.MetricAggregates(gctx, queries[i], Overall); err != nil || i > 0 {
				return err
			}
			if daily, err = s.Events.MetricAggregates(gctx, queries[i], ByDay); err != nil {
				return err
			}
			bySegment, err = s.Events.MetricAggregates(gctx, queries[i], BySegment)
			return err
		})
	}
	err = g.Wait()
	return fetched, daily, bySegment, err
}

func (s *ResultsService) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// breakdown analyses the goal within each group of data, in the order the groups
// come.
func breakdown(e Experiment, data MetricData, opts stats.Options) []GroupResult {
	var order []string
	seen := map[string]bool{}
	for _, a := range data.Arms {
		if !seen[a.Group] {
			seen[a.Group] = true
			order = append(order, a.Group)
		}
	}
	var out []GroupResult
	for _, g := range order {
		out = append(out, GroupResult{Group: g, Variants: analyse(e.Goal.Kind, byVariant(e.Variants, data.Arms, g), opts)})
	}
	return out
}

// byVariant orders aggregates like the experiment's variants; variants without data
// get zero users.
func byVariant(variants []Variant, arms []ArmAggregate, group string) []ArmAggregate {
	out := make([]ArmAggregate, len(variants))
	for i, v := range variants {
		out[i].Variant = v.Key
		for _, a := range arms {
			if a.Variant == v.Key && a.Group == group {
				out[i] = a
			}
		}
	}
	return out
}

// analyseCUPED adjusts the estimates with the pre-exposure period when enabled and
// there is pre-period variation (stats.AdjustCUPED), and analyses them; otherwise it
// falls back to analyse. Rates and means shown stay the observed ones; lifts,
// intervals and p-values come from the adjusted estimates. Options' correction is
// left to adjustAll, across metrics.
func analyseCUPED(kind string, arms []ArmAggregate, opts stats.Options, enabled bool) ([]stats.VariantResult, bool, float64) {
	opts.Correction = stats.NoCorrection
	plain := analyse(kind, arms, opts)
	if !enabled || len(arms) < 2 {
		return plain, false, 0
	}
	cov := make([]stats.CovMoments, len(arms))
	keys := make([]string, len(arms))
	for i, a := range arms {
		y, y2 := a.Sum, a.SumSq
		if kind == "conversion" {
			y, y2 = a.Conversions, a.Conversions // a 0/1 metric is its own square
		}
		cov[i] = stats.CovMoments{N: a.Users, SumY: y, SumY2: y2, SumX: a.PreSum, SumX2: a.PreSumSq, SumXY: a.PreCross}
		keys[i] = a.Variant
	}
	adjusted, theta, ok := stats.AdjustCUPED(keys, cov, stats.Kind(kind), opts)
	if !ok {
		return plain, false, 0
	}
	for i := range adjusted {
		// Show what was observed; the comparison fields are the adjusted ones.
		adjusted[i].Value, adjusted[i].Conversions, adjusted[i].Sum = plain[i].Value, plain[i].Conversions, plain[i].Sum
	}
	return adjusted, true, theta
}

// analyse compares every variant with the control; variants (or a control) without
// users get their counts and no comparison.
func analyse(kind string, arms []ArmAggregate, opts stats.Options) []stats.VariantResult {
	opts.Correction = stats.NoCorrection // adjustAll corrects across metrics
	out := make([]stats.VariantResult, len(arms))
	for i, a := range arms {
		out[i] = stats.VariantResult{Key: a.Variant, Users: a.Users}
		if kind == "conversion" {
			x := a.Conversions
			out[i].Conversions = &x
		} else {
			sum := a.Sum
			out[i].Sum = &sum
		}
		if a.Users > 0 {
			if kind == "conversion" {
				out[i].Value = a.Conversions / a.Users
			} else {
				out[i].Value = a.Sum / a.Users
			}
			if kind != "conversion" && !finite.All(a.Sum, a.SumSq) {
				out[i].Reason = stats.ReasonOverflow
			}
		}
	}
	// Compare only the variants with users, then put the results back in place.
	idx := []int{}
	for i, a := range arms {
		if a.Users > 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) < 2 || idx[0] != 0 {
		return out
	}
	if kind == "conversion" {
		in := stats.BinomialInput{}
		for _, i := range idx {
			in.Weights = append(in.Weights, 1/float64(len(idx)))
			in.Variants = append(in.Variants, stats.VariantCounts{Key: arms[i].Variant, Users: arms[i].Users, Conversions: arms[i].Conversions})
		}
		r, err := stats.AnalyzeBinomial(in, opts)
		if err == nil {
			for k, i := range idx {
				out[i] = r.Variants[k]
			}
		}
		return out
	}
	var keys []string
	var ms []stats.Moments
	for _, i := range idx {
		keys = append(keys, arms[i].Variant)
		ms = append(ms, stats.Moments{N: arms[i].Users, Sum: arms[i].Sum, SumSq: arms[i].SumSq})
	}
	if r, err := stats.AnalyzeMeans(keys, ms, opts); err == nil {
		for k, i := range idx {
			out[i] = r[k]
		}
	}
	return out
}
