// Package segmenttest holds the workload the segment engine's benchmarks share: ten
// rules of the kinds product teams write, and a source of shop events for many users.
package segmenttest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/liftlab/lift/segments"
)

// Rules are the ten benchmark rules: counts with and without where, a sum, recency,
// cart abandonment, a two-step sequence, and, or. Keys map to rule JSON and TTL.
var Rules = []struct{ Key, Rule, TTL string }{
	{"high-intent", `{"event":"product_view","count_gte":3,"within":"10m"}`, "5m"},
	{"cart", `{"sequence":[{"event":"add_to_cart"}],"absent":{"event":"purchase","within":"30m"}}`, ""},
	{"big-spender", `{"event":"purchase","sum_gte":300,"within":"24h"}`, ""},
	{"recent-buyer", `{"event":"purchase","within":"168h"}`, ""},
	{"shoe-browser", `{"event":"product_view","where":{"category":"shoes"},"count_gte":2,"within":"1h"}`, ""},
	{"engaged", `{"event":"page_view","count_gte":5,"within":"5m"}`, "1m"},
	{"premium", `{"event":"product_view","where":{"price":{"$gte":100}},"within":"30m"}`, ""},
	{"considering", `{"sequence":[{"event":"product_view"},{"event":"add_to_cart"}],"within":"15m"}`, ""},
	{"buyer-browsing", `{"and":[{"event":"purchase","within":"168h"},{"event":"product_view","count_gte":2,"within":"10m"}]}`, ""},
	{"active", `{"or":[{"event":"page_view","count_gte":3,"within":"10m"},{"event":"add_to_cart","within":"10m"}]}`, ""},
}

// Definitions compiles Rules.
func Definitions(tb testing.TB) []segments.Definition {
	defs := make([]segments.Definition, len(Rules))
	for i, r := range Rules {
		rule, err := segments.ParseRuleJSON([]byte(r.Rule))
		if err != nil {
			tb.Fatalf("%s: %v", r.Key, err)
		}
		var ttl time.Duration
		if r.TTL != "" {
			ttl, _ = time.ParseDuration(r.TTL)
		}
		defs[i] = segments.Definition{Key: r.Key, Rule: rule, TTL: ttl}
	}
	return defs
}

// Source generates events for users at 50,000 events per second of event time, a
// tenth of them up to 30 s out of order: 40 % page views, 35 % product views with
// properties, 12 % cart adds, 5 % purchases, 8 % a type no rule reads.
type Source struct {
	R      *rand.Rand
	IDs    []string
	props  [][]byte
	offset int64
	clock  time.Time
}

// NewSource makes a seeded source for users starting at event time start.
func NewSource(users int, start time.Time) *Source {
	s := &Source{R: rand.New(rand.NewPCG(7, 7)), IDs: make([]string, users), clock: start}
	for i := range s.IDs {
		s.IDs[i] = fmt.Sprintf("user-%07d", i)
	}
	for _, c := range []string{"shoes", "hats", "boots", "shirts"} {
		for _, p := range []int{20, 80, 150} {
			s.props = append(s.props, fmt.Appendf(nil, `{"category":%q,"price":%d,"sku":"sku-%d"}`, c, p, p*7))
		}
	}
	return s
}

// Next returns the next event, for the user of index userIdx.
func (s *Source) Next(userIdx int) segments.Event {
	s.offset++
	if s.offset%50 == 0 {
		s.clock = s.clock.Add(time.Millisecond)
	}
	at := s.clock
	if s.R.IntN(10) == 0 {
		at = at.Add(-time.Duration(s.R.IntN(30000)) * time.Millisecond)
	}
	ev := segments.Event{Offset: s.offset, UserID: s.IDs[userIdx], Time: at, Properties: s.props[s.R.IntN(len(s.props))]}
	switch p := s.R.IntN(100); {
	case p < 40:
		ev.Type = "page_view"
	case p < 75:
		ev.Type = "product_view"
	case p < 87:
		ev.Type = "add_to_cart"
	case p < 92:
		ev.Type, ev.Value = "purchase", float64(s.R.IntN(200))
	default:
		ev.Type = "click" // no rule reads it
	}
	return ev
}
