package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/ingest"
)

// benchBody is 100 events as lift publishes them, with received_at, or as a client
// sends them, without.
func benchBody(received bool) []byte {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	parts := make([]string, 100)
	for i := range parts {
		rec := ""
		if received {
			rec = fmt.Sprintf(`"received_at":%q,`, now)
		}
		parts[i] = fmt.Sprintf(`{"event_id":%q,"type":"page_view","user_id":"user-%d","timestamp":%q,%s"properties":{"path":"/products/%d","ref":"bench"}}`,
			ingest.NewID(), i, now, rec, i)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

// BenchmarkParseMessage: a consumer parsing one message of 100 events.
func BenchmarkParseMessage(b *testing.B) {
	body := benchBody(true)
	now := time.Now()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, inv := ingest.ParseMessage(body, now, time.Time{}, nil); len(inv) > 0 {
			b.Fatal(inv)
		}
	}
}

// BenchmarkParseRequest: the collector parsing one request of 100 events.
func BenchmarkParseRequest(b *testing.B) {
	body := []byte(`{"events":` + string(benchBody(false)) + `}`)
	d := ingest.Defaults{ReceivedAt: time.Now(), NewID: ingest.NewID}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, rej, err := ingest.ParseRequest(body, d); err != nil || len(rej) > 0 {
			b.Fatal(err, rej)
		}
	}
}
