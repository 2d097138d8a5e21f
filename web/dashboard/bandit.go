package dashboard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/stats"
	"github.com/liftlab/lift/internal/derrors"
)

// BanditReporter reports on a bandit experiment.
type BanditReporter interface {
	// BanditReport returns derrors.ErrNotFound for an unknown experiment.
	BanditReport(ctx context.Context, key string) (bandit.Report, error)
}

// banditTimeout bounds how long the experiment page waits for a bandit report, so a
// hanging ClickHouse costs a message, not the page.
const banditTimeout = 5 * time.Second

// banditState is the bandit section of a bandit experiment's page: the report, or why
// there is none.
type banditState struct {
	View    *banditView
	Problem bool
	Reason  string
}

// banditReport reads the allocation's report and puts it beside the bandit's results
// (res, nil when they are unavailable): the weights are the report's, every number
// about the arms is the results', so the page shows one set of them.
func (d *Dashboard) banditReport(ctx context.Context, e *experiments.Experiment, res *experiments.Results) banditState {
	if d.Bandits == nil {
		return banditState{Reason: "Bandit reports are not available on this server."}
	}
	ctx, cancel := context.WithTimeout(ctx, banditTimeout)
	defer cancel()
	rep, err := d.Bandits.BanditReport(ctx, e.Key)
	switch {
	case errors.Is(err, derrors.ErrNotFound):
		return banditState{Reason: "No weights have been published for this bandit yet."}
	case err != nil:
		d.Log.WarnContext(ctx, "bandit report failed", "err", err, "experiment", e.Key)
		return banditState{Problem: true, Reason: "The bandit report cannot be computed right now (its data stores did not answer). Try again in a minute."}
	case len(rep.Segments) == 0:
		return banditState{Reason: "No weights have been published yet: the bandit updater publishes them once exposures arrive."}
	}
	return banditState{View: newBanditView(rep, e, res)}
}

type banditView struct {
	Winner, Candidate, Threshold string
	Segments                     []banditSegmentView
	// NoResults says why the arms have no numbers yet, when the results are missing.
	NoResults string
}

type banditSegmentView struct {
	ID, Name, Version, Computed, Regret string
	RegretUnit                          string
	Fallback                            bool
	BurnIn                              bool
	Arms                                []banditArmRow
	Chart                               *weightsChart
}

type banditArmRow struct {
	Variant, Color          string
	Weight, Users, Mean, CI string
	PBest, Loss, MeanTitle  string
	Bar                     *interval
	BarTitle                string
}

// newBanditView formats the report of e's bandits with the results' numbers (nil
// when there are none). With bandit segments, the global bandit serves the users
// outside them: its card is labelled as the fallback, and left out when the results
// show nobody there.
func newBanditView(r bandit.Report, e *experiments.Experiment, res *experiments.Results) *banditView {
	kind := "conversion"
	if e.Goal != nil {
		kind = e.Goal.Kind
	}
	value := decimal
	if kind == "conversion" {
		value = fixedPercent
	}
	var perSegment []string
	if e.Bandit != nil {
		perSegment = e.Bandit.PerSegment
	}
	v := &banditView{Winner: r.Winner, Threshold: percent(r.WinnerThreshold)}
	if res != nil && r.Winner == "" && res.Recommendation.Decision == "ship" {
		v.Candidate = res.Recommendation.Variant
	}
	// The results' arms per bandit: by segment, or overall for a single bandit.
	numbers := map[string][]stats.VariantResult{}
	if res != nil && len(res.Metrics) > 0 {
		if len(perSegment) == 0 {
			numbers[""] = res.Metrics[0].Variants
		}
		for _, g := range res.Segments {
			numbers[g.Group] = g.Variants
		}
	} else {
		v.NoResults = "The arms' estimates appear with the results, once exposures are counted."
	}
	for _, s := range r.Segments {
		sv := banditSegmentView{ID: "all", Name: "All users", Version: strconv.FormatInt(s.Version, 10),
			Computed: s.ComputedAt.UTC().Format("Jan 2, 15:04 UTC"), Regret: trimmedDecimal(s.Regret), BurnIn: s.BurnIn, RegretUnit: "value"}
		if kind == "conversion" {
			sv.RegretUnit = "conversions"
		}
		arms, counted := numbers[s.Segment]
		switch {
		case s.Segment != "":
			sv.ID, sv.Name = s.Segment, s.Segment
		case len(perSegment) > 0:
			if res != nil && !counted {
				continue // nobody falls outside the segments
			}
			sv.ID, sv.Name, sv.Fallback = "fallback", "Everyone else (fallback)", true
		}
		byKey := map[string]stats.VariantResult{}
		for _, a := range arms {
			byKey[a.Key] = a
		}
		rows := variantRows(kind, arms, "")
		rowOf := map[string]armRow{}
		for _, row := range rows {
			rowOf[row.Key] = row
		}
		var names []string
		for i, a := range s.Arms {
			names = append(names, a.Variant)
			row := banditArmRow{Variant: a.Variant, Color: "c" + strconv.Itoa(i%6), Weight: percent(a.Weight),
				Users: "—", Mean: "—", PBest: "—", Loss: "—"}
			if n, ok := byKey[a.Variant]; ok {
				ar := rowOf[a.Variant]
				row.Users, row.Mean, row.CI, row.PBest, row.Loss, row.Bar, row.MeanTitle = ar.Users, ar.Value, ar.ValueCI, ar.PBest, ar.Loss, ar.ValueBar, ar.ValueTitle
				row.BarTitle = fmt.Sprintf("%s: %s, 95%% interval %s", a.Variant, value(n.Value), ar.ValueCI)
				if n.Reason != "" {
					row.MeanTitle = "No interval: " + n.Reason
				}
			}
			sv.Arms = append(sv.Arms, row)
		}
		sv.Chart = newWeightsChart(sv.Name, names, s.History)
		v.Segments = append(v.Segments, sv)
	}
	return v
}

