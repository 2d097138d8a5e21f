package condition_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/liftlab/lift/internal/conformance"
	"github.com/liftlab/lift/segments/condition"
)

// evalConditionCase is one GrowthBook case: [name, condition, attributes, expected,
// savedGroups?].
type evalConditionCase struct {
	name      string
	condition json.RawMessage
	attrs     map[string]any
	want      bool
	groups    condition.SavedGroups
}

func loadEvalConditionCases(t testing.TB) []evalConditionCase {
	t.Helper()
	var file struct {
		EvalCondition [][]json.RawMessage `json:"evalCondition"`
	}
	conformance.Load(t, "growthbook/cases.json", &file)
	if len(file.EvalCondition) == 0 {
		t.Fatal("cases.json has no evalCondition cases")
	}
	cases := make([]evalConditionCase, len(file.EvalCondition))
	for i, raw := range file.EvalCondition {
		if len(raw) != 4 && len(raw) != 5 {
			t.Fatalf("evalCondition[%d]: want 4 or 5 elements, got %d", i, len(raw))
		}
		c := &cases[i]
		c.condition = raw[1]
		dst := []any{0: &c.name, 2: &c.attrs, 3: &c.want}
		if len(raw) == 5 {
			dst = append(dst, &c.groups)
		}
		for j, d := range dst {
			if d == nil {
				continue
			}
			if err := json.Unmarshal(raw[j], d); err != nil {
				t.Fatalf("evalCondition[%d] element %d: %v", i, j, err)
			}
		}
	}
	return cases
}

func TestConditionConformance(t *testing.T) {
	for _, tc := range loadEvalConditionCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			cond, err := condition.ParseConditionJSON(tc.condition)
			if err != nil {
				// GrowthBook evaluates what lift rejects to false, except an operator it
				// does not know, which it evaluates to "unknown": that fails even under
				// $not or $nor, and only another branch of an $or that passes makes such a
				// condition match. lift refuses to store either kind, so no decision
				// depends on one.
				var ce *condition.ConditionError
				if !errors.As(err, &ce) {
					t.Fatalf("error %v is %T, want *condition.ConditionError", err, err)
				}
				if tc.want && !unknownToGrowthBook(ce) {
					t.Fatalf("ParseConditionJSON(%s) = %v, but GrowthBook expects a match", tc.condition, err)
				}
				return
			}
			if got := cond.Match(tc.attrs, tc.groups); got != tc.want {
				t.Errorf("Match(%s, %v) = %v, want %v", tc.condition, tc.attrs, got, tc.want)
			}

			// The decoded form must behave the same as the JSON text.
			var decoded any
			if err := json.Unmarshal(tc.condition, &decoded); err != nil {
				t.Fatal(err)
			}
			cond2, err := condition.ParseCondition(decoded)
			if err != nil {
				t.Fatalf("ParseCondition: %v", err)
			}
			if got := cond2.Match(tc.attrs, tc.groups); got != tc.want {
				t.Errorf("ParseCondition form: Match = %v, want %v", got, tc.want)
			}
		})
	}
}

// growthBookOperators are the operators GrowthBook's SDKs evaluate (spec 0.12).
var growthBookOperators = map[string]bool{
	"$eq": true, "$ne": true, "$lt": true, "$lte": true, "$gt": true, "$gte": true,
	"$exists": true, "$in": true, "$nin": true, "$ini": true, "$nini": true,
	"$inGroup": true, "$notInGroup": true, "$savedGroup": true, "$not": true,
	"$and": true, "$or": true, "$nor": true, "$size": true, "$elemMatch": true,
	"$all": true, "$alli": true, "$regex": true, "$regexi": true, "$type": true,
	"$veq": true, "$vne": true, "$vgt": true, "$vgte": true, "$vlt": true, "$vlte": true,
}

// unknownToGrowthBook reports whether lift rejected an operator that GrowthBook does
// not know either, so that GrowthBook evaluates it to "unknown".
func unknownToGrowthBook(ce *condition.ConditionError) bool {
	name, ok := strings.CutPrefix(ce.Message, "unknown operator ")
	return ok && !growthBookOperators[strings.Trim(name, `"`)]
}
