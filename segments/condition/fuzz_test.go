package condition_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/liftlab/lift/segments/condition"
)

func FuzzCondition(f *testing.F) {
	for _, tc := range loadEvalConditionCases(f) {
		attrs, err := json.Marshal(tc.attrs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(tc.condition), attrs)
	}
	f.Add([]byte(`{"v":{"$vgt":"1.0.0-\u2028+x"}}`), []byte(`{"v":"😀.1"}`))
	f.Add([]byte(`{"a.0.b":{"$elemMatch":{"c":{"$size":{"$gt":1}}}}}`), []byte(`{"a":[{"b":[{"c":[1,2]}]}]}`))
	groups := condition.SavedGroups{"g": {"a", 1.0, nil, true}}
	f.Fuzz(func(t *testing.T, cond, attrs []byte) {
		c, err := condition.ParseConditionJSON(cond)
		if err != nil {
			var ce *condition.ConditionError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is %T, want *condition.ConditionError", err, err)
			}
			return
		}
		var a map[string]any
		if json.Unmarshal(attrs, &a) != nil {
			a = nil
		}
		got := c.Match(a, groups)
		if again := c.Match(a, groups); again != got {
			t.Fatalf("Match is not deterministic: %v then %v", got, again)
		}
	})
}
