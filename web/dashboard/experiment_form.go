package dashboard

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
)

// variantRow is one variant as the form shows it: weight in percent, value as JSON text.
type variantRow struct {
	Key, Name, Weight, Value string
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
	GoalEvent, GoalKind                       string

	// AllSegments lists the segments to choose from.
	AllSegments []string
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
	}
}

// experimentFormFrom shows a stored experiment in the form.
func experimentFormFrom(e *experiments.Experiment) *experimentForm {
	f := &experimentForm{Editing: true, Key: e.Key, Name: e.Name, Description: e.Description,
		TargetMode: "builder", Segments: map[string]bool{}, GoalKind: "conversion", Coverage: "100"}
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
		f.GoalEvent, f.GoalKind = g.Event, g.Kind
	}
	return f
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
	}
	if f.TargetMode != "json" {
		f.TargetMode = "builder"
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
			f.Errors = append(f.Errors, experiments.FieldError{Field: "targeting",
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
	add := func(field, msg string) { errs = append(errs, experiments.FieldError{Field: field, Message: msg}) }
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
			if !json.Valid([]byte(s)) {
				add(field+".value", `is not valid JSON (text needs quotes: "blue")`)
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
			if !json.Valid([]byte(s)) {
				add("targeting", "is not valid JSON")
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

func vfield(i int, name string) string { return fmt.Sprintf("variants[%d].%s", i, name) }

func experimentFormAction(f *experimentForm) templ.SafeURL {
	if f.Editing {
		return templ.SafeURL("/experiments/" + f.Key)
	}
	return "/experiments"
}
