package experiments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/condition"
)

// Kind names a type of configuration document.
type Kind string

// The configuration documents lift stores.
const (
	KindExperiment Kind = "experiment"
	KindFlag       Kind = "flag"
	KindSegment    Kind = "segment"
	KindSavedGroup Kind = "saved_group"
)

// Experiment statuses. Only running experiments assign users.
const (
	StatusDraft   = "draft"
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusStopped = "stopped"
)

// Experiment types.
const (
	TypeAB     = "ab"
	TypeBandit = "bandit"
)

// Flag value types.
const (
	FlagBoolean = "boolean"
	FlagString  = "string"
	FlagNumber  = "number"
	FlagJSON    = "json"
)

// keyPattern is the shape of every document key: URL-safe and short enough for
// ClickHouse columns and dashboards.
var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// CheckKey returns a field error for a key of the wrong shape, for documents kept
// outside this package (webhooks) that follow the same rule.
func CheckKey(field, key string) *derrors.FieldError {
	if keyPattern.MatchString(key) {
		return nil
	}
	return &derrors.FieldError{Field: field, Message: "must match " + keyPattern.String()}
}

// weightTolerance allows for decimal weights such as 0.1+0.2+0.7 not adding up
// exactly in binary floating point.
const weightTolerance = 1e-6

