package dashboard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/stats"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/finite"
)

// ResultsReader computes an experiment's results (experiments.ResultsService).
type ResultsReader interface {
	// Results returns derrors.ErrNotFound for an unknown experiment and a
	// *derrors.ValidationError when it has no goal; other errors mean the event
	// store did not answer.
	Results(ctx context.Context, key string) (experiments.Results, error)
}

const (
	// detailTimeout is the default of Deps.ResultsTimeout.
	detailTimeout = 5 * time.Second
	// listWait is how long the experiments list waits, in total, for headlines that are
	// not cached yet; the rest fill in on a later visit. It keeps the list within its
	// 50 ms budget whatever ClickHouse does.
	listWait = 15 * time.Millisecond
	// cacheTTL is how old a headline on the list may be.
	cacheTTL = 30 * time.Second
	// emptyTTL is how long the experiment page reuses results without any users.
	emptyTTL = 5 * time.Second
	// backgroundTimeout bounds one background computation for the list.
	backgroundTimeout = 10 * time.Second
	// maxComputing is how many background computations may query the event store at
	// once, so a list of 200 running experiments does not send 200 queries together.
	maxComputing = 4
)

// alpha is the significance level the results engine uses by default.
var alpha = 1 - stats.DefaultOptions.Level

// resultsCache keeps the latest results per experiment for the list. A lookup of a
// missing or stale entry starts one computation in the background (never two for the
// same experiment) and keeps serving the previous answer meanwhile.
type resultsCache struct {
	reader ResultsReader
	sem    chan struct{}
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	res     experiments.Results
	ok      bool      // res holds an answer
	checked time.Time // last computation's end, successful or not
	pending chan struct{}
}

func newResultsCache(r ResultsReader) *resultsCache {
	return &resultsCache{reader: r, sem: make(chan struct{}, maxComputing), now: time.Now, entries: map[string]*cacheEntry{}}
}

// refresh returns a channel closed once key's entry is fresh: already closed when it
// is, else the pending computation's (started here if needed).
func (c *resultsCache) refresh(key string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		e = &cacheEntry{}
		c.entries[key] = e
	}
	if e.pending != nil {
		return e.pending
	}
	if !e.checked.IsZero() && c.now().Sub(e.checked) < cacheTTL {
		return closed
	}
	e.pending = make(chan struct{})
	go c.compute(key, e)
	return e.pending
}

var closed = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

func (c *resultsCache) compute(key string, e *cacheEntry) {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(context.Background(), backgroundTimeout)
	defer cancel()
	started := c.now()
	res, err := c.reader.Results(ctx, key)
	c.mu.Lock()
	defer c.mu.Unlock()
	// The experiment page may have stored newer results meanwhile; keep those.
	if err == nil && !e.checked.After(started) {
		e.res, e.ok = res, true
	}
	if e.checked.Before(started) {
		e.checked = c.now()
	}
	close(e.pending)
	e.pending = nil
}

// get returns the cached results of key, if any.
func (c *resultsCache) get(key string) (experiments.Results, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil && e.ok {
		return e.res, true
	}
	return experiments.Results{}, false
}

// recent returns the cached results of key when they are fresh. Results without
// users are fresh for emptyTTL only, so a just-started experiment shows its first
// exposures soon.
func (c *resultsCache) recent(key string) (experiments.Results, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || !e.ok {
		return experiments.Results{}, false
	}
	ttl := cacheTTL
	if e.res.Users == 0 {
		ttl = emptyTTL
	}
	if c.now().Sub(e.checked) < ttl {
		return e.res, true
	}
	return experiments.Results{}, false
}

// put stores results computed elsewhere (the experiment page).
func (c *resultsCache) put(key string, res experiments.Results) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		e = &cacheEntry{}
		c.entries[key] = e
	}
	e.res, e.ok, e.checked = res, true, c.now()
}

