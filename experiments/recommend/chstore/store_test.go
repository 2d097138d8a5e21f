package chstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/liftlab/lift/experiments/recommend"
	"github.com/liftlab/lift/experiments/recommend/chstore"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
)

// The training data read from ClickHouse 18.16: weights by type, halved every half
// life, summed per user and item in user order; numbers as items; events without the
// property, of other types, older than the history or without consent to
// personalisation left out; popular items over the last day from every event. On a
// cluster both read every shard through the Distributed events table.
func TestInteractionsAndPopular(t *testing.T) {
	t.Parallel()
	testenv.ClickHouseEach(t, interactionsAndPopular)
}

func interactionsAndPopular(t *testing.T, addr, db string) {
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	now := time.Now().UTC().Truncate(time.Second)
	var events []ingest.Event
	add := func(user, typ string, props string, age time.Duration, consent *ingest.Consent) {
		at := now.Add(-age)
		events = append(events, ingest.Event{ID: ingest.NewID(), Type: typ, UserID: user, Timestamp: at, ReceivedAt: at,
			Properties: json.RawMessage(props), Consent: consent})
	}
	day := 24 * time.Hour
	add("u2", "product_view", `{"sku":"a"}`, 0, nil)
	add("u1", "product_view", `{"sku":"a"}`, 7*day, nil)       // half weight
	add("u1", "product_view", `{"sku":"a"}`, 0, nil)           // adds up: 1.5
	add("u1", "purchase", `{"sku":"b","price":3}`, 2*day, nil) // 5 × 2^(-2/7)
	add("u1", "add_to_cart", `{"sku":12}`, 0, nil)             // a number: "12", weight 3
	add("u1", "product_view", `{"price":3}`, 0, nil)           // no sku
	add("u1", "page_view", `{"sku":"a"}`, 0, nil)              // not a recommender type
	add("u1", "product_view", `{"sku":"old"}`, 40*day, nil)    // older than the history
	add("u3", "product_view", `{"sku":"c"}`, 0, &ingest.Consent{Analytics: true, Personalization: false})
	if err := sink.Insert(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	store, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	spec := recommend.Spec{Key: "r", EventTypes: []string{"product_view", "add_to_cart", "purchase"}, ItemProperty: "sku",
		Weights: map[string]float64{"product_view": 1, "add_to_cart": 3, "purchase": 5}, HalfLife: 7 * day, History: 30 * day}
	var got []string
	if err := store.Interactions(context.Background(), spec, now, func(user, item string, w float64) {
		got = append(got, fmt.Sprintf("%s %s %.4f", user, item, w))
	}); err != nil {
		t.Fatal(err)
	}
	// Within a user, items come in any order; users in order.
	want := []string{"u1 12 3.0000", "u1 a 1.5000", fmt.Sprintf("u1 b %.4f", 5*math.Exp2(-2.0/7)), "u2 a 1.0000"}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" || got[len(got)-1] != "u2 a 1.0000" {
		t.Errorf("interactions (-want +got):\n%s\n%v", diff, got)
	}
	popular, err := store.Popular(context.Background(), spec, now)
	if err != nil {
		t.Fatal(err)
	}
	// Today: a (1 + 1 + 0 page view) = 2, 12 = 3, c = 1 (no consent needed); b is two days old.
	if diff := cmp.Diff([]recommend.ItemWeight{{Item: "12", Weight: 3}, {Item: "a", Weight: 2}, {Item: "c", Weight: 1}}, popular); diff != "" {
		t.Errorf("popular (-want +got):\n%s", diff)
	}
}