// Experiment is the experiment document (docs/api.md, "Documents").
type Experiment struct {
	Key         string          `json:"key"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Type        string          `json:"type,omitempty"`
	Status      string          `json:"status,omitempty"`
	Variants    []Variant       `json:"variants"`
	Coverage    *float64        `json:"coverage,omitempty"`
	HashSeed    string          `json:"hash_seed,omitempty"`
	HashVersion int             `json:"hash_version,omitempty"`
	Targeting   json.RawMessage `json:"targeting,omitempty"`
	Segments    []string        `json:"segments,omitempty"`
	Namespace   *Namespace      `json:"namespace,omitempty"`
	Goal        *Goal           `json:"goal,omitempty"`
	Bandit      *BanditConfig   `json:"bandit,omitempty"`
	Metrics     []Metric        `json:"metrics,omitempty"`
	Analysis    *Analysis       `json:"analysis,omitempty"`
	// StartedAt is when the experiment first started running; lift sets it (on
	// creation as running, or at the first start) and keeps it, whatever a request
	// sends. The minimum runtime before a verdict counts from it.
	StartedAt *time.Time `json:"started_at,omitempty"`
}

// Variant is one arm of an experiment. Value is what the client renders; when it is
// absent the variant key stands in for it.
type Variant struct {
	Key    string          `json:"key"`
	Name   string          `json:"name,omitempty"`
	Weight float64         `json:"weight"`
	Value  json.RawMessage `json:"value,omitempty"`
}

// Goal is the metric an experiment optimises.
type Goal struct {
	Event string `json:"event"`
	Kind  string `json:"kind"`
	// Where counts only the events whose properties match this condition (see
	// Where), such as {"plan":"pro"}.
	Where json.RawMessage `json:"where,omitempty"`
	// Window is the attribution window after a user's first exposure, such as
	// "168h" (the default, 7 days).
	Window string `json:"window,omitempty"`
}

// Metric is a secondary or guardrail metric of an experiment: a conversion (the user
// did the event within the window) or a value (the sum of the events' values per
// user, such as revenue).
type Metric struct {
	Key    string          `json:"key"`
	Event  string          `json:"event"`
	Kind   string          `json:"kind"`
	Where  json.RawMessage `json:"where,omitempty"` // as in Goal
	Role   string          `json:"role,omitempty"`  // "secondary" (default) or "guardrail"
	Window string          `json:"window,omitempty"`
}

// Analysis tunes how results are computed.
type Analysis struct {
	// Correction across variants × metrics: "none" (default), "holm" or
	// "benjamini-hochberg".
	Correction string `json:"correction,omitempty"`
	// Sequential makes intervals and p-values valid at every look. New experiments
	// get true unless they say false; documents stored before it became the
	// default, which leave it out, keep the fixed-horizon test they had.
	Sequential *bool `json:"sequential,omitempty"`
	// CUPED adjusts for the same metric in the 14 days before first exposure where
	// such data exists (default true).
	CUPED *bool `json:"cuped,omitempty"`
	// MinUsers is how many users every variant needs, and MinRuntime (a duration
	// such as "168h") how long the experiment must have run, before its results
	// recommend shipping or stopping: DefaultMinUsers and DefaultMinRuntime when
	// left out, 0 and "0s" for no minimum.
	MinUsers   *int   `json:"min_users,omitempty"`
	MinRuntime string `json:"min_runtime,omitempty"`
}

// Defaults of the minimum sample and runtime before a verdict: a week covers every
// day of the week once (weekday and weekend users differ), and 1,000 users per
// variant put rates of a few percent comfortably past the small-sample regime where
// intervals are unreliable.
const (
	DefaultMinUsers   = 1000
	DefaultMinRuntime = 7 * 24 * time.Hour
)

// SequentialTesting tells whether results use always-valid intervals.
func (e *Experiment) SequentialTesting() bool {
	return e.Analysis != nil && e.Analysis.Sequential != nil && *e.Analysis.Sequential
}

// MinUsers is the users every variant needs before a verdict.
func (e *Experiment) MinUsers() int {
	if e.Analysis != nil && e.Analysis.MinUsers != nil {
		return *e.Analysis.MinUsers
	}
	return DefaultMinUsers
}

// MinRuntime is how long the experiment must have run before a verdict.
func (e *Experiment) MinRuntime() time.Duration {
	if e.Analysis != nil && e.Analysis.MinRuntime != "" {
		if d, err := time.ParseDuration(e.Analysis.MinRuntime); err == nil && d >= 0 {
			return d
		}
	}
	return DefaultMinRuntime
}

// DefaultWindow is the attribution window of metrics that name none.
const DefaultWindow = 7 * 24 * time.Hour

// BanditConfig tunes a bandit experiment; weights come from the bandit updater.
type BanditConfig struct {
	MinWeight   float64  `json:"min_weight,omitempty"`
	UpdateEvery string   `json:"update_every,omitempty"`
	PerSegment  []string `json:"per_segment,omitempty"`
	// WinnerThreshold is the P(best) at which an arm is declared the winner
	// (default 0.95).
	WinnerThreshold float64 `json:"winner_threshold,omitempty"`
	// AutoStop makes the updater stop learning once there is a winner and serve it to
	// everyone, by setting Winner.
	AutoStop bool `json:"auto_stop,omitempty"`
	// Winner, once set (by the updater under AutoStop, or by hand), is served to every
	// eligible user and the weights stop changing.
	Winner string `json:"winner,omitempty"`
	// Window, for content whose appeal drifts, makes the updater count only users
	// first exposed within this sliding window (a duration in whole days, such as
	// "168h"); Decay (0 < Decay ≤ 1) weighs the users of each earlier day by a
	// further factor. Both default to counting everyone alike.
	Window string  `json:"window,omitempty"`
	Decay  float64 `json:"decay,omitempty"`
	// Sticky keeps each user on the arm they first got, even as the weights change,
	// through the sticky-bucket document /v1/decide returns and clients send back.
	Sticky bool `json:"sticky,omitempty"`
	// Control names the arm the others are compared with in results, if any: a
	// bandit has no control unless it names one.
	Control string `json:"control,omitempty"`
}

// DefaultWinnerThreshold is the P(best) that declares a bandit's winner.
const DefaultWinnerThreshold = 0.95

// Threshold is the P(best) that declares the winner.
func (b *BanditConfig) Threshold() float64 {
	if b != nil && b.WinnerThreshold > 0 {
		return b.WinnerThreshold
	}
	return DefaultWinnerThreshold
}

// Flag is the feature-flag document (docs/api.md, "Documents").
type Flag struct {
	Key         string          `json:"key"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Type        string          `json:"type"`
	Default     json.RawMessage `json:"default"`
	Enabled     *bool           `json:"enabled,omitempty"`
	Rules       []Rule          `json:"rules,omitempty"`
}

