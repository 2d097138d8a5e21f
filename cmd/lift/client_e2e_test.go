package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/testenv"
	liftclient "github.com/liftlab/lift/web/client"
	"github.com/liftlab/lift/web/client/amqpclient"
)

// TestGoClient runs the Go client against a real lift on the real services: decisions
// (the cache, and stale answers once lift is stopped), events over HTTP, and events
// published straight to RabbitMQ, all counted in ClickHouse.
func TestGoClient(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("drives the real pipeline")
	}
	f := newFixture(t)
	p := f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"hero","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5,"value":{"headline":"50% off"}}]}`, nil)
	ctx := context.Background()
	c, err := liftclient.New(liftclient.Config{BaseURL: p.url, Key: f.client.key, CacheTTL: 100 * time.Millisecond, MaxStale: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var d liftclient.Decisions
	testenv.Eventually(t, 5*time.Second, "hero to be served by split", func() bool {
		d, err = c.Decide(ctx, "go-user-1", map[string]any{"country": "US"}, "hero")
		return err == nil && d.Decisions["hero"].Reason == "split"
	})
	var want decideResp
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"go-user-1","keys":["hero"],"track":false}`, &want)
	if d.Variant("hero") != want.Decisions["hero"].Variant {
		t.Errorf("client got %s, lift says %s", d.Variant("hero"), want.Decisions["hero"].Variant)
	}

	// Events over HTTP, one call and through a batcher; then over RabbitMQ.
	if err := c.Track(ctx, liftclient.Event{Type: "purchase", UserID: "go-user-1", Value: 25}); err != nil {
		t.Fatal(err)
	}
	var rej *liftclient.RejectedError
	if err := c.Track(ctx, liftclient.Event{Type: "purchase", UserID: "go-user-1", Value: -1}); !errors.As(err, &rej) {
		t.Errorf("negative purchase: %v, want a RejectedError", err)
	}
	b := liftclient.NewBatcher(c, liftclient.BatcherOptions{Size: 100, Interval: 50 * time.Millisecond})
	for i := range 250 {
		if err := b.Add(liftclient.Event{Type: "page_view", UserID: fmt.Sprintf("go-batch-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	pub, err := amqpclient.Dial(ctx, f.env["LIFT_AMQP_URL"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	viaAMQP := liftclient.NewBatcher(pub, liftclient.BatcherOptions{Size: 40})
	for i := range 120 {
		_ = viaAMQP.Add(liftclient.Event{Type: "add_to_cart", UserID: "go-amqp", Properties: map[string]any{"sku": fmt.Sprint("s", i)}})
	}
	if err := viaAMQP.Close(ctx); err != nil {
		t.Fatal(err)
	}

	count := clickhouseCount(t, f.env)
	testenv.Eventually(t, 30*time.Second, "the Go client's events in ClickHouse", func() bool {
		return count("SELECT count() FROM events FINAL WHERE user_id = 'go-user-1' AND type = 'purchase'") == 1 &&
			count("SELECT count() FROM events FINAL WHERE type = 'page_view' AND user_id LIKE 'go-batch-%'") == 250 &&
			count("SELECT count() FROM events FINAL WHERE type = 'add_to_cart' AND user_id = 'go-amqp'") == 120 &&
			count("SELECT count() FROM exposures FINAL WHERE user_id = 'go-user-1' AND experiment = 'hero'") >= 1
	})

	// lift goes away: cached decisions keep being served, flagged stale.
	p.stop()
	time.Sleep(150 * time.Millisecond)
	d2, err := c.Decide(ctx, "go-user-1", map[string]any{"country": "US"}, "hero")
	if !errors.Is(err, liftclient.ErrStale) || d2.Variant("hero") != d.Variant("hero") {
		t.Errorf("decide with lift stopped: %v, variant %q", err, d2.Variant("hero"))
	}
	if _, err := c.Decide(ctx, "never-seen", nil); err == nil || errors.Is(err, liftclient.ErrStale) {
		t.Errorf("uncached decide with lift stopped: %v, want an error", err)
	}
}
