package dashboard

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

// variantRow is one variant as the form shows it: weight in percent, value as JSON text.
type variantRow struct {
	Key, Name, Weight, Value string
}

// metricRow is one secondary or guardrail metric as the form shows it.
type metricRow struct {
	Key, Event, Kind, Role, Window string
}

// banditFields are a bandit's options as the form shows them: shares in percent,
// durations as typed.
type banditFields struct {
	MinWeight, UpdateEvery, Threshold string
	PerSegment                        map[string]bool
	AutoStop, Sticky                  bool
}

// experimentForm is the create/edit form's view-model. It reads the submitted form,
// applies the editing operations (add a variant, switch the targeting mode) and
// builds the experiment document the service validates.
type experimentForm struct {
	Editing     bool // the key is fixed once created
	Key         string
	Name        string
	Description string
	Variants    []variantRow
	Coverage    string
	// TargetMode is "builder" or "json".
	TargetMode                                string
	Rules                                     []condRow
	TargetJSON                                string
	Segments                                  map[string]bool
	NamespaceID, NamespaceStart, NamespaceEnd string
	GoalEvent, GoalKind, GoalWindow           string
	// Type is "ab" or "bandit"; Bandit applies only to bandits.
	Type    string
	Bandit  banditFields
	Metrics []metricRow
	// Correction, Sequential and CUPED tune the analysis; MinUsers and MinRuntime
	// (as typed, blank for the defaults) hold verdicts back.
	Correction           string
	Sequential, CUPED    bool
	MinUsers, MinRuntime string

	// AllSegments lists the segments to choose from; EventTypes the event types the
	// collector accepts (nil when they cannot be known).
	AllSegments []string
	EventTypes  []string
	Errors      fieldErrors
}

func newExperimentForm() *experimentForm {
	return &experimentForm{
		Variants:   []variantRow{{Key: "control", Weight: "50"}, {Key: "treatment", Weight: "50"}},
		Coverage:   "100",
		TargetMode: "builder",
		Rules:      []condRow{{Op: "$eq"}},
		Segments:   map[string]bool{},
		GoalKind:   "conversion",
		Type:       experiments.TypeAB,
		Bandit:     banditFields{PerSegment: map[string]bool{}},
		Correction: "none",
		Sequential: true, // the default for new experiments
		CUPED:      true,
	}
}

// experimentFormFrom shows a stored experiment in the form.
func experimentFormFrom(e *experiments.Experiment) *experimentForm {
	f := &experimentForm{Editing: true, Key: e.Key, Name: e.Name, Description: e.Description,
		TargetMode: "builder", Segments: map[string]bool{}, GoalKind: "conversion", Coverage: "100",
		Type: e.Type, Bandit: banditFields{PerSegment: map[string]bool{}}, Correction: "none", CUPED: true}
	if f.Type == "" {
		f.Type = experiments.TypeAB
	}
	for _, v := range e.Variants {
		f.Variants = append(f.Variants, variantRow{Key: v.Key, Name: v.Name, Weight: percentInput(v.Weight), Value: prettyJSON(v.Value)})
	}
	if e.Coverage != nil {
		f.Coverage = percentInput(*e.Coverage)
	}
	if rows, ok := rowsFromCondition(e.Targeting); ok {
		f.Rules = rows
	} else {
		f.TargetMode = "json"
	}
	if len(f.Rules) == 0 {
		f.Rules = []condRow{{Op: "$eq"}}
	}
	f.TargetJSON = prettyJSON(e.Targeting)
	for _, s := range e.Segments {
		f.Segments[s] = true
	}
	if ns := e.Namespace; ns != nil {
		f.NamespaceID, f.NamespaceStart, f.NamespaceEnd = ns.ID, percentInput(ns.Range[0]), percentInput(ns.Range[1])
	}
	if g := e.Goal; g != nil {
		f.GoalEvent, f.GoalKind, f.GoalWindow = g.Event, g.Kind, windowInput(g.Window)
	}
	for _, m := range e.Metrics {
		role := m.Role
		if role == "" {
			role = "secondary"
		}
		f.Metrics = append(f.Metrics, metricRow{Key: m.Key, Event: m.Event, Kind: m.Kind, Role: role, Window: windowInput(m.Window)})
	}
	if a := e.Analysis; a != nil {
		if a.Correction != "" {
			f.Correction = a.Correction
		}
		f.CUPED = a.CUPED == nil || *a.CUPED
		if a.MinUsers != nil {
			f.MinUsers = strconv.Itoa(*a.MinUsers)
		}
		f.MinRuntime = windowInput(a.MinRuntime)
	}
	f.Sequential = e.SequentialTesting()
	if b := e.Bandit; b != nil {
		if b.MinWeight > 0 {
			f.Bandit.MinWeight = percentInput(b.MinWeight)
		}
		if b.WinnerThreshold > 0 {
			f.Bandit.Threshold = percentInput(b.WinnerThreshold)
		}
		f.Bandit.UpdateEvery, f.Bandit.AutoStop, f.Bandit.Sticky = b.UpdateEvery, b.AutoStop, b.Sticky
		for _, s := range b.PerSegment {
			f.Bandit.PerSegment[s] = true
		}
	}
	return f
}

