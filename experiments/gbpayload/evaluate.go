package gbpayload

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/liftlab/lift/experiments"
)

// Remote evaluation (POST /api/eval/{client key}): lift decides, and the answer
// reduces every feature to its value. An experiment assignment becomes a force rule
// whose tracks make the SDK call its tracking callback, as GrowthBook's remote
// evaluation does.

// Track is one experiment assignment a force rule reports to the tracking callback.
type Track struct {
	Experiment TrackedExperiment `json:"experiment"`
	Result     TrackedResult     `json:"result"`
}

// TrackedExperiment is the experiment as the tracking callback sees it.
type TrackedExperiment struct {
	experimentFields
	Coverage    *float64 `json:"coverage,omitempty"`
	Seed        string   `json:"seed,omitempty"`
	HashVersion int      `json:"hashVersion,omitempty"`
	// LiftLogged says lift logged this exposure already (remote evaluation logs as
	// /v1/decide does), so a callback that reports exposures to lift skips it.
	LiftLogged bool `json:"liftLogged"`
}

// TrackedResult is the assignment as the tracking callback sees it.
type TrackedResult struct {
	Key              string          `json:"key"`
	VariationID      int             `json:"variationId"`
	Value            json.RawMessage `json:"value"`
	InExperiment     bool            `json:"inExperiment"`
	HashUsed         bool            `json:"hashUsed"`
	HashAttribute    string          `json:"hashAttribute"`
	HashValue        string          `json:"hashValue"`
	FeatureID        string          `json:"featureId"`
	StickyBucketUsed bool            `json:"stickyBucketUsed"`
}

// Evaluate turns decisions of snap (Decide, then Stick) into the remote-evaluation
// answer. userID is the id as the SDK sent it (its hash value); sticky is the
// sticky-bucket document Stick returned, and stuck the experiments whose variant it
// kept; logged says whether lift logged the exposures.
func Evaluate(snap *experiments.Snapshot, decisions []experiments.Keyed, userID string, sticky map[string]string,
	stuck map[string]bool, logged bool, date time.Time) *Payload {
	p := &Payload{Features: make(map[string]Feature, len(decisions)), SavedGroups: map[string][]any{}, DateUpdated: date.UTC(), Sticky: sticky}
	for _, d := range decisions {
		value := d.Value
		if len(value) == 0 {
			value = jsonNull
		}
		f := Feature{DefaultValue: value}
		if d.Assigned {
			if t, ok := track(snap, d, userID, stuck[d.ExperimentKey], logged); ok {
				f.Rules = []Rule{{Force: value, Tracks: []Track{t}}}
			}
		}
		p.Features[d.Key] = f
	}
	return p
}

func track(snap *experiments.Snapshot, d experiments.Keyed, userID string, stuck, logged bool) (Track, bool) {
	e, ok := snap.ExperimentDoc(d.ExperimentKey)
	allocs, running := snap.Allocations(d.ExperimentKey)
	if !ok || !running {
		return Track{}, false
	}
	i := slices.IndexFunc(allocs, func(a experiments.Allocation) bool { return a.Segment == d.Segment })
	variation := slices.IndexFunc(e.Variants, func(v experiments.Variant) bool { return v.Key == d.Variant })
	if i < 0 || variation < 0 {
		return Track{}, false
	}
	x := TrackedExperiment{experimentFields: trackedFields(e, allocs[i]), Coverage: e.Coverage, Seed: e.HashSeed,
		HashVersion: e.HashVersion, LiftLogged: logged}
	r := TrackedResult{Key: d.Variant, VariationID: variation, Value: d.Value, InExperiment: true, HashUsed: true,
		HashAttribute: HashAttribute, HashValue: userID, FeatureID: d.Key, StickyBucketUsed: stuck}
	return Track{Experiment: x, Result: r}, true
}
