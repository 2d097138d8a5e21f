package recommend

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

// ModelStore reads stored models (recommend/pgstore).
type ModelStore interface {
	// Latest returns the newest version of each recommender's model.
	Latest(ctx context.Context) (map[string]int64, error)
	// Load returns one version of a recommender's model, Version and Stats set.
	Load(ctx context.Context, recommender string, version int64) (*Model, error)
}

// Models holds the newest model of every recommender in a decision process, like the
// configuration snapshot: Reload swaps in what changed, readers never wait.
type Models struct {
	store ModelStore
	mu    sync.RWMutex
	byKey map[string]*Model
}

// NewModels returns an empty set reading from store.
func NewModels(store ModelStore) *Models { return &Models{store: store, byKey: map[string]*Model{}} }

// Get returns a recommender's model, nil if none is loaded.
func (ms *Models) Get(recommender string) *Model {
	ms.mu.RLock()
	defer ms.mu.RUnlock()
	return ms.byKey[recommender]
}

// Set installs a model (tests, and Reload).
func (ms *Models) Set(recommender string, m *Model) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.byKey[recommender] = m
}

// Reload loads the models whose newest version is not the one held. On error the
// models held stay.
func (ms *Models) Reload(ctx context.Context) error {
	latest, err := ms.store.Latest(ctx)
	if err != nil {
		return err
	}
	for key, version := range latest {
		if m := ms.Get(key); m != nil && m.Version == version {
			continue
		}
		m, err := ms.store.Load(ctx, key, version)
		if err != nil {
			return err
		}
		ms.Set(key, m)
	}
	return nil
}

// Request is one call for recommendations.
type Request struct {
	UserID string
	// Recommender names the recommender; Experiment, instead or as well, names an
	// experiment (or bandit) whose variants choose it (see Arm).
	Recommender string
	Experiment  string
	// Strategy, if set, overrides the strategy (StrategySimilar or StrategyPopular).
	Strategy   string
	Attributes map[string]any
	N          int
	Exclude    []string
}

// Strategies a recommendation is served with.
const (
	// StrategySimilar scores items from the user's recent items, popular ones
	// filling up (the default).
	StrategySimilar = "similar"
	// StrategyPopular serves the popular items only: the baseline.
	StrategyPopular = "popular"
)

// Arm is what an experiment's variant value says about recommendations:
// {"recommender":"<key>","strategy":"similar|popular"} (either may be left out), or
// just the strategy as a string.
type Arm struct {
	Recommender string `json:"recommender"`
	Strategy    string `json:"strategy"`
}

// Response is what Recommend answers.
type Response struct {
	Recommender  string   `json:"recommender"`
	Items        []Scored `json:"items"`
	ModelVersion int64    `json:"model_version"`
	Strategy     string   `json:"strategy"`
	// Decision is the experiment's decision when the request named one: log its
	// exposure if Assigned.
	Decision *experiments.Keyed `json:"-"`
}

// Recommend answers a request from the snapshot's documents and users' recent items,
// and the models held. It returns derrors.ErrNotFound for an unknown recommender
// or experiment and a *derrors.ValidationError for a variant that names no
// usable arm. Without a model yet, the answer has no items and model version 0.
func (ms *Models) Recommend(snap *experiments.Snapshot, req Request) (Response, error) {
	resp := Response{Recommender: req.Recommender, Strategy: StrategySimilar, Items: []Scored{}}
	if req.Experiment != "" {
		d, ok := snap.Evaluate(req.Experiment, req.UserID, req.Attributes)
		if !ok {
			return resp, fmt.Errorf("experiment %q: %w", req.Experiment, derrors.ErrNotFound)
		}
		arm, err := parseArm(d.Value)
		if err != nil {
			return resp, derrors.Invalid("experiment",
				fmt.Sprintf("variant %q of %q does not name a recommender or strategy: %v", d.Variant, req.Experiment, err))
		}
		resp.Decision = &experiments.Keyed{Key: req.Experiment, Decision: d}
		if arm.Recommender != "" {
			resp.Recommender = arm.Recommender
		}
		if arm.Strategy != "" {
			resp.Strategy = arm.Strategy
		}
	}
	if req.Strategy != "" {
		resp.Strategy = req.Strategy
	}
	if resp.Recommender == "" {
		return resp, derrors.Invalid("recommender", "is required")
	}
	doc, ok := snap.Recommender(resp.Recommender)
	if !ok {
		return resp, fmt.Errorf("recommender %q: %w", resp.Recommender, derrors.ErrNotFound)
	}
	m := ms.Get(resp.Recommender)
	if m == nil {
		return resp, nil
	}
	resp.ModelVersion = m.Version
	recent := snap.RecentItems(req.UserID, doc)
	resp.Items = m.Recommend(recent, req.N, req.Exclude, resp.Strategy == StrategyPopular)
	if resp.Items == nil {
		resp.Items = []Scored{}
	}
	return resp, nil
}

func parseArm(v json.RawMessage) (Arm, error) {
	var arm Arm
	var s string
	if json.Unmarshal(v, &s) == nil {
		arm.Strategy = s
	} else if err := json.Unmarshal(v, &arm); err != nil {
		return arm, err
	}
	switch arm.Strategy {
	case "", StrategySimilar, StrategyPopular:
	default:
		return arm, fmt.Errorf("strategy %q is not %s or %s", arm.Strategy, StrategySimilar, StrategyPopular)
	}
	if arm.Recommender == "" && arm.Strategy == "" {
		return arm, fmt.Errorf("no recommender or strategy")
	}
	if strings.ContainsAny(arm.Recommender, " \t") {
		return arm, fmt.Errorf("recommender %q is not a key", arm.Recommender)
	}
	return arm, nil
}

// Impression is what lift records when it serves recommendations: the event
// $recommendation (docs/recommendations.md), so clicks and purchases can be
// attributed to the items shown.
type Impression struct {
	ID           string    `json:"recommendation_id"`
	Recommender  string    `json:"recommender"`
	Strategy     string    `json:"strategy"`
	ModelVersion int64     `json:"model_version"`
	Items        []string  `json:"items"`
	Experiment   string    `json:"experiment,omitempty"`
	Variant      string    `json:"variant,omitempty"`
	At           time.Time `json:"-"`
}

// Impression returns the impression of an answer.
func (r Response) Impression(id string, at time.Time) Impression {
	im := Impression{ID: id, Recommender: r.Recommender, Strategy: r.Strategy, ModelVersion: r.ModelVersion,
		Items: make([]string, len(r.Items)), At: at}
	for i, it := range r.Items {
		im.Items[i] = it.Item
	}
	if r.Decision != nil && r.Decision.Assigned {
		im.Experiment, im.Variant = r.Decision.ExperimentKey, r.Decision.Variant
	}
	return im
}