// windowInput shows an attribution window in days when it is a whole number of them.
func windowInput(w string) string {
	d, err := time.ParseDuration(w)
	if err != nil || d <= 0 {
		return w
	}
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.unit == 0 {
			return strconv.FormatInt(int64(d/u.unit), 10) + u.name
		}
	}
	return d.String()
}

// parseWindow reads a window as typed: a Go duration ("36h", "90m") or whole days
// ("7d"); blank is the default window. It returns the Go duration the document holds.
func parseWindow(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(days))
		if err != nil || n <= 0 {
			return "", fmt.Errorf("must be a duration such as 7d, 36h or 90m")
		}
		return strconv.Itoa(24*n) + "h", nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return "", fmt.Errorf("must be a duration such as 7d, 36h or 90m")
	}
	return s, nil
}

// parseRuntime reads a minimum runtime as typed: whole days ("7d"), a Go duration
// ("36h") or 0 for none; blank is the default.
func parseRuntime(s string) (string, error) {
	switch strings.TrimSpace(s) {
	case "":
		return "", nil
	case "0", "0d":
		return "0s", nil
	}
	d, err := parseWindow(s)
	if err != nil {
		return "", fmt.Errorf("must be a duration such as 7d or 36h, or 0 for none")
	}
	return d, nil
}

// readExperimentForm reads the posted fields. Repeated fields (one per variant or
// rule row) arrive in document order.
func readExperimentForm(c echo.Context, editing bool) (*experimentForm, error) {
	form, err := c.FormParams()
	if err != nil {
		return nil, err
	}
	f := &experimentForm{
		Editing: editing, Key: strings.TrimSpace(form.Get("key")), Name: strings.TrimSpace(form.Get("name")),
		Description: strings.TrimSpace(form.Get("description")), Coverage: form.Get("coverage"),
		TargetMode: form.Get("target_mode"), TargetJSON: form.Get("target_json"), Segments: map[string]bool{},
		NamespaceID:    strings.TrimSpace(form.Get("namespace_id")),
		NamespaceStart: form.Get("namespace_start"), NamespaceEnd: form.Get("namespace_end"),
		GoalEvent: strings.TrimSpace(form.Get("goal_event")), GoalKind: form.Get("goal_kind"),
		GoalWindow: strings.TrimSpace(form.Get("goal_window")), Type: form.Get("type"),
		Correction: form.Get("correction"), Sequential: form.Get("sequential") == "on", CUPED: form.Get("cuped") == "on",
		MinUsers: strings.TrimSpace(form.Get("min_users")), MinRuntime: strings.TrimSpace(form.Get("min_runtime")),
		Bandit: banditFields{MinWeight: form.Get("bandit_min_weight"), UpdateEvery: strings.TrimSpace(form.Get("bandit_update_every")),
			Threshold: form.Get("bandit_threshold"), AutoStop: form.Get("bandit_auto_stop") == "on",
			Sticky: form.Get("bandit_sticky") == "on", PerSegment: map[string]bool{}},
	}
	if f.TargetMode != "json" {
		f.TargetMode = "builder"
	}
	if f.Type != experiments.TypeBandit {
		f.Type = experiments.TypeAB
	}
	for _, s := range form["bandit_per_segment"] {
		f.Bandit.PerSegment[s] = true
	}
	mkeys := form["metric_key"]
	for i := range mkeys {
		f.Metrics = append(f.Metrics, metricRow{Key: strings.TrimSpace(mkeys[i]), Event: strings.TrimSpace(at(form["metric_event"], i)),
			Kind: at(form["metric_kind"], i), Role: at(form["metric_role"], i), Window: strings.TrimSpace(at(form["metric_window"], i))})
	}
	keys, names, weights, values := form["variant_key"], form["variant_name"], form["variant_weight"], form["variant_value"]
	for i := range keys {
		f.Variants = append(f.Variants, variantRow{Key: strings.TrimSpace(keys[i]), Name: at(names, i), Weight: at(weights, i), Value: at(values, i)})
	}
	attrs, ops, vals := form["rule_attr"], form["rule_op"], form["rule_value"]
	for i := range attrs {
		f.Rules = append(f.Rules, condRow{Attr: attrs[i], Op: at(ops, i), Value: at(vals, i)})
	}
	for _, s := range form["segments"] {
		f.Segments[s] = true
	}
	return f, nil
}

func at(list []string, i int) string {
	if i < len(list) {
		return list[i]
	}
	return ""
}

