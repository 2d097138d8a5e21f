package recommend

import "math"

// Case is one test of an offline evaluation: what a user had touched recently
// (newest first) at some moment, and the items they went on to touch next.
type Case struct {
	Recent []string
	Next   []string
}

// Metrics are the means over the cases of an evaluation at cut-off K.
type Metrics struct {
	Cases int
	K     int
	// Recall is the share of a case's next items among the top K: hits / |Next|.
	Recall float64
	// NDCG is the discounted cumulative gain of the hits (1/log2(rank + 1)) over the
	// best possible for the case (all next items first).
	NDCG float64
	// HitRate is the share of cases with at least one hit.
	HitRate float64
}

// Evaluate scores a recommender over the cases: recommend gets a case's recent items
// and returns its top k items.
func Evaluate(cases []Case, k int, recommend func(recent []string, k int) []string) Metrics {
	m := Metrics{K: k}
	for _, c := range cases {
		if len(c.Next) == 0 {
			continue
		}
		next := make(map[string]bool, len(c.Next))
		for _, it := range c.Next {
			next[it] = true
		}
		hits, dcg := 0, 0.0
		for rank, it := range recommend(c.Recent, k) {
			if rank >= k {
				break
			}
			if next[it] {
				hits++
				dcg += 1 / math.Log2(float64(rank)+2)
				delete(next, it) // an item counts once
			}
		}
		ideal := 0.0
		for rank := range min(k, len(c.Next)) {
			ideal += 1 / math.Log2(float64(rank)+2)
		}
		m.Cases++
		m.Recall += float64(hits) / float64(len(c.Next))
		m.NDCG += dcg / ideal
		if hits > 0 {
			m.HitRate++
		}
	}
	if m.Cases > 0 {
		n := float64(m.Cases)
		m.Recall, m.NDCG, m.HitRate = m.Recall/n, m.NDCG/n, m.HitRate/n
	}
	return m
}
