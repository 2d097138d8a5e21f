package experiments

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/segments"
)

// KindFeature is the configuration document of a real-time user feature, computed by
// the segment engine (docs/recommendations.md).
const KindFeature Kind = "feature"

// Feature is the feature document: a key and a definition the segment engine
// computes per user (segments.ParseFeatureJSON). Conditions read the value as the
// attribute features.<key>.
type Feature struct {
	Key         string `json:"key"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// Kind is count, sum, distinct, last or last_n.
	Kind string `json:"kind"`
	// Event is an event type or an array of them.
	Event    json.RawMessage `json:"event"`
	Where    json.RawMessage `json:"where,omitempty"`
	Property string          `json:"property,omitempty"`
	N        int             `json:"n,omitempty"`
	Within   string          `json:"within"`
}

// EngineKey is the key the segment engine computes the feature under, and under which
// its values are published.
func (f *Feature) EngineKey() string { return segments.FeaturePrefix + f.Key }

// Definition returns the engine's definition of the feature.
func (f *Feature) Definition() (*segments.Feature, error) {
	def := map[string]any{"kind": f.Kind, "within": f.Within}
	if len(f.Event) > 0 {
		def["event"] = f.Event
	}
	if len(f.Where) > 0 {
		def["where"] = f.Where
	}
	if f.Property != "" {
		def["property"] = f.Property
	}
	if f.N != 0 {
		def["n"] = f.N
	}
	b, err := json.Marshal(def)
	if err != nil {
		return nil, &segments.FeatureError{Message: err.Error()}
	}
	return segments.ParseFeatureJSON(b)
}

// Validate checks the feature document.
func (f *Feature) Validate() error {
	v := &derrors.ValidationError{}
	checkKey(v, "key", f.Key)
	if _, err := f.Definition(); err != nil {
		var fe *segments.FeatureError
		switch {
		case errors.As(err, &fe) && fe.Path != "":
			v.Add(fe.Path, "%s", fe.Message)
		case errors.As(err, &fe):
			v.Add("(document)", "%s", fe.Message)
		default:
			v.Add("(document)", "%v", err)
		}
	}
	return v.Err()
}

func (f *Feature) docKey() string      { return f.Key }
func (f *Feature) setKey(k string)     { f.Key = k }
func (f *Feature) normalize()          {}
func (f *Feature) validate(Refs) error { return f.Validate() }

// FeatureValues answers users' feature values as the segment engine last published
// them; a feature without a value has its default.
type FeatureValues interface {
	// FeatureValue returns the user's published value of the feature (by engine
	// key; JSON-decoded: float64, string, bool, []any …) and whether there is one.
	FeatureValue(userID, feature string) (any, bool)
}

// FeatureSet is the live set of feature values a decision process holds in memory,
// fed from the segment engine's publications (like MemberSet for memberships).
type FeatureSet struct {
	mu    sync.RWMutex
	users map[string]map[string]any // user → feature → value
}

// NewFeatureSet returns an empty set.
func NewFeatureSet() *FeatureSet { return &FeatureSet{users: map[string]map[string]any{}} }

// SetFeature records a published value; nil (or null) means the feature is back to
// its default. A value that is not JSON is dropped.
func (s *FeatureSet) SetFeature(feature, userID string, value json.RawMessage) {
	var v any
	if len(value) > 0 && json.Unmarshal(value, &v) != nil {
		v = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.users[userID]
	if v == nil {
		delete(fs, feature)
		if len(fs) == 0 {
			delete(s.users, userID)
		}
		return
	}
	if fs == nil {
		fs = map[string]any{}
		s.users[userID] = fs
	}
	fs[feature] = v
}

// FeatureValue implements FeatureValues. The value is shared: do not modify it.
func (s *FeatureSet) FeatureValue(userID, feature string) (any, bool) {
	s.mu.RLock()
	v, ok := s.users[userID][feature]
	s.mu.RUnlock()
	return v, ok
}

// Users is the number of users with at least one value.
func (s *FeatureSet) Users() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.users)
}

// compiledFeature is a feature the snapshot serves, with its default.
type compiledFeature struct {
	key string
	def any
}

func compileFeatures(docs []Feature) []compiledFeature {
	var out []compiledFeature
	for i := range docs {
		f, err := docs[i].Definition()
		if err != nil {
			continue // validated when written; a bad row must not stop decisions
		}
		out = append(out, compiledFeature{key: docs[i].Key, def: f.Default()})
	}
	return out
}

// conditionsReadFeatures says whether any condition of the configuration may read a
// features.* attribute, so that decisions copy the attributes to add the features
// only when something reads them.
func conditionsReadFeatures(cfg *Config) bool {
	reads := func(raw json.RawMessage) bool {
		return strings.Contains(string(raw), `"features.`) || strings.Contains(string(raw), `"features"`)
	}
	for _, e := range cfg.Experiments {
		if reads(e.Targeting) {
			return true
		}
	}
	for _, f := range cfg.Flags {
		for _, r := range f.Rules {
			if reads(r.Condition) {
				return true
			}
		}
	}
	for _, s := range cfg.Segments {
		if reads(s.Condition) {
			return true
		}
	}
	return false
}

// UserFeatures returns the values of every feature for a user: the segment engine's
// published value, or the feature's default (0, null or []). The impersonal view
// (no consent to personalisation) gives every default.
func (s *Snapshot) UserFeatures(userID string) map[string]any {
	out := make(map[string]any, len(s.features))
	for _, f := range s.features {
		out[f.key] = f.def
		if s.featureValues != nil && !s.impersonal {
			if v, ok := s.featureValues.FeatureValue(userID, segments.FeaturePrefix+f.key); ok {
				out[f.key] = v
			}
		}
	}
	return out
}

// withFeatures returns the attributes conditions see: the request's, with the
// attribute features set to the user's features when a condition reads them. A
// client's own "features" attribute is replaced: features are lift's to compute.
func (s *Snapshot) withFeatures(userID string, attrs map[string]any) map[string]any {
	if !s.readsFeatures {
		return attrs
	}
	out := make(map[string]any, len(attrs)+1)
	maps.Copy(out, attrs)
	out["features"] = s.UserFeatures(userID)
	return out
}
