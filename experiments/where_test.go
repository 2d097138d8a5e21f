package experiments_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/segments/condition"
)

func TestParseWhereErrors(t *testing.T) {
	for _, tc := range []struct{ cond, path string }{
		{`[1]`, ""},
		{`{"a.b":1}`, "a.b"},
		{`{"$where":"x"}`, "$where"},
		{`{"price":{"$regex":"x"}}`, "price.$regex"},
		{`{"price":{"$gt":true}}`, "price.$gt"},
		{`{"price":{"$in":[]}}`, "price.$in"},
		{`{"tags":["a"]}`, "tags"},
		{`{"x":{"$exists":1}}`, "x.$exists"},
		{`{"$or":[{"a":1},{"b":{}}]}`, "$or[1].b"},
	} {
		t.Run(tc.cond, func(t *testing.T) {
			_, err := experiments.ParseWhere(json.RawMessage(tc.cond))
			var we *experiments.WhereError
			if !errors.As(err, &we) || we.Path != tc.path {
				t.Fatalf("ParseWhere(%s) = %v, want an error at %q", tc.cond, err, tc.path)
			}
		})
	}
}

// TestWhereAgreesWithConditions checks Where.Match, which the ClickHouse translation
// is tested against, against the condition language of targeting and segments, on
// random properties whose types match the conditions' literals.
func TestWhereAgreesWithConditions(t *testing.T) {
	conds := []string{
		`{"plan":"pro"}`,
		`{"plan":{"$ne":"pro"}}`,
		`{"plan":{"$in":["pro","team"]}}`,
		`{"plan":{"$nin":["pro","team"]}}`,
		`{"plan":{"$gt":"m"}}`,
		`{"price":{"$gte":10,"$lt":30}}`,
		`{"price":20}`,
		`{"price":{"$lte":10}}`,
		`{"price":{"$exists":true}}`,
		`{"price":{"$exists":false}}`,
		`{"gift":true}`,
		`{"gift":{"$ne":false}}`,
		`{"$or":[{"plan":"pro"},{"price":{"$gt":25}}]}`,
		`{"$nor":[{"plan":"pro"},{"gift":true}]}`,
		`{"$not":{"plan":"team"}}`,
		`{"price":{"$not":{"$gt":15}}}`,
		`{"plan":"pro","price":{"$gt":5}}`,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	plans := []any{nil, "pro", "team", "free", "m"}
	prices := []any{nil, 5.0, 10.0, 20.0, 29.5, 30.0}
	gifts := []any{nil, true, false}
	for _, c := range conds {
		w, err := experiments.ParseWhere(json.RawMessage(c))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		ref, err := condition.ParseConditionJSON([]byte(c))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		for range 200 {
			props := map[string]any{}
			for k, vals := range map[string][]any{"plan": plans, "price": prices, "gift": gifts} {
				if v := vals[rng.IntN(len(vals))]; v != nil {
					props[k] = v
				}
			}
			if got, want := w.Match(props), ref.Match(props, nil); got != want {
				t.Errorf("%s on %v: Where %v, conditions %v", c, fmt.Sprint(props), got, want)
			}
		}
	}
}
