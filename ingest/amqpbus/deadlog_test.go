package amqpbus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
)

// flakySink fails its first inserts, like ClickHouse during an outage.
type flakySink struct {
	ingest.DeadLetterSink
	mu    sync.Mutex
	fails int
}

func (f *flakySink) InsertDeadLetters(ctx context.Context, letters []ingest.DeadLetter) error {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return errors.New("clickhouse is down")
	}
	f.mu.Unlock()
	return f.DeadLetterSink.InsertDeadLetters(ctx, letters)
}

// Every dead letter is recorded with its reason, through a sink outage, while
// lift.dead keeps every message: the log reads its own copy, never lift.dead.
func TestDeadLetterLog(t *testing.T) {
	t.Parallel()
	url := testenv.AMQPURL(t)
	addr, db := testenv.ClickHouse(t)
	startPublisher(t, url)
	startConsumer(t, url, addr, db)
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ps, err := ingest.NewPseudonymizer([]byte("a test key of at least 32 bytes!!"))
	if err != nil {
		t.Fatal(err)
	}
	log := &amqpbus.DeadLetterLog{URL: url, Sink: &flakySink{DeadLetterSink: sink, fails: 3}, Log: quiet, BatchWait: 100 * time.Millisecond,
		Privacy: &ingest.Privacy{Pseudonymizer: ps}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { log.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	ch := testenv.AMQPChannel(t, url, amqpbus.Declare)
	const n = 30
	for i := range n {
		body := fmt.Sprintf(`{"type":"purchase","user_id":"buyer-%d","value":-%d}`, i, i+1)
		if err := ch.PublishWithContext(ctx, amqpbus.Exchange, "purchase", false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	var letters []ingest.DeadLetter
	testenv.Eventually(t, 30*time.Second, "dead letters recorded", func() bool {
		letters, err = sink.RecentDeadLetters(ctx, 100)
		return err == nil && len(letters) == n
	})
	if got := testenv.QueueDepth(t, url, amqpbus.DeadQueue); got != n {
		t.Errorf("lift.dead holds %d messages, want all %d", got, n)
	}
	users := map[string]bool{}
	for i, d := range letters {
		// lift.dead's order, newest first: the last one published comes first.
		// The recorded user id is the pseudonym, as in every other table.
		if want := ps.Pseudonymize(fmt.Sprintf("buyer-%d", n-1-i)); d.UserID != want {
			t.Errorf("dead letter %d is %s's, want %s's", i, d.UserID, want)
		}
		if !strings.Contains(d.Reason, "value") || d.RoutingKey != "purchase" || !strings.HasPrefix(string(d.Body), `{"type":"purchase"`) {
			t.Errorf("dead letter %+v", d)
		}
		users[d.UserID] = true
	}
	if len(users) != n || !users[ps.Pseudonymize("buyer-7")] {
		t.Errorf("user ids %v", users)
	}
	if c, err := sink.DeadLetterCount(ctx); err != nil || c != n {
		t.Errorf("DeadLetterCount = %d, %v", c, err)
	}
	// Recording the same messages again (a redelivery after a crash) shows each once.
	if err := sink.InsertDeadLetters(ctx, letters); err != nil {
		t.Fatal(err)
	}
	if again, err := sink.RecentDeadLetters(ctx, 100); err != nil || len(again) != n {
		t.Errorf("after re-recording: %d letters, %v", len(again), err)
	}

	insp := &amqpbus.QueueInspector{URL: url}
	defer insp.Close()
	if d, err := insp.Depth(ctx, amqpbus.DeadQueue); err != nil || d != n {
		t.Errorf("Depth(lift.dead) = %d, %v", d, err)
	}
	if _, err := insp.Depth(ctx, "no-such-queue"); err == nil {
		t.Error("Depth of a missing queue did not fail")
	}
	// The failed passive declare must not spoil the next call.
	if d, err := insp.Depth(ctx, amqpbus.DeadQueue); err != nil || d != n {
		t.Errorf("Depth after a failure = %d, %v", d, err)
	}
}
