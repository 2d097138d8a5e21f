package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/liftlab/lift/internal/derrors"
)

// The behavioural rule builder edits the rules of docs/segments.md that a product
// manager writes most: one test, or several joined by all/any, each counting events,
// summing their values, or looking for a sequence (optionally followed by the absence
// of an event). Deeper nesting is edited as raw JSON.

// Clause shapes.
const (
	shapeCount    = "count"    // at least N events of a type within a window (N = 1: recency)
	shapeSum      = "sum"      // their values sum to at least S within a window
	shapeSequence = "sequence" // events in order, optionally then no event of another type
)

// seqStep is one step of a sequence clause.
type seqStep struct {
	Event, Where string
}

// ruleClause is one test of the builder, as typed.
type ruleClause struct {
	Shape, Event, Where, Count, Sum, Within string
	Steps                                   []seqStep
	AbsentEvent, AbsentWhere, AbsentWithin  string
}

// behaviorRule is the builder's state: clauses joined by Combine ("and" or "or"), or
// the raw JSON when Mode is "json".
type behaviorRule struct {
	Mode     string
	Combine  string
	Clauses  []ruleClause
	RuleJSON string
}

func newBehaviorRule() behaviorRule {
	return behaviorRule{Mode: "builder", Combine: "and", Clauses: []ruleClause{{Shape: shapeCount, Event: "product_view", Count: "3", Within: "10m"}}}
}

// behaviorRuleFrom shows a stored rule in the builder, or in JSON mode when the builder
// cannot show it.
func behaviorRuleFrom(raw json.RawMessage) behaviorRule {
	r := behaviorRule{Mode: "builder", Combine: "and", RuleJSON: prettyJSON(raw)}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		r.Mode = "json"
		return r
	}
	// leaves starts empty: decoding into a slice that already held raw would reuse
	// raw's bytes (RawMessage appends in place) and corrupt the caller's document.
	var leaves []json.RawMessage
	for _, op := range []string{"and", "or"} {
		if list, ok := m[op]; ok && len(m) == 1 {
			r.Combine = op
			if json.Unmarshal(list, &leaves) != nil {
				r.Mode = "json"
				return r
			}
		}
	}
	if leaves == nil {
		leaves = []json.RawMessage{raw}
	}
	for _, leaf := range leaves {
		c, ok := clauseFrom(leaf)
		if !ok {
			r.Mode, r.Clauses = "json", nil
			return r
		}
		r.Clauses = append(r.Clauses, c)
	}
	return r
}

// ruleLeaf is every field a builder clause may hold; a leaf with anything else (a
// nested and/or, an unknown field) is left to the JSON editor.
type ruleLeaf struct {
	Event    *string          `json:"event"`
	Where    json.RawMessage  `json:"where"`
	CountGTE *float64         `json:"count_gte"`
	SumGTE   *float64         `json:"sum_gte"`
	Within   *string          `json:"within"`
	Sequence []ruleLeafStep   `json:"sequence"`
	Absent   *ruleLeafAbsence `json:"absent"`
}

type ruleLeafStep struct {
	Event string          `json:"event"`
	Where json.RawMessage `json:"where"`
}

type ruleLeafAbsence struct {
	Event  string          `json:"event"`
	Where  json.RawMessage `json:"where"`
	Within string          `json:"within"`
}

func clauseFrom(raw json.RawMessage) (ruleClause, bool) {
	var l ruleLeaf
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if dec.Decode(&l) != nil {
		return ruleClause{}, false
	}
	c := ruleClause{Shape: shapeCount}
	if l.Within != nil {
		c.Within = windowInput(*l.Within)
	}
	if l.Sequence != nil {
		if l.Event != nil || l.CountGTE != nil || l.SumGTE != nil || l.Where != nil {
			return ruleClause{}, false
		}
		c.Shape = shapeSequence
		for _, s := range l.Sequence {
			c.Steps = append(c.Steps, seqStep{Event: s.Event, Where: compactJSON(s.Where)})
		}
		if a := l.Absent; a != nil {
			c.AbsentEvent, c.AbsentWhere, c.AbsentWithin = a.Event, compactJSON(a.Where), windowInput(a.Within)
		}
		return c, true
	}
	if l.Absent != nil || l.Event == nil {
		return ruleClause{}, false
	}
	c.Event, c.Where = *l.Event, compactJSON(l.Where)
	switch {
	case l.SumGTE != nil:
		c.Shape, c.Sum = shapeSum, strconv.FormatFloat(*l.SumGTE, 'f', -1, 64)
	case l.CountGTE != nil:
		c.Count = strconv.FormatFloat(*l.CountGTE, 'f', -1, 64)
	default:
		c.Count = "1"
	}
	return c, true
}

