package experiments_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

type refs map[string]bool

func (r refs) HasSegment(k string) bool    { return r["segment:"+k] }
func (r refs) HasExperiment(k string) bool { return r["experiment:"+k] }

func fields(err error) []string {
	ve, ok := err.(*derrors.ValidationError)
	if !ok {
		return nil
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestExperimentValidate(t *testing.T) {
	known := refs{"segment:vip": true}
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"valid", `{"key":"hero","variants":[{"key":"a","weight":0.5},{"key":"b","weight":0.5}],"segments":["vip"]}`, nil},
		{"weights omitted are even", `{"key":"hero","variants":[{"key":"a"},{"key":"b"},{"key":"c"}]}`, nil},
		{"bad key", `{"key":"Hero!","variants":[{"key":"a"},{"key":"b"}]}`, []string{"key"}},
		{"weight out of range", `{"key":"x","variants":[{"key":"a","weight":1.5},{"key":"b","weight":-0.5}]}`,
			[]string{"variants[0].weight", "variants[1].weight"}},
		{"weights not summing to 1", `{"key":"x","variants":[{"key":"a","weight":0.5},{"key":"b","weight":0.4}]}`, []string{"variants"}},
		{"duplicate variant", `{"key":"x","variants":[{"key":"a","weight":0.5},{"key":"a","weight":0.5}]}`, []string{"variants[1].key"}},
		{"one variant", `{"key":"x","variants":[{"key":"a","weight":1}]}`, []string{"variants"}},
		{"unknown operator", `{"key":"x","variants":[{"key":"a"},{"key":"b"}],"targeting":{"country":{"$inn":["US"]}}}`,
			[]string{"targeting.country.$inn"}},
		{"unknown segment", `{"key":"x","variants":[{"key":"a"},{"key":"b"}],"segments":["nope"]}`, []string{"segments[0]"}},
		{"variant values", `{"key":"x","variants":[{"key":"a","value":null},{"key":"b","value":[1]}]}`,
			[]string{"variants[0].value", "variants[1].value"}},
		{"coverage", `{"key":"x","variants":[{"key":"a"},{"key":"b"}],"coverage":2}`, []string{"coverage"}},
		{"bad namespace", `{"key":"x","variants":[{"key":"a"},{"key":"b"}],"namespace":{"id":"n","range":[0.5,0.2]}}`, []string{"namespace.range"}},
		{"bandit options on an ab test", `{"key":"x","variants":[{"key":"a"},{"key":"b"}],"bandit":{"update_every":"10ms"}}`,
			[]string{"bandit", "bandit.update_every"}},
		{"minimum sample and runtime", `{"key":"x","variants":[{"key":"a"},{"key":"b"}],"analysis":{"min_users":200,"min_runtime":"72h"}}`, nil},
		{"no minimum", `{"key":"x","variants":[{"key":"a"},{"key":"b"}],"analysis":{"min_users":0,"min_runtime":"0s"}}`, nil},
		{"bad minimum", `{"key":"x","variants":[{"key":"a"},{"key":"b"}],"analysis":{"min_users":-1,"min_runtime":"7d"}}`,
			[]string{"analysis.min_users", "analysis.min_runtime"}},
		{"negative runtime", `{"key":"x","variants":[{"key":"a"},{"key":"b"}],"analysis":{"min_runtime":"-1h"}}`, []string{"analysis.min_runtime"}},
		{"bandit control", `{"key":"x","type":"bandit","variants":[{"key":"a"},{"key":"b"}],"bandit":{"control":"b"}}`, nil},
		{"unknown bandit control", `{"key":"x","type":"bandit","variants":[{"key":"a"},{"key":"b"}],"bandit":{"control":"c"}}`,
			[]string{"bandit.control"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e experiments.Experiment
			if err := json.Unmarshal([]byte(tt.doc), &e); err != nil {
				t.Fatal(err)
			}
			e.Normalize()
			got := fields(e.Validate(known))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("invalid fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlagValidate(t *testing.T) {
	known := refs{"segment:vip": true, "experiment:hero": true}
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"valid", `{"key":"f","type":"boolean","default":false,"rules":[{"segment":"vip","rollout":0.2,"value":true},{"experiment":"hero"}]}`, nil},
		{"json flag", `{"key":"f","type":"json","default":{"a":1},"rules":[{"value":{"b":[1,2]}}]}`, nil},
		{"json flag values are objects", `{"key":"f","type":"json","default":[1],"rules":[{"value":"x"}]}`, []string{"default", "rules[0].value"}},
		{"wrong default type", `{"key":"f","type":"number","default":"3"}`, []string{"default"}},
		{"missing default", `{"key":"f","type":"string"}`, []string{"default"}},
		{"unknown type", `{"key":"f","type":"date","default":1}`, []string{"type"}},
		{"rule value type", `{"key":"f","type":"boolean","default":false,"rules":[{"value":"yes"}]}`, []string{"rules[0].value"}},
		{"rollout", `{"key":"f","type":"boolean","default":false,"rules":[{"rollout":1.2,"value":true}]}`, []string{"rules[0].rollout"}},
		{"unknown refs", `{"key":"f","type":"boolean","default":false,"rules":[{"segment":"x","value":true},{"experiment":"y"}]}`,
			[]string{"rules[0].segment", "rules[1].experiment"}},
		{"bad condition", `{"key":"f","type":"boolean","default":false,"rules":[{"condition":{"country":{"$bogus":1}},"value":true}]}`,
			[]string{"rules[0].condition.country.$bogus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f experiments.Flag
			if err := json.Unmarshal([]byte(tt.doc), &f); err != nil {
				t.Fatal(err)
			}
			f.Normalize()
			got := fields(f.Validate(known))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("invalid fields (-want +got):\n%s", diff)
			}
		})
	}
}
