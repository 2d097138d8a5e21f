package segments_test

import (
	"errors"
	"testing"
	"time"

	"github.com/liftlab/lift/segments"
)

// FuzzRule checks that the parser returns a *RuleError or a rule whose canonical form
// parses to itself, and that the engine evaluates any accepted rule without panicking
// or emitting an exit without an enter.
func FuzzRule(f *testing.F) {
	for _, d := range testDefinitions(f) {
		f.Add([]byte(d.Rule.String()), uint8(0))
	}
	f.Add([]byte(`{"sequence":[{"event":"a"},{"event":"a"}],"within":"1s","absent":{"event":"a","within":"1ms"}}`), uint8(3))
	f.Add([]byte(`{"event":"a","sum_gte":1e-300,"within":"1ms"}`), uint8(7))
	f.Fuzz(func(t *testing.T, rule []byte, seed uint8) {
		r, err := segments.ParseRuleJSON(rule)
		if err != nil {
			var re *segments.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is %T, want *segments.RuleError", err, err)
			}
			return
		}
		again, err := segments.ParseRuleJSON([]byte(r.String()))
		if err != nil || again.String() != r.String() {
			t.Fatalf("canonical form %s does not round-trip: %v", r, err)
		}
		members := map[string]bool{}
		eng, err := segments.NewEngine([]segments.Definition{{Key: "s", Rule: r, TTL: time.Duration(seed) * time.Millisecond}},
			segments.Options{OnChange: func(c segments.Change) {
				if (c.Kind == segments.Enter) == members[c.UserID] {
					t.Fatalf("%v of %s while member=%v", c.Kind, c.UserID, members[c.UserID])
				}
				members[c.UserID] = c.Kind == segments.Enter
			}})
		if err != nil {
			t.Fatal(err)
		}
		for i, ev := range stream(uint64(seed), 3, 300) {
			ev.Type = string(rune('a' + i%3))
			eng.Process(ev)
		}
		eng.Tick(t0)
		eng.Tick(t0.Add(365 * 24 * time.Hour))
		if s := eng.Stats(); s.Users != 0 {
			t.Fatalf("%d users left after every window passed", s.Users)
		}
	})
}
