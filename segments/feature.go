package segments

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/segments/condition"
)

// Features are numbers (and short lists) the engine keeps per user over a sliding
// event-time window, beside the segments: "product views in the last 10 minutes", "the
// last 20 products viewed". They share the segments' state, time model, checkpoints,
// shards and rebuilds; instead of entering and leaving they report their value
// whenever it changes (FeatureChange). docs/recommendations.md describes them.

// FeaturePrefix starts the engine key of every feature ("features.views_10m"), so a
// feature and a segment never share a key (document keys have no ".") and the key
// tells which it is. Conditions read a feature under the same name.
const FeaturePrefix = "features."

// IsFeatureKey reports whether an engine key is a feature's.
func IsFeatureKey(key string) bool { return strings.HasPrefix(key, FeaturePrefix) }

// Feature kinds.
const (
	FeatureCount    = "count"    // events in the window
	FeatureSum      = "sum"      // sum of their value
	FeatureDistinct = "distinct" // distinct values of a property
	FeatureLast     = "last"     // the property of the newest event
	FeatureLastN    = "last_n"   // the n most recent distinct values of a property, newest first
)

// Limits on features.
const (
	// MaxFeatureN is the largest n of a last_n feature.
	MaxFeatureN = 100
	// MaxFeatureEvents is how many events (for distinct, values) a feature keeps per
	// user: count, sum and distinct saturate there, so one bot cannot hold unbounded
	// memory.
	MaxFeatureEvents = 1000
	maxFeatureTypes  = 16
)

// FeatureError reports why a feature definition was rejected. Path names the field,
// e.g. "within", "where.price.$gte"; it is empty when the definition as a whole is at
// fault.
type FeatureError struct {
	Path    string
	Message string
}

// Error returns the message prefixed with the path, if any.
func (e *FeatureError) Error() string {
	if e.Path == "" {
		return "invalid feature: " + e.Message
	}
	return "invalid feature at " + e.Path + ": " + e.Message
}