func compactJSON(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}

// readBehaviorRule reads the builder's fields. Clause i's fields are named c<i>_…,
// and step j of its sequence c<i>_s<j>_…; the counts of both are posted too, so that
// blank fields keep their place.
func readBehaviorRule(form url.Values) behaviorRule {
	r := behaviorRule{Mode: form.Get("rule_mode"), Combine: form.Get("rule_combine"), RuleJSON: form.Get("rule_json")}
	if r.Mode != "json" {
		r.Mode = "builder"
	}
	if r.Combine != "or" {
		r.Combine = "and"
	}
	n, _ := strconv.Atoi(form.Get("clauses"))
	for i := range min(n, 16) {
		p := "c" + strconv.Itoa(i) + "_"
		c := ruleClause{Shape: form.Get(p + "shape"), Event: strings.TrimSpace(form.Get(p + "event")), Where: strings.TrimSpace(form.Get(p + "where")),
			Count: strings.TrimSpace(form.Get(p + "count")), Sum: strings.TrimSpace(form.Get(p + "sum")), Within: strings.TrimSpace(form.Get(p + "within")),
			AbsentEvent: strings.TrimSpace(form.Get(p + "absent_event")), AbsentWhere: strings.TrimSpace(form.Get(p + "absent_where")),
			AbsentWithin: strings.TrimSpace(form.Get(p + "absent_within"))}
		steps, _ := strconv.Atoi(form.Get(p + "steps"))
		for j := range min(steps, 8) {
			sp := p + "s" + strconv.Itoa(j) + "_"
			c.Steps = append(c.Steps, seqStep{Event: strings.TrimSpace(form.Get(sp + "event")), Where: strings.TrimSpace(form.Get(sp + "where"))})
		}
		r.Clauses = append(r.Clauses, c)
	}
	return r
}

// apply performs a builder editing operation; false means the button was not one.
func (r *behaviorRule) apply(op string) (bool, fieldErrors) {
	clause := func(prefix string) (int, int) {
		var i, j int
		n, _ := fmt.Sscanf(strings.TrimPrefix(op, prefix), "%d-%d", &i, &j)
		if n == 0 || i < 0 || i >= len(r.Clauses) {
			return -1, -1
		}
		return i, j
	}
	switch {
	case op == "add-clause":
		r.Clauses = append(r.Clauses, ruleClause{Shape: shapeCount, Count: "1", Within: "7d"})
	case strings.HasPrefix(op, "remove-clause-"):
		if i, _ := clause("remove-clause-"); i >= 0 && len(r.Clauses) > 1 {
			r.Clauses = append(r.Clauses[:i], r.Clauses[i+1:]...)
		}
	case strings.HasPrefix(op, "add-step-"):
		if i, _ := clause("add-step-"); i >= 0 && len(r.Clauses[i].Steps) < 8 {
			r.Clauses[i].Steps = append(r.Clauses[i].Steps, seqStep{})
		}
	case strings.HasPrefix(op, "remove-step-"):
		if i, j := clause("remove-step-"); i >= 0 && j >= 0 && j < len(r.Clauses[i].Steps) && len(r.Clauses[i].Steps) > 1 {
			r.Clauses[i].Steps = append(r.Clauses[i].Steps[:j], r.Clauses[i].Steps[j+1:]...)
		}
	case op == "rule-to-json":
		doc, errs := r.document()
		if errs != nil {
			return true, errs
		}
		r.Mode, r.RuleJSON = "json", prettyJSON(doc)
	case op == "rule-to-builder":
		b := behaviorRuleFrom(json.RawMessage(r.RuleJSON))
		if b.Mode != "builder" {
			return true, fieldErrors{{Field: "rule", Message: "this rule is more than the builder can show (it takes count, sum and sequence tests joined by all or any); keep editing it as JSON"}}
		}
		*r = b
	default:
		return false, nil
	}
	// A sequence always shows at least one step to fill in.
	for i := range r.Clauses {
		if len(r.Clauses[i].Steps) == 0 {
			r.Clauses[i].Steps = []seqStep{{}}
		}
	}
	return true, nil
}

// path is where the service reports problems of clause i: the clause is the whole
// rule when it is alone, else an element of the and/or list.
func (r *behaviorRule) path(i int) string {
	if len(r.Clauses) == 1 {
		return "rule."
	}
	return "rule." + r.Combine + "[" + strconv.Itoa(i) + "]."
}