// liveWeight is an arm's weight now, for the Variants card: in each bandit that
// serves users (the fallback only when someone falls outside the segments), named
// when there are several; a dash before any are published.
func liveWeight(bs *banditState, variant string) string {
	if bs == nil || bs.View == nil {
		return "—"
	}
	var parts []string
	for _, s := range bs.View.Segments {
		for _, a := range s.Arms {
			if a.Variant != variant {
				continue
			}
			if len(bs.View.Segments) > 1 {
				parts = append(parts, s.Name+" "+a.Weight)
			} else {
				parts = append(parts, a.Weight)
			}
		}
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, " · ")
}

// controlBadge tells whether variant i gets a "control" badge: it is the
// experiment's control — the first variant of an A/B test; for a bandit, only the
// arm its bandit.control names — and its key or name does not already say so.
func controlBadge(e *experiments.Experiment, i int) bool {
	key := e.Variants[i].Key
	if strings.EqualFold(key, "control") || strings.EqualFold(e.Variants[i].Name, "control") {
		return false // the label says it already
	}
	if e.Type == experiments.TypeBandit {
		return e.Bandit != nil && e.Bandit.Control == key
	}
	return i == 0
}

// weightsChart is a stacked area chart of a bandit's weights over time, in a view box
// of chartW×chartH.
type weightsChart struct {
	Title, Desc, ViewBox        string
	Left, Right, LabelX, LabelY string
	Areas                       []weightsArea
	YTicks, XTicks              []chartTick
}

type weightsArea struct{ Color, Points, Label string }

func newWeightsChart(segment string, variants []string, history []bandit.HistoryPoint) *weightsChart {
	if len(history) == 0 {
		return nil
	}
	plotW, plotH := chartW-chartL-chartR, chartH-chartT-chartB
	t0, t1 := history[0].At, history[len(history)-1].At
	x := func(t time.Time) float64 {
		if !t1.After(t0) {
			return chartL
		}
		return chartL + float64(t.Sub(t0))/float64(t1.Sub(t0))*plotW
	}
	y := func(v float64) float64 { return chartT + plotH*(1-v) }
	// One version draws as a band across the whole width.
	pts := history
	if len(pts) == 1 {
		pts = []bandit.HistoryPoint{history[0], {At: t0, Weights: history[0].Weights}}
	}
	xs := make([]float64, len(pts))
	for i, p := range pts {
		xs[i] = x(p.At)
	}
	if len(history) == 1 {
		xs[1] = chartL + plotW
	}
	c := &weightsChart{ViewBox: "0 0 " + svgNum(chartW) + " " + svgNum(chartH), Left: svgNum(chartL), Right: svgNum(chartW - chartR),
		LabelX: svgNum(chartL - 8), LabelY: svgNum(chartH - 8), Title: "Weights over time — " + segment}
	for _, t := range []float64{0, 0.25, 0.5, 0.75, 1} {
		c.YTicks = append(c.YTicks, chartTick{Pos: svgNum(y(t)), Label: percent(t)})
	}
	c.XTicks = append(c.XTicks, chartTick{Pos: svgNum(xs[0]), Label: t0.UTC().Format("Jan 2 15:04")})
	if t1.After(t0) {
		c.XTicks = append(c.XTicks, chartTick{Pos: svgNum(xs[len(xs)-1]), Label: t1.UTC().Format("Jan 2 15:04")})
	}
	below := make([]float64, len(pts))
	var latest []string
	for i, name := range variants {
		var upper, lower []string
		for j, p := range pts {
			w := 0.0
			if i < len(p.Weights) {
				w = p.Weights[i]
			}
			lower = append(lower, svgNum(xs[j])+","+svgNum(y(below[j])))
			below[j] += w
			upper = append(upper, svgNum(xs[j])+","+svgNum(y(below[j])))
		}
		for l, r := 0, len(lower)-1; l < r; l, r = l+1, r-1 {
			lower[l], lower[r] = lower[r], lower[l]
		}
		w := 0.0
		if last := history[len(history)-1].Weights; i < len(last) {
			w = last[i]
		}
		label := name + " " + percent(w)
		latest = append(latest, label)
		c.Areas = append(c.Areas, weightsArea{Color: strconv.Itoa(i % 6), Points: strings.Join(append(upper, lower...), " "), Label: label})
	}
	c.Desc = fmt.Sprintf("%s: %s published from %s to %s. Latest: %s.", c.Title, plural(len(history), "version"),
		t0.UTC().Format("Jan 2 15:04"), t1.UTC().Format("Jan 2 15:04"), strings.Join(latest, ", "))
	return c
}
