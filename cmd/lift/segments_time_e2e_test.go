package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/internal/testenv"
)

// backend publishes events straight to lift.events, as a backend service may, each
// with its own received_at: a test replays an afternoon of event time in seconds.
type backend struct {
	t  *testing.T
	ch *amqp.Channel
}

func newBackend(t *testing.T, amqpURL string) *backend {
	return &backend{t: t, ch: testenv.AMQPChannel(t, amqpURL, amqpbus.Declare)}
}

type simEvent struct {
	Type       string    `json:"type"`
	UserID     string    `json:"user_id"`
	Timestamp  time.Time `json:"timestamp"`
	ReceivedAt time.Time `json:"received_at"`
	Value      float64   `json:"value,omitempty"`
}

// send publishes events as one JSON array, confirmed.
func (b *backend) send(events ...simEvent) {
	b.t.Helper()
	body, err := json.Marshal(events)
	if err != nil {
		b.t.Fatal(err)
	}
	c, err := b.ch.PublishWithDeferredConfirmWithContext(context.Background(), amqpbus.Exchange, events[0].Type, false, false,
		amqp.Publishing{ContentType: "application/json", Body: body})
	if err != nil {
		b.t.Fatal(err)
	}
	if !c.Wait() {
		b.t.Fatal("the broker refused a message")
	}
}

// membership is a row of segment_memberships as the test reads it.
type membership struct {
	Member          bool
	Entered, Exited time.Time
	Gone            bool // exited_at is set
}

func readMembership(t *testing.T, pool *pgxpool.Pool, segment, user string) (membership, bool) {
	t.Helper()
	var m membership
	var entered, exited *time.Time
	err := pool.QueryRow(context.Background(), `SELECT member, entered_at, exited_at FROM segment_memberships
		WHERE segment = $1 AND user_id = $2`, segment, user).Scan(&m.Member, &entered, &exited)
	if err != nil {
		return m, false
	}
	if entered != nil {
		m.Entered = entered.UTC()
	}
	if exited != nil {
		m.Exited, m.Gone = exited.UTC(), true
	}
	return m, true
}