func featureErrorf(path, format string, args ...any) *FeatureError {
	return &FeatureError{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Feature is a compiled feature definition. It is immutable and safe for concurrent
// use.
type Feature struct {
	kind     string
	events   []string
	where    *condition.Condition
	property []string // dotted path, split
	n        int
	within   int64 // ms
	// canonical is the definition re-encoded with sorted keys: state moves between
	// engines by it (see definitionID).
	canonical []byte
}

// ParseFeatureJSON parses a feature definition:
//
//	{"kind":"count|sum|distinct|last|last_n","event":"product_view" or ["a","b"],
//	 "where":{...condition on properties...},"property":"sku","n":20,"within":"10m"}
//
// property is required by distinct, last and last_n (a dotted path into the
// properties), n by last_n (1 to MaxFeatureN). Every error it returns is a
// *FeatureError naming the field.
func ParseFeatureJSON(data []byte) (*Feature, error) {
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, &FeatureError{Message: "not valid JSON: " + err.Error()}
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, &FeatureError{Message: "must be a JSON object, not " + condition.JSONKind(raw)}
	}
	for _, k := range sortedKeys(m) {
		switch k {
		case "kind", "event", "where", "property", "n", "within":
		default:
			return nil, featureErrorf(k, "unknown field")
		}
	}
	f := &Feature{}
	f.kind, _ = m["kind"].(string)
	switch f.kind {
	case FeatureCount, FeatureSum, FeatureDistinct, FeatureLast, FeatureLastN:
	default:
		return nil, featureErrorf("kind", "must be one of count, sum, distinct, last, last_n")
	}
	switch ev := m["event"].(type) {
	case string:
		f.events = []string{ev}
	case []any:
		for _, x := range ev {
			s, _ := x.(string)
			if s == "" {
				f.events = nil
				break
			}
			f.events = append(f.events, s)
		}
	}
	if len(f.events) == 0 || len(f.events) > maxFeatureTypes || f.events[0] == "" {
		return nil, featureErrorf("event", "is required: an event type, or an array of 1 to %d event types", maxFeatureTypes)
	}
	for i, ev := range f.events {
		for _, prev := range f.events[:i] {
			if prev == ev {
				return nil, featureErrorf("event", "names %q twice", ev)
			}
		}
	}
	if w, ok := m["where"]; ok {
		wm, ok := w.(map[string]any)
		if !ok {
			return nil, featureErrorf("where", "must be a condition object, not %s", condition.JSONKind(w))
		}
		c, err := condition.ParseCondition(wm)
		if err != nil {
			ce := err.(*condition.ConditionError)
			return nil, featureErrorf(condition.JoinPath("where", ce.Path), "%s", ce.Message)
		}
		if len(wm) > 0 {
			f.where = c
		}
	}
	prop, hasProp := m["property"]
	switch {
	case f.kind == FeatureDistinct || f.kind == FeatureLast || f.kind == FeatureLastN:
		s, _ := prop.(string)
		if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
			return nil, featureErrorf("property", "is required by %s: a property name such as \"sku\" (dots for nested ones)", f.kind)
		}
		f.property = strings.Split(s, ".")
	case hasProp:
		return nil, featureErrorf("property", "is only used by distinct, last and last_n")
	}
	nv, hasN := m["n"]
	switch {
	case f.kind == FeatureLastN:
		x, ok := nv.(float64)
		if !ok || x != math.Trunc(x) || x < 1 || x > MaxFeatureN {
			return nil, featureErrorf("n", "is required by last_n: an integer from 1 to %d", MaxFeatureN)
		}
		f.n = int(x)
	case hasN:
		return nil, featureErrorf("n", "is only used by last_n")
	}
	within, err := duration(m, "", "within", 0)
	if err != nil {
		re := err.(*RuleError)
		return nil, &FeatureError{Path: re.Path, Message: re.Message}
	}
	f.within = within
	// Marshalling a map sorts its keys, and the map came from JSON, so this cannot fail.
	f.canonical, _ = json.Marshal(m)
	return f, nil
}

// String returns the definition as canonical JSON.
func (f *Feature) String() string { return string(f.canonical) }

// Kind returns the feature's kind (FeatureCount …).
func (f *Feature) Kind() string { return f.kind }

// EventTypes returns the event types the feature reads.
func (f *Feature) EventTypes() []string { return f.events }

// Within is the feature's window.
func (f *Feature) Within() time.Duration { return time.Duration(f.within) * time.Millisecond }

// Default is the value of a feature with no event in its window: 0, null or [].
func (f *Feature) Default() any {
	switch f.kind {
	case FeatureLast:
		return nil
	case FeatureLastN:
		return []any{}
	}
	return 0.0
}

// distinctValues says whether only the newest event of each value matters: for a
// distinct count, the last value and the last n distinct values, an older event with
// the same value never changes the result, so it is dropped as soon as a newer one
// arrives.
func (f *Feature) distinctValues() bool { return f.property != nil }

// pattern is the one event pattern the feature reads; its event is unused (the
// feature registers each of its event types for the same slot).
func (f *Feature) pattern() pattern {
	keep := MaxFeatureEvents
	switch f.kind {
	case FeatureLast:
		keep = 1
	case FeatureLastN:
		keep = f.n
	}
	return pattern{where: f.where, retain: f.within, keep: keep}
}

// FeatureChange is a new value of a user's feature. At is the event time at which it
// took the value. Value is its JSON (a number, a JSON value of the property, or an
// array of them, newest first); nil means no event is left in the window and the
// feature is back to its default (Feature.Default).
type FeatureChange struct {
	UserID  string
	Feature string
	At      time.Time
	Value   json.RawMessage
}

// propertyValue returns the JSON text of the property at path, or "" if it is missing
// or null.
func propertyValue(props map[string]any, path []string) string {
	var cur any = props
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		if cur, ok = m[k]; !ok {
			return ""
		}
	}
	if cur == nil {
		return ""
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return ""
	}
	return string(b)
}

