package recommend_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/liftlab/lift/experiments/recommend"
)

// items returns the ids of recommendations.
func items(rs []recommend.Scored) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Item)
	}
	return out
}

// A small shop: lamps go with shades, mugs with saucers; "bag" is bought by almost
// everyone with anything.
func smallShop() *recommend.Model {
	b := recommend.NewBuilder()
	for u := range 40 {
		user := fmt.Sprintf("u%d", u)
		if u%2 == 0 {
			b.Add(user, "lamp", 1)
			b.Add(user, "shade", 1)
		} else {
			b.Add(user, "mug", 1)
			b.Add(user, "saucer", 1)
		}
		if u%10 != 0 {
			b.Add(user, "bag", 4) // often, and in quantity
		}
		if u%4 == 0 {
			b.Add(user, "lamp", 3) // weights of one item add up
		}
	}
	return recommend.Train(b, []recommend.ItemWeight{{Item: "bag", Weight: 30}, {Item: "mug", Weight: 10}, {Item: "poster", Weight: 5}},
		recommend.Params{Neighbours: 3})
}

func TestTrainFindsWhatGoesTogether(t *testing.T) {
	m := smallShop()
	if got := items(m.Recommend([]string{"lamp"}, 1, nil, false)); !slices.Equal(got, []string{"shade"}) {
		t.Errorf("most similar to lamp: %v, want shade (not the ubiquitous bag)", got)
	}
	if got := items(m.Recommend([]string{"saucer"}, 1, nil, false)); !slices.Equal(got, []string{"mug"}) {
		t.Errorf("most similar to saucer: %v, want mug", got)
	}
	// The newest recent item counts most; recent items and exclusions are left
	// out; popular items fill the list.
	got := m.Recommend([]string{"mug", "lamp"}, 5, []string{"bag"}, false)
	if want := []string{"saucer", "shade", "poster"}; !slices.Equal(items(got), want) {
		t.Errorf("recommendations: %v, want %v", items(got), want)
	}
	if got[0].Source != recommend.SourceSimilar || got[2].Source != recommend.SourcePopular {
		t.Errorf("sources: %+v", got)
	}
	// Without history: the popular items, most popular first.
	if got := items(m.Recommend(nil, 2, nil, false)); !slices.Equal(got, []string{"bag", "mug"}) {
		t.Errorf("for a new user: %v", got)
	}
	if got := items(m.Recommend([]string{"lamp"}, 2, nil, true)); !slices.Equal(got, []string{"bag", "mug"}) {
		t.Errorf("popular only: %v", got)
	}
	if got := m.Recommend([]string{"unknown"}, 0, nil, false); got != nil {
		t.Errorf("n = 0: %v", got)
	}
	if s := m.Stats; s.Users != 40 || s.Items != 6 || s.Interactions != 116 {
		t.Errorf("stats: %+v", s)
	}
}

func TestModelRoundTrip(t *testing.T) {
	m := smallShop()
	data, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := recommend.UnmarshalModel(data)
	if err != nil {
		t.Fatal(err)
	}
	if !back.TrainedAt.Equal(m.TrainedAt.Truncate(1e6)) {
		t.Errorf("trained at %v, want %v", back.TrainedAt, m.TrainedAt)
	}
	if diff := cmp.Diff(m.Items, back.Items); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff(m.Neighbours, back.Neighbours, cmpopts.EquateEmpty()); diff != "" {
		t.Error(diff)
	}
	for _, recent := range [][]string{nil, {"lamp"}, {"mug", "bag"}} {
		if diff := cmp.Diff(m.Recommend(recent, 4, nil, false), back.Recommend(recent, 4, nil, false)); diff != "" {
			t.Errorf("recommendations for %v differ: %s", recent, diff)
		}
	}
	for _, bad := range [][]byte{nil, []byte("liftrec\x01"), data[:len(data)-3], append(slices.Clone(data), 0), bytes.Replace(data, []byte("liftrec"), []byte("liftxxx"), 1)} {
		if _, err := recommend.UnmarshalModel(bad); !errors.Is(err, recommend.ErrCorruptModel) {
			t.Errorf("UnmarshalModel(%d bytes) = %v, want ErrCorruptModel", len(bad), err)
		}
	}
}

func FuzzUnmarshalModel(f *testing.F) {
	data, _ := smallShop().MarshalBinary()
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := recommend.UnmarshalModel(data)
		if err == nil {
			m.Recommend([]string{"lamp"}, 3, nil, false) // must not panic
		}
	})
}

func TestEvaluate(t *testing.T) {
	cases := []recommend.Case{
		{Recent: []string{"a"}, Next: []string{"x", "y"}},
		{Recent: []string{"b"}, Next: []string{"z"}},
		{Recent: []string{"c"}}, // no next items: not a case
	}
	// Case 1: x at rank 2 (y missed); case 2: z at rank 1.
	got := recommend.Evaluate(cases, 3, func(recent []string, k int) []string {
		if recent[0] == "a" {
			return []string{"q", "x", "r"}
		}
		return []string{"z"}
	})
	ndcg1 := (1 / 1.5849625007211563) / (1 + 1/1.5849625007211563)
	want := recommend.Metrics{Cases: 2, K: 3, Recall: (0.5 + 1) / 2, NDCG: (ndcg1 + 1) / 2, HitRate: 1}
	if diff := cmp.Diff(want, got, cmpFloat); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

var cmpFloat = cmp.Comparer(func(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 })
