package amqpbus_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// Child-process mode: TestKill9 re-runs this test binary as a consumer so it can kill
// it with SIGKILL, which an in-process consumer cannot be.
const childEnv = "LIFT_TEST_CHILD_CONSUMER"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
		return
	}
	os.Exit(m.Run())
}

func runChild() {
	sink, err := chsink.Open(os.Getenv("LIFT_TEST_CHILD_CH_ADDR"), os.Getenv("LIFT_TEST_CHILD_CH_DB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	c := &amqpbus.Consumer{URL: os.Getenv("LIFT_TEST_CHILD_AMQP_URL"), Sink: pauseAfterInsert{sink},
		Log:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Metrics: ingest.NewMetrics(prometheus.NewRegistry()), BatchRows: 1000, BatchWait: 200 * time.Millisecond, Prefetch: 50}
	c.Run(context.Background())
}

// pauseAfterInsert tells the parent that a batch is in ClickHouse and then stalls
// before the consumer can ack it, so a SIGKILL lands in the worst place: rows stored,
// deliveries unacknowledged.
type pauseAfterInsert struct{ ingest.Sink }

func (p pauseAfterInsert) Insert(ctx context.Context, events []ingest.Event) error {
	if err := p.Sink.Insert(ctx, events); err != nil {
		return err
	}
	fmt.Printf("inserted %d\n", len(events))
	time.Sleep(300 * time.Millisecond)
	return nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startConsumer runs an in-process consumer until the test ends.
func startConsumer(t *testing.T, url, chAddr, db string) *ingest.Metrics {
	t.Helper()
	sink, err := chsink.Open(chAddr, db)
	if err != nil {
		t.Fatal(err)
	}
	m := ingest.NewMetrics(prometheus.NewRegistry())
	c := &amqpbus.Consumer{URL: url, Sink: sink, Log: quiet, Metrics: m, BatchRows: 5000, BatchWait: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; sink.Close() })
	return m
}

// startPublisher runs a publisher until the test ends and waits until it is connected.
func startPublisher(t *testing.T, url string) *amqpbus.Publisher {
	t.Helper()
	p := amqpbus.NewPublisher(url, quiet, ingest.NewMetrics(prometheus.NewRegistry()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(t, 10*time.Second, "publisher connected", func() bool { return p.Ready(ctx) == nil })
	return p
}

// makeEvents returns n valid events with fresh ids, of the given type.
func makeEvents(n int, typ string) []ingest.Event {
	now := time.Now().UTC().Truncate(time.Second)
	out := make([]ingest.Event, n)
	for i := range out {
		out[i] = ingest.Event{ID: ingest.NewID(), Type: typ, UserID: fmt.Sprintf("u%d", i%997),
			Timestamp: now, ReceivedAt: now, Properties: []byte(`{"i":` + fmt.Sprint(i) + `}`)}
		if typ == ingest.TypeExposure {
			x := ingest.Exposure{Experiment: "exp", Variant: []string{"control", "b"}[i%2], AssignmentProbability: 0.5}
			out[i].Exposure = &x
			out[i].Properties = []byte(`{"experiment":"exp","variant":"` + x.Variant + `","assignment_probability":0.5}`)
		}
	}
	return out
}

// publishAll publishes events in requests of 100, like the collector under load.
func publishAll(t *testing.T, p *amqpbus.Publisher, events []ingest.Event) {
	t.Helper()
	for i := 0; i < len(events); i += 100 {
		if err := p.Publish(context.Background(), events[i:min(i+100, len(events))]); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

func openCH(t *testing.T, addr, db string) *sql.DB {
	t.Helper()
	conn := migrations.OpenClickHouse(addr, db)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func queryInt(t *testing.T, db *sql.DB, query string) uint64 {
	t.Helper()
	var n uint64
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// confirmChannel opens a channel in publisher-confirm mode on its own connection,
// closed when the test ends, with the topology declared.
func confirmChannel(t *testing.T, url string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := amqpbus.Declare(ch); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return ch
}
