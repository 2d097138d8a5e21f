package experiments

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/segments"
)

// KindRecommender is the configuration document of an item recommender
// (docs/recommendations.md); its model is trained by experiments/recommend.
const KindRecommender Kind = "recommender"

// Recommender defaults and bounds.
const (
	DefaultRetrainEvery   = time.Hour
	DefaultHalfLife       = 7 * 24 * time.Hour
	DefaultHistory        = 30 * 24 * time.Hour
	DefaultNeighbours     = 50
	DefaultRecent         = 20
	DefaultRecentWithin   = 24 * time.Hour
	MaxNeighbours         = 200
	maxRecommenderTypes   = 16
	maxRecommenderHistory = 365 * 24 * time.Hour
)

// DefaultWeights are the weights of the usual shop events when a recommender names
// none: a purchase says more about taste than a view.
var DefaultWeights = map[string]float64{"product_view": 1, "add_to_cart": 3, "purchase": 5}

// Recommender is the recommender document: which events say that a user liked an
// item (event_types, each with a weight), where the item is (item_property), and how
// the item-to-item model is trained (every retrain_every, over the last history of
// events, each event's weight halving every half_life) and served (from the user's
// recent distinct items: the last `recent` within recent_within, a feature the
// segment engine keeps up to date).
type Recommender struct {
	Key          string             `json:"key"`
	Name         string             `json:"name,omitempty"`
	Description  string             `json:"description,omitempty"`
	EventTypes   []string           `json:"event_types"`
	ItemProperty string             `json:"item_property"`
	RetrainEvery string             `json:"retrain_every,omitempty"`
	Weights      map[string]float64 `json:"weights,omitempty"`
	HalfLife     string             `json:"half_life,omitempty"`
	History      string             `json:"history,omitempty"`
	Neighbours   int                `json:"neighbours,omitempty"`
	Recent       int                `json:"recent,omitempty"`
	RecentWithin string             `json:"recent_within,omitempty"`
}

// Normalize fills in the defaults, so the stored document shows what is used.
func (r *Recommender) Normalize() {
	if r.RetrainEvery == "" {
		r.RetrainEvery = DefaultRetrainEvery.String()
	}
	if r.HalfLife == "" {
		r.HalfLife = DefaultHalfLife.String()
	}
	if r.History == "" {
		r.History = DefaultHistory.String()
	}
	if r.Neighbours == 0 {
		r.Neighbours = DefaultNeighbours
	}
	if r.Recent == 0 {
		r.Recent = DefaultRecent
	}
	if r.RecentWithin == "" {
		r.RecentWithin = DefaultRecentWithin.String()
	}
	if r.Weights == nil && len(r.EventTypes) > 0 {
		r.Weights = map[string]float64{}
		for _, t := range r.EventTypes {
			r.Weights[t] = 1
			if w, ok := DefaultWeights[t]; ok {
				r.Weights[t] = w
			}
		}
	}
}

var eventTypePattern = regexp.MustCompile(`^\$?[a-z][a-z0-9_]{0,63}$`)

// Validate checks the recommender document (after Normalize).
func (r *Recommender) Validate() error {
	v := &derrors.ValidationError{}
	checkKey(v, "key", r.Key)
	if len(r.EventTypes) == 0 || len(r.EventTypes) > maxRecommenderTypes {
		v.Add("event_types", "must list 1 to %d event types", maxRecommenderTypes)
	}
	for i, t := range r.EventTypes {
		if !eventTypePattern.MatchString(t) {
			v.Add("event_types["+strconv.Itoa(i)+"]", "must be an event type such as \"product_view\"")
		}
		for _, prev := range r.EventTypes[:i] {
			if prev == t {
				v.Add("event_types["+strconv.Itoa(i)+"]", "repeats %q", t)
			}
		}
	}
	if p := r.ItemProperty; p == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
		v.Add("item_property", "is required: the property holding the item, such as \"sku\" (dots for nested ones)")
	}
	for t, w := range r.Weights {
		if !contains(r.EventTypes, t) {
			v.Add("weights."+t, "names an event type not in event_types")
		} else if !(w > 0 && w <= 1000) {
			v.Add("weights."+t, "must be a number greater than 0 and at most 1000")
		}
	}
	checkDuration(v, "retrain_every", r.RetrainEvery, time.Minute, 30*24*time.Hour)
	checkDuration(v, "half_life", r.HalfLife, time.Hour, maxRecommenderHistory)
	checkDuration(v, "history", r.History, time.Hour, maxRecommenderHistory)
	checkDuration(v, "recent_within", r.RecentWithin, time.Minute, segments.MaxWindow)
	if r.Neighbours < 1 || r.Neighbours > MaxNeighbours {
		v.Add("neighbours", "must be from 1 to %d", MaxNeighbours)
	}
	if r.Recent < 1 || r.Recent > segments.MaxFeatureN {
		v.Add("recent", "must be from 1 to %d", segments.MaxFeatureN)
	}
	return v.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func checkDuration(v *derrors.ValidationError, field, s string, lo, hi time.Duration) {
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		v.Add(field, "must be a duration from %s to %s, such as \"1h\"", lo, hi)
	}
}

// Duration returns a validated duration field (RetrainEvery …), or def.
func Duration(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return def
}

// FeatureKey is the engine key under which the segment engine keeps the user's recent
// items for this recommender. Document keys cannot contain ":", so it clashes with no
// feature's.
func (r *Recommender) FeatureKey() string { return RecentItemsPrefix + r.Key }

// RecentItemsPrefix starts the engine key of every recommender's recent items.
const RecentItemsPrefix = segments.FeaturePrefix + "recommender:"

// featureJSON is the definition of the recent-items feature.
func (r *Recommender) featureJSON() []byte {
	b, _ := json.Marshal(map[string]any{"kind": segments.FeatureLastN, "event": r.EventTypes,
		"property": r.ItemProperty, "n": r.Recent, "within": r.RecentWithin})
	return b
}

// RecentItemsFeature is the engine's definition of the recommender's recent items:
// the last Recent distinct values of ItemProperty over EventTypes.
func (r *Recommender) RecentItemsFeature() (*segments.Feature, error) {
	return segments.ParseFeatureJSON(r.featureJSON())
}

func (r *Recommender) docKey() string      { return r.Key }
func (r *Recommender) setKey(k string)     { r.Key = k }
func (r *Recommender) normalize()          { r.Normalize() }
func (r *Recommender) validate(Refs) error { return r.Validate() }

// Recommender returns the recommender document with that key.
func (s *Snapshot) Recommender(key string) (Recommender, bool) {
	r, ok := s.recommenders[key]
	return r, ok
}

// RecentItems returns the user's recent distinct items for a recommender, newest
// first, as the segment engine last published them (none in the impersonal view).
// Items that are numbers in the events come as their JSON text.
func (s *Snapshot) RecentItems(userID string, r Recommender) []string {
	if s.featureValues == nil || s.impersonal {
		return nil
	}
	v, ok := s.featureValues.FeatureValue(userID, r.FeatureKey())
	if !ok {
		return nil
	}
	list, _ := v.([]any)
	items := make([]string, 0, len(list))
	for _, x := range list {
		switch x := x.(type) {
		case string:
			items = append(items, x)
		case float64:
			items = append(items, strconv.FormatFloat(x, 'f', -1, 64))
		case bool:
			items = append(items, strconv.FormatBool(x))
		}
	}
	return items
}