// headlines returns the list's summaries: running and paused experiments are
// refreshed (waiting at most listWait for all of them together); others show what
// the cache holds.
func (c *resultsCache) headlines(ctx context.Context, rows []experimentRow) map[string]headline {
	deadline := time.NewTimer(listWait)
	defer deadline.Stop()
	var waits []<-chan struct{}
	for _, r := range rows {
		if r.HasGoal && (r.Status == experiments.StatusRunning || r.Status == experiments.StatusPaused) {
			waits = append(waits, c.refresh(r.Key))
		}
	}
wait:
	for _, w := range waits {
		select {
		case <-w:
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	out := map[string]headline{}
	for _, r := range rows {
		if res, ok := c.get(r.Key); ok {
			if h, ok := headlineOf(res); ok {
				out[r.Key] = h
			}
		}
	}
	return out
}

// headline is an experiment's summary on the list: the best treatment's lift on the
// goal and the health of the experiment.
type headline struct {
	Variant, Lift string
	Tone          string // up, down or flat: significant win, significant loss, neither
	Health        string // srm, guardrail or ok
	Users         string
	// Days is how long users have been exposed: since the first day of exposure.
	Days string
}

func headlineOf(r experiments.Results) (headline, bool) {
	if len(r.Metrics) == 0 || r.Users == 0 {
		return headline{}, false
	}
	h := headline{Health: health(r), Users: count(r.Users)}
	if len(r.Daily) > 0 {
		if first, err := time.Parse("2006-01-02", r.Daily[0].Group); err == nil {
			h.Days = plural(int(time.Since(first)/(24*time.Hour))+1, "day")
		}
	}
	if r.Type == experiments.TypeBandit {
		return banditHeadline(r, h), true
	}
	best := -1
	for i, v := range r.Metrics[0].Variants {
		if i > 0 && v.Lift != nil && (best < 0 || *v.Lift > *r.Metrics[0].Variants[best].Lift) {
			best = i
		}
	}
	if best < 0 {
		h.Lift, h.Tone = "—", "flat"
		return h, true
	}
	v := r.Metrics[0].Variants[best]
	h.Variant, h.Lift, h.Tone = v.Key, signedPercent(*v.Lift), tone(v)
	return h, true
}

// banditHeadline is a bandit's summary on the list, from the same analysis as its
// page: the arm most likely best and that probability; up once the results
// recommend declaring it.
func banditHeadline(r experiments.Results, h headline) headline {
	best := -1
	for i, v := range r.Metrics[0].Variants {
		if v.PBest != nil && (best < 0 || *v.PBest > *r.Metrics[0].Variants[best].PBest) {
			best = i
		}
	}
	if best < 0 {
		h.Lift, h.Tone = "—", "flat"
		return h
	}
	v := r.Metrics[0].Variants[best]
	h.Variant, h.Lift, h.Tone = v.Key, "P(best) "+percent(*v.PBest), "flat"
	if r.Recommendation.Decision == "ship" && r.Recommendation.Variant == v.Key {
		h.Tone = "up"
	}
	return h
}

// health says what is wrong with an experiment first: a sample-ratio mismatch makes
// every number suspect, a harmed guardrail blocks shipping.
func health(r experiments.Results) string {
	if r.SRM {
		return "srm"
	}
	for _, m := range r.Metrics {
		if m.Role != "guardrail" {
			continue
		}
		for _, v := range m.Variants[min(1, len(m.Variants)):] {
			if tone(v) == "down" {
				return "guardrail"
			}
		}
	}
	return "ok"
}

func tone(v stats.VariantResult) string {
	if v.PValue == nil || v.Lift == nil || *v.PValue >= alpha {
		return "flat"
	}
	if *v.Lift > 0 {
		return "up"
	}
	return "down"
}

// resultsState is what the experiment page shows in its results section: the results,
// or why there are none (Reason, with Problem set when something is broken).
type resultsState struct {
	View    *resultsView
	Reason  string
	Problem bool
}

// experimentResults computes the results section; fresh reuses results up to cacheTTL
// old (computed for the list or an earlier visit) unless fresh is set.
func (d *Dashboard) experimentResults(ctx context.Context, e *experiments.Experiment, fresh bool) resultsState {
	switch {
	case d.Results == nil:
		return resultsState{}
	case e.Goal == nil:
		return resultsState{}
	case e.Status == experiments.StatusDraft:
		return resultsState{Reason: "Start the experiment to begin collecting exposures."}
	}
	res, ok := d.cache.recent(e.Key)
	if !ok || fresh {
		var err error
		timeout := d.ResultsTimeout
		if timeout <= 0 {
			timeout = detailTimeout
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		res, err = d.Results.Results(ctx, e.Key)
		var invalid *derrors.ValidationError
		switch {
		case errors.As(err, &invalid), errors.Is(err, derrors.ErrNotFound):
			return resultsState{}
		case err != nil:
			d.Log.WarnContext(ctx, "results unavailable", "err", err, "experiment", e.Key)
			return resultsState{Problem: true, Reason: "Results are unavailable right now: the event store (ClickHouse) did not answer. Decisions and event collection are not affected; reload in a minute."}
		}
		d.cache.put(e.Key, res)
	}
	if res.Users == 0 {
		return resultsState{Reason: "No exposures of this experiment have been recorded yet."}
	}
	return resultsState{View: newResultsView(e, res)}
}

// resultsView is the experiment page's results section.
type resultsView struct {
	Res            experiments.Results
	Bandit         bool // the analysis of a bandit: no SRM, arms over periods
	Users          string
	MultiVariant   string
	Freshness      string
	FreshnessTitle string
	SRM            string // "p = 0.02" or "p < 0.001"
	Decision       string // ship, keep_running or stop
	DecisionTitle  string
	Reason         string
	UsersNeeded    string
	TooEarly       bool
	Metrics        []metricView
	GoalLabel      string
	Daily          *lineChart
	Segments       []segmentArmRow
	Variants       []variantLegend
}

type variantLegend struct {
	Key   string
	Color string
}

type metricView struct {
	Key, Title, Role, Event, Kind, Window string
	CUPED                                 bool
	CountLabel, ValueLabel                string
	Rows                                  []armRow
	// Bandit metrics show each arm's period-weighted value with its interval and,
	// for the goal, P(best); lifts only over a control the bandit names.
	Bandit, Goal, Compared bool
}

type armRow struct {
	Key, Color                     string
	Control                        bool
	ControlBadge                   bool // the key does not already say "control"
	Users, Count, Value            string
	Lift, CI, PValue, Chance, Tone string
	Interval                       *interval
	HasComparison                  bool
	LiftTitle                      string
	Note                           string // why there is no comparison, when stats says
	// Arms of a bandit: the interval of the value itself, P(best), the expected
	// loss of choosing the arm, and the plain mean the moving weights bias.
	ValueCI, PBest, Loss, Plain string
	ValueBar                    *interval
	ValueTitle                  string
}

type segmentArmRow struct {
	Segment string
	First   bool
	Span    string
	armRow
}

var decisionTitles = map[string]string{"ship": "Ship", "keep_running": "Keep running", "stop": "Stop"}

func newResultsView(e *experiments.Experiment, r experiments.Results) *resultsView {
	v := &resultsView{Res: r, Bandit: r.Type == experiments.TypeBandit, Users: count(r.Users), MultiVariant: count(r.MultiVariantUsers),
		Decision: r.Recommendation.Decision, Reason: r.Recommendation.Reason, TooEarly: r.Recommendation.TooEarly}
	v.DecisionTitle = decisionTitles[r.Recommendation.Decision]
	if r.Recommendation.Decision == "ship" && r.Recommendation.Variant != "" {
		v.DecisionTitle = "Ship " + r.Recommendation.Variant
		if v.Bandit {
			v.DecisionTitle = "Declare " + r.Recommendation.Variant + " the winner"
		}
	}
	if n := r.Recommendation.UsersNeeded; n != nil {
		v.UsersNeeded = count(*n)
	}
	if r.SRMPValue != nil {
		v.SRM = pEquals(*r.SRMPValue)
	}
	v.Freshness, v.FreshnessTitle = "no events yet", ""
	// An empty events table reports the Unix epoch as its newest event.
	if f := r.DataFreshness; f != nil && f.Year() > 2000 {
		v.Freshness = ago(r.ComputedAt.Sub(*f)) + " ago"
		v.FreshnessTitle = "Newest event received " + f.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	for i, vr := range e.Variants {
		v.Variants = append(v.Variants, variantLegend{Key: vr.Key, Color: "c" + strconv.Itoa(i%6)})
	}
	for _, m := range r.Metrics {
		mv := metricView{Key: m.Key, Title: m.Key, Role: m.Role, Event: m.Event, Kind: m.Kind, Window: window(m.Window), CUPED: m.CUPED,
			CountLabel: "Conversions", ValueLabel: "Rate"}
		if m.Role == "goal" {
			mv.Title = m.Event
		}
		if m.Kind != "conversion" {
			mv.CountLabel, mv.ValueLabel = "Sum", "Mean"
		}
		mv.Bandit, mv.Goal, mv.Compared = v.Bandit, m.Role == "goal", r.Control != ""
		mv.Rows = variantRows(m.Kind, m.Variants, r.Control)
		v.Metrics = append(v.Metrics, mv)
	}
	// A bandit's goal by segment is in its own section, beside the weights.
	if len(r.Metrics) > 0 && !v.Bandit {
		g := r.Metrics[0]
		v.GoalLabel = g.Event + " " + map[bool]string{true: "conversion rate", false: "mean value per user"}[g.Kind == "conversion"]
		v.Daily = cumulativeChart(g.Kind, v.Variants, r.Daily)
		for _, s := range r.Segments {
			name := s.Group
			if name == "" {
				name = "(no segment)"
			}
			for i, row := range variantRows(g.Kind, s.Variants, r.Control) {
				v.Segments = append(v.Segments, segmentArmRow{Segment: name, First: i == 0, Span: strconv.Itoa(len(s.Variants)), armRow: row})
			}
		}
	}
	return v
}

// variantRows formats one metric's variants; control names the variant the others
// are compared with ("" for none). The treatments' intervals share one scale so
// their bars compare, and so do the arms' value intervals.
func variantRows(kind string, vs []stats.VariantResult, control string) []armRow {
	scale := 0.0
	lo, hi := math.Inf(1), math.Inf(-1)
	valueCI := func(v stats.VariantResult) (float64, float64) {
		l, h := *v.ValueCILow, *v.ValueCIHigh
		if kind == "conversion" {
			// Every rate lies in [0, 1]; with few users the normal approximation
			// reaches past either end, which the page does not show.
			l, h = math.Max(l, 0), math.Min(h, 1)
		}
		return l, h
	}
	for _, v := range vs {
		if v.Key != control && v.CILow != nil && v.CIHigh != nil {
			scale = math.Max(scale, math.Max(math.Abs(*v.CILow), math.Abs(*v.CIHigh)))
		}
		if v.ValueCILow != nil && v.ValueCIHigh != nil && finite.All(*v.ValueCILow, *v.ValueCIHigh) {
			l, h := valueCI(v)
			lo, hi = math.Min(lo, l), math.Max(hi, h)
		}
	}
	value := decimal
	if kind == "conversion" {
		value = fixedPercent
	}
	rows := make([]armRow, len(vs))
	for i, v := range vs {
		row := armRow{Key: v.Key, Color: "c" + strconv.Itoa(i%6), Control: v.Key == control, Users: count(v.Users), Lift: "—", CI: "", PValue: "—", Chance: "—", Tone: "flat",
			PBest: "—", Loss: "—"}
		row.ControlBadge = row.Control && !strings.EqualFold(v.Key, "control")
		switch {
		case v.Conversions != nil:
			row.Count = count(*v.Conversions)
		case v.Sum != nil:
			row.Count = decimal(*v.Sum)
		}
		row.Value = value(v.Value)
		if v.Reason != "" {
			row.Note = "No comparison: " + v.Reason
			if v.AbsoluteLift != nil {
				row.Note = "No relative lift: " + v.Reason
			}
		}
		if v.ValueCILow != nil && v.ValueCIHigh != nil {
			l, h := valueCI(v)
			row.ValueCI = value(l) + " to " + value(h)
			if !math.IsInf(lo, 1) {
				row.ValueBar = valueBar(v.Value, l, h, lo, hi)
			}
		}
		if v.PBest != nil {
			row.PBest = percent(*v.PBest)
		}
		if v.ExpectedLoss != nil && v.PBest != nil {
			row.Loss = value(*v.ExpectedLoss)
		}
		if v.NaiveValue != nil {
			row.Plain = value(*v.NaiveValue)
			row.ValueTitle = "Weighted over the bandit's periods: " + row.Value + "; the plain mean, biased by the moving weights, is " + row.Plain
		}
		if !row.Control && v.Lift != nil {
			row.HasComparison = true
			row.Lift, row.Tone = signedPercent(*v.Lift), tone(v)
			if v.CILow != nil && v.CIHigh != nil {
				row.CI = signedPercent(*v.CILow) + " to " + signedPercent(*v.CIHigh)
				row.Interval = newInterval(*v.Lift, *v.CILow, *v.CIHigh, scale, row.Tone)
			}
			if v.PValue != nil {
				row.PValue = pValue(*v.PValue)
			}
			if v.ChanceToBeatControl != nil {
				row.Chance = oneDecimalPercent(*v.ChanceToBeatControl)
			}
			row.LiftTitle = "Lift of " + v.Key + " over " + control + ": " + row.Lift
			if row.CI != "" {
				row.LiftTitle += ", 95% confidence interval " + row.CI
			}
		}
		rows[i] = row
	}
	return rows
}

// valueBar draws an arm's value and interval on the common scale [lo, hi] of all
// arms, in the interval bar's view box.
func valueBar(v, low, high, lo, hi float64) *interval {
	if !(hi > lo) {
		lo, hi = lo-0.5, lo+0.5
	}
	pad := (hi - lo) / 10
	lo, hi = lo-pad, hi+pad
	x := func(u float64) string {
		return svgNum(intervalPad + (math.Max(lo, math.Min(hi, u))-lo)/(hi-lo)*(intervalWidth-2*intervalPad))
	}
	return &interval{X1: x(low), X2: x(high), X: x(v), Zero: x(lo), Tone: "flat"}
}

// interval is a lift's confidence interval drawn around zero, in a 160×28 view box.
type interval struct {
	X1, X2, X, Zero string
	Tone            string
}

const (
	intervalWidth = 160.0
	intervalPad   = 8.0
)

func newInterval(lift, lo, hi, scale float64, tone string) *interval {
	scale *= 1.1
	if !(scale > 0) || math.IsInf(scale, 0) {
		scale = 1.1
	}
	x := func(v float64) string {
		v = math.Max(-scale, math.Min(scale, v))
		return svgNum(intervalPad + (v+scale)/(2*scale)*(intervalWidth-2*intervalPad))
	}
	return &interval{X1: x(lo), X2: x(hi), X: x(lift), Zero: x(0), Tone: tone}
}

// lineChart is the goal's cumulative value by day of first exposure, in a view box of
// chartW×chartH.
type lineChart struct {
	Lines       []chartLine
	YTicks      []chartTick
	XTicks      []chartTick
	Title, Desc string
	Left, Right string
	Top, Bottom string
	ViewBox     string
	LabelX      string // right edge of the y labels
	LabelY      string // baseline of the x labels
}

type chartLine struct {
	Key, Color, Points string
	Dots               []chartPoint
}

type chartPoint struct{ X, Y, Label string }

type chartTick struct{ Pos, Label string }

const (
	chartW, chartH                 = 880.0, 250.0
	chartL, chartR, chartT, chartB = 56.0, 16.0, 12.0, 28.0
	maxXTicks                      = 6
)

func cumulativeChart(kind string, variants []variantLegend, days []experiments.GroupResult) *lineChart {
	if len(days) == 0 {
		return nil
	}
	days = append([]experiments.GroupResult(nil), days...)
	sort.Slice(days, func(i, j int) bool { return days[i].Group < days[j].Group })
	n := len(variants)
	users, num := make([]float64, n), make([]float64, n)
	values := make([][]float64, n) // NaN until a variant has users
	top := 0.0                     // the highest finite value: sums may overflow
	for _, d := range days {
		for i := range n {
			if i < len(d.Variants) {
				v := d.Variants[i]
				users[i] += v.Users
				if v.Conversions != nil {
					num[i] += *v.Conversions
				} else if v.Sum != nil {
					num[i] += *v.Sum
				}
			}
			val := math.NaN()
			if users[i] > 0 {
				val = num[i] / users[i]
				if finite.All(val) {
					top = math.Max(top, val)
				}
			}
			values[i] = append(values[i], val)
		}
	}
	format := decimal
	if kind == "conversion" {
		format = fixedPercent
	}
	step := niceStep(top / 4)
	ymax := step * 4
	if ymax <= 0 {
		ymax, step = 1, 0.25
		if kind == "conversion" {
			ymax, step = 0.1, 0.025
		}
	}
	ymax = math.Min(ymax, math.MaxFloat64) // four steps of a top near the limit overflow
	for k := 0; ymax < top && k < 4; k++ {
		ymax += step
	}
	plotW, plotH := chartW-chartL-chartR, chartH-chartT-chartB
	x := func(i int) float64 {
		if len(days) == 1 {
			return chartL + plotW/2
		}
		return chartL + float64(i)/float64(len(days)-1)*plotW
	}
	y := func(v float64) float64 { return chartT + plotH*(1-v/ymax) }
	c := &lineChart{Left: svgNum(chartL), Right: svgNum(chartW - chartR), Top: svgNum(chartT), Bottom: svgNum(chartH - chartB),
		ViewBox: "0 0 " + svgNum(chartW) + " " + svgNum(chartH), LabelX: svgNum(chartL - 8), LabelY: svgNum(chartH - 8)}
	tick := trimmedDecimal
	if kind == "conversion" {
		tick = percent
	}
	// Counted, not accumulated: a step near the floating-point limit overflows.
	for k := range 10 {
		t := float64(k) * step
		if t-ymax > step/2 {
			break
		}
		c.YTicks = append(c.YTicks, chartTick{Pos: svgNum(y(t)), Label: tick(t)})
	}
	every := max(1, (len(days)+maxXTicks-1)/maxXTicks)
	for i, d := range days {
		if i%every == 0 || i == len(days)-1 && len(days) > 1 && (len(days)-1)%every >= every/2 {
			c.XTicks = append(c.XTicks, chartTick{Pos: svgNum(x(i)), Label: shortDay(d.Group)})
		}
	}
	var finals []string
	for i, vl := range variants {
		line := chartLine{Key: vl.Key, Color: strings.TrimPrefix(vl.Color, "c")}
		var pts []string
		for j, val := range values[i] {
			if !finite.All(val) {
				continue // no users yet, or an overflowing sum: nothing to draw
			}
			px, py := svgNum(x(j)), svgNum(y(val))
			pts = append(pts, px+","+py)
			line.Dots = append(line.Dots, chartPoint{X: px, Y: py, Label: vl.Key + " " + days[j].Group + ": " + format(val)})
		}
		line.Points = strings.Join(pts, " ")
		if last := values[i][len(days)-1]; !math.IsNaN(last) {
			finals = append(finals, vl.Key+" "+format(last))
		}
		c.Lines = append(c.Lines, line)
	}
	what := "conversion rate"
	if kind != "conversion" {
		what = "mean value per user"
	}
	c.Title = "Cumulative " + what + " by day of first exposure"
	c.Desc = fmt.Sprintf("%s from %s to %s. Latest: %s.", c.Title, days[0].Group, days[len(days)-1].Group, strings.Join(finals, ", "))
	return c
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func shortDay(day string) string {
	t, err := time.Parse("2006-01-02", day)
	if err != nil {
		return day
	}
	return t.Format("Jan 2")
}

// window says how long after exposure a metric counts, in days when it is whole days.
func window(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return s
	}
	if d%(24*time.Hour) == 0 {
		return plural(int(d/(24*time.Hour)), "day")
	}
	if d%time.Hour == 0 {
		return plural(int(d/time.Hour), "hour")
	}
	if d%time.Minute == 0 {
		return plural(int(d/time.Minute), "minute")
	}
	if d%time.Second == 0 {
		return plural(int(d/time.Second), "second")
	}
	return d.String()
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return plural(max(0, int(d/time.Second)), "second")
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	}
	return plural(int(d/(24*time.Hour)), "day")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
