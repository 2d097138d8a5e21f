package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// The whole event path in one process (role all): custom event types through the
// management API, the collector, exposures from /v1/decide, and both reaching
// ClickHouse.
func TestEventsEndToEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.start(t)
	f.server.want(201, "POST", "/api/v1/event-types",
		`{"name":"signup","schema":{"type":"object","properties":{"plan":{"type":"string"}},"required":["plan"]}}`, nil)
	f.server.want(409, "POST", "/api/v1/event-types", `{"name":"signup","schema":{"type":"object"}}`, nil)
	f.server.want(422, "POST", "/api/v1/event-types", `{"name":"purchase","schema":{"type":"object"}}`, nil)
	var refused struct{ Fields []struct{ Field string } }
	f.server.want(422, "PUT", "/api/v1/event-types/signup",
		`{"schema":{"type":"object","properties":{"plan":{"type":"integer"}},"required":["plan"]}}`, &refused)
	if len(refused.Fields) != 1 || refused.Fields[0].Field != "schema.properties.plan.type" {
		t.Errorf("breaking change refused with %+v, want schema.properties.plan.type", refused)
	}
	var v2 struct{ Version int }
	f.server.want(200, "PUT", "/api/v1/event-types/signup",
		`{"schema":{"type":"object","properties":{"plan":{"type":"string"},"coupon":{"type":"string"}},"required":["plan"]}}`, &v2)
	if v2.Version != 2 {
		t.Errorf("new version %d, want 2", v2.Version)
	}
	f.client.want(403, "GET", "/api/v1/event-types", "", nil)
	f.server.want(201, "POST", "/api/v1/experiments", heroBanner, nil)
	f.server.want(200, "POST", "/api/v1/experiments/hero-banner/start", "", nil)

	body := `{"events":[{"type":"signup","user_id":"u1","properties":{"plan":"pro"}},
		{"type":"signup","user_id":"u2","properties":{"coupon":"x"}},
		{"type":"page_view","user_id":"u1","properties":{"path":"/"}}]}`
	var got struct {
		Accepted int
		Rejected []struct {
			Index int
			Error string
		}
	}
	// The collector learns of the new type through NOTIFY, within a second or so.
	testenv.Eventually(t, 5*time.Second, "the collector to accept the new event type", func() bool {
		f.client.want(202, "POST", "/v1/events", body, &got)
		return got.Accepted == 2
	})
	if len(got.Rejected) != 1 || got.Rejected[0].Index != 1 || !strings.Contains(got.Rejected[0].Error, "plan") {
		t.Errorf("rejected %+v, want index 1 missing plan", got.Rejected)
	}
	var d decideResp
	testenv.Eventually(t, 5*time.Second, "hero-banner to be served by split", func() bool {
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"u1","attributes":{"country":"US"},"keys":["hero-banner"]}`, &d)
		return d.Decisions["hero-banner"].Reason == "split"
	})

	ch := migrations.OpenClickHouse(f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"])
	defer ch.Close()
	count := func(q string) (n uint64) {
		if err := ch.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testenv.Eventually(t, 15*time.Second, "the signup and page views in ClickHouse", func() bool {
		// Only the last try carried an accepted signup; earlier ones, sent before the
		// collector knew the type, added page views only.
		return count("SELECT count() FROM events FINAL WHERE type = 'signup'") == 1 &&
			count("SELECT count() FROM exposures FINAL WHERE experiment = 'hero-banner' AND user_id = 'u1'") >= 1
	})
	// A backend publishing straight to RabbitMQ gets the same schema checks: the
	// valid signup is stored, the one without a plan goes to lift.dead with the reason.
	conn, err := amqp.Dial(f.env["LIFT_AMQP_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := pch.PublishWithDeferredConfirmWithContext(context.Background(), amqpbus.Exchange, "signup", true, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, Timestamp: time.Now(),
		Body: []byte(`[{"type": "signup", "user_id": "b1", "properties": {"plan": "team"}}, {"type": "signup", "user_id": "b2", "properties": {}}]`),
	})
	if err != nil || !dc.Wait() {
		t.Fatalf("publish: %v", err)
	}
	testenv.Eventually(t, 15*time.Second, "b1's signup in ClickHouse", func() bool {
		return count("SELECT count() FROM events FINAL WHERE type = 'signup' AND user_id = 'b1'") == 1
	})
	var dead amqp.Delivery
	testenv.Eventually(t, 10*time.Second, "a dead letter in lift.dead", func() bool {
		var ok bool
		dead, ok, err = pch.Get(amqpbus.DeadQueue, true)
		return err == nil && ok
	})
	if reason, _ := dead.Headers[amqpbus.ReasonHeader].(string); !strings.Contains(reason, "plan") || !strings.Contains(string(dead.Body), `"b2"`) {
		t.Errorf("dead letter %s with reason %q, want b2's signup missing plan", dead.Body, reason)
	}
	if n := count("SELECT count() FROM events WHERE user_id = 'b2'"); n != 0 {
		t.Errorf("the invalid signup was stored %d times", n)
	}

	resp := f.client.do("GET", "/metrics", "", nil)
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"lift_events_accepted_total", `lift_events_rejected_total{reason="properties"}`, "lift_exposures_published_total"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
