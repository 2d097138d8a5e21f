package segments_test

import (
	"errors"
	"testing"

	"github.com/liftlab/lift/segments"
)

func TestParseRuleAccepts(t *testing.T) {
	for _, rule := range []string{
		highIntent,
		cartRule,
		`{"event":"product_view","where":{"category":"shoes"},"count_gte":3,"within":"10m"}`,
		`{"event":"purchase","within":"168h"}`,
		`{"event":"purchase","sum_gte":99.5,"within":"24h"}`,
		`{"sequence":[{"event":"product_view"},{"event":"add_to_cart","where":{"qty":{"$gte":2}}}],"within":"1h"}`,
		`{"and":[{"event":"a","within":"1m"},{"or":[{"event":"b","within":"1m"},{"event":"c","within":"1m"}]}]}`,
		`{"event":"a","where":{},"within":"720h"}`,
	} {
		r, err := segments.ParseRuleJSON([]byte(rule))
		if err != nil {
			t.Errorf("ParseRuleJSON(%s): %v", rule, err)
			continue
		}
		again, err := segments.ParseRuleJSON([]byte(r.String()))
		if err != nil || again.String() != r.String() {
			t.Errorf("canonical form %s does not round-trip: %v", r, err)
		}
	}
}

func TestParseRuleRejects(t *testing.T) {
	for _, tc := range []struct{ rule, path string }{
		{`[]`, ""},
		{`{"event":"a"`, ""},
		{`{"within":"10m"}`, "event"},
		{`{"event":"","within":"10m"}`, "event"},
		{`{"event":"a"}`, "within"},
		{`{"event":"a","within":"10"}`, "within"},
		{`{"event":"a","within":"-1m"}`, "within"},
		{`{"event":"a","within":"721h"}`, "within"},
		{`{"event":"a","within":"1m","count_gte":0}`, "count_gte"},
		{`{"event":"a","within":"1m","count_gte":2.5}`, "count_gte"},
		{`{"event":"a","within":"1m","count_gte":1001}`, "count_gte"},
		{`{"event":"a","within":"1m","sum_gte":0}`, "sum_gte"},
		{`{"event":"a","within":"1m","sum_gte":"5"}`, "sum_gte"},
		{`{"event":"a","within":"1m","count_gte":1,"sum_gte":5}`, ""},
		{`{"event":"a","within":"1m","ttl":"5m"}`, "ttl"},
		{`{"event":"a","within":"1m","where":{"country":{"$inn":["US"]}}}`, "where.country.$inn"},
		{`{"event":"a","within":"1m","where":[1]}`, "where"},
		{`{"and":[]}`, "and"},
		{`{"or":{}}`, "or"},
		{`{"and":[{"event":"a","within":"1m"}],"event":"b"}`, ""},
		{`{"and":[{"event":"a","within":"1m"},{"event":"b"}]}`, "and[1].within"},
		{`{"or":[{"and":[3]}]}`, "or[0].and[0]"},
		{`{"sequence":[]}`, "sequence"},
		{`{"sequence":[{"event":"a","within":"1m"}]}`, "sequence[0].within"},
		{`{"sequence":[{"event":"a"}],"absent":{"event":"b"}}`, "absent.within"},
		{`{"sequence":[{"event":"a"}],"absent":{"within":"1m"}}`, "absent.event"},
		{`{"sequence":[{"event":"a"}],"within":"1h","absent":{"event":"b","within":"1h"}}`, "absent.within"},
		{`{"sequence":[{"event":"a"}],"absent":"b"}`, "absent"},
		{`{"and":[{"and":[{"and":[{"and":[{"and":[{"and":[{"and":[{"and":[{"and":[{"event":"a","within":"1m"}]}]}]}]}]}]}]}]}]}`, "and[0].and[0].and[0].and[0].and[0].and[0].and[0].and[0].and[0]"},
	} {
		_, err := segments.ParseRuleJSON([]byte(tc.rule))
		var re *segments.RuleError
		if !errors.As(err, &re) {
			t.Errorf("ParseRuleJSON(%s) = %v, want a *RuleError", tc.rule, err)
			continue
		}
		if re.Path != tc.path {
			t.Errorf("ParseRuleJSON(%s): path %q (%v), want %q", tc.rule, re.Path, err, tc.path)
		}
	}
}
