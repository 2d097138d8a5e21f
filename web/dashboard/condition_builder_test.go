package dashboard

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestConditionBuilderRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rows []condRow
		want string
	}{
		{"empty", []condRow{{Op: "$eq"}}, ""},
		{"typed values", []condRow{{"country", "$in", "US, CA"}, {"age", "$gte", "18"}, {"beta", "$eq", "true"}, {"zip", "$eq", `"02134"`}},
			`{"age":{"$gte":18},"beta":{"$eq":true},"country":{"$in":["US","CA"]},"zip":{"$eq":"02134"}}`},
		{"exists", []condRow{{"email", "$exists", ""}, {"ban", "$notexists", ""}}, `{"ban":{"$exists":false},"email":{"$exists":true}}`},
		{"same attribute twice", []condRow{{"age", "$gt", "18"}, {"age", "$lt", "65"}}, `{"$and":[{"age":{"$gt":18}},{"age":{"$lt":65}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := conditionFromRows(tc.rows)
			if tc.want == "" {
				if got != nil {
					t.Fatalf("got %s, want no condition", got)
				}
				return
			}
			var a, b any
			_ = json.Unmarshal(got, &a)
			_ = json.Unmarshal([]byte(tc.want), &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			rows, ok := rowsFromCondition(got)
			if tc.name == "same attribute twice" {
				if ok {
					t.Fatalf("$and read back into the builder: %+v", rows)
				}
				return
			}
			if !ok || !reflect.DeepEqual(conditionFromRows(rows), got) {
				t.Errorf("round trip: rows %+v give %s", rows, conditionFromRows(rows))
			}
		})
	}
	if _, ok := rowsFromCondition(json.RawMessage(`{"$or":[{"a":1},{"b":2}]}`)); ok {
		t.Error("$or shown in the builder")
	}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	got := diff(json.RawMessage(`{"name":"a","variants":[{"key":"c","weight":0.5}],"old":1}`),
		json.RawMessage(`{"name":"b","variants":[{"key":"c","weight":0.3}]}`))
	want := []change{{"name", `"a"`, `"b"`}, {"old", "1", ""}, {"variants[0].weight", "0.5", "0.3"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diff = %+v, want %+v", got, want)
	}
}