// document writes the rule as JSON. Problems the service could not name precisely
// (JSON syntax in a where, a count that is not a number) are found here, with the
// paths the service would use.
func (r *behaviorRule) document() (json.RawMessage, fieldErrors) {
	if r.Mode == "json" {
		s := strings.TrimSpace(r.RuleJSON)
		if s == "" {
			return nil, fieldErrors{{Field: "rule", Message: "is required"}}
		}
		if !json.Valid([]byte(s)) {
			return nil, fieldErrors{{Field: "rule", Message: "is not valid JSON"}}
		}
		return json.RawMessage(s), nil
	}
	var errs fieldErrors
	add := func(field, msg string) { errs = append(errs, derrors.FieldError{Field: field, Message: msg}) }
	where := func(field, text string, into map[string]any) {
		if text == "" {
			return
		}
		if !json.Valid([]byte(text)) {
			add(field, `is not valid JSON (such as {"category": "shoes"})`)
			return
		}
		into["where"] = json.RawMessage(text)
	}
	within := func(field, text string, into map[string]any) {
		if text == "" {
			return
		}
		d, err := parseWindow(text)
		if err != nil {
			add(field, err.Error())
			return
		}
		into["within"] = d
	}
	var leaves []any
	for i, c := range r.Clauses {
		p := r.path(i)
		leaf := map[string]any{}
		switch c.Shape {
		case shapeSequence:
			steps := []any{}
			for j, s := range c.Steps {
				step := map[string]any{"event": s.Event}
				where(fmt.Sprintf("%ssequence[%d].where", p, j), s.Where, step)
				steps = append(steps, step)
			}
			leaf["sequence"] = steps
			within(p+"within", c.Within, leaf)
			if c.AbsentEvent != "" || c.AbsentWithin != "" {
				abs := map[string]any{"event": c.AbsentEvent}
				where(p+"absent.where", c.AbsentWhere, abs)
				within(p+"absent.within", c.AbsentWithin, abs)
				leaf["absent"] = abs
			}
		case shapeSum:
			leaf["event"] = c.Event
			where(p+"where", c.Where, leaf)
			if v, err := strconv.ParseFloat(c.Sum, 64); err != nil {
				add(p+"sum_gte", "must be a number greater than 0")
			} else {
				leaf["sum_gte"] = v
			}
			within(p+"within", c.Within, leaf)
		default:
			leaf["event"] = c.Event
			where(p+"where", c.Where, leaf)
			if c.Count != "" && c.Count != "1" {
				if v, err := strconv.Atoi(c.Count); err != nil {
					add(p+"count_gte", "must be a whole number from 1 to 1000")
				} else {
					leaf["count_gte"] = v
				}
			}
			within(p+"within", c.Within, leaf)
		}
		leaves = append(leaves, leaf)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var doc any = map[string]any{r.Combine: leaves}
	if len(leaves) == 1 {
		doc = leaves[0]
	}
	b, _ := json.Marshal(doc)
	return b, nil
}

// describeRule says what a stored rule means in a sentence, for lists and headers;
// rules the builder cannot show are summarised as custom.
func describeRule(raw json.RawMessage) string {
	r := behaviorRuleFrom(raw)
	if r.Mode != "builder" {
		return "Custom rule (JSON)"
	}
	parts := make([]string, len(r.Clauses))
	for i, c := range r.Clauses {
		parts[i] = c.describe()
	}
	join := " and "
	if r.Combine == "or" {
		join = " or "
	}
	return capitalize(strings.Join(parts, join))
}

func (c ruleClause) describe() string {
	in := func(w string) string {
		if w == "" {
			return ""
		}
		return " within " + window(mustWindow(w))
	}
	where := ""
	if c.Where != "" && c.Where != "{}" {
		where = " where " + c.Where
	}
	switch c.Shape {
	case shapeSequence:
		steps := make([]string, len(c.Steps))
		for i, s := range c.Steps {
			steps[i] = s.Event
		}
		s := strings.Join(steps, " then ")
		if c.Within == "" {
			s += in("7d")
		} else {
			s += in(c.Within)
		}
		if c.AbsentEvent != "" {
			s += ", then no " + c.AbsentEvent + " for " + window(mustWindow(c.AbsentWithin))
		}
		return s
	case shapeSum:
		return c.Event + " value totals ≥ " + c.Sum + where + in(c.Within)
	}
	if c.Count == "1" || c.Count == "" {
		return c.Event + where + in(c.Within)
	}
	return c.Count + "× " + c.Event + where + in(c.Within)
}

// mustWindow turns a typed window into a Go duration for display; what cannot be
// parsed is shown as typed.
func mustWindow(w string) string {
	if d, err := parseWindow(w); err == nil {
		return d
	}
	return w
}