// digest computes a feature over its window's entries (time order) and returns a
// digest of the value (0 for the default) and the earliest later time at which the
// value may change with no new event.
func (f *Feature) digest(in []entry, strs *interner) (uint64, int64) {
	if len(in) == 0 {
		return 0, never
	}
	h := fnvOffset
	next := in[0].ts + f.within
	switch f.kind {
	case FeatureCount, FeatureDistinct:
		h = fnvUint(h, uint64(len(in)))
	case FeatureSum:
		sum := 0.0
		for _, e := range in {
			sum += e.val
		}
		h = fnvUint(h, math.Float64bits(sum))
	case FeatureLast:
		last := in[len(in)-1]
		h, next = fnvString(h, strs.get(last.str)), last.ts+f.within
	case FeatureLastN:
		for i := len(in) - 1; i >= 0 && i >= len(in)-f.n; i-- {
			h = fnvString(h, strs.get(in[i].str))
			h = fnvUint(h, 0xff) // separator
		}
	}
	if h == 0 {
		h = 1 // 0 stands for the default
	}
	return h, next
}

// value encodes the feature's value over its window's entries as JSON (nil for the
// default).
func (f *Feature) value(in []entry, strs *interner) json.RawMessage {
	if len(in) == 0 {
		return nil
	}
	switch f.kind {
	case FeatureCount, FeatureDistinct:
		return strconv.AppendInt(nil, int64(len(in)), 10)
	case FeatureSum:
		sum := 0.0
		for _, e := range in {
			sum += e.val
		}
		return strconv.AppendFloat(nil, sum, 'g', -1, 64)
	case FeatureLast:
		return json.RawMessage(strs.get(in[len(in)-1].str))
	}
	b := []byte{'['}
	for i := len(in) - 1; i >= 0 && i >= len(in)-f.n; i-- {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, strs.get(in[i].str)...)
	}
	return append(b, ']')
}

const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

func fnvUint(h, v uint64) uint64 {
	for range 8 {
		h = (h ^ (v & 0xff)) * fnvPrime
		v >>= 8
	}
	return h
}

// stepFeature brings u's feature i to time t, reporting a new value, and returns the
// earliest time after t at which it may change with no new event. The user's
// membership entry of a feature records the digest of the value last reported.
func (e *Engine) stepFeature(u *user, i uint16, t int64) int64 {
	s := &e.segs[i]
	f := s.feature
	in := window(seriesOf(u.entries, s.base), t-f.within, t)
	digest, next := f.digest(in, &e.strs)
	m := u.membership(i)
	var reported uint64
	if m != nil {
		reported = m.value
	}
	if digest == reported {
		return next
	}
	if m == nil {
		m = u.addMembership(i)
	}
	m.value, m.member = digest, digest != 0
	if e.onFeature != nil && !s.quiet {
		e.onFeature(FeatureChange{UserID: u.id, Feature: s.key, At: msTime(t), Value: f.value(in, &e.strs)})
	}
	return next
}

// FeatureValues yields the current value of every feature of every user who has one
// other than the default, except features being rebuilt: the state to reconcile a
// store with after a rebuild. At is the user's clock.
func (e *Engine) FeatureValues() func(yield func(FeatureChange) bool) {
	return func(yield func(FeatureChange) bool) {
		for _, u := range e.users {
			for _, m := range u.members {
				s := &e.segs[m.seg]
				if s.feature == nil || s.quiet || !m.member {
					continue
				}
				in := window(seriesOf(u.entries, s.base), u.now-s.feature.within, u.now)
				v := s.feature.value(in, &e.strs)
				if v != nil && !yield(FeatureChange{UserID: u.id, Feature: s.key, At: msTime(u.now), Value: v}) {
					return
				}
			}
		}
	}
}