// The time semantics of behavioural segments on the real services, in event time
// (events published by a backend with their own receipt times, an afternoon replayed
// in seconds): three views spread over 15 minutes do not qualify, three within 10
// do; out-of-order events within the allowed lateness count, later ones do not;
// three views 30 minutes old do not count; the window ends and the TTL runs out at
// the exact event times; cart abandonment enters 30 minutes after the cart add and a
// purchase ends it. Each is checked in Postgres and in what /v1/decide serves.
func TestSegmentTimeSemanticsEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("drives the real pipeline")
	}
	f := newFixture(t)
	// One shard: the simulated clock (the watermark) is per shard. No rebuild from
	// ClickHouse: the replayed events are received "hours ago", before any cut a
	// rebuild would take, and would be left to a history this test does not store.
	f.env["LIFT_SEGMENT_SHARDS"] = "1"
	f.env["LIFT_SEGMENT_REBUILD"] = "false"
	f.start(t)
	f.server.want(201, "POST", "/api/v1/segments", `{"key":"high-intent","kind":"behavioral",
		"rule":{"event":"product_view","count_gte":3,"within":"10m"},"ttl":"5m"}`, nil)
	f.server.want(201, "POST", "/api/v1/segments", `{"key":"cart-abandoner","kind":"behavioral",
		"rule":{"sequence":[{"event":"add_to_cart"}],"within":"24h","absent":{"event":"purchase","within":"30m"}}}`, nil)
	f.server.want(201, "POST", "/api/v1/flags", `{"key":"offer","type":"string","default":"none","rules":[
		{"segment":"high-intent","value":"discount","variant":"high-intent"},
		{"segment":"cart-abandoner","value":"reminder","variant":"cart"}]}`, nil)
	pool, err := pgxpool.New(context.Background(), f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	waitEngineRuns(t, pool, 1, "high-intent", "cart-abandoner")

	b := newBackend(t, f.env["LIFT_AMQP_URL"])
	s := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute) // the afternoon starts
	at := func(d time.Duration) time.Time { return s.Add(d) }
	// ev is received when it happens; evLate is received at "received".
	ev := func(typ, user string, d time.Duration) simEvent {
		return simEvent{Type: typ, UserID: user, Timestamp: at(d), ReceivedAt: at(d)}
	}
	evAt := func(typ, user string, d, received time.Duration) simEvent {
		return simEvent{Type: typ, UserID: user, Timestamp: at(d), ReceivedAt: at(received)}
	}
	clock := func(d time.Duration) { b.send(ev("page_view", "clock", d)) } // moves event time on
	const m = time.Minute

	b.send(ev("product_view", "spread", 0))
	b.send(ev("product_view", "in-time", m))
	b.send(ev("product_view", "in-time", 2*m))
	b.send(ev("product_view", "in-time", 3*m)) // enters at 3m; the rule holds until 11m, the TTL to 16m
	b.send(ev("product_view", "spread", 7*m+30*time.Second))
	b.send(ev("product_view", "spread", 15*m)) // never three within 10 minutes
	clock(18 * m)                              // the watermark passes 17m: in-time's TTL has run out
	// Out of order within the minute of lateness: counts, entering at the user's clock.
	b.send(ev("product_view", "shuffled", 20*m))
	b.send(ev("product_view", "shuffled", 21*m))
	b.send(evAt("product_view", "shuffled", 20*m+30*time.Second, 21*m+10*time.Second))
	// Later than the lateness: ignored.
	b.send(ev("product_view", "tardy", 25*m))
	b.send(ev("product_view", "tardy", 26*m))
	clock(28 * m)
	b.send(evAt("product_view", "tardy", 25*m+30*time.Second, 28*m))
	// Three views stamped 30 minutes before they were received.
	for i := range 3 {
		d := 29*m + time.Duration(i)*time.Second
		b.send(evAt("product_view", "stale", d-30*m, d))
	}
	// Carts at 40m: one abandoned, one bought within the 30 minutes, one bought later.
	for _, u := range []string{"abandoner", "buyer", "late-buyer"} {
		b.send(ev("add_to_cart", u, 40*m))
	}
	b.send(simEvent{Type: "purchase", UserID: "buyer", Timestamp: at(50 * m), ReceivedAt: at(50 * m), Value: 20})
	clock(69 * m)                                // the watermark at 68m: no abandonment yet
	b.send(ev("product_view", "marker-1", 69*m)) // three views to know the engine got this far
	b.send(ev("product_view", "marker-1", 69*m+time.Second))
	b.send(ev("product_view", "marker-1", 69*m+2*time.Second))

	member := func(segment, user string) (membership, bool) { return readMembership(t, pool, segment, user) }
	testenv.Eventually(t, 20*time.Second, "marker-1 in high-intent", func() bool { m, ok := member("high-intent", "marker-1"); return ok && m.Member })
	if _, ok := member("cart-abandoner", "abandoner"); ok {
		t.Errorf("abandoner entered cart abandonment before 30 minutes (+ lateness) had passed")
	}
	clock(71 * m) // the watermark passes 70m: abandoner and late-buyer enter at exactly 70m
	b.send(simEvent{Type: "purchase", UserID: "late-buyer", Timestamp: at(80 * m), ReceivedAt: at(80 * m), Value: 35})
	clock(82 * m)
	b.send(ev("product_view", "marker-2", 82*m))
	b.send(ev("product_view", "marker-2", 82*m+time.Second))
	b.send(ev("product_view", "marker-2", 82*m+2*time.Second))
	testenv.Eventually(t, 20*time.Second, "marker-2 in high-intent", func() bool { m, ok := member("high-intent", "marker-2"); return ok && m.Member })

	type want struct {
		segment, user string
		row           bool // a row exists (the user entered at some point)
		member        bool
		entered       time.Duration
		exited        time.Duration // -1: none
	}
	for _, w := range []want{
		{"high-intent", "in-time", true, false, 3 * m, 16 * m},            // window end (11m) + TTL (5m)
		{"high-intent", "spread", false, false, 0, -1},                    // three views over 15 minutes
		{"high-intent", "shuffled", true, false, 21 * m, 35 * m},          // the out-of-order view counted; the window ends at 30m, the TTL at 35m
		{"high-intent", "tardy", false, false, 0, -1},                     // the late view did not
		{"high-intent", "stale", false, false, 0, -1},                     // views 30 minutes old
		{"cart-abandoner", "abandoner", true, true, 70 * m, -1},           // 30 minutes after the cart add
		{"cart-abandoner", "buyer", false, false, 0, -1},                  // bought within 30 minutes
		{"cart-abandoner", "late-buyer", true, false, 70 * m, 80 * m},     // entered, and left with the purchase
		{"high-intent", "marker-2", true, true, 82*m + 2*time.Second, -1}, // the last thing processed
		{"cart-abandoner", "in-time", false, false, 0, -1},                // no cart
		{"high-intent", "abandoner", false, false, 0, -1},                 // no views
		{"high-intent", "marker-1", true, true, 69*m + 2*time.Second, -1}, // still within 10 minutes + TTL
		{"cart-abandoner", "marker-1", false, false, 0, -1},               // no cart
	} {
		got, ok := member(w.segment, w.user)
		if ok != w.row || ok && (got.Member != w.member || !got.Entered.Equal(at(w.entered)) ||
			(w.exited < 0) == got.Gone || got.Gone && !got.Exited.Equal(at(w.exited))) {
			t.Errorf("%s in %s: row %v %+v; want row %v, member %v, entered at +%v, exited at +%v",
				w.user, w.segment, ok, got, w.row, w.member, w.entered, w.exited)
		}
	}
	// What /v1/decide serves follows.
	offer := func(user string) string {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+user+`","keys":["offer"]}`, &r)
		return string(r.Decisions["offer"].Value)
	}
	testenv.Eventually(t, 10*time.Second, "the discount offer for marker-2", func() bool { return offer("marker-2") == `"discount"` })
	for user, want := range map[string]string{"in-time": `"none"`, "spread": `"none"`, "shuffled": `"none"`,
		"tardy": `"none"`, "stale": `"none"`, "abandoner": `"reminder"`, "buyer": `"none"`, "late-buyer": `"none"`} {
		if got := offer(user); got != want {
			t.Errorf("%s is offered %s, want %s", user, got, want)
		}
	}
}
