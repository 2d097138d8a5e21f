package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/testenv"
)

// TestFeaturesEndToEnd: a feature defined through the API is computed by the segment
// engine from the events the collector accepts, read by a flag's condition as
// features.<key>, and answered by /v1/decide on request, on the real services.
func TestFeaturesEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("drives the real pipeline")
	}
	f := newFixture(t)
	f.env["LIFT_SEGMENT_REBUILD_DELAY"] = "1s"
	f.start(t)
	f.server.want(201, "POST", "/api/v1/features", `{"key":"views_10m","kind":"count","event":"product_view","within":"10m"}`, nil)
	f.server.want(201, "POST", "/api/v1/features", `{"key":"recent","kind":"last_n","event":"product_view","property":"sku","n":3,"within":"1h"}`, nil)
	f.server.want(422, "POST", "/api/v1/features", `{"key":"bad","kind":"count","event":"product_view","within":"forever"}`, nil)
	f.server.want(201, "POST", "/api/v1/flags", `{"key":"offer","type":"string","default":"none",
		"rules":[{"condition":{"features.views_10m":{"$gte":3}},"value":"discount","variant":"keen"}]}`, nil)
	var list struct{ Items []json.RawMessage }
	f.server.want(200, "GET", "/api/v1/features", "", &list)
	if len(list.Items) != 2 {
		t.Fatalf("features listed: %s", list.Items)
	}

	pool, err := pgxpool.New(context.Background(), f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	waitEngineRuns(t, pool, 4, "features.recent", "features.views_10m")

	type answer struct {
		decideResp
		Features map[string]any `json:"features"`
	}
	decide := func(user string) answer {
		var a answer
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+user+`","keys":["offer"],"features":true}`, &a)
		return a
	}
	view := func(user, sku string) {
		body := fmt.Sprintf(`{"events":[{"type":"product_view","user_id":%q,"properties":{"sku":%q}}]}`, user, sku)
		f.client.want(202, "POST", "/v1/events", body, nil)
	}
	if a := decide("u1"); fmt.Sprint(a.Features) != "map[recent:[] views_10m:0]" || string(a.Decisions["offer"].Value) != `"none"` {
		t.Fatalf("before any event: %+v", a)
	}
	view("u1", "a")
	view("u1", "b")
	testenv.Eventually(t, 15*time.Second, "u1's features after two views", func() bool { return fmt.Sprint(decide("u1").Features) == "map[recent:[b a] views_10m:2]" })
	if got := string(decide("u1").Decisions["offer"].Value); got != `"none"` {
		t.Errorf("offer after two views: %s", got)
	}
	view("u1", "a")
	took := testenv.Eventually(t, 15*time.Second, "the discount offer after the third view", func() bool { return string(decide("u1").Decisions["offer"].Value) == `"discount"` })
	t.Logf("third view accepted → the flag reads features.views_10m ≥ 3 within %v", took)
	if a := decide("u1"); fmt.Sprint(a.Features) != "map[recent:[a b] views_10m:3]" {
		t.Errorf("features after three views: %v", a.Features)
	}
	// Another user's features are their own.
	if a := decide("u2"); fmt.Sprint(a.Features) != "map[recent:[] views_10m:0]" {
		t.Errorf("u2: %v", a.Features)
	}
}
