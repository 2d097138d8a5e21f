package segments

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/liftlab/lift/segments/condition"
)

// Limits on behavioural rules. They bound the per-user state the engine keeps (a rule
// never needs more than its window's events, and at most these many of them) and the
// work one event costs.
const (
	// MaxWindow is the longest "within" a rule may use.
	MaxWindow = 30 * 24 * time.Hour
	// DefaultSequenceWithin is the window of a sequence that names none: ingest refuses
	// events older than 7 days, so a longer default could never be rebuilt.
	DefaultSequenceWithin = 7 * 24 * time.Hour
	// MaxCount is the largest count_gte; the engine keeps that many timestamps.
	MaxCount = 1000
	// maxKept caps the events kept for one sum or sequence step per user. A user who
	// exceeds it loses the oldest ones, so a sum may undercount for extreme users;
	// without a cap one bot could hold unbounded memory.
	maxKept     = 256
	maxSteps    = 8
	maxChildren = 16
	maxDepth    = 8
)

// RuleError reports why a behavioural rule was rejected. Path names the offending
// field the way a client wrote it, relative to the rule, e.g. "within",
// "and[1].where.country.$inn" or "absent.event"; it is empty when the rule as a whole
// is at fault (not JSON, not an object).
type RuleError struct {
	Path    string
	Message string
}

// Error returns the message prefixed with the path, if any.
func (e *RuleError) Error() string {
	if e.Path == "" {
		return "invalid rule: " + e.Message
	}
	return "invalid rule at " + e.Path + ": " + e.Message
}

