package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

// ruleRow is one flag rule as the form shows it. Kind is "value" (condition, segment,
// rollout, value) or "experiment" (serve an experiment's assignment). The condition
// is edited with the builder experiments use (Mode "builder", Conds) or as JSON (Mode
// "json", Condition) when it is more than the builder can show.
type ruleRow struct {
	Kind, Condition, Segment, Rollout, Value, Variant, Experiment string
	Mode                                                          string
	Conds                                                         []condRow
}

// newValueRule is an empty value rule, its condition in the builder.
func newValueRule() ruleRow {
	return ruleRow{Kind: "value", Rollout: "100", Mode: "builder", Conds: []condRow{{Op: "$eq"}}}
}

// flagForm is the flag editor's view-model. Values are typed as the flag's type
// suggests: plain text for strings, JSON for the rest.
type flagForm struct {
	Editing                             bool
	Key, Name, Description, Type, Value string
	Enabled                             bool
	Rules                               []ruleRow

	AllSegments, AllExperiments []string
	Errors                      fieldErrors
}

// valueText shows a stored flag value: strings unquoted, anything else as JSON.
func valueText(typ string, raw json.RawMessage) string {
	if typ == experiments.FlagString {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(bytes.TrimSpace(raw))
}

// valueJSON reads a typed value back; blank gives nil (the service says it is required).
func valueJSON(typ, text string) json.RawMessage {
	if typ == experiments.FlagString {
		b, _ := json.Marshal(text)
		return b
	}
	if t := strings.TrimSpace(text); t != "" {
		return json.RawMessage(t)
	}
	return nil
}

func flagFormFrom(fl *experiments.Flag) *flagForm {
	f := &flagForm{Editing: true, Key: fl.Key, Name: fl.Name, Description: fl.Description, Type: fl.Type,
		Value: valueText(fl.Type, fl.Default), Enabled: fl.Enabled == nil || *fl.Enabled}
	for _, r := range fl.Rules {
		row := ruleRow{Kind: "value", Condition: prettyJSON(r.Condition), Segment: r.Segment, Value: valueText(fl.Type, r.Value), Variant: r.Variant, Rollout: "100", Mode: "builder"}
		if conds, ok := rowsFromCondition(r.Condition); ok {
			row.Conds = conds
		} else {
			row.Mode = "json"
		}
		if len(row.Conds) == 0 {
			row.Conds = []condRow{{Op: "$eq"}}
		}
		if r.Experiment != "" {
			row = ruleRow{Kind: "experiment", Experiment: r.Experiment}
		}
		if r.Rollout != nil {
			row.Rollout = percentInput(*r.Rollout)
		}
		f.Rules = append(f.Rules, row)
	}
	return f
}

func readFlagForm(c echo.Context, editing bool) (*flagForm, error) {
	form, err := c.FormParams()
	if err != nil {
		return nil, err
	}
	f := &flagForm{Editing: editing, Key: strings.TrimSpace(form.Get("key")), Name: strings.TrimSpace(form.Get("name")),
		Description: strings.TrimSpace(form.Get("description")), Type: form.Get("type"), Value: form.Get("default"),
		Enabled: form.Get("enabled") == "on"}
	kinds := form["rule_kind"]
	for i := range kinds {
		r := ruleRow{Kind: kinds[i], Condition: at(form["rule_condition"], i), Segment: at(form["rule_segment"], i),
			Rollout: at(form["rule_rollout"], i), Value: at(form["rule_value"], i), Variant: strings.TrimSpace(at(form["rule_variant"], i)),
			Experiment: at(form["rule_experiment"], i), Mode: form.Get(condField(i, "mode"))}
		attrs, ops, vals := form[condField(i, "attr")], form[condField(i, "op")], form[condField(i, "value")]
		for j := range attrs {
			r.Conds = append(r.Conds, condRow{Attr: attrs[j], Op: at(ops, j), Value: at(vals, j)})
		}
		switch {
		case r.Mode == "" && strings.TrimSpace(r.Condition) != "":
			r.Mode = "json" // a form without the builder (scripts, older pages)
		case r.Mode != "json":
			r.Mode = "builder"
		}
		if len(r.Conds) == 0 {
			r.Conds = []condRow{{Op: "$eq"}}
		}
		f.Rules = append(f.Rules, r)
	}
	return f, nil
}

// condField names a field of rule i's condition builder; each rule has its own.
func condField(i int, name string) string { return fmt.Sprintf("rule_%d_%s", i, name) }

// apply performs the editing operations of the rule list; false means save.
func (f *flagForm) apply(op string) bool {
	index := func(prefix string) int {
		i, err := strconv.Atoi(strings.TrimPrefix(op, prefix))
		if err != nil || i < 0 || i >= len(f.Rules) {
			return -1
		}
		return i
	}
	// Condition builder operations name the rule: cond-add-2, cond-remove-2-0.
	var i, j int
	switch {
	case scan(op, "cond-add-%d", &i) && i < len(f.Rules):
		f.Rules[i].Conds = append(f.Rules[i].Conds, condRow{Op: "$eq"})
	case scan(op, "cond-remove-%d-%d", &i, &j) && i < len(f.Rules) && j < len(f.Rules[i].Conds):
		r := &f.Rules[i]
		r.Conds = append(r.Conds[:j], r.Conds[j+1:]...)
		if len(r.Conds) == 0 {
			r.Conds = []condRow{{Op: "$eq"}}
		}
	case scan(op, "cond-json-%d", &i) && i < len(f.Rules):
		f.Rules[i].Mode, f.Rules[i].Condition = "json", prettyJSON(conditionFromRows(f.Rules[i].Conds))
	case scan(op, "cond-builder-%d", &i) && i < len(f.Rules):
		conds, ok := rowsFromCondition(json.RawMessage(f.Rules[i].Condition))
		if !ok {
			f.Errors = append(f.Errors, derrors.FieldError{Field: rfield(i, "condition"),
				Message: "is more than the builder can show (it takes attribute/operator/value lines joined by AND); keep editing it as JSON"})
			return true
		}
		if len(conds) == 0 {
			conds = []condRow{{Op: "$eq"}}
		}
		f.Rules[i].Mode, f.Rules[i].Conds = "builder", conds
	}
	if strings.HasPrefix(op, "cond-") {
		return true
	}
	switch {
	case op == "add-rule":
		f.Rules = append(f.Rules, newValueRule())
	case op == "add-experiment-rule":
		f.Rules = append(f.Rules, ruleRow{Kind: "experiment"})
	case strings.HasPrefix(op, "remove-rule-"):
		if i := index("remove-rule-"); i >= 0 {
			f.Rules = append(f.Rules[:i], f.Rules[i+1:]...)
		}
	case strings.HasPrefix(op, "up-"):
		if i := index("up-"); i > 0 {
			f.Rules[i-1], f.Rules[i] = f.Rules[i], f.Rules[i-1]
		}
	case strings.HasPrefix(op, "down-"):
		if i := index("down-"); i >= 0 && i+1 < len(f.Rules) {
			f.Rules[i], f.Rules[i+1] = f.Rules[i+1], f.Rules[i]
		}
	default:
		return false
	}
	return true
}

func (f *flagForm) document(base *experiments.Flag) ([]byte, fieldErrors) {
	var errs fieldErrors
	add := func(field, msg string) { errs = append(errs, derrors.FieldError{Field: field, Message: msg}) }
	fl := *base
	if !f.Editing {
		fl.Key = f.Key
	}
	fl.Name, fl.Description, fl.Type = f.Name, f.Description, f.Type
	fl.Enabled = &f.Enabled
	fl.Default = valueJSON(f.Type, f.Value)
	if fl.Default != nil {
		if msg := jsonProblem(string(fl.Default)); msg != "" {
			add("default", msg)
		}
	}
	fl.Rules = nil
	for i, r := range f.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		if r.Kind == "experiment" {
			fl.Rules = append(fl.Rules, experiments.Rule{Experiment: r.Experiment})
			if r.Experiment == "" {
				add(field+".experiment", "choose an experiment")
			}
			continue
		}
		rule := experiments.Rule{Segment: r.Segment, Variant: r.Variant, Value: valueJSON(f.Type, r.Value)}
		if rule.Value != nil {
			if msg := jsonProblem(string(rule.Value)); msg != "" {
				add(field+".value", msg)
			}
		}
		if r.Mode == "builder" {
			rule.Condition = conditionFromRows(r.Conds)
		} else if s := strings.TrimSpace(r.Condition); s != "" {
			if msg := jsonProblem(s); msg != "" {
				add(field+".condition", msg)
			}
			rule.Condition = json.RawMessage(s)
		}
		rollout, err := parsePercent(r.Rollout, 1)
		if err != nil {
			add(field+".rollout", err.Error())
		}
		if rollout < 1 {
			rule.Rollout = &rollout
		}
		fl.Rules = append(fl.Rules, rule)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	b, err := json.Marshal(&fl)
	if err != nil {
		return nil, fieldErrors{{Field: "(document)", Message: err.Error()}}
	}
	return b, nil
}

// flagRow is one line of the flags list.
type flagRow struct {
	Key, Name, Type, Default string
	Enabled                  bool
	Rules                    int
	// Rollout names the partial rollouts ("rollout 20%"); RulesText says what every
	// rule does.
	Rollout, RulesText string
}

func (d *Dashboard) flagList(c echo.Context) error {
	list, err := listDocs[experiments.Flag](c.Request().Context(), d, experiments.KindFlag)
	if err != nil {
		return err
	}
	rows := make([]flagRow, 0, len(list))
	for _, fl := range list {
		row := flagRow{Key: fl.Key, Name: fl.Name, Type: fl.Type, Default: valueText(fl.Type, fl.Default),
			Enabled: fl.Enabled == nil || *fl.Enabled, Rules: len(fl.Rules)}
		var rollouts, texts []string
		for i, r := range flagFormFrom(&fl).Rules {
			if r.Kind == "value" && rolloutValue(r.Rollout) != "100" {
				rollouts = append(rollouts, "rollout "+rolloutValue(r.Rollout)+"%")
			}
			texts = append(texts, strconv.Itoa(i+1)+". "+ruleSummary(fl.Type, r))
		}
		row.Rollout, row.RulesText = strings.Join(rollouts, ", "), strings.Join(texts, " ")
		rows = append(rows, row)
	}
	return render(c, http.StatusOK, flagListView(d.page(c, "flags", "Feature flags"), rows))
}

func (d *Dashboard) loadFlag(c echo.Context) (*experiments.Flag, error) {
	return getDoc[experiments.Flag](d, c, experiments.KindFlag)
}

func (d *Dashboard) showFlagForm(c echo.Context, status int, f *flagForm) error {
	var err error
	if f.AllSegments, err = d.segmentKeys(c); err != nil {
		return err
	}
	list, err := listDocs[struct{ Key string }](c.Request().Context(), d, experiments.KindExperiment)
	if err != nil {
		return err
	}
	f.AllExperiments = f.AllExperiments[:0]
	for _, e := range list {
		f.AllExperiments = append(f.AllExperiments, e.Key)
	}
	title := "New feature flag"
	if f.Editing {
		title = f.Key
	}
	return render(c, status, flagFormView(d.page(c, "flags", title), f))
}

func (d *Dashboard) flagNew(c echo.Context) error {
	return d.showFlagForm(c, http.StatusOK, &flagForm{Type: experiments.FlagBoolean, Value: "false", Enabled: true})
}

func (d *Dashboard) flagEdit(c echo.Context) error {
	fl, err := d.loadFlag(c)
	if err != nil {
		return err
	}
	return d.showFlagForm(c, http.StatusOK, flagFormFrom(fl))
}

func (d *Dashboard) flagCreate(c echo.Context) error { return d.saveFlag(c, false) }
func (d *Dashboard) flagUpdate(c echo.Context) error { return d.saveFlag(c, true) }

func (d *Dashboard) saveFlag(c echo.Context, editing bool) error {
	f, err := readFlagForm(c, editing)
	if err != nil {
		return err
	}
	base := &experiments.Flag{}
	if editing {
		if base, err = d.loadFlag(c); err != nil {
			return err
		}
		f.Key = base.Key
	}
	if f.apply(c.FormValue("op")) {
		return d.showFlagForm(c, http.StatusOK, f)
	}
	body, errs := f.document(base)
	if errs == nil {
		if errs, err = d.save(c, experiments.KindFlag, f.Key, editing, body); err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		f.Errors = errs
		return d.showFlagForm(c, http.StatusUnprocessableEntity, f)
	}
	name := f.Name
	if name == "" {
		name = f.Key
	}
	setFlash(c, flash{Tone: "success", Text: "Flag “" + name + "” saved: decisions follow within a second."})
	return c.Redirect(http.StatusSeeOther, "/flags")
}

func (d *Dashboard) flagToggleConfirm(c echo.Context) error {
	fl, err := d.loadFlag(c)
	if err != nil {
		return err
	}
	cf := confirmation{Action: "/flags/" + fl.Key + "/toggle", Cancel: "/flags/" + fl.Key}
	if fl.Enabled == nil || *fl.Enabled {
		cf.Title, cf.Button, cf.Danger = "Turn off “"+fl.Name+"”?", "Turn off", true
		cf.Explain = "Kill switch: every user gets the default value (" + valueText(fl.Type, fl.Default) + ") within a second, whatever the rules say."
	} else {
		cf.Title, cf.Button = "Turn on “"+fl.Name+"”?", "Turn on"
		cf.Explain = "The rules apply again, in order, within a second."
	}
	return render(c, http.StatusOK, confirmView(d.page(c, "flags", cf.Title), cf))
}

// flagToggle is the kill switch: it flips enabled and keeps everything else.
func (d *Dashboard) flagToggle(c echo.Context) error {
	fl, err := d.loadFlag(c)
	if err != nil {
		return err
	}
	on := !(fl.Enabled == nil || *fl.Enabled)
	fl.Enabled = &on
	body, err := json.Marshal(fl)
	if err != nil {
		return err
	}
	if _, err := d.Config.Replace(c.Request().Context(), actor(c), experiments.KindFlag, fl.Key, body); err != nil {
		return err
	}
	if on {
		setFlash(c, flash{Tone: "success", Text: "Flag “" + fl.Name + "” is on: its rules apply again within a second."})
	} else {
		setFlash(c, flash{Tone: "success", Text: "Flag “" + fl.Name + "” is off: everyone gets the default within a second."})
	}
	return c.Redirect(http.StatusSeeOther, "/flags")
}

func rfield(i int, name string) string { return fmt.Sprintf("rules[%d].%s", i, name) }

func flagFormAction(f *flagForm) templ.SafeURL {
	if f.Editing {
		return templ.SafeURL("/flags/" + f.Key)
	}
	return "/flags"
}

// scan reads op in format (numbers only), reporting whether it matched all of it.
func scan(op, format string, args ...any) bool {
	var rest string
	n, _ := fmt.Sscanf(op+" end", format+" %s", append(args, &rest)...)
	if n != len(args)+1 || rest != "end" {
		return false
	}
	for _, a := range args {
		if *a.(*int) < 0 {
			return false
		}
	}
	return true
}

// ruleSummary says in a sentence what a rule does: "Serves true to 20% of users in
// us-mobile". A rollout is named as one, whatever variant name decisions report.
func ruleSummary(typ string, r ruleRow) string {
	if r.Kind == "experiment" {
		if r.Experiment == "" {
			return "Serves an experiment's assignment (none chosen yet)."
		}
		return "Serves the assignment of experiment " + r.Experiment + " to users in it; others go on to the next rule."
	}
	var who []string
	if r.Segment != "" {
		who = append(who, "in "+r.Segment)
	}
	var cond json.RawMessage
	if r.Mode == "builder" {
		cond = conditionFromRows(r.Conds)
	} else if s := strings.TrimSpace(r.Condition); s != "" {
		cond = json.RawMessage(s)
	}
	if conds, ok := rowsFromCondition(cond); ok && len(conds) > 0 {
		parts := make([]string, len(conds))
		for i, c := range conds {
			parts[i] = strings.TrimSpace(c.Attr + " " + opLabel(c.Op) + " " + c.Value)
		}
		who = append(who, "whose "+strings.Join(parts, " and "))
	} else if len(cond) > 0 {
		who = append(who, "matching the condition")
	}
	audience := "everyone"
	if len(who) > 0 {
		audience = "users " + strings.Join(who, " ")
	}
	if pct := rolloutValue(r.Rollout); pct != "100" {
		audience = "a " + pct + "% rollout of " + audience
	}
	value := r.Value
	if value == "" {
		value = "(no value)"
	} else if typ == experiments.FlagString {
		value = strconv.Quote(value)
	}
	return "Serves " + value + " to " + audience + "."
}

// rolloutValue keeps the slider's value an integer percentage in [0, 100].
func rolloutValue(s string) string {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) {
		return "100"
	}
	return strconv.Itoa(int(math.Max(0, math.Min(100, v)) + 0.5))
}
