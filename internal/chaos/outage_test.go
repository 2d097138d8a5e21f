package chaos_test

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/internal/chaos"
	"github.com/liftlab/lift/internal/testenv"
)

// 9. ClickHouse unreachable for several times the broker's consumer_timeout (10 s
// here, 30 minutes by default): the timeout closes the consumer's channel and
// returns its deliveries once, and the consumer then waits for ClickHouse before
// taking deliveries again instead of taking, holding and returning the same ones
// every timeout, which would dead-letter them at the queue's delivery limit. After
// the outage no message has been delivered more than twice (a redelivery count of
// at most 1), nothing is dead-lettered, and everything is stored once.
func TestClickHouseOutageOutlastsConsumerTimeout(t *testing.T) {
	rabbit := chaos.StartRabbit(t, 10*time.Second)
	addr, db := testenv.ClickHouse(t)
	proxy := testenv.NewProxy(t, addr)
	f := newFixture(t, map[string]string{"LIFT_AMQP_URL": rabbit.URL("/"),
		"LIFT_CLICKHOUSE_ADDR": proxy.Addr(), "LIFT_CLICKHOUSE_DB": db, "LIFT_INGEST_CONSUMERS": "1"})
	api := chaos.StartLift(t, "api", "api", f.env)
	ingest := chaos.StartLift(t, "ingest", "ingest", f.env)
	outage := chaos.Size(40*time.Second, 2*time.Minute)
	s := &chaos.Stream{URL: api.URL, Key: f.clientKey, Events: chaos.Size(20_000, 60_000), Rate: 10}
	done := stream(t, s)
	if untilInserted(ingest, 0, time.Now(), time.Minute) < 0 {
		t.Fatal("nothing inserted before the outage")
	}
	proxy.Cut()
	cutAt := time.Now()
	time.Sleep(outage)
	restarts, _ := ingest.Metric("lift_consumer_restarts_total", "")
	// Whatever the consumer holds now goes back to the queue with the kill.
	ingest.Kill()
	<-done
	counts, messages := deliveryCounts(t, rabbit.URL("/"))
	proxy.Restore()
	ingest.Start()
	restored := time.Now()
	r := s.Result()
	fig, _ := chaos.Stored(t, addr, db, r.IDs, 3*time.Minute)
	fig.Scenario = "9-clickhouse-outlasts-timeout"
	fig.Recover = time.Since(restored)
	most := 0
	for c := range counts {
		most = max(most, c)
	}
	fig.Notes = []string{fmt.Sprintf("ClickHouse cut for %s against a 10 s consumer_timeout; %d consumer restarts meanwhile; %d messages waited in lift.ingest, by redelivery count %v; recover = lift restarted to every event stored",
		time.Since(cutAt).Round(time.Second), int(restarts), messages, counts)}
	accept(t, fig, s.Events, r)
	if messages == 0 {
		t.Error("no message waited in lift.ingest after the outage: the scenario proves nothing")
	}
	if most > 1 {
		t.Errorf("messages redelivered up to %d times during one outage (by count %v): the consumer keeps taking deliveries it cannot store", most, counts)
	}
	if n := testenv.QueueDepth(t, rabbit.URL("/"), amqpbus.DeadQueue); n != 0 {
		t.Errorf("lift.dead holds %d messages after the outage, want 0", n)
	}
}

// deliveryCounts takes every ready message of lift.ingest without acknowledging it
// and returns how many have each x-delivery-count (0: first delivery), and the
// total; closing the channel gives them back.
func deliveryCounts(t *testing.T, url string) (map[int]int, int) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	counts, total := map[int]int{}, 0
	for {
		msg, ok, err := ch.Get(amqpbus.IngestQueue, false)
		if err != nil {
			t.Fatalf("get from %s: %v", amqpbus.IngestQueue, err)
		}
		if !ok {
			return counts, total
		}
		n := 0
		switch v := msg.Headers["x-delivery-count"].(type) {
		case int64:
			n = int(v)
		case int32:
			n = int(v)
		case nil:
		default:
			t.Fatalf("x-delivery-count %v of type %T", v, v)
		}
		counts[n]++
		total++
	}
}
