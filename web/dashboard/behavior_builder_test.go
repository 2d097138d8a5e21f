package dashboard

import (
	"encoding/json"
	"testing"
)

// Reading a rule into the builder leaves the caller's document as it was, and what
// the builder writes back means the same rule.
func TestBehaviorRuleRoundTrip(t *testing.T) {
	t.Parallel()
	for _, rule := range []string{
		`{"event":"product_view","count_gte":3,"within":"10m"}`,
		`{"event":"purchase","within":"168h"}`,
		`{"event":"purchase","where":{"currency":"EUR"},"sum_gte":100,"within":"720h"}`,
		`{"or":[{"event":"product_view","within":"10m","count_gte":3},{"absent":{"event":"purchase","within":"30m"},"within":"24h","sequence":[{"event":"add_to_cart"}]}]}`,
		`{"and":[{"sequence":[{"event":"page_view","where":{"path":"/pricing"}},{"event":"click"}],"within":"1h"},{"event":"add_to_cart","within":"1h"}]}`,
	} {
		raw := json.RawMessage(rule)
		before := string(raw)
		r := behaviorRuleFrom(raw)
		if string(raw) != before {
			t.Fatalf("behaviorRuleFrom changed its input to %s", raw)
		}
		if r.Mode != "builder" {
			t.Errorf("%s: not shown in the builder", rule)
			continue
		}
		if describeRule(raw) == "Custom rule (JSON)" {
			t.Errorf("%s: described as custom", rule)
		}
		doc, errs := r.document()
		if errs != nil {
			t.Errorf("%s: %v", rule, errs)
			continue
		}
		var a, b any
		_ = json.Unmarshal(doc, &a)
		_ = json.Unmarshal(raw, &b)
		if ja, _ := json.Marshal(a); string(ja) != string(mustJSON(b)) {
			t.Errorf("round trip of %s gave %s", rule, doc)
		}
	}
	for _, custom := range []string{`{"and":[{"or":[{"event":"a","within":"1h"}]}]}`, `{"event":"a","within":"1h","extra":1}`, `[1]`} {
		if r := behaviorRuleFrom(json.RawMessage(custom)); r.Mode != "json" {
			t.Errorf("%s shown in the builder", custom)
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