// apply performs an editing operation named by the submit button; it reports false
// for "save" (or an unknown operation), which the handler treats as a save.
func (f *experimentForm) apply(op string) bool {
	switch {
	case op == "add-variant":
		f.Variants = append(f.Variants, variantRow{Key: fmt.Sprintf("variant-%d", len(f.Variants))})
	case strings.HasPrefix(op, "remove-variant-"):
		if i, err := strconv.Atoi(strings.TrimPrefix(op, "remove-variant-")); err == nil && i >= 0 && i < len(f.Variants) {
			f.Variants = append(f.Variants[:i], f.Variants[i+1:]...)
		}
	case op == "split-evenly":
		for i, w := range experiments.EqualWeights(len(f.Variants)) {
			f.Variants[i].Weight = percentInput(w)
		}
	case op == "add-metric":
		f.Metrics = append(f.Metrics, metricRow{Kind: "conversion", Role: "secondary"})
	case strings.HasPrefix(op, "remove-metric-"):
		if i, err := strconv.Atoi(strings.TrimPrefix(op, "remove-metric-")); err == nil && i >= 0 && i < len(f.Metrics) {
			f.Metrics = append(f.Metrics[:i], f.Metrics[i+1:]...)
		}
	case op == "add-rule":
		f.Rules = append(f.Rules, condRow{Op: "$eq"})
	case strings.HasPrefix(op, "remove-rule-"):
		if i, err := strconv.Atoi(strings.TrimPrefix(op, "remove-rule-")); err == nil && i >= 0 && i < len(f.Rules) {
			f.Rules = append(f.Rules[:i], f.Rules[i+1:]...)
		}
	case op == "to-json":
		f.TargetMode, f.TargetJSON = "json", prettyJSON(conditionFromRows(f.Rules))
	case op == "to-builder":
		rows, ok := rowsFromCondition(json.RawMessage(f.TargetJSON))
		if !ok {
			f.Errors = append(f.Errors, derrors.FieldError{Field: "targeting",
				Message: "this condition is more than the builder can show (it takes attribute/operator/value lines joined by AND); keep editing it as JSON"})
			return true
		}
		f.TargetMode, f.Rules = "builder", rows
	default:
		return false
	}
	if len(f.Rules) == 0 {
		f.Rules = []condRow{{Op: "$eq"}}
	}
	return true
}

// document merges the form into base (the stored experiment when editing, so fields
// the form does not show survive) and returns the JSON to send to the service. Errors
// the service could not name precisely (percentages, JSON syntax) are found here.
func (f *experimentForm) document(base *experiments.Experiment) ([]byte, fieldErrors) {
	var errs fieldErrors
	add := func(field, msg string) { errs = append(errs, derrors.FieldError{Field: field, Message: msg}) }
	e := *base
	if !f.Editing {
		e.Key = f.Key
	}
	e.Name, e.Description = f.Name, f.Description
	e.Variants = nil
	sum := 0.0
	for i, v := range f.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		w, err := parsePercent(v.Weight, 0)
		if err != nil {
			add(field+".weight", err.Error())
		}
		sum += w
		va := experiments.Variant{Key: v.Key, Name: strings.TrimSpace(v.Name), Weight: w}
		if s := strings.TrimSpace(v.Value); s != "" {
			if msg := jsonProblem(s); msg != "" {
				add(field+".value", msg)
			}
			va.Value = json.RawMessage(s)
		}
		e.Variants = append(e.Variants, va)
	}
	// Percentages typed by hand (33.33 × 3) rarely add up to exactly 100: accept a
	// hundredth of a percent off and rescale, refuse anything more.
	if sum > 0 && math.Abs(sum-1) > 0.0001 {
		add("variants", fmt.Sprintf("weights must add up to 100%% (now %s); leave them all blank for an even split", percent(sum)))
	} else if sum > 0 {
		for i := range e.Variants {
			e.Variants[i].Weight /= sum
		}
	}
	if cov, err := parsePercent(f.Coverage, 1); err != nil {
		add("coverage", err.Error())
	} else {
		e.Coverage = &cov
	}
	e.Targeting = nil
	if f.TargetMode == "json" {
		if s := strings.TrimSpace(f.TargetJSON); s != "" {
			if msg := jsonProblem(s); msg != "" {
				add("targeting", msg)
			}
			e.Targeting = json.RawMessage(s)
		}
	} else {
		e.Targeting = conditionFromRows(f.Rules)
	}
	e.Segments = nil
	for _, s := range f.AllSegments {
		if f.Segments[s] {
			e.Segments = append(e.Segments, s)
		}
	}
	e.Namespace = nil
	if f.NamespaceID != "" {
		lo, err1 := parsePercent(f.NamespaceStart, 0)
		hi, err2 := parsePercent(f.NamespaceEnd, 1)
		if err1 != nil || err2 != nil {
			add("namespace.range", "start and end must be percentages between 0 and 100")
		}
		e.Namespace = &experiments.Namespace{ID: f.NamespaceID, Range: [2]float64{lo, hi}}
	}
	e.Goal = nil
	if f.GoalEvent != "" {
		e.Goal = &experiments.Goal{Event: f.GoalEvent, Kind: f.GoalKind}
		if w, err := parseWindow(f.GoalWindow); err != nil {
			add("goal.window", err.Error())
		} else {
			e.Goal.Window = w
		}
	}
	e.Metrics = nil
	for i, m := range f.Metrics {
		if m.Key == "" && m.Event == "" {
			continue // a row added and left blank
		}
		met := experiments.Metric{Key: m.Key, Event: m.Event, Kind: m.Kind, Role: m.Role}
		if w, err := parseWindow(m.Window); err != nil {
			add(fmt.Sprintf("metrics[%d].window", i), err.Error())
		} else {
			met.Window = w
		}
		e.Metrics = append(e.Metrics, met)
	}
	// Sequential testing is always written down: left out, an old document means
	// off and a new one on.
	sequential := f.Sequential
	e.Analysis = &experiments.Analysis{Sequential: &sequential}
	if f.Correction != "none" {
		e.Analysis.Correction = f.Correction
	}
	if !f.CUPED {
		off := false
		e.Analysis.CUPED = &off
	}
	if f.MinUsers != "" {
		n, err := strconv.Atoi(strings.ReplaceAll(f.MinUsers, ",", ""))
		if err != nil {
			add("analysis.min_users", "must be a whole number of users (0 for no minimum)")
		}
		e.Analysis.MinUsers = &n
	}
	if d, err := parseRuntime(f.MinRuntime); err != nil {
		add("analysis.min_runtime", err.Error())
	} else {
		e.Analysis.MinRuntime = d
	}
	e.Type = f.Type
	if f.Type == experiments.TypeBandit {
		b := f.banditConfig(base.Bandit, add)
		e.Bandit = &b
	} else {
		e.Bandit = nil
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// Status moves only through start/pause/stop; leaving it out keeps the stored one.
	e.Status = ""
	b, err := json.Marshal(&e)
	if err != nil {
		return nil, fieldErrors{{Field: "(document)", Message: err.Error()}}
	}
	return b, nil
}