func ruleErrorf(path, format string, args ...any) *RuleError {
	return &RuleError{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Rule is a compiled behavioural rule: a tree of count, sum and sequence tests over a
// user's recent events. It is immutable and safe for concurrent use.
type Rule struct {
	root ruleNode
	// patterns are the event patterns the leaves read, numbered in the order the
	// leaves appear; the engine stores one time series per pattern and user.
	patterns []pattern
	// canonical is the rule re-encoded with sorted keys, so that checkpoints can
	// tell whether the definitions they were taken with changed.
	canonical []byte
}

// pattern is "events of this type whose properties match where", plus how much of
// their history the rule needs.
type pattern struct {
	event  string
	where  *condition.Condition // nil matches every event of the type
	retain int64                // ms; older events cannot affect the rule any more
	keep   int                  // at most this many of the newest are kept
}

type nodeKind uint8

const (
	nodeCount nodeKind = iota
	nodeSum
	nodeSequence
	nodeAnd
	nodeOr
)

type ruleNode struct {
	kind   nodeKind
	within int64 // ms
	count  int
	sum    float64
	// pattern is the series of a count or sum; steps and absent (-1: none) those of
	// a sequence.
	pattern      int
	steps        []int
	absent       int
	absentWithin int64 // ms
	subs         []ruleNode
}

// ParseRuleJSON parses a behavioural rule from its JSON text; docs/segments.md
// describes the language. Every error it returns is a *RuleError naming the
// offending field.
func ParseRuleJSON(data []byte) (*Rule, error) {
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, &RuleError{Message: "not valid JSON: " + err.Error()}
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, &RuleError{Message: "must be a JSON object, not " + condition.JSONKind(raw)}
	}
	r := &Rule{}
	root, err := r.compile(m, "", 0)
	if err != nil {
		return nil, err
	}
	r.root = root
	// Marshalling a map sorts its keys, and the map came from JSON, so this cannot fail.
	r.canonical, _ = json.Marshal(m)
	return r, nil
}

// String returns the rule as canonical JSON.
func (r *Rule) String() string { return string(r.canonical) }

func (r *Rule) compile(m map[string]any, path string, depth int) (ruleNode, error) {
	if depth > maxDepth {
		return ruleNode{}, ruleErrorf(path, "nests and/or deeper than %d levels", maxDepth)
	}
	_, isAnd := m["and"]
	_, isOr := m["or"]
	_, isSeq := m["sequence"]
	switch {
	case isAnd || isOr:
		return r.compileBool(m, path, depth, isAnd)
	case isSeq:
		return r.compileSequence(m, path)
	default:
		return r.compileCount(m, path)
	}
}

func (r *Rule) compileBool(m map[string]any, path string, depth int, isAnd bool) (ruleNode, error) {
	key, kind := "or", nodeOr
	if isAnd {
		key, kind = "and", nodeAnd
	}
	if len(m) != 1 {
		return ruleNode{}, ruleErrorf(path, "%q must be the only field of its object", key)
	}
	p := condition.JoinPath(path, key)
	list, ok := m[key].([]any)
	if !ok || len(list) == 0 || len(list) > maxChildren {
		return ruleNode{}, ruleErrorf(p, "must be an array of 1 to %d rules", maxChildren)
	}
	n := ruleNode{kind: kind, subs: make([]ruleNode, len(list))}
	for i, e := range list {
		em, ok := e.(map[string]any)
		if !ok {
			return ruleNode{}, ruleErrorf(condition.IndexPath(p, i), "must be a rule object, not %s", condition.JSONKind(e))
		}
		sub, err := r.compile(em, condition.IndexPath(p, i), depth+1)
		if err != nil {
			return ruleNode{}, err
		}
		n.subs[i] = sub
	}
	return n, nil
}

func (r *Rule) compileCount(m map[string]any, path string) (ruleNode, error) {
	if err := onlyFields(m, path, "event", "where", "count_gte", "sum_gte", "within"); err != nil {
		return ruleNode{}, err
	}
	within, err := duration(m, path, "within", 0)
	if err != nil {
		return ruleNode{}, err
	}
	n := ruleNode{kind: nodeCount, within: within, count: 1}
	cnt, hasCount := m["count_gte"]
	sum, hasSum := m["sum_gte"]
	keep := 1
	switch {
	case hasCount && hasSum:
		return ruleNode{}, ruleErrorf(path, "use count_gte or sum_gte, not both")
	case hasCount:
		f, ok := cnt.(float64)
		if !ok || f != math.Trunc(f) || f < 1 || f > MaxCount {
			return ruleNode{}, ruleErrorf(condition.JoinPath(path, "count_gte"), "must be an integer from 1 to %d", MaxCount)
		}
		n.count, keep = int(f), int(f)
	case hasSum:
		f, ok := sum.(float64)
		// A threshold ≤ 0 would hold for users without any event, whom the engine
		// does not track.
		if !ok || !(f > 0) {
			return ruleNode{}, ruleErrorf(condition.JoinPath(path, "sum_gte"), "must be a number greater than 0")
		}
		n.kind, n.sum, keep = nodeSum, f, maxKept
	}
	p, err := r.addPattern(m, path, within, keep)
	n.pattern = p
	return n, err
}

func (r *Rule) compileSequence(m map[string]any, path string) (ruleNode, error) {
	if err := onlyFields(m, path, "sequence", "within", "absent"); err != nil {
		return ruleNode{}, err
	}
	within, err := duration(m, path, "within", DefaultSequenceWithin)
	if err != nil {
		return ruleNode{}, err
	}
	p := condition.JoinPath(path, "sequence")
	list, ok := m["sequence"].([]any)
	if !ok || len(list) == 0 || len(list) > maxSteps {
		return ruleNode{}, ruleErrorf(p, "must be an array of 1 to %d steps", maxSteps)
	}
	n := ruleNode{kind: nodeSequence, within: within, absent: -1, steps: make([]int, len(list))}
	for i, e := range list {
		sp := condition.IndexPath(p, i)
		step, ok := e.(map[string]any)
		if !ok {
			return ruleNode{}, ruleErrorf(sp, "must be a step object, not %s", condition.JSONKind(e))
		}
		if err := onlyFields(step, sp, "event", "where"); err != nil {
			return ruleNode{}, err
		}
		if n.steps[i], err = r.addPattern(step, sp, within, maxKept); err != nil {
			return ruleNode{}, err
		}
	}
	raw, ok := m["absent"]
	if !ok {
		return n, nil
	}
	ap := condition.JoinPath(path, "absent")
	abs, ok := raw.(map[string]any)
	if !ok {
		return ruleNode{}, ruleErrorf(ap, "must be an object with event, where and within")
	}
	if err := onlyFields(abs, ap, "event", "where", "within"); err != nil {
		return ruleNode{}, err
	}
	if n.absentWithin, err = duration(abs, ap, "within", 0); err != nil {
		return ruleNode{}, err
	}
	if n.absentWithin >= within {
		return ruleNode{}, ruleErrorf(condition.JoinPath(ap, "within"), "must be shorter than the sequence's within (%s)", time.Duration(within)*time.Millisecond)
	}
	// Only the latest absent event matters: it must precede the last step.
	n.absent, err = r.addPattern(abs, ap, within, 1)
	return n, err
}

// addPattern compiles the event and where fields of m into a new pattern.
func (r *Rule) addPattern(m map[string]any, path string, retain int64, keep int) (int, error) {
	ev, ok := m["event"].(string)
	if !ok || ev == "" {
		return 0, ruleErrorf(condition.JoinPath(path, "event"), "is required: a non-empty event type")
	}
	pat := pattern{event: ev, retain: retain, keep: keep}
	if w, ok := m["where"]; ok {
		wm, ok := w.(map[string]any)
		if !ok {
			return 0, ruleErrorf(condition.JoinPath(path, "where"), "must be a condition object, not %s", condition.JSONKind(w))
		}
		c, err := condition.ParseCondition(wm)
		if err != nil {
			ce := err.(*condition.ConditionError)
			return 0, ruleErrorf(condition.JoinPath(condition.JoinPath(path, "where"), ce.Path), "%s", ce.Message)
		}
		if len(wm) > 0 {
			pat.where = c
		}
	}
	r.patterns = append(r.patterns, pat)
	return len(r.patterns) - 1, nil
}

func onlyFields(m map[string]any, path string, allowed ...string) error {
	for _, k := range sortedKeys(m) {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			return ruleErrorf(condition.JoinPath(path, k), "unknown field")
		}
	}
	return nil
}

// duration reads a positive Go duration such as "10m" from m[key], in milliseconds;
// def (when > 0) is used when the field is absent.
func duration(m map[string]any, path, key string, def time.Duration) (int64, error) {
	p := condition.JoinPath(path, key)
	raw, ok := m[key]
	if !ok {
		if def > 0 {
			return def.Milliseconds(), nil
		}
		return 0, ruleErrorf(p, "is required: a duration such as \"10m\"")
	}
	s, _ := raw.(string)
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Millisecond || d > MaxWindow {
		return 0, ruleErrorf(p, "must be a duration from 1ms to %s, such as \"10m\"", MaxWindow)
	}
	return d.Milliseconds(), nil
}

// EventTypes returns the event types the rule reads, without repeats.
func (r *Rule) EventTypes() []string {
	var types []string
	for _, p := range r.patterns {
		if !slices.Contains(types, p.event) {
			types = append(types, p.event)
		}
	}
	return types
}

// Retention is how far back the rule reads: events older than that (before the time
// it is evaluated at) cannot affect it. A rebuild needs this much history.
func (r *Rule) Retention() time.Duration {
	var d int64
	for _, p := range r.patterns {
		d = max(d, p.retain)
	}
	return time.Duration(d) * time.Millisecond
}