// Rule is one step of a flag's ordered evaluation: either a targeted value (optional
// condition, segment and rollout share) or a reference to an experiment.
type Rule struct {
	Condition  json.RawMessage `json:"condition,omitempty"`
	Segment    string          `json:"segment,omitempty"`
	Rollout    *float64        `json:"rollout,omitempty"`
	Value      json.RawMessage `json:"value,omitempty"`
	Variant    string          `json:"variant,omitempty"`
	Experiment string          `json:"experiment,omitempty"`
}

// Segment is an attribute segment (a condition on the attributes sent to decide) or a
// behavioural segment (a rule over the user's recent events).
//
// Definitions are versioned (segment_versions.go): Version numbers the definition at
// the top level, which is what decisions use once Status is published. A change saved
// as a draft waits in Draft, computed in preview by the segment engine, until
// published. Version and Draft are set by lift; requests may send them back unchanged
// but cannot set them.
type Segment struct {
	Key         string          `json:"key"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Kind        string          `json:"kind"`
	Condition   json.RawMessage `json:"condition,omitempty"`
	Rule        json.RawMessage `json:"rule,omitempty"`
	TTL         string          `json:"ttl,omitempty"`
	// Status is published (the default) or draft: a segment never published, which
	// matches nobody in decisions.
	Status  string   `json:"status,omitempty"`
	Version int      `json:"version,omitempty"`
	Draft   *Segment `json:"draft,omitempty"`
}

// Segment statuses.
const (
	SegmentPublished = "published"
	SegmentDraft     = "draft"
)

// SavedGroup is a named list of values that conditions test with $inGroup.
type SavedGroup struct {
	Key    string `json:"key"`
	Name   string `json:"name,omitempty"`
	Values []any  `json:"values"`
}

// Refs answers whether documents referenced by another document exist.
type Refs interface {
	HasSegment(key string) bool
	HasExperiment(key string) bool
}

// Normalize fills the defaults the contract promises, so stored documents are explicit.
func (e *Experiment) Normalize() {
	if e.Name == "" {
		e.Name = e.Key
	}
	if e.Type == "" {
		e.Type = TypeAB
	}
	if e.Status == "" {
		e.Status = StatusDraft
	}
	if e.Coverage == nil {
		one := 1.0
		e.Coverage = &one
	}
	if e.HashSeed == "" {
		e.HashSeed = e.Key
	}
	if e.HashVersion == 0 {
		e.HashVersion = 2
	}
	allZero := true
	for _, v := range e.Variants {
		if v.Weight != 0 {
			allZero = false
		}
	}
	// Omitted weights mean an even split.
	if allZero && len(e.Variants) > 0 {
		for i, w := range EqualWeights(len(e.Variants)) {
			e.Variants[i].Weight = w
		}
	}
}

// Validate checks the document against the contract and the documents it references.
// It returns a *derrors.ValidationError listing every invalid field.
func (e *Experiment) Validate(refs Refs) error {
	v := &derrors.ValidationError{}
	checkKey(v, "key", e.Key)
	if e.Type != TypeAB && e.Type != TypeBandit {
		v.Add("type", "must be %q or %q", TypeAB, TypeBandit)
	}
	switch e.Status {
	case StatusDraft, StatusRunning, StatusPaused, StatusStopped:
	default:
		v.Add("status", "must be one of draft, running, paused, stopped")
	}
	if len(e.Variants) < 2 {
		v.Add("variants", "needs at least 2 variants")
	}
	if len(e.Variants) > 100 {
		v.Add("variants", "at most 100 variants")
	}
	seen := map[string]bool{}
	sum := 0.0
	for i, va := range e.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		checkKey(v, field+".key", va.Key)
		if seen[va.Key] {
			v.Add(field+".key", "duplicate variant key %q", va.Key)
		}
		seen[va.Key] = true
		if math.IsNaN(va.Weight) || va.Weight < 0 || va.Weight > 1 {
			v.Add(field+".weight", "must be between 0 and 1")
		}
		sum += va.Weight
		checkVariantValue(v, field+".value", va.Value)
	}
	if len(e.Variants) >= 2 && math.Abs(sum-1) > weightTolerance {
		v.Add("variants", "weights must sum to 1, got %g", sum)
	}
	if e.Coverage != nil && (math.IsNaN(*e.Coverage) || *e.Coverage < 0 || *e.Coverage > 1) {
		v.Add("coverage", "must be between 0 and 1")
	}
	if e.HashVersion != 1 && e.HashVersion != 2 {
		v.Add("hash_version", "must be 1 or 2")
	}
	checkCondition(v, "targeting", e.Targeting)
	checkSegments(v, "segments", e.Segments, refs)
	if ns := e.Namespace; ns != nil {
		if ns.ID == "" {
			v.Add("namespace.id", "is required")
		}
		if ns.Range[0] < 0 || ns.Range[1] > 1 || ns.Range[0] >= ns.Range[1] {
			v.Add("namespace.range", "must be [start, end) with 0 ≤ start < end ≤ 1")
		}
	}
	if g := e.Goal; g != nil {
		checkMetric(v, "goal", g.Event, g.Kind, g.Window)
		checkWhere(v, "goal.where", g.Where)
	}
	metricKeys := map[string]bool{}
	for i, m := range e.Metrics {
		field := fmt.Sprintf("metrics[%d]", i)
		checkKey(v, field+".key", m.Key)
		if metricKeys[m.Key] {
			v.Add(field+".key", "duplicate metric key %q", m.Key)
		}
		metricKeys[m.Key] = true
		checkMetric(v, field, m.Event, m.Kind, m.Window)
		checkWhere(v, field+".where", m.Where)
		if m.Role != "" && m.Role != "secondary" && m.Role != "guardrail" {
			v.Add(field+".role", "must be \"secondary\" or \"guardrail\"")
		}
	}
	if a := e.Analysis; a != nil {
		switch a.Correction {
		case "", "none", "holm", "benjamini-hochberg":
		default:
			v.Add("analysis.correction", "must be none, holm or benjamini-hochberg")
		}
		if a.MinUsers != nil && (*a.MinUsers < 0 || *a.MinUsers > 1e9) {
			v.Add("analysis.min_users", "must be a whole number of users between 0 and 1,000,000,000")
		}
		if a.MinRuntime != "" {
			if d, err := time.ParseDuration(a.MinRuntime); err != nil || d < 0 || d > 366*24*time.Hour {
				v.Add("analysis.min_runtime", "must be a duration between \"0s\" and a year, such as \"168h\" (7 days)")
			}
		}
	}
	if b := e.Bandit; b != nil {
		if e.Type != TypeBandit {
			v.Add("bandit", "only allowed when type is %q", TypeBandit)
		}
		if b.MinWeight < 0 || len(e.Variants) > 0 && b.MinWeight*float64(len(e.Variants)) > 1 {
			v.Add("bandit.min_weight", "must be ≥ 0 and at most 1/number of variants")
		}
		if b.UpdateEvery != "" {
			if d, err := time.ParseDuration(b.UpdateEvery); err != nil || d < time.Second {
				v.Add("bandit.update_every", "must be a duration of at least 1s, such as \"10s\"")
			}
		}
		checkSegments(v, "bandit.per_segment", b.PerSegment, refs)
		if b.Window != "" {
			if d, err := time.ParseDuration(b.Window); err != nil || d < 24*time.Hour || d%(24*time.Hour) != 0 {
				v.Add("bandit.window", "must be a whole number of days of at least one, such as \"168h\"")
			}
		}
		if b.Decay != 0 && !(b.Decay > 0 && b.Decay <= 1) {
			v.Add("bandit.decay", "must be in (0, 1]")
		}
		if b.WinnerThreshold != 0 && !(b.WinnerThreshold > 0.5 && b.WinnerThreshold < 1) {
			v.Add("bandit.winner_threshold", "must be between 0.5 and 1")
		}
		if b.Winner != "" && !slices.Contains(variantKeys(e.Variants), b.Winner) {
			v.Add("bandit.winner", "unknown variant %q", b.Winner)
		}
		if b.Control != "" && !slices.Contains(variantKeys(e.Variants), b.Control) {
			v.Add("bandit.control", "unknown variant %q", b.Control)
		}
	}
	return v.Err()
}

// Normalize fills the flag's defaults.
func (f *Flag) Normalize() {
	if f.Name == "" {
		f.Name = f.Key
	}
	if f.Enabled == nil {
		t := true
		f.Enabled = &t
	}
}

// Validate checks the flag against the contract and the documents it references.
// It returns a *derrors.ValidationError listing every invalid field.
func (f *Flag) Validate(refs Refs) error {
	v := &derrors.ValidationError{}
	checkKey(v, "key", f.Key)
	switch f.Type {
	case FlagBoolean, FlagString, FlagNumber, FlagJSON:
		checkFlagValue(v, "default", f.Type, f.Default, true)
	default:
		v.Add("type", "must be one of boolean, string, number, json")
	}
	for i, r := range f.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		if r.Experiment != "" {
			if r.Condition != nil || r.Segment != "" || r.Rollout != nil || r.Value != nil {
				v.Add(field, "an experiment rule takes no condition, segment, rollout or value")
			}
			if refs != nil && !refs.HasExperiment(r.Experiment) {
				v.Add(field+".experiment", "unknown experiment %q", r.Experiment)
			}
			continue
		}
		checkCondition(v, field+".condition", r.Condition)
		if r.Segment != "" && refs != nil && !refs.HasSegment(r.Segment) {
			v.Add(field+".segment", "unknown segment %q", r.Segment)
		}
		if r.Rollout != nil && (math.IsNaN(*r.Rollout) || *r.Rollout < 0 || *r.Rollout > 1) {
			v.Add(field+".rollout", "must be between 0 and 1")
		}
		if r.Variant != "" {
			checkKey(v, field+".variant", r.Variant)
		}
		if f.Type != "" {
			checkFlagValue(v, field+".value", f.Type, r.Value, true)
		}
	}
	return v.Err()
}

// Validate checks the segment document: an attribute segment's condition, or a
// behavioural segment's rule (segments.ParseRuleJSON) and membership TTL.
func (s *Segment) Validate() error {
	v := &derrors.ValidationError{}
	checkKey(v, "key", s.Key)
	switch s.Kind {
	case "attribute":
		if s.Condition == nil {
			v.Add("condition", "is required for an attribute segment")
		}
		checkCondition(v, "condition", s.Condition)
	case "behavioral":
		if s.Rule == nil {
			v.Add("rule", "is required for a behavioral segment")
		} else if _, err := segments.ParseRuleJSON(s.Rule); err != nil {
			var re *segments.RuleError
			if errors.As(err, &re) && re.Path != "" {
				v.Add("rule."+re.Path, "%s", re.Message)
			} else {
				v.Add("rule", "%v", err)
			}
		}
		if s.TTL != "" {
			if d, err := time.ParseDuration(s.TTL); err != nil || d < 0 {
				v.Add("ttl", "must be a duration such as \"30m\" (0 or more)")
			}
		}
		if s.Condition != nil {
			v.Add("condition", "only attribute segments have a condition; behavioral ones have a rule")
		}
	default:
		v.Add("kind", "must be \"attribute\" or \"behavioral\"")
	}
	if s.Status != "" && s.Status != SegmentPublished && s.Status != SegmentDraft {
		v.Add("status", "must be \"published\" or \"draft\"")
	}
	return v.Err()
}

// Validate checks the saved group document.
func (g *SavedGroup) Validate() error {
	v := &derrors.ValidationError{}
	checkKey(v, "key", g.Key)
	if g.Values == nil {
		v.Add("values", "is required (an array, possibly empty)")
	}
	return v.Err()
}

func checkMetric(v *derrors.ValidationError, field, event, kind, window string) {
	if event == "" {
		v.Add(field+".event", "is required")
	}
	if kind != "conversion" && kind != "value" {
		v.Add(field+".kind", "must be \"conversion\" or \"value\"")
	}
	if window != "" {
		if d, err := time.ParseDuration(window); err != nil || d <= 0 {
			v.Add(field+".window", "must be a positive duration such as \"168h\"")
		}
	}
}

// GoalWindow is the goal's attribution window.
func (e *Experiment) GoalWindow() time.Duration {
	if e.Goal == nil {
		return DefaultWindow
	}
	return window(e.Goal.Window)
}

// DefaultUpdateEvery is how often a bandit's weights are recomputed by default.
const DefaultUpdateEvery = 10 * time.Second

// WindowDays is the sliding window in days, 0 for none.
func (b *BanditConfig) WindowDays() int {
	d, err := time.ParseDuration(b.Window)
	if err != nil {
		return 0
	}
	return int(d / (24 * time.Hour))
}

// UpdateInterval is how often the bandit's weights are recomputed.
func (b *BanditConfig) UpdateInterval() time.Duration {
	if d, err := time.ParseDuration(b.UpdateEvery); err == nil && d >= time.Second {
		return d
	}
	return DefaultUpdateEvery
}

// window parses a validated attribution window, defaulting to DefaultWindow.
func window(s string) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return DefaultWindow
}

func checkKey(v *derrors.ValidationError, field, key string) {
	if !keyPattern.MatchString(key) {
		v.Add(field, "must match %s", keyPattern)
	}
}

func checkCondition(v *derrors.ValidationError, field string, raw json.RawMessage) {
	if raw == nil {
		return
	}
	if _, err := condition.ParseConditionJSON(raw); err != nil {
		if ce, ok := err.(*condition.ConditionError); ok && ce.Path != "" {
			v.Add(field+"."+ce.Path, "%s", ce.Message)
			return
		}
		v.Add(field, "%v", err)
	}
}

func checkWhere(v *derrors.ValidationError, field string, raw json.RawMessage) {
	if _, err := ParseWhere(raw); err != nil {
		if we, ok := err.(*WhereError); ok && we.Path != "" {
			v.Add(field+"."+we.Path, "%s", we.Message)
			return
		}
		v.Add(field, "%v", err)
	}
}

func checkSegments(v *derrors.ValidationError, field string, keys []string, refs Refs) {
	for i, k := range keys {
		if refs != nil && !refs.HasSegment(k) {
			v.Add(fmt.Sprintf("%s[%d]", field, i), "unknown segment %q", k)
		}
	}
}

// checkVariantValue allows any JSON value but null and arrays: OpenFeature, which
// OFREP clients use, has no array type, and null would mean "no value".
func checkVariantValue(v *derrors.ValidationError, field string, raw json.RawMessage) {
	raw = bytes.TrimSpace(raw)
	switch {
	case raw == nil:
	case !json.Valid(raw):
		v.Add(field, "is not valid JSON")
	case bytes.Equal(raw, []byte("null")):
		v.Add(field, "must not be null (leave it out to serve the variant key)")
	case raw[0] == '[':
		v.Add(field, "must not be an array (OpenFeature has no array type): wrap it in an object")
	}
}

// checkFlagValue checks that raw holds a value of the flag's type.
func checkFlagValue(v *derrors.ValidationError, field, typ string, raw json.RawMessage, required bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		if required {
			v.Add(field, "is required")
		}
		return
	}
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		v.Add(field, "is not valid JSON")
		return
	}
	ok := true
	switch typ {
	case FlagBoolean:
		_, ok = x.(bool)
	case FlagString:
		_, ok = x.(string)
	case FlagNumber:
		_, ok = x.(float64)
	case FlagJSON:
		// OpenFeature's object type: arrays and scalars have types of their own.
		_, ok = x.(map[string]any)
	}
	if !ok {
		want := typ
		if typ == FlagJSON {
			want = "JSON object"
		}
		v.Add(field, "must be a %s", want)
	}
}