// banditConfig builds the bandit options; the declared winner is not a form field and
// survives from the stored document (it changes through "Declare winner").
func (f *experimentForm) banditConfig(stored *experiments.BanditConfig, add func(field, msg string)) experiments.BanditConfig {
	var b experiments.BanditConfig
	if stored != nil {
		b.Winner = stored.Winner
	}
	var err error
	if b.MinWeight, err = parsePercent(f.Bandit.MinWeight, 0); err != nil {
		add("bandit.min_weight", err.Error())
	}
	if b.WinnerThreshold, err = parsePercent(f.Bandit.Threshold, 0); err != nil {
		add("bandit.winner_threshold", err.Error())
	}
	b.UpdateEvery, b.AutoStop, b.Sticky = f.Bandit.UpdateEvery, f.Bandit.AutoStop, f.Bandit.Sticky
	for _, s := range f.AllSegments {
		if f.Bandit.PerSegment[s] {
			b.PerSegment = append(b.PerSegment, s)
		}
	}
	return b
}

func vfield(i int, name string) string { return fmt.Sprintf("variants[%d].%s", i, name) }

func mfield(i int, name string) string { return fmt.Sprintf("metrics[%d].%s", i, name) }

func experimentFormAction(f *experimentForm) templ.SafeURL {
	if f.Editing {
		return templ.SafeURL("/experiments/" + f.Key)
	}
	return "/experiments"
}

func metricKindLabel(kind string) string {
	if kind == "value" {
		return "value per user"
	}
	return "conversion rate"
}

// windowLabel names an attribution window for reading: "within 7 days".
func windowLabel(w string) string {
	if w == "" {
		return "within " + window(experiments.DefaultWindow.String())
	}
	return "within " + window(w)
}

// banditSummary says in one line how a bandit is tuned.
func banditSummary(b *experiments.BanditConfig) string {
	parts := []string{"winner at P(best) " + percent(b.Threshold())}
	if b.MinWeight > 0 {
		parts = append(parts, "minimum weight "+percent(b.MinWeight))
	}
	parts = append(parts, "updates every "+b.UpdateInterval().String())
	if len(b.PerSegment) > 0 {
		parts = append(parts, "per segment: "+strings.Join(b.PerSegment, ", "))
	}
	if b.AutoStop {
		parts = append(parts, "declares the winner automatically")
	}
	if b.Sticky {
		parts = append(parts, "sticky")
	}
	return strings.Join(parts, " · ")
}
