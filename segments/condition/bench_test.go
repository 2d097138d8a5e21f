package condition_test

import (
	"testing"

	"github.com/liftlab/lift/segments/condition"
)

func BenchmarkMatch(b *testing.B) {
	attrs := map[string]any{
		"id": "user-123", "country": "US", "age": 34.0, "plan": "pro",
		"browser": "Mozilla/5.0 (Linux; Android 14) Mobile Safari", "appVersion": "4.12.1",
		"tags": []any{"beta", "vip"},
	}
	groups := condition.SavedGroups{"internal": {"user-1", "user-2", "user-123"}}
	for _, bm := range []struct{ name, condition string }{
		{"targeting", `{"country":{"$in":["US","CA"]},"age":{"$gte":18}}`},
		{"equality", `{"plan":"pro"}`},
		{"in_large", `{"country":{"$in":["AT","BE","BG","CY","CZ","DE","DK","EE","ES","FI","FR","GR","US"]}}`},
		{"regex", `{"browser":{"$regex":"(Mobile|Tablet)"}}`},
		{"version", `{"appVersion":{"$vgte":"4.2.0"}}`},
		{"group", `{"id":{"$inGroup":"internal"}}`},
		{"nested", `{"$or":[{"country":"FR"},{"$and":[{"age":{"$gte":18}},{"tags":{"$elemMatch":{"$eq":"vip"}}}]}]}`},
	} {
		c := mustParse(b, bm.condition)
		if !c.Match(attrs, groups) {
			b.Fatalf("%s does not match", bm.condition)
		}
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Match(attrs, groups)
			}
		})
	}
}

func BenchmarkParseCondition(b *testing.B) {
	raw := []byte(`{"country":{"$in":["US","CA"]},"age":{"$gte":18},"browser":{"$regex":"Mobile"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := condition.ParseConditionJSON(raw); err != nil {
			b.Fatal(err)
		}
	}
}
