package amqpbus_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/internal/testenv"
)

// Every stored event carries where it entered lift: the collector's client or server
// key travel in the message header (one Publish may mix them), and a message a
// backend published without that header is the backend's. A header with any other
// value counts as a client's, since only the collector writes it.
func TestEventSourceRecorded(t *testing.T) {
	t.Parallel()
	url := testenv.AMQPURL(t)
	addr, db := testenv.ClickHouse(t)
	pub := startPublisher(t, url)
	startConsumer(t, url, addr, db)
	ch := openCH(t, addr, db)

	events := makeEvents(3, ingest.TypeIdentify)
	for i, src := range []ingest.Source{ingest.SourceClient, ingest.SourceServer, ingest.SourceClient} {
		events[i].UserID, events[i].Source = string(src)+"-"+string(rune('a'+i)), src
	}
	if err := pub.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	pch := confirmChannel(t, url)
	for user, headers := range map[string]amqp.Table{
		"backend": nil,
		"forged":  {amqpbus.SourceHeader: "amqp"},
	} {
		dc, err := pch.PublishWithDeferredConfirmWithContext(context.Background(), amqpbus.Exchange, ingest.TypeIdentify, false, false,
			amqp.Publishing{ContentType: "application/json", Headers: headers,
				Body: []byte(`{"type":"$identify","user_id":"` + user + `","properties":{"anonymous_id":"x"}}`)})
		if err != nil || !dc.Wait() {
			t.Fatalf("publish %s: %v", user, err)
		}
	}
	testenv.Eventually(t, 30*time.Second, "every event stored", func() bool { return queryInt(t, ch, "SELECT count() FROM events") == 5 })
	rows, err := ch.Query("SELECT user_id, toString(source) FROM events ORDER BY user_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var user, src string
		if err := rows.Scan(&user, &src); err != nil {
			t.Fatal(err)
		}
		got[user] = src
	}
	want := map[string]string{"client-a": "client", "server-b": "server", "client-c": "client", "backend": "amqp", "forged": "client"}
	for user, src := range want {
		if got[user] != src {
			t.Errorf("%s stored with source %q, want %q (all: %v)", user, got[user], src, got)
		}
	}
}
