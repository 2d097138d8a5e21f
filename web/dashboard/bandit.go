package dashboard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/finite"
)

// BanditReporter reports on a bandit experiment.
type BanditReporter interface {
	// BanditReport returns experiments.ErrNotFound for an unknown experiment.
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

func (d *Dashboard) banditReport(ctx context.Context, e *experiments.Experiment) banditState {
	if d.Bandits == nil {
		return banditState{Reason: "Bandit reports are not available on this server."}
	}
	ctx, cancel := context.WithTimeout(ctx, banditTimeout)
	defer cancel()
	rep, err := d.Bandits.BanditReport(ctx, e.Key)
	switch {
	case errors.Is(err, experiments.ErrNotFound):
		return banditState{Reason: "No weights have been published for this bandit yet."}
	case err != nil:
		d.Log.WarnContext(ctx, "bandit report failed", "err", err, "experiment", e.Key)
		return banditState{Problem: true, Reason: "The bandit report cannot be computed right now (its data stores did not answer). Try again in a minute."}
	case len(rep.Segments) == 0:
		return banditState{Reason: "No weights have been published yet: the bandit updater publishes them once exposures arrive."}
	}
	kind := "conversion"
	if e.Goal != nil {
		kind = e.Goal.Kind
	}
	return banditState{View: newBanditView(rep, kind)}
}

type banditView struct {
	Winner, Candidate, Threshold string
	Segments                     []banditSegmentView
}

type banditSegmentView struct {
	ID, Name, Version, Computed, Regret string
	RegretUnit                          string
	BurnIn                              bool
	Arms                                []banditArmRow
	Chart                               *weightsChart
}

type banditArmRow struct {
	Variant, Color                        string
	Weight, PBest, Mean, CI, Exposures    string
	NaiveMean, IPWMean, IPWLift, LiftTone string
	Bar                                   *interval
	BarTitle                              string
}

// newBanditView formats a report; kind is the goal's ("conversion" means are rates).
func newBanditView(r bandit.Report, kind string) *banditView {
	mean := decimal
	if kind == "conversion" {
		mean = fixedPercent
	}
	v := &banditView{Winner: r.Winner, Candidate: r.Candidate, Threshold: percent(r.WinnerThreshold)}
	for _, s := range r.Segments {
		sv := banditSegmentView{ID: "all", Name: "All users", Version: strconv.FormatInt(s.Version, 10),
			Computed: s.ComputedAt.UTC().Format("Jan 2, 15:04 UTC"), Regret: trimmedDecimal(s.Regret), BurnIn: s.BurnIn, RegretUnit: "value"}
		if kind == "conversion" {
			sv.RegretUnit = "conversions"
		}
		if s.Segment != "" {
			sv.ID, sv.Name = s.Segment, s.Segment
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, a := range s.Arms {
			if finite.All(a.Posterior.Low, a.Posterior.High) {
				lo, hi = math.Min(lo, a.Posterior.Low), math.Max(hi, a.Posterior.High)
			}
		}
		switch {
		case math.IsInf(lo, 1): // no finite interval to draw
			lo, hi = 0, 1
		case hi <= lo:
			lo, hi = lo-0.5, lo+0.5
		}
		pad := (hi - lo) / 10 // keeps the widest interval's caps off the edges
		lo, hi = lo-pad, hi+pad
		var names []string
		for i, a := range s.Arms {
			names = append(names, a.Variant)
			row := banditArmRow{Variant: a.Variant, Color: "c" + strconv.Itoa(i%6), Weight: percent(a.Weight), PBest: percent(a.PBest),
				Mean: mean(a.Posterior.Mean), Exposures: count(a.Exposures), NaiveMean: mean(a.NaiveMean),
				IPWMean: "—", IPWLift: "—", LiftTone: "flat"}
			row.CI = "[" + mean(a.Posterior.Low) + ", " + mean(a.Posterior.High) + "]"
			row.BarTitle = fmt.Sprintf("%s: posterior mean %s, 95%% credible interval %s", a.Variant, row.Mean, row.CI)
			row.Bar = meanBar(a.Posterior, lo, hi)
			if a.IPWMean != nil {
				row.IPWMean = mean(*a.IPWMean)
			}
			if a.IPWLift != nil {
				row.IPWLift = signedPercent(*a.IPWLift)
				row.LiftTone = map[bool]string{true: "up", false: "down"}[*a.IPWLift >= 0]
			}
			sv.Arms = append(sv.Arms, row)
		}
		sv.Chart = newWeightsChart(sv.Name, names, s.History)
		v.Segments = append(v.Segments, sv)
	}
	return v
}

// meanBar draws a posterior's credible interval on the segment's common scale
// [lo, hi], in the interval bar's 160×28 view box.
func meanBar(p bandit.Summary, lo, hi float64) *interval {
	x := func(v float64) string {
		return svgNum(intervalPad + (v-lo)/(hi-lo)*(intervalWidth-2*intervalPad))
	}
	return &interval{X1: x(p.Low), X2: x(p.High), X: x(p.Mean), Zero: x(lo), Tone: "flat"}
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
