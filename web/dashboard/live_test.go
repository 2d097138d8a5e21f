package dashboard_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/dashboard"
)

type deadQueue struct{ q *amqpbus.QueueInspector }

func (d deadQueue) DeadQueueDepth(ctx context.Context) (int, error) {
	return d.q.Depth(ctx, amqpbus.DeadQueue)
}

// The live view reads events, exposures and recorded dead letters from a real
// ClickHouse and the depth of lift.dead from a real RabbitMQ.
func TestLiveEvents(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	amqpURL := testenv.AMQPURL(t)
	testenv.AMQPChannel(t, amqpURL, amqpbus.Declare) // the topology, so lift.dead exists
	insp := &amqpbus.QueueInspector{URL: amqpURL}
	t.Cleanup(insp.Close)
	h := newHarnessDeps(t, func(_ experiments.Store, _ *pgxpool.Pool, d *dashboard.Deps) {
		d.Feed, d.DeadQueue = sink, deadQueue{insp}
	})

	now := time.Now().UTC().Truncate(time.Second)
	events := []ingest.Event{
		{ID: ingest.NewID(), Type: ingest.TypePageView, UserID: "ann", Timestamp: now.Add(-time.Minute), ReceivedAt: now.Add(-time.Minute), Properties: []byte(`{"path":"/pricing"}`)},
		{ID: ingest.NewID(), Type: ingest.TypePurchase, UserID: "bob", Timestamp: now, ReceivedAt: now, Value: 49.5, Properties: []byte(`{}`)},
		{ID: ingest.NewID(), Type: ingest.TypeExposure, UserID: "bob", Timestamp: now, ReceivedAt: now,
			Exposure: &ingest.Exposure{Experiment: "hero-banner", Variant: "bold", AssignmentProbability: 0.5}},
	}
	if err := sink.Insert(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	if err := sink.InsertDeadLetters(t.Context(), []ingest.DeadLetter{
		ingest.NewDeadLetter(now, "purchase", "value: must be ≥ 0", []byte(`{"type":"purchase","user_id":"eve","value":-1}`)),
	}); err != nil {
		t.Fatal(err)
	}

	b := h.signedIn("viewer@example.com", auth.Viewer)
	p := b.get("/events")
	if p.status != 200 || !hasTestID(p.body, "events-table") || !hasTestID(p.body, "live-filters") || !strings.Contains(p.body, `hx-trigger="every 3s"`) {
		t.Fatalf("events tab: %d", p.status)
	}
	table := between(p.body, `data-testid="events-table"`, "</table>")
	if strings.Index(table, "purchase") > strings.Index(table, "page_view") || !strings.Contains(table, "49.5") || !strings.Contains(table, "/pricing") || strings.Contains(table, "hero-banner") {
		t.Errorf("events table, newest first, without exposures: %s", table)
	}
	if p = b.get("/events?tab=events&user=ann"); strings.Contains(between(p.body, `data-testid="events-table"`, "</table>"), "bob") {
		t.Errorf("user filter kept bob's events")
	}
	if p = b.get("/events?tab=events&type=click"); !hasTestID(p.body, "empty") || !strings.Contains(p.body, "None match the filter") {
		t.Errorf("no clicks: %d", p.status)
	}
	if p = b.get("/events?tab=events&fragment=1"); strings.Contains(p.body, "<html") || !hasTestID(p.body, "live-feed") {
		t.Errorf("fragment is a whole page")
	}
	if p = b.get("/events?tab=events&live=0"); strings.Contains(p.body, "hx-trigger=") || !hasTestID(p.body, "resume-live") {
		t.Errorf("paused view still refreshes")
	}
	p = b.get("/events?tab=exposures&experiment=hero-banner")
	if !hasTestID(p.body, "exposures-table") || !strings.Contains(p.body, "bold") || !strings.Contains(p.body, "50%") {
		t.Errorf("exposures tab")
	}
	p = b.get("/events?tab=dead")
	if !hasTestID(p.body, "dead-letters") || !strings.Contains(p.body, "value: must be ≥ 0") || !strings.Contains(p.body, "eve") {
		t.Errorf("dead letters tab: %s", between(p.body, `id="feed"`, "</ol>"))
	}
	if got := between(p.body, `data-testid="dead-depth-value">`, "<"); got != "0" {
		t.Errorf("lift.dead depth %q, want 0", got)
	}
}

// Without a feed, or with ClickHouse and RabbitMQ not answering, the page says so
// instead of failing.
func TestLiveEventsUnavailable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.signedIn("viewer@example.com", auth.Viewer)
	if p := b.get("/events"); p.status != http.StatusOK || !hasTestID(p.body, "live-unavailable") {
		t.Errorf("no feed: %d", p.status)
	}
	down := testenv.NewProxy(t, "127.0.0.1:9000")
	down.Cut()
	sink, err := chsink.Open(down.Addr(), "lift")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	broker := testenv.NewProxy(t, "127.0.0.1:5672")
	broker.Cut()
	insp := &amqpbus.QueueInspector{URL: "amqp://guest:guest@" + broker.Addr() + "/"}
	t.Cleanup(insp.Close)
	h = newHarnessDeps(t, func(_ experiments.Store, _ *pgxpool.Pool, d *dashboard.Deps) {
		d.Feed, d.DeadQueue = sink, deadQueue{insp}
	})
	b = h.signedIn("viewer@example.com", auth.Viewer)
	for _, tab := range []string{"events", "exposures", "dead"} {
		if p := b.get("/events?tab=" + tab); p.status != http.StatusOK || !hasTestID(p.body, "live-problem") {
			t.Errorf("%s with ClickHouse down: %d", tab, p.status)
		}
	}
	if p := b.get("/events?tab=dead"); !strings.Contains(p.body, "RabbitMQ did not say") {
		t.Errorf("dead letters with RabbitMQ down do not say so")
	}
}
